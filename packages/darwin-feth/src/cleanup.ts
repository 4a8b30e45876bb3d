/**
 * Finding and removing the pairs a dead tapkit process left behind.
 *
 * Only what tapkit recorded is ever touched. A pair is tapkit's if its state file says so (see
 * {@link StateStore}); it is stale if the process named there is gone (no process with that
 * pid, or one that started at another time: the pid was reused). Even then, an interface is
 * destroyed only if it is still the one tapkit made: it carries the MAC tapkit recorded for it
 * (or the kernel's default for its unit: created, not configured yet, when the owner died), or,
 * for the user-facing member, it is peered with tapkit's I/O member. Anything else under that
 * name is someone else's now and is left alone; the stale record goes.
 *
 * @module
 */
import { formatMac, type TapError } from '@tapkit/core';
import { darwinError } from './errors.js';
import { defaultFethMac, FETH_PREFIX } from './facts.js';
import type { StateStore, PairRecord } from './state.js';
import type { DarwinSystem, InterfaceInfo } from './system.js';

/**
 * Whether a member of a recorded pair exists: `present` (and it is the one tapkit made),
 * `absent`, or `foreign` (an interface of that name exists but is not tapkit's).
 */
export type MemberStatus = 'present' | 'absent' | 'foreign';

/** Whose a recorded pair is: this process's, another live process's, or a dead one's. */
export type OwnerStatus = 'self' | 'alive' | 'dead';

/** A pair tapkit recorded, and what is true of it now. */
export interface TapkitPair {
  /** The user-facing member (`feth1xxxx`): the name the device has. */
  readonly name: string;
  /** The I/O member (`feth2xxxx`). */
  readonly ioName: string;
  readonly slot: number;
  /** The owner process. */
  readonly pid: number;
  readonly owner: OwnerStatus;
  readonly networkId: string | undefined;
  readonly createdAt: string;
  readonly user: MemberStatus;
  readonly io: MemberStatus;
  /** The user-facing member's MAC and MTU now, when it is present. */
  readonly mac: string | undefined;
  readonly mtu: number | undefined;
  /** The state file. */
  readonly stateFile: string;
}

/** What {@link cleanupStalePairs} did (or, with `dryRun`, would do). */
export interface CleanupReport {
  readonly dryRun: boolean;
  /** Pairs of dead owners: their interfaces destroyed and records removed. */
  readonly removed: TapkitPair[];
  /** Pairs whose owner is alive: left alone. */
  readonly active: TapkitPair[];
  /** Files in the state directory that are not readable pair records: left alone. */
  readonly unreadable: { readonly file: string; readonly problem: string }[];
  /** What failed; the records of pairs that could not be removed are kept, to retry. */
  readonly errors: TapError[];
}

/** Who is asking: a pair owned by this pid and start time is `self`. */
export interface Inspector {
  readonly system: DarwinSystem;
  readonly pid: number;
  readonly processStart: number | undefined;
}

function unitOf(name: string): number {
  return Number(name.slice(FETH_PREFIX.length));
}

function carriesMac(info: InterfaceInfo, recorded: string): boolean {
  if (info.mac === undefined) return false;
  const mac = formatMac(info.mac);
  return mac === recorded || mac === formatMac(defaultFethMac(unitOf(info.name)));
}

function peerOf(system: DarwinSystem, name: string): string {
  try {
    return system.getPeer(name);
  } catch {
    return '';
  }
}

/**
 * Whose a record is. A pid alone is not enough (pids are reused), so the owner's start time
 * must match too. When in doubt — the start time is unknown (recorded as 0) or cannot be read —
 * the owner counts as alive: a pair is never removed on a guess.
 */
function ownerOf(who: Inspector, record: PairRecord): OwnerStatus {
  if (record.pid === who.pid) {
    const ours =
      who.processStart === undefined || record.processStart === 0 || record.processStart === who.processStart;
    return ours ? 'self' : 'dead';
  }
  let start: number | undefined;
  try {
    start = who.system.processStartTime(record.pid);
  } catch {
    return 'alive';
  }
  if (start === undefined) return 'dead';
  return record.processStart === 0 || start === record.processStart ? 'alive' : 'dead';
}

function inspect(
  who: Inspector,
  record: PairRecord,
  file: string,
  interfaces: ReadonlyMap<string, InterfaceInfo>,
): TapkitPair {
  const { system } = who;
  const owner = ownerOf(who, record);
  const ioInfo = interfaces.get(record.io);
  const io: MemberStatus = !ioInfo ? 'absent' : carriesMac(ioInfo, record.ioMac) ? 'present' : 'foreign';
  const userInfo = interfaces.get(record.user);
  let user: MemberStatus = 'absent';
  if (userInfo) {
    const ours =
      carriesMac(userInfo, record.userMac) || (io === 'present' && peerOf(system, record.user) === record.io);
    user = ours ? 'present' : 'foreign';
  }
  return Object.freeze({
    name: record.user,
    ioName: record.io,
    slot: record.slot,
    pid: record.pid,
    owner,
    networkId: record.networkId,
    createdAt: record.createdAt,
    user,
    io,
    mac: user === 'present' && userInfo?.mac ? formatMac(userInfo.mac) : undefined,
    mtu: user === 'present' ? userInfo?.mtu : undefined,
    stateFile: file,
  });
}

/**
 * Destroys interfaces, the I/O member first; one that is already gone is fine. Returns the
 * failures.
 */
export function destroyInterfaces(system: DarwinSystem, names: readonly string[]): TapError[] {
  const failures: TapError[] = [];
  for (const name of names) {
    try {
      system.destroyInterface(name);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ENXIO')
        failures.push(darwinError(error, `destroy ${name}`));
    }
  }
  return failures;
}

function interfaceMap(system: DarwinSystem): Map<string, InterfaceInfo> {
  return new Map(system.listInterfaces().map((info) => [info.name, info]));
}

/** Every pair recorded in `store`, with its owner's and members' status now. */
export function listPairs(who: Inspector, store: StateStore): TapkitPair[] {
  const interfaces = interfaceMap(who.system);
  return store
    .list()
    .flatMap((entry) => (entry.record ? [inspect(who, entry.record, entry.file, interfaces)] : []));
}

/** Removes the pairs whose owner is dead (see the module comment). */
export function sweepStalePairs(
  who: Inspector,
  store: StateStore,
  options: { dryRun: boolean },
): CleanupReport {
  const report = { dryRun: options.dryRun, removed: [], active: [], unreadable: [], errors: [] } as {
    -readonly [K in keyof CleanupReport]: CleanupReport[K];
  };
  const interfaces = interfaceMap(who.system);
  for (const entry of store.list()) {
    if (!entry.record) {
      report.unreadable.push({ file: entry.file, problem: entry.problem });
      continue;
    }
    const pair = inspect(who, entry.record, entry.file, interfaces);
    if (pair.owner !== 'dead') {
      report.active.push(pair);
      continue;
    }
    if (!options.dryRun) {
      const ours = [pair.io === 'present' ? pair.ioName : '', pair.user === 'present' ? pair.name : ''];
      const failures = destroyInterfaces(
        who.system,
        ours.filter((name) => name !== ''),
      );
      if (failures.length > 0) {
        report.errors.push(...failures);
        continue;
      }
      try {
        store.remove(pair.name);
      } catch (error) {
        report.errors.push(darwinError(error, `remove ${entry.file}`));
        continue;
      }
    }
    report.removed.push(pair);
  }
  return report;
}
