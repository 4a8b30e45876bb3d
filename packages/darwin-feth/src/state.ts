/**
 * How tapkit remembers the pairs it created: one JSON file per pair in
 * `<runtimeDir>/darwin-feth/`, named after the user-facing member, written before the
 * interfaces are created and removed after they are destroyed. A file names the owner (pid and
 * process start time, so a reused pid is not mistaken for the owner) and the MACs tapkit gave
 * both members (so an interface someone else made under the same name later is not mistaken
 * for tapkit's).
 *
 * File operations are synchronous on purpose: they are tiny, local, and teardown must work in
 * a process 'exit' listener.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKEND } from './facts.js';
import { pairOfInterface } from './naming.js';

/** What the state file of a pair says. */
export interface PairRecord {
  readonly version: 1;
  readonly backend: typeof BACKEND;
  readonly slot: number;
  /** The user-facing member (`feth1xxxx`). */
  readonly user: string;
  /** The I/O member (`feth2xxxx`). */
  readonly io: string;
  /** The MACs tapkit set on them, `aa:bb:cc:dd:ee:ff`. */
  readonly userMac: string;
  readonly ioMac: string;
  /** The owner: its pid and when it started (ms since the epoch, from the kernel; 0 if unknown). */
  readonly pid: number;
  readonly processStart: number;
  /** ISO time of creation, for people. */
  readonly createdAt: string;
  readonly networkId?: string;
}

/** A state file as listed: its record, or why it could not be read. */
export type StateEntry =
  | { readonly file: string; readonly record: PairRecord; readonly problem?: undefined }
  | { readonly file: string; readonly record?: undefined; readonly problem: string };

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function isRecord(value: unknown, user: string): value is PairRecord {
  const r = value as Partial<Record<keyof PairRecord, unknown>> | null;
  if (typeof r !== 'object' || r === null) return false;
  const pair = pairOfInterface(user);
  return (
    r.version === 1 &&
    r.backend === BACKEND &&
    pair !== undefined &&
    r.user === pair.user &&
    r.io === pair.io &&
    r.slot === pair.slot &&
    typeof r.userMac === 'string' &&
    MAC.test(r.userMac) &&
    typeof r.ioMac === 'string' &&
    MAC.test(r.ioMac) &&
    Number.isSafeInteger(r.pid) &&
    (r.pid as number) > 0 &&
    typeof r.processStart === 'number' &&
    typeof r.createdAt === 'string' &&
    (r.networkId === undefined || typeof r.networkId === 'string')
  );
}

/** The state files of one runtime directory. */
export class StateStore {
  /** `<runtimeDir>/darwin-feth`. */
  readonly dir: string;

  constructor(runtimeDir: string) {
    this.dir = join(runtimeDir, BACKEND);
  }

  #file(user: string): string {
    return join(this.dir, `${user}.json`);
  }

  /**
   * Records a pair, unless a record for it exists already (then returns false). Atomic and
   * exclusive: the content is written to a private temporary file, then hard-linked to its
   * name, which fails if the name exists — so two processes can never both claim a pair, and
   * a reader never sees half a file.
   */
  claim(record: PairRecord): boolean {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    const temp = join(this.dir, `.${record.user}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    writeFileSync(temp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644, flag: 'wx' });
    try {
      linkSync(temp, this.#file(record.user));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      unlinkSync(temp);
    }
  }

  /** Removes a pair's record; a missing one is fine. */
  remove(user: string): void {
    try {
      unlinkSync(this.#file(user));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** Every state file, in slot order; files that are not tapkit records are reported, not used. */
  list(): StateEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const entries: StateEntry[] = [];
    for (const name of names.sort()) {
      if (!name.endsWith('.json')) continue; // temporary files, and anything not ours
      const file = join(this.dir, name);
      const user = name.slice(0, -'.json'.length);
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(file, 'utf8'));
      } catch (error) {
        entries.push({ file, problem: `unreadable: ${(error as Error).message}` });
        continue;
      }
      if (isRecord(parsed, user)) entries.push({ file, record: parsed });
      else entries.push({ file, problem: 'not a darwin-feth pair record' });
    }
    return entries;
  }
}
