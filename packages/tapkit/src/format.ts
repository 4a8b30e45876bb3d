/**
 * Human output of `tapkit doctor`, `list` and `cleanup` (`--json` prints the reports as they are).
 *
 * @module
 */
import type { DoctorReport } from './doctor.js';
import type { CleanupItem, CleanupResult, InterfaceEntry, InterfaceList } from './system/types.js';

/** Left-aligned columns, two spaces apart; the last column is not padded. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function indent(text: string, by = '    '): string {
  return text
    .split('\n')
    .map((line) => by + line)
    .join('\n');
}

export function formatDoctor(report: DoctorReport): string {
  const facts = [
    `${report.platform} ${report.arch} (${report.platform === 'darwin' ? 'Darwin' : 'kernel'} ${report.osRelease})`,
    `Node ${report.node}`,
    ...(report.libc ? [report.libc] : []),
    ...(report.uid !== undefined ? [`uid ${report.uid}`] : []),
  ];
  const lines = [`tapkit doctor: ${facts.join(', ')}`];
  if (report.forcedBackend) lines.push(`TAPKIT_BACKEND=${report.forcedBackend}`);
  lines.push('');
  for (const b of report.backends) {
    const what = b.installed ? `${b.package} ${b.version}` : `${b.package} (not installed)`;
    const note = b.name === 'mock' ? '  in memory; used only when asked for' : '';
    lines.push(`  ${b.available ? 'available  ' : 'unavailable'}  ${b.name.padEnd(12)} ${what}${note}`);
    if (!b.available) {
      lines.push(indent(`${b.code}: ${b.reason}`, '      '));
      for (const fix of b.fix ?? []) lines.push(indent(`-> ${fix}`, '      '));
    }
  }
  lines.push('');
  lines.push(
    report.selected !== undefined
      ? `openTap() will use ${report.selected}.`
      : `openTap() cannot open a device here: ${report.problem}.`,
  );
  return lines.join('\n') + '\n';
}

function kindText(entry: InterfaceEntry): string {
  const extra = [
    ...(entry.tapkit?.persistent ? ['persistent'] : []),
    ...(entry.peer !== undefined ? [`peer ${entry.peer}`] : []),
    ...(entry.master !== undefined ? [`in ${entry.master}`] : []),
    ...(entry.metric !== undefined ? [`metric ${entry.metric}`] : []),
  ];
  return extra.length > 0 ? `${entry.kind} (${extra.join(', ')})` : entry.kind;
}

function tapkitText(entry: InterfaceEntry): string {
  const t = entry.tapkit;
  if (!t) return '-';
  const parts = [t.backend];
  if (t.role === 'io') parts.push('I/O member');
  if (t.ownerPid !== undefined)
    parts.push(`owner ${t.ownerPid} ${t.owner === 'dead' ? 'gone' : (t.owner ?? '')}`.trim());
  return `yes: ${parts.join(', ')}`;
}

function ownersText(entry: InterfaceEntry): string {
  if (entry.owners === undefined) return '';
  if (entry.owners.length === 0) return 'none';
  return entry.owners.map((o) => `${o.pid} ${o.command}`).join(', ');
}

export function formatList(list: InterfaceList): string {
  const rows = [['NAME', 'KIND', 'STATE', 'MTU', 'ADDRESSES', 'TAPKIT', 'HELD BY']];
  for (const entry of list.interfaces) {
    rows.push([
      entry.name,
      kindText(entry),
      entry.up ? 'up' : 'down',
      entry.mtu === undefined ? '?' : String(entry.mtu),
      entry.addresses.length > 0 ? entry.addresses.join(' ') : '-',
      tapkitText(entry),
      ownersText(entry),
    ]);
  }
  const lines = [table(rows)];
  const exposed = list.interfaces.filter(
    (e) => e.virtual && e.up && e.addresses.some((a) => !a.startsWith('fe80:')),
  );
  if (exposed.length > 0) {
    lines.push(
      '',
      `Virtual interfaces with addresses: ${exposed.map((e) => e.name).join(', ')}. Keep them out of service ` +
        'registries and similar tools (docs/macos.md, "Keeping virtual interfaces out of other software").',
    );
  }
  for (const note of list.notes) lines.push(`note: ${note}`);
  return lines.join('\n') + '\n';
}

function items(list: readonly CleanupItem[]): string {
  return table(
    list.map((i) => [`  ${i.name}`, i.peer !== undefined ? `(and ${i.peer})` : '', i.backend, i.reason]),
  );
}

export function formatCleanup(result: CleanupResult): string {
  const lines: string[] = [];
  const verb = result.dryRun ? 'would remove' : 'removed';
  if (result.removed.length === 0 && result.failed.length === 0) {
    lines.push('tapkit cleanup: nothing to remove.');
  } else if (result.removed.length > 0) {
    lines.push(`tapkit cleanup: ${verb} ${result.removed.length}:`, items(result.removed));
  }
  if (result.failed.length > 0) {
    lines.push(`could not remove ${result.failed.length}:`);
    for (const f of result.failed)
      lines.push(`  ${f.name ?? ''}${f.name ? ': ' : ''}${f.code}: ${f.message}`);
  }
  if (result.kept.length > 0) lines.push(`left alone ${result.kept.length}:`, items(result.kept));
  for (const note of result.notes) lines.push(`note: ${note}`);
  return lines.join('\n') + '\n';
}
