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
 * Cleanup destroys the interfaces these records name, so only records nobody else could have
 * written are believed: the runtime directory and its `darwin-feth` directory must be real
 * directories (not symbolic links), owned by the user the backend runs as (root) and writable by
 * it alone, or nothing is read or written there (ERR_TAP_INVALID_OPTION); a record must be a
 * regular file (never followed through a link) with the same owner and no group or other write
 * permission, or it is listed as a problem and not used.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { TapError, TapErrorCode } from '@tapkit/core';
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

/** Why a file or directory is not to be trusted (see the module notes), or undefined. */
function distrust(stats: Stats, kind: 'directory' | 'file'): string | undefined {
  const uid = process.geteuid?.() ?? 0;
  if (stats.isSymbolicLink()) return 'is a symbolic link';
  if (kind === 'directory' ? !stats.isDirectory() : !stats.isFile()) return `is not a ${kind}`;
  if (stats.uid !== uid) return `is owned by uid ${stats.uid}, not ${uid} (this process's)`;
  if ((stats.mode & 0o022) !== 0) return `is writable by others (mode ${(stats.mode & 0o777).toString(8)})`;
  return undefined;
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

  /** Throws unless the runtime directory and ours in it are trusted; false when ours is absent. */
  #checkDirectories(): boolean {
    for (const dir of [join(this.dir, '..'), this.dir]) {
      let stats: Stats;
      try {
        stats = lstatSync(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw error;
      }
      const problem = distrust(stats, 'directory');
      if (problem !== undefined) {
        throw new TapError(
          TapErrorCode.INVALID_OPTION,
          `${BACKEND}: the runtime directory ${dir} ${problem}: the pair records there decide which ` +
            'interfaces cleanup destroys, so it must be a directory owned by the user tapkit runs as ' +
            '(root) and writable by it alone; fix it, or choose another with runtimeDir or TAPKIT_RUNTIME_DIR',
          { backend: BACKEND },
        );
      }
    }
    return true;
  }

  /**
   * Records a pair, unless a record for it exists already (then returns false). Atomic and
   * exclusive: the content is written to a private temporary file, then hard-linked to its
   * name, which fails if the name exists — so two processes can never both claim a pair, and
   * a reader never sees half a file.
   */
  claim(record: PairRecord): boolean {
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    this.#checkDirectories();
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
    if (!this.#checkDirectories()) return [];
    const names = readdirSync(this.dir);
    const entries: StateEntry[] = [];
    for (const name of names.sort()) {
      if (!name.endsWith('.json')) continue; // temporary files, and anything not ours
      const file = join(this.dir, name);
      const user = name.slice(0, -'.json'.length);
      let parsed: unknown;
      try {
        const read = readTrusted(file);
        if (typeof read === 'string') {
          entries.push({ file, problem: `not trusted: it ${read}` });
          continue;
        }
        parsed = read.json;
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

/**
 * A record's parsed content, or why it is not trusted. Opened without following a link, then
 * checked through the open fd: what is checked is what is read.
 */
function readTrusted(file: string): { json: unknown } | string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') return 'is a symbolic link';
    throw error;
  }
  try {
    return distrust(fstatSync(fd), 'file') ?? { json: JSON.parse(readFileSync(fd, 'utf8')) };
  } finally {
    closeSync(fd);
  }
}
