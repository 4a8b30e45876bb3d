/**
 * `tapkit cleanup`: removes interfaces tapkit made whose owner is gone, and nothing else.
 *
 * - Linux: tapkit's devices are non-persistent by default and vanish with their process, even
 *   after `kill -9`; nothing of theirs can be left. What can be left is a *persistent* device
 *   whose alias marks it as tapkit's and names an owner process (see marker.ts) — once that
 *   process is gone and no process has the device open. Persistent devices prepared to stay
 *   (no owner in the marker), other tools' devices and everything else are never touched. The
 *   removal itself is linux-tap's `removePersistentTap`, which refuses (EBUSY) a device that a
 *   process attached to in the meantime.
 * - macOS: darwin-feth's `cleanupStalePairs` (its records, owner pid and start time, MAC
 *   checks; see that package's README).
 *
 * @module
 */
import { isTapError } from '@tapkit/core';
import { loadFeth, type DarwinSources, type FethModule } from './darwin.js';
import { IFF_PERSIST, holdsHere, markerOwnersAlive, readLinuxSystem, type LinuxSources } from './linux.js';
import { parseMarker } from './marker.js';
import type { CleanupFailure, CleanupItem, CleanupResult } from './types.js';

/** What removes a persistent Linux device: linux-tap's `removePersistentTap`. */
export type RemovePersistent = (name: string) => Promise<boolean>;

async function loadRemover(): Promise<RemovePersistent | undefined> {
  try {
    const mod = (await import('@tapkit/linux-tap')) as { removePersistentTap?: RemovePersistent };
    return mod.removePersistentTap;
  } catch {
    return undefined;
  }
}

function failure(name: string, error: unknown): CleanupFailure {
  return {
    name,
    code: isTapError(error) ? error.code : ((error as { code?: string }).code ?? 'ERR_TAP_SYSTEM'),
    message: (error as Error).message ?? String(error),
  };
}

/** Options of {@link cleanupLinux}. */
export interface LinuxCleanupOptions extends LinuxSources {
  readonly dryRun: boolean;
  /** Default: linux-tap's removePersistentTap. */
  readonly remove?: RemovePersistent;
}

/** `tapkit cleanup` on Linux (this network namespace). */
export async function cleanupLinux(options: LinuxCleanupOptions): Promise<CleanupResult> {
  const system = await readLinuxSystem(options);
  const alive = await markerOwnersAlive(system, options.proc);
  const removed: CleanupItem[] = [];
  const kept: CleanupItem[] = [];
  const failed: CleanupFailure[] = [];
  const notes: string[] = [];
  let remove = options.remove;
  for (const link of system.links) {
    const marker = parseMarker(link.alias);
    // Only tapkit's persistent tun/tap devices can outlive their owner.
    if (!marker || link.tunFlags === undefined || (link.tunFlags & IFF_PERSIST) === 0) continue;
    const item = {
      name: link.name,
      backend: marker.backend,
      ...(marker.pid !== undefined && { ownerPid: marker.pid }),
    };
    if (marker.pid === undefined) {
      kept.push({
        ...item,
        reason: 'prepared to stay (no owner process): remove it with removePersistentTap',
      });
      continue;
    }
    if (alive.get(link.name)) {
      kept.push({ ...item, reason: `its owner, process ${marker.pid}, is running` });
      continue;
    }
    const holders = system.holders.filter((holder) => holdsHere(holder, link.name));
    if (holders.length > 0) {
      kept.push({ ...item, reason: `in use by process ${holders.map((h) => h.pid).join(', ')}` });
      continue;
    }
    const reason = `its owner, process ${marker.pid}, is gone and nothing has it open`;
    if (options.dryRun) {
      removed.push({ ...item, reason });
      continue;
    }
    remove ??= await loadRemover();
    if (!remove) {
      failed.push({
        name: link.name,
        code: 'ERR_TAP_BACKEND_NOT_INSTALLED',
        message: 'removing a persistent device needs @tapkit/linux-tap, which could not be loaded',
      });
      continue;
    }
    try {
      await remove(link.name);
      removed.push({ ...item, reason });
    } catch (error) {
      failed.push(failure(link.name, error));
    }
  }
  if (!system.holdersComplete) {
    notes.push('some processes could not be inspected; run as root to be sure what is in use');
  }
  return { platform: 'linux', dryRun: options.dryRun, removed, kept, failed, notes };
}

/** Options of {@link cleanupDarwin}. */
export interface DarwinCleanupOptions extends Pick<DarwinSources, 'feth'> {
  readonly dryRun: boolean;
}

/** `tapkit cleanup` on macOS: darwin-feth's stale-pair sweep. */
export async function cleanupDarwin(options: DarwinCleanupOptions): Promise<CleanupResult> {
  const feth: FethModule | undefined = await (options.feth ?? loadFeth)();
  if (!feth) {
    return {
      platform: 'darwin',
      dryRun: options.dryRun,
      removed: [],
      kept: [],
      failed: [],
      notes: ['@tapkit/darwin-feth is not installed: there are no tapkit feth pairs to look for'],
    };
  }
  const report = await feth.cleanupStalePairs({ dryRun: options.dryRun });
  const item = (pair: { name: string; ioName: string; pid: number }, reason: string): CleanupItem => ({
    name: pair.name,
    backend: 'darwin-feth',
    peer: pair.ioName,
    ownerPid: pair.pid,
    reason,
  });
  return {
    platform: 'darwin',
    dryRun: options.dryRun,
    removed: report.removed.map((p) => item(p, `its owner, process ${p.pid}, is gone`)),
    kept: report.active.map((p) => item(p, `its owner, process ${p.pid}, is running`)),
    failed: report.errors.map((e) => ({ code: e.code, message: e.message })),
    notes: report.unreadable.map((u) => `left alone, not a readable pair record: ${u.file} (${u.problem})`),
  };
}
