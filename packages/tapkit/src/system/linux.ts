/**
 * The interfaces of this Linux network namespace, what they are, and who holds the tun/tap
 * ones — read from `/sys/class/net`, `/proc` and (when installed) `ip -details -json addr`.
 *
 * Reading ({@link readLinuxSystem}) is kept apart from judging ({@link describeLinux}), so
 * the judging can be tested on any machine.
 *
 * Who holds a tun/tap device: the kernel shows, for every fd of `/dev/net/tun` that is
 * attached, an `iff:\t<name>` line in `/proc/<pid>/fdinfo/<fd>` — the interface's name and
 * nothing else (checked on 6.x kernels: no ifindex, no namespace). Names are per namespace, so
 * a holder counts for an interface here when the process is in this namespace, or when its own
 * namespace has no interface of that name (the device was moved out of it, as tapkit's tests
 * do: the fd stays valid). Reading other users' `/proc/<pid>/fd` needs root; without it the
 * owners found may be incomplete, and the result says so.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { readFile, readdir, readlink, realpath } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseMarker, type InterfaceMarker } from './marker.js';
import type { InterfaceEntry, InterfaceList, InterfaceOwner, TapkitInfo } from './types.js';

const execFileAsync = promisify(execFile);

/** `IFF_TUN`, `IFF_TAP`, `IFF_PERSIST` in `tun_flags` (linux/if_tun.h). */
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_PERSIST = 0x0800;
/** `IFF_UP` in `flags` (linux/if.h). */
const IFF_UP = 0x1;
/** `ARPHRD_LOOPBACK` in `type`. */
const ARPHRD_LOOPBACK = 772;

/** The file names tapkit's Linux addon is loaded from: its own build, and its prebuilds'. */
const TAPKIT_ADDON = /tapkit_linux\.node|@tapkit\+linux-tap[^/]*\.node/;

/** One interface as read. */
export interface RawLink {
  readonly name: string;
  readonly ifindex: number;
  /** `iflink`: the peer's (veth) or lower device's ifindex; equal to `ifindex` when there is none. */
  readonly iflink: number;
  /** ARPHRD type. */
  readonly type: number;
  readonly flags: number;
  readonly mtu: number | undefined;
  readonly mac: string | undefined;
  readonly alias: string;
  /** `tun_flags` of a tun/tap device. */
  readonly tunFlags: number | undefined;
  /** Backed by hardware: its sysfs node is not under /sys/devices/virtual. */
  readonly hardware: boolean;
  /** `DEVTYPE` from uevent (`bridge`, `vlan`, `wlan`, …). */
  readonly devtype: string | undefined;
  /** The kernel's kind (`veth`, `macvlan`…), from `ip -details`, when ip is installed. */
  readonly kind: string | undefined;
  /** A peer's name, from `ip` (veth in this namespace). */
  readonly peer: string | undefined;
  readonly master: string | undefined;
  readonly addresses: readonly string[];
}

/** A process holding an attached /dev/net/tun fd. */
export interface TunHolder {
  readonly pid: number;
  readonly command: string;
  /** The interface name its fd is attached to. */
  readonly iff: string;
  /** The process is in this network namespace. */
  readonly sameNetns: boolean;
  /** For a process elsewhere: the interface names in its namespace. */
  readonly namesInItsNetns: readonly string[] | undefined;
  readonly tapkit: boolean;
}

/** What {@link readLinuxSystem} read. */
export interface LinuxSystem {
  readonly links: readonly RawLink[];
  readonly holders: readonly TunHolder[];
  /** False when some processes' fds could not be read (not root). */
  readonly holdersComplete: boolean;
  /** False when `ip` was not available (kinds of some virtual interfaces are then unknown). */
  readonly ipAvailable: boolean;
}

/** Where {@link readLinuxSystem} reads. For tests; the defaults are the real system. */
export interface LinuxSources {
  readonly sysClassNet?: string;
  readonly proc?: string;
  /** Runs `ip -details -json addr show`; undefined when ip is not there. */
  readonly ipAddr?: () => Promise<IpLink[] | undefined>;
}

/** The parts of `ip -details -json addr show` used here. */
export interface IpLink {
  readonly ifname: string;
  readonly link?: string;
  readonly master?: string;
  readonly linkinfo?: { readonly info_kind?: string };
  readonly addr_info?: readonly {
    readonly family?: string;
    readonly local?: string;
    readonly prefixlen?: number;
  }[];
}

