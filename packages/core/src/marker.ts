/**
 * How a Linux interface says that tapkit made it: its alias (`ifalias`, IFLA_IFALIAS).
 *
 * The alias lives and dies with the interface, belongs to its network namespace (a record file
 * in /run could not tell two `tap0`s in two namespaces apart), and shows in `ip link` as
 * `alias tapkit:linux-tap …`, so people and other tools can see it too. Grammar:
 *
 * ```
 * tapkit:<backend>[ persistent][ pid=<pid> start=<ticks>]
 * ```
 *
 * - `persistent`: a device made with `IFF_PERSIST` (`preparePersistentTap`); others go away
 *   with their last fd and can never be left behind.
 * - `pid`/`start`: the process the device belongs to, and its start time in clock ticks since
 *   boot (field 22 of `/proc/<pid>/stat`), so that a reused pid is not taken for the owner.
 *   A persistent device with an owner is removed by `tapkit cleanup` once that process is gone
 *   and nothing has the device open; one without an owner was prepared to stay, and cleanup
 *   leaves it alone.
 *
 * @module
 */

/** What a tapkit alias says. */
export interface InterfaceMarker {
  /** The backend that made the interface (`linux-tap`). */
  readonly backend: string;
  /** Made persistent (`IFF_PERSIST`). */
  readonly persistent: boolean;
  /** The owner process, when the device is tied to one. */
  readonly pid?: number;
  /** The owner's start time, clock ticks since boot. */
  readonly start?: number;
}

/** Every tapkit alias starts with this. */
export const MARKER_PREFIX = 'tapkit:';

/** The alias for `marker` (at most 255 bytes, the kernel's limit, by construction). */
export function formatMarker(marker: InterfaceMarker): string {
  const parts = [`${MARKER_PREFIX}${marker.backend}`];
  if (marker.persistent) parts.push('persistent');
  if (marker.pid !== undefined) parts.push(`pid=${marker.pid}`, `start=${marker.start ?? 0}`);
  return parts.join(' ');
}

const BACKEND = /^[a-z0-9-]{1,32}$/;
const NUMBER = /^\d{1,20}$/;

/** Reads an alias; undefined when it is not tapkit's (or is malformed: then it is not trusted). */
export function parseMarker(alias: string): InterfaceMarker | undefined {
  const [head, ...rest] = alias.trim().split(/\s+/);
  if (head === undefined || !head.startsWith(MARKER_PREFIX)) return undefined;
  const backend = head.slice(MARKER_PREFIX.length);
  if (!BACKEND.test(backend)) return undefined;
  let persistent = false;
  let pid: number | undefined;
  let start: number | undefined;
  for (const token of rest) {
    const [key, value] = token.split('=', 2);
    if (key === 'persistent' && value === undefined) persistent = true;
    else if (key === 'pid' && value !== undefined && NUMBER.test(value)) pid = Number(value);
    else if (key === 'start' && value !== undefined && NUMBER.test(value)) start = Number(value);
    // Unknown tokens are for later versions: ignored.
  }
  if (pid !== undefined && !(pid > 0)) return undefined;
  return {
    backend,
    persistent,
    ...(pid !== undefined && { pid }),
    ...(pid !== undefined && start !== undefined && { start }),
  };
}
