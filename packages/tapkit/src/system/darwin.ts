/**
 * The interfaces of a Mac: `ifconfig -a` for what exists, and darwin-feth's records for the
 * feth pairs tapkit made (who made them, whether that process still runs).
 *
 * Written from macOS's ifconfig sources (network_cmds: `status()` prints `name: flags=…
 * [metric N] mtu N`, `fake_status()` prints `peer: <name>` or `peer: <none>` for feth, the
 * bridge status prints `member: <name> flags=…`) — it has not yet been run against a real Mac's
 * output; the tests use output written from those sources.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { InterfaceEntry, InterfaceList, TapkitInfo } from './types.js';

const execFileAsync = promisify(execFile);

/** What `tapkit` uses of `@tapkit/darwin-feth` (a structural subset of its exports). */
export interface FethModule {
  listTapkitInterfaces(): Promise<
    readonly {
      readonly name: string;
      readonly ioName: string;
      readonly pid: number;
      readonly owner: 'self' | 'alive' | 'dead';
      readonly user: 'present' | 'absent' | 'foreign';
      readonly io: 'present' | 'absent' | 'foreign';
    }[]
  >;
  cleanupStalePairs(options: { dryRun?: boolean }): Promise<{
    readonly removed: readonly { readonly name: string; readonly ioName: string; readonly pid: number }[];
    readonly active: readonly { readonly name: string; readonly ioName: string; readonly pid: number }[];
    readonly unreadable: readonly { readonly file: string; readonly problem: string }[];
    readonly errors: readonly { readonly code: string; readonly message: string }[];
  }>;
}

/** Where the macOS facts come from. For tests; the defaults are the real system. */
export interface DarwinSources {
  /** `ifconfig -a` output. */
  readonly ifconfig?: () => Promise<string>;
  /** darwin-feth, or undefined when it is not installed. */
  readonly feth?: () => Promise<FethModule | undefined>;
}

/** One interface as ifconfig shows it. */
export interface IfconfigEntry {
  readonly name: string;
  readonly flags: readonly string[];
  readonly metric: number | undefined;
  readonly mtu: number | undefined;
  readonly mac: string | undefined;
  readonly addresses: string[];
  readonly peer: string | undefined;
  readonly members: string[];
}

function prefixLengthOfMask(hex: string): number | undefined {
  const mask = Number.parseInt(hex.replace(/^0x/, ''), 16);
  if (!Number.isFinite(mask)) return undefined;
  let bits = 0;
  for (let m = mask >>> 0; m & 0x80000000; m = (m << 1) >>> 0) bits++;
  return bits;
}

/** Parses `ifconfig -a` (macOS format). Lines it does not know are skipped. */
export function parseIfconfig(output: string): IfconfigEntry[] {
  const entries: IfconfigEntry[] = [];
  let current: { -readonly [K in keyof IfconfigEntry]: IfconfigEntry[K] } | undefined;
  for (const line of output.split('\n')) {
    const head = /^([A-Za-z0-9_.-]+): flags=[0-9a-f]+<([^>]*)>(.*)$/.exec(line);
    if (head) {
      const rest = head[3] ?? '';
      current = {
        name: head[1]!,
        flags: (head[2] ?? '').split(',').filter(Boolean),
        metric: Number(/\bmetric (\d+)/.exec(rest)?.[1] ?? Number.NaN) || undefined,
        mtu: Number(/\bmtu (\d+)/.exec(rest)?.[1] ?? Number.NaN) || undefined,
        mac: undefined,
        addresses: [],
        peer: undefined,
        members: [],
      };
      entries.push(current);
      continue;
    }
    if (!current) continue;
    const fields = line.trim().split(/\s+/);
    const [key, value] = fields;
    if (value === undefined) continue;
    if (key === 'ether') current.mac = value.toLowerCase();
    else if (key === 'inet') {
      const mask = fields[fields.indexOf('netmask') + 1];
      const bits = fields.includes('netmask') && mask ? prefixLengthOfMask(mask) : undefined;
      current.addresses.push(bits === undefined ? value : `${value}/${bits}`);
    } else if (key === 'inet6') {
      const bits = fields[fields.indexOf('prefixlen') + 1];
      const address = value.replace(/%.*$/, '');
      current.addresses.push(fields.includes('prefixlen') && bits ? `${address}/${bits}` : address);
    } else if (key === 'peer:') current.peer = value === '<none>' ? undefined : value;
    else if (key === 'member:') current.members.push(value);
  }
  return entries;
}