async function ipAddr(): Promise<IpLink[] | undefined> {
  try {
    const { stdout } = await execFileAsync('ip', ['-details', '-json', 'addr', 'show'], {
      timeout: 10_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return JSON.parse(stdout) as IpLink[];
  } catch {
    return undefined;
  }
}

async function text(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

function int(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = value.startsWith('0x') ? Number.parseInt(value.slice(2), 16) : Number.parseInt(value, 10);
  return Number.isFinite(n) ? n : undefined;
}

function addressesFromOs(): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const [name, list] of Object.entries(networkInterfaces())) {
    map.set(
      name,
      (list ?? []).flatMap((a) => (a.cidr ? [a.cidr] : [])),
    );
  }
  return map;
}

async function readLink(
  dir: string,
  name: string,
  ip: IpLink | undefined,
  fallbackAddresses: Map<string, string[]> | undefined,
): Promise<RawLink | undefined> {
  const at = join(dir, name);
  const ifindex = int(await text(join(at, 'ifindex')));
  if (ifindex === undefined) return undefined; // gone while we looked
  const uevent = (await text(join(at, 'uevent'))) ?? '';
  let hardware = false;
  try {
    hardware = !(await realpath(at)).includes('/devices/virtual/');
  } catch {
    // gone
  }
  const address = await text(join(at, 'address'));
  const addresses = ip
    ? (ip.addr_info ?? []).flatMap((a) =>
        a.local !== undefined && a.prefixlen !== undefined ? [`${a.local}/${a.prefixlen}`] : [],
      )
    : (fallbackAddresses?.get(name) ?? []);
  return {
    name,
    ifindex,
    iflink: int(await text(join(at, 'iflink'))) ?? ifindex,
    type: int(await text(join(at, 'type'))) ?? 0,
    flags: int(await text(join(at, 'flags'))) ?? 0,
    mtu: int(await text(join(at, 'mtu'))),
    mac: address && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(address) ? address : undefined,
    alias: (await text(join(at, 'ifalias'))) ?? '',
    tunFlags: int(await text(join(at, 'tun_flags'))),
    hardware,
    devtype: /^DEVTYPE=(.+)$/m.exec(uevent)?.[1],
    kind: ip?.linkinfo?.info_kind,
    peer: ip?.link,
    master: ip?.master,
    addresses,
  };
}

/** Reads field 22 of /proc/<pid>/stat: the start time in clock ticks since boot. */
export async function processStartTicks(pid: number, proc = '/proc'): Promise<number | undefined> {
  const stat = await text(join(proc, String(pid), 'stat'));
  if (stat === undefined) return undefined;
  // The command (field 2) is in parentheses and may hold anything: count after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return int(fields[19]);
}

/** The attached /dev/net/tun fds of every process we may look at. */
async function readHolders(proc: string): Promise<{ holders: TunHolder[]; complete: boolean }> {
  const holders: TunHolder[] = [];
  let complete = true;
  const self = await readlink(join(proc, 'self/ns/net')).catch(() => undefined);
  const pids = (await readdir(proc)).filter((entry) => /^\d+$/.test(entry));
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(join(proc, pid, 'fd'));
    } catch (error) {
      // Gone (ENOENT) is fine; not allowed (EACCES) means we cannot see everything.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') complete = false;
      continue;
    }
    const names: string[] = [];
    for (const fd of fds) {
      const target = await readlink(join(proc, pid, 'fd', fd)).catch(() => undefined);
      if (target !== '/dev/net/tun') continue;
      const info = await text(join(proc, pid, 'fdinfo', fd));
      const iff = info && /^iff:\s*(\S+)$/m.exec(info)?.[1];
      if (iff) names.push(iff); // no iff: opened, not attached to a device yet
    }
    if (names.length === 0) continue;
    const netns = await readlink(join(proc, pid, 'ns/net')).catch(() => undefined);
    const sameNetns = netns !== undefined && netns === self;
    let namesInItsNetns: string[] | undefined;
    if (!sameNetns) {
      const dev = await text(join(proc, pid, 'net/dev'));
      namesInItsNetns = dev
        ?.split('\n')
        .slice(2)
        .map((line) => line.split(':')[0]!.trim())
        .filter(Boolean);
    }
    const maps = (await text(join(proc, pid, 'maps'))) ?? '';
    const command = (await text(join(proc, pid, 'comm'))) ?? '?';
    for (const iff of new Set(names)) {
      holders.push({
        pid: Number(pid),
        command,
        iff,
        sameNetns,
        namesInItsNetns,
        tapkit: TAPKIT_ADDON.test(maps),
      });
    }
  }
  return { holders, complete };
}

/** Reads this network namespace's interfaces and the tun/tap holders. */
export async function readLinuxSystem(sources: LinuxSources = {}): Promise<LinuxSystem> {
  const dir = sources.sysClassNet ?? '/sys/class/net';
  const proc = sources.proc ?? '/proc';
  const ip = await (sources.ipAddr ?? ipAddr)();
  const byName = new Map((ip ?? []).map((link) => [link.ifname, link]));
  const fallback = ip ? undefined : addressesFromOs();
  const links: RawLink[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const link = await readLink(dir, name, byName.get(name), fallback);
    if (link) links.push(link);
  }
  const { holders, complete } = await readHolders(proc);
  return { links, holders, holdersComplete: complete, ipAvailable: ip !== undefined };
}

function kindOf(link: RawLink): string {
  if (link.type === ARPHRD_LOOPBACK) return 'loopback';
  if (link.tunFlags !== undefined) return link.tunFlags & IFF_TAP ? 'tap' : 'tun';
  if (link.hardware) return 'physical';
  if (link.kind) return link.kind;
  if (link.devtype && link.devtype !== 'wlan') return link.devtype;
  return 'virtual';
}

function tapkitInfo(
  marker: InterfaceMarker | undefined,
  link: RawLink,
  owners: readonly InterfaceOwner[],
  ownerAlive: boolean,
): TapkitInfo | undefined {
  const persistent = link.tunFlags !== undefined && (link.tunFlags & IFF_PERSIST) !== 0;
  if (marker) {
    return {
      backend: marker.backend,
      evidence: 'alias',
      persistent,
      ...(marker.pid !== undefined && {
        ownerPid: marker.pid,
        owner: marker.pid === process.pid ? 'self' : ownerAlive ? 'alive' : 'dead',
      }),
    };
  }
  if (link.tunFlags !== undefined && owners.some((o) => o.tapkit)) {
    return { backend: 'linux-tap', evidence: 'process', persistent };
  }
  return undefined;
}

/** Whose is this holder's fd: ours, if the process is here or its namespace has no such name. */
export function holdsHere(holder: TunHolder, name: string): boolean {
  if (holder.iff !== name) return false;
  return holder.sameNetns || !(holder.namesInItsNetns ?? []).includes(name);
}

/**
 * Judges what was read: kinds, peers, tapkit's marks and owners. `ownersAlive` says, by
 * interface name, whether the owner process its marker names still runs.
 */
export function describeLinux(
  system: LinuxSystem,
  ownersAlive: ReadonlyMap<string, boolean> = new Map(),
): InterfaceList {
  const byIndex = new Map(system.links.map((link) => [link.ifindex, link.name]));
  const interfaces = system.links.map((link): InterfaceEntry => {
    const kind = kindOf(link);
    const owners =
      link.tunFlags === undefined
        ? undefined
        : system.holders
            .filter((holder) => holdsHere(holder, link.name))
            .map(({ pid, command, tapkit }) => ({ pid, command, tapkit }));
    let peer = link.peer;
    if (peer === undefined && kind === 'veth' && link.iflink !== link.ifindex) {
      peer = byIndex.get(link.iflink) ?? `#${link.iflink}`;
    }
    const tapkit = tapkitInfo(
      parseMarker(link.alias),
      link,
      owners ?? [],
      ownersAlive.get(link.name) ?? false,
    );
    return {
      name: link.name,
      kind,
      virtual: kind !== 'physical' && kind !== 'loopback',
      up: (link.flags & IFF_UP) !== 0,
      mtu: link.mtu,
      mac: link.mac,
      addresses: link.addresses,
      ...(peer !== undefined && { peer }),
      ...(link.master !== undefined && { master: link.master }),
      ...(owners !== undefined && { owners }),
      ...(tapkit !== undefined && { tapkit }),
    };
  });
  const notes: string[] = [];
  if (!system.holdersComplete) {
    notes.push('some processes could not be inspected (run as root to see every owner of a tun/tap device)');
  }
  if (!system.ipAvailable) {
    notes.push(
      "iproute2 ('ip') was not found: kinds of some virtual interfaces are unknown, and only addresses of up interfaces are shown",
    );
  }
  return { platform: 'linux', interfaces, notes };
}

/** Whether the process a marker names still runs: same pid, same start time. */
export async function markerOwnerAlive(marker: InterfaceMarker, proc = '/proc'): Promise<boolean> {
  if (marker.pid === undefined) return false;
  const start = await processStartTicks(marker.pid, proc);
  if (start === undefined) return false;
  return marker.start === undefined || marker.start === 0 || marker.start === start;
}

/** By interface name: whether the owner process each marker names still runs. */
export async function markerOwnersAlive(system: LinuxSystem, proc = '/proc'): Promise<Map<string, boolean>> {
  const alive = new Map<string, boolean>();
  for (const link of system.links) {
    const marker = parseMarker(link.alias);
    if (marker?.pid !== undefined) alive.set(link.name, await markerOwnerAlive(marker, proc));
  }
  return alive;
}

/** `tapkit list` on Linux. */
export async function listLinuxInterfaces(sources: LinuxSources = {}): Promise<InterfaceList> {
  const system = await readLinuxSystem(sources);
  return describeLinux(system, await markerOwnersAlive(system, sources.proc));
}