/** The kind of a macOS interface, from its name (macOS names interfaces by driver and unit). */
export function darwinKind(name: string): string {
  const family = name.replace(/\d+$/, '');
  switch (family) {
    case 'lo':
      return 'loopback';
    case 'en':
      // Built-in Ethernet, Wi-Fi and Thunderbolt ports. (Some USB adapters and tethered phones
      // are `en` too, and are hardware as well.)
      return 'physical';
    default:
      return family || name;
  }
}

/** Judges ifconfig's view, with darwin-feth's pairs (empty when unknown). */
export function describeDarwin(
  entries: readonly IfconfigEntry[],
  pairs: Awaited<ReturnType<FethModule['listTapkitInterfaces']>>,
  notes: string[] = [],
): InterfaceList {
  const masters = new Map<string, string>();
  for (const entry of entries) for (const member of entry.members) masters.set(member, entry.name);
  const tapkit = new Map<string, TapkitInfo>();
  for (const pair of pairs) {
    const common = {
      backend: 'darwin-feth',
      evidence: 'record',
      ownerPid: pair.pid,
      owner: pair.owner,
    } as const;
    if (pair.user === 'present') tapkit.set(pair.name, { ...common, role: 'user' });
    if (pair.io === 'present') tapkit.set(pair.ioName, { ...common, role: 'io' });
  }
  const peers = new Map(pairs.flatMap((p) => [[p.name, p.ioName] as const, [p.ioName, p.name] as const]));
  const interfaces = entries.map((entry): InterfaceEntry => {
    const kind = darwinKind(entry.name);
    const mine = tapkit.get(entry.name);
    const peer = entry.peer ?? (mine ? peers.get(entry.name) : undefined);
    const master = masters.get(entry.name);
    return {
      name: entry.name,
      kind,
      virtual: kind !== 'physical' && kind !== 'loopback',
      up: entry.flags.includes('UP'),
      mtu: entry.mtu,
      mac: entry.mac,
      addresses: entry.addresses,
      ...(peer !== undefined && { peer }),
      ...(master !== undefined && { master }),
      ...(entry.metric !== undefined && { metric: entry.metric }),
      ...(mine !== undefined && { tapkit: mine }),
    };
  });
  return { platform: 'darwin', interfaces, notes };
}

async function ifconfig(): Promise<string> {
  const { stdout } = await execFileAsync('/sbin/ifconfig', ['-a'], { timeout: 10_000, maxBuffer: 16 << 20 });
  return stdout;
}

/** `@tapkit/darwin-feth` if it can be loaded. */
export async function loadFeth(): Promise<FethModule | undefined> {
  try {
    return await import('@tapkit/darwin-feth');
  } catch {
    return undefined;
  }
}

/** `tapkit list` on macOS. */
export async function listDarwinInterfaces(sources: DarwinSources = {}): Promise<InterfaceList> {
  const entries = parseIfconfig(await (sources.ifconfig ?? ifconfig)());
  const notes: string[] = [];
  const feth = await (sources.feth ?? loadFeth)();
  let pairs: Awaited<ReturnType<FethModule['listTapkitInterfaces']>> = [];
  if (!feth) {
    notes.push('@tapkit/darwin-feth is not installed: feth pairs made by tapkit are not recognised');
  } else {
    try {
      pairs = await feth.listTapkitInterfaces();
    } catch (error) {
      notes.push(`could not read darwin-feth's records: ${(error as Error).message}`);
    }
  }
  notes.push(
    'utun devices cannot be attributed to a process here; tapkit destroys its utuns with their socket',
  );
  return describeDarwin(entries, pairs, notes);
}
