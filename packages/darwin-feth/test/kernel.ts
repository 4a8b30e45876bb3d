/**
 * A simulated darwin kernel: a {@link DarwinSystem} with the semantics darwin-feth relies on,
 * as read in xnu (see src/facts.ts for where each one was checked):
 *
 * - feth clones `feth<unit>`, unit <= 32767 (ENXIO above), EEXIST for a name in use, root-only
 *   create/destroy/peer/configure (EPERM); default MAC 66:65:74:68:<unit>; MTU 1500;
 * - peering (SIOCSDRVSPEC): ENXIO no such peer, EINVAL peer not a feth, EBUSY either side
 *   already peered; both sides are set; destroying a member unpeers it;
 * - the MTU ceiling is fixed at creation from net.link.fake.max_mtu (1500–16370, EINVAL
 *   outside; absent before 10.15) capped by the mbuf cluster size; SIOCSIFMTU above it is EINVAL;
 * - a frame sent out of a feth arrives as input on its peer (dropped when unpeered or down);
 * - BPF: buffer size granted at open (capped), records with darwin's bpf_hdr (hdrlen 18) at
 *   4-byte aligned offsets, several per read, store and hold buffers (a packet that fits in
 *   neither is dropped), truncation to the buffer or a snap length (caplen < datalen),
 *   BIOCSSEESENT 0 hides outbound packets, ENXIO once the interface is gone, EACCES for
 *   non-root; delivered a batch of reads at a time as the native reader does;
 * - NDRV: EPERM for non-root, EADDRNOTAVAIL binding to a missing interface, send buffer 8192 by
 *   default, EMSGSIZE for a larger frame, EPIPE once the interface is gone.
 *
 * - the routing socket: RTM_IFINFO (as xnu's rt_ifmsg: after SIOCSIFMTU, SIOCSIFFLAGS, an IPv4
 *   address that brings the interface up, and when it is destroyed), RTM_NEWADDR / RTM_DELADDR
 *   (SIOCAIFADDR*, SIOCDIFADDR*), as bytes in xnu's layout (core's encoder), delivered to every
 *   watcher a batch per event-loop turn; if_nametoindex / if_indextoname;
 *
 * Test hooks let a test act as the OS (send out of an interface, see what it received), bridge
 * interfaces (how two devices are linked), run other processes, and inject failures.
 */
import {
  encodeDarwinAddressMessage,
  encodeDarwinIfInfo,
  SimulatedRouteWatcher,
  type DarwinRouteWatcher,
  type DarwinRouteWatcherOptions,
} from '@tapkit/core';
import type {
  BpfReader,
  BpfReaderOptions,
  DarwinSystem,
  DeviceMtu,
  InterfaceInfo,
  MulticastMembership,
  NdrvWriter,
  NdrvWriterOptions,
  PipeCountsArray,
  RawSystemError,
} from '../src/system.js';
import { walkBpfBuffer } from '../src/bpf.js';

/** Errno values of darwin (bsd/sys/errno.h). */
const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  ENXIO: 6,
  EBADF: 9,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  EPIPE: 32,
  EAGAIN: 35,
  EMSGSIZE: 40,
  EADDRNOTAVAIL: 49,
  ENOBUFS: 55,
  EOPNOTSUPP: 102,
} as const;

export type ErrnoName = keyof typeof ERRNO;

/** A system error as the native addon makes them. */
export function sysError(code: ErrnoName, syscall: string, request?: string, path?: string): RawSystemError {
  const error = new Error(
    `${code}, ${syscall}${request ? ` ${request}` : ''}${path ? ` '${path}'` : ''}`,
  ) as Error & { -readonly [K in keyof RawSystemError]: RawSystemError[K] };
  error.code = code;
  error.errno = -ERRNO[code];
  error.syscall = syscall;
  if (request !== undefined) error.request = request;
  if (path !== undefined) error.path = path;
  return error;
}

const MAX_UNIT = 0x7fff;
const IF_MINMTU = 72;
const MAX_MTU_SYSCTL = 'net.link.fake.max_mtu';
const FETH_MAX_MTU_MAX = 16370;
const NO_JUMBO_MAX_MTU = 4082;
const BPF_HDRLEN = 18;
const BPF_MIN_BUFFER = 32;
const NDRV_SNDBUF = 8192;
const SB_MAX = 8 * 1024 * 1024; // kern.ipc.maxsockbuf
const READS_PER_BATCH = 4; // as the native reader (bpf_reader.cc): at most this many read(2) per JS call

function wordAlign(n: number): number {
  return (n + 3) & ~3;
}

function macText(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export interface SimulatedKernelOptions {
  /** The process runs as root. Default true. */
  root?: boolean;
  /** net.link.fake.max_mtu at boot; `null`: the sysctl does not exist (10.13, 10.14). Default 2048. */
  maxMtuSysctl?: number | null;
  /** 16 KiB mbuf clusters exist (njcl > 0). Default true. */
  jumboClusters?: boolean;
  /** `uname -r`. Default 23.4.0 (macOS 14.4). */
  kernelRelease?: string;
  /** BPF captures at most this many bytes of a packet (as a filter's snap length). Default: all. */
  bpfSnapLength?: number;
  /** Largest BPF buffer granted. Default 512 KiB. */
  bpfMaxBuffer?: number;
  /** How many BPF devices can be open at once. Default 64. */
  bpfDevices?: number;
  /** The OS sends a frame out of a peered feth when it comes up, as a real stack chatters. */
  chatter?: boolean;
  /** Called when an interface is destroyed (for child-process tests). */
  onDestroy?: (name: string) => void;
}

/** An interface of the simulated kernel. Tests read it; only the kernel changes it. */
export class SimInterface {
  /** if_index: never reused by this kernel. */
  index = 0;
  mac: Uint8Array | undefined;
  mtu: number;
  metric = 0;
  up = false;
  peer: SimInterface | undefined;
  bridge: Set<SimInterface> | undefined;
  readonly addresses: string[] = [];
  readonly multicast = new Set<string>();
  readonly bpf = new Set<SimBpf>();
  readonly ndrv = new Set<SimNdrv>();
  /** Frames the OS received on this interface (addressed to it, broadcast or multicast). */
  readonly received: Uint8Array[] = [];

  constructor(
    readonly name: string,
    readonly kind: 'feth' | 'ethernet' | 'loopback',
    readonly maxMtu: number,
    mac: Uint8Array | undefined,
  ) {
    this.mac = mac;
    this.mtu = kind === 'loopback' ? 16384 : 1500;
  }
}

/** The simulated kernel. */
export class SimulatedDarwinKernel implements DarwinSystem {
  readonly platform = 'darwin';
  root: boolean;
  /** Every state-changing call, in order: `create feth10000`, `peer feth20000 feth10000`… */
  readonly calls: string[] = [];
  readonly interfaces = new Map<string, SimInterface>();
  /** pid → start time (ms). This process is in it. */
  readonly processes = new Map<number, number>();
  readonly #options: SimulatedKernelOptions;
  readonly #routeWatchers = new Set<SimulatedRouteWatcher>();
  #nextIndex = 1;
  #maxMtu: number | undefined;
  #bpfOpen = 0;
  #nextPid = 900_000;
  #failWrites: { count: number; code: ErrnoName } | undefined;

  constructor(options: SimulatedKernelOptions = {}) {
    this.#options = options;
    this.root = options.root ?? true;
    this.#maxMtu = options.maxMtuSysctl === null ? undefined : (options.maxMtuSysctl ?? 2048);
    this.processes.set(process.pid, 1_700_000_000_000);
    this.#add(new SimInterface('lo0', 'loopback', 16384, undefined));
    this.#add(new SimInterface('en0', 'ethernet', 9000, Uint8Array.of(0x3c, 0x22, 0xfb, 1, 2, 3)));
  }

  // ---- DarwinSystem ----

  kernelRelease(): string {
    return this.#options.kernelRelease ?? '23.4.0';
  }

  isRoot(): boolean {
    return this.root;
  }

  processStartTime(pid: number): number | undefined {
    return this.processes.get(pid);
  }

  listInterfaces(): InterfaceInfo[] {
    return [...this.interfaces.values()].map((i) => ({
      name: i.name,
      mac: i.mac && Uint8Array.from(i.mac),
      mtu: i.mtu,
      metric: i.metric,
      up: i.up,
    }));
  }

  createInterface(name: string): void {
    this.#requireRoot('ioctl', 'SIOCIFCREATE2', name);
    const match = /^feth(0|[1-9][0-9]*)$/.exec(name);
    if (!match) throw sysError('EINVAL', 'ioctl', 'SIOCIFCREATE2', name); // no such cloner (wildcards not modelled)
    if (this.interfaces.has(name)) throw sysError('EEXIST', 'ioctl', 'SIOCIFCREATE2', name);
    const unit = Number(match[1]);
    if (unit > MAX_UNIT) throw sysError('ENXIO', 'ioctl', 'SIOCIFCREATE2', name);
    const cluster = this.#options.jumboClusters === false ? NO_JUMBO_MAX_MTU : FETH_MAX_MTU_MAX;
    const maxMtu = this.#maxMtu === undefined ? cluster : Math.min(cluster, this.#maxMtu);
    const mac = Uint8Array.of(0x66, 0x65, 0x74, 0x68, (unit >> 8) & 0xff, unit & 0xff);
    this.#add(new SimInterface(name, 'feth', maxMtu, mac));
    this.calls.push(`create ${name}`);
  }

  destroyInterface(name: string): void {
    this.#requireRoot('ioctl', 'SIOCIFDESTROY', name);
    const ifc = this.#get(name, 'SIOCIFDESTROY');
    if (ifc.kind !== 'feth') throw sysError('EOPNOTSUPP', 'ioctl', 'SIOCIFDESTROY', name);
    if (ifc.peer) ifc.peer.peer = undefined;
    ifc.peer = undefined;
    ifc.bridge?.delete(ifc);
    for (const bpf of ifc.bpf) bpf.detach();
    for (const ndrv of ifc.ndrv) ndrv.detach();
    this.interfaces.delete(name);
    ifc.up = false;
    this.#ifInfo(ifc); // if_down on the way out; the index names nothing from here on
    this.calls.push(`destroy ${name}`);
    this.#options.onDestroy?.(name);
  }

  setPeer(name: string, peer: string): void {
    this.#requireRoot('ioctl', 'SIOCSDRVSPEC', name);
    const ifc = this.#get(name, 'SIOCSDRVSPEC');
    if (ifc.kind !== 'feth') throw sysError('EOPNOTSUPP', 'ioctl', 'SIOCSDRVSPEC', name);
    if (peer === '') {
      if (ifc.peer) ifc.peer.peer = undefined;
      ifc.peer = undefined;
      this.calls.push(`unpeer ${name}`);
      return;
    }
    const other = this.interfaces.get(peer);
    if (!other) throw sysError('ENXIO', 'ioctl', 'SIOCSDRVSPEC', name);
    if (other.kind !== 'feth') throw sysError('EINVAL', 'ioctl', 'SIOCSDRVSPEC', name);
    if (ifc.peer || other.peer) throw sysError('EBUSY', 'ioctl', 'SIOCSDRVSPEC', name);
    ifc.peer = other;
    other.peer = ifc;
    this.calls.push(`peer ${name} ${peer}`);
  }

  getPeer(name: string): string {
    return this.#get(name, 'SIOCGDRVSPEC').peer?.name ?? '';
  }

  getDeviceMtu(name: string): DeviceMtu {
    const ifc = this.#get(name, 'SIOCGIFDEVMTU');
    return { current: ifc.mtu, min: IF_MINMTU, max: ifc.maxMtu };
  }

  setMtu(name: string, mtu: number): void {
    this.#requireRoot('ioctl', 'SIOCSIFMTU', name);
    const ifc = this.#get(name, 'SIOCSIFMTU');
    if (mtu < IF_MINMTU || mtu > ifc.maxMtu) throw sysError('EINVAL', 'ioctl', 'SIOCSIFMTU', name);
    ifc.mtu = mtu;
    this.#ifInfo(ifc);
    this.calls.push(`mtu ${name} ${mtu}`);
  }

  setMac(name: string, mac: Uint8Array): void {
    this.#requireRoot('ioctl', 'SIOCSIFLLADDR', name);
    const ifc = this.#get(name, 'SIOCSIFLLADDR');
    if (mac.length !== 6) throw sysError('EINVAL', 'ioctl', 'SIOCSIFLLADDR', name);
    ifc.mac = Uint8Array.from(mac);
    this.calls.push(`mac ${name} ${macText(mac)}`);
  }

  setMetric(name: string, metric: number): void {
    this.#requireRoot('ioctl', 'SIOCSIFMETRIC', name);
    this.#get(name, 'SIOCSIFMETRIC').metric = metric;
    this.calls.push(`metric ${name} ${metric}`);
  }

  setUp(name: string, up: boolean): void {
    this.#requireRoot('ioctl', 'SIOCSIFFLAGS', name);
    const ifc = this.#get(name, 'SIOCSIFFLAGS');
    const was = ifc.up;
    ifc.up = up;
    this.#ifInfo(ifc);
    this.calls.push(`${up ? 'up' : 'down'} ${name}`);
    if (up && !was && this.#options.chatter && ifc.kind === 'feth' && ifc.peer && ifc.mac) {
      // A router solicitation-sized frame to the all-routers group, as a stack sends on link up.
      const frame = new Uint8Array(70);
      frame.set([0x33, 0x33, 0, 0, 0, 2], 0);
      frame.set(ifc.mac, 6);
      frame.set([0x86, 0xdd], 12);
      this.sendFromStack(name, frame);
    }
  }

  addAddress(name: string, family: 4 | 6, address: Uint8Array, prefixLength: number): void {
    const request = family === 4 ? 'SIOCAIFADDR' : 'SIOCAIFADDR_IN6';
    this.#requireRoot('ioctl', request, name);
    const ifc = this.#get(name, request);
    if (address.length !== (family === 4 ? 4 : 16)) throw sysError('EINVAL', 'ioctl', request, name);
    const text = family === 4 ? address.join('.') : Buffer.from(address).toString('hex');
    ifc.addresses.push(`${text}/${prefixLength}`);
    this.#routeMessage(
      encodeDarwinAddressMessage({
        index: ifc.index,
        deleted: false,
        address: { family, address, prefixLength, cidr: '' },
      }),
    );
    if (family === 4) {
      if (!ifc.up) {
        ifc.up = true; // in_ifinit → feth_ioctl SIOCSIFADDR sets IFF_UP
        this.#ifInfo(ifc);
      }
      ifc.multicast.add('01:00:5e:00:00:01');
    } else {
      ifc.multicast.add('33:33:00:00:00:01');
      ifc.multicast.add(`33:33:ff:${macText(address.subarray(13))}`);
    }
    this.calls.push(`addr ${name} ${text}/${prefixLength}`);
  }

  removeAddress(name: string, family: 4 | 6, address: Uint8Array, prefixLength: number): void {
    const request = family === 4 ? 'SIOCDIFADDR' : 'SIOCDIFADDR_IN6';
    this.#requireRoot('ioctl', request, name);
    const ifc = this.#get(name, request);
    const text = family === 4 ? address.join('.') : Buffer.from(address).toString('hex');
    // The kernel finds the address by its bytes; the prefix does not matter.
    const at = ifc.addresses.findIndex((a) => a.slice(0, a.lastIndexOf('/')) === text);
    if (at < 0) throw sysError('EADDRNOTAVAIL', 'ioctl', request, name);
    const [removed] = ifc.addresses.splice(at, 1);
    const kept = Number(removed!.slice(removed!.lastIndexOf('/') + 1));
    this.#routeMessage(
      encodeDarwinAddressMessage({
        index: ifc.index,
        deleted: true,
        address: { family, address, prefixLength: kept, cidr: '' },
      }),
    );
    this.calls.push(`deladdr ${name} ${text}/${prefixLength}`);
  }

  interfaceIndex(name: string): number {
    return this.interfaces.get(name)?.index ?? 0;
  }

  interfaceName(index: number): string | undefined {
    for (const ifc of this.interfaces.values()) if (ifc.index === index) return ifc.name;
    return undefined;
  }

  watchRoutes(options: DarwinRouteWatcherOptions): DarwinRouteWatcher {
    const watcher = new SimulatedRouteWatcher(options, (w) => this.#routeWatchers.delete(w));
    this.#routeWatchers.add(watcher);
    return watcher;
  }

  multicastMemberships(): MulticastMembership[] {
    return [...this.interfaces.values()].flatMap((i) =>
      [...i.multicast].map((mac) => ({
        interfaceName: i.name,
        mac: Uint8Array.from(mac.split(':'), (h) => parseInt(h, 16)),
      })),
    );
  }

  sysctlGet(name: string): number {
    if (name !== MAX_MTU_SYSCTL || this.#maxMtu === undefined) throw sysError('ENOENT', 'sysctl', name);
    return this.#maxMtu;
  }

  sysctlSet(name: string, value: number): void {
    if (name !== MAX_MTU_SYSCTL || this.#maxMtu === undefined) throw sysError('ENOENT', 'sysctl', name);
    this.#requireRoot('sysctl', name);
    // feth_max_mtu_sysctl: ETHERMTU..FETH_MAX_MTU_MAX, and above buflet_size (512).
    if (!Number.isInteger(value) || value < 1500 || value > FETH_MAX_MTU_MAX)
      throw sysError('EINVAL', 'sysctl', name);
    this.#maxMtu = value;
    this.calls.push(`sysctl ${name}=${value}`);
  }

  openBpf(name: string, options: BpfReaderOptions): BpfReader {
    return this.openBpfWith(name, options, { seeSent: false });
  }

  openNdrv(name: string, options: NdrvWriterOptions): NdrvWriter {
    if (!this.root) throw sysError('EPERM', 'socket');
    let sndbuf = NDRV_SNDBUF;
    if (options.sendBufferSize !== undefined) {
      if (options.sendBufferSize < 1) throw sysError('EINVAL', 'setsockopt', 'SO_SNDBUF');
      if (options.sendBufferSize > SB_MAX) throw sysError('ENOBUFS', 'setsockopt', 'SO_SNDBUF');
      sndbuf = options.sendBufferSize;
    }
    const ifc = this.interfaces.get(name);
    if (!ifc) throw sysError('EADDRNOTAVAIL', 'bind', undefined, name);
    const writer = new SimNdrv(this, ifc, sndbuf);
    ifc.ndrv.add(writer);
    this.calls.push(`ndrv ${name} sndbuf=${sndbuf}`);
    return writer;
  }

  // ---- Test hooks ----

  /** Opens BPF with a chosen BIOCSSEESENT (tapkit always uses 0). */
  openBpfWith(name: string, options: BpfReaderOptions, flags: { seeSent: boolean }): BpfReader {
    if (!this.root) throw sysError('EACCES', 'open', undefined, '/dev/bpf0');
    if (this.#bpfOpen >= (this.#options.bpfDevices ?? 64))
      throw sysError('EBUSY', 'open', undefined, '/dev/bpf63');
    const ifc = this.interfaces.get(name);
    if (!ifc) throw sysError('ENXIO', 'ioctl', 'BIOCSETIF', name);
    const granted = Math.max(
      BPF_MIN_BUFFER,
      Math.min(options.bufferSize, this.#options.bpfMaxBuffer ?? 512 * 1024),
    );
    const reader = new SimBpf(ifc, options, {
      device: `/dev/bpf${this.#bpfOpen}`,
      bufferSize: granted,
      seeSent: flags.seeSent,
      snapLength: this.#options.bpfSnapLength ?? Number.MAX_SAFE_INTEGER,
      onClose: () => this.#bpfOpen--,
    });
    this.#bpfOpen++;
    ifc.bpf.add(reader);
    this.calls.push(`bpf ${name}`);
    return reader;
  }

  /** How many BPF devices are open. */
  get bpfOpen(): number {
    return this.#bpfOpen;
  }

  /** The OS sends `frame` out of interface `name` (copied). */
  sendFromStack(name: string, frame: Uint8Array): void {
    const ifc = this.interfaces.get(name);
    if (!ifc) throw new Error(`no interface ${name}`);
    this.transmit(ifc, Uint8Array.from(frame));
  }

  /** Joins a bridge of these interfaces: frames received on one go out of the others. */
  bridge(...names: string[]): void {
    const members = new Set<SimInterface>();
    for (const name of names) {
      const ifc = this.interfaces.get(name);
      if (!ifc) throw new Error(`no interface ${name}`);
      ifc.bridge = members;
      members.add(ifc);
    }
  }

  /** A new process; returns its pid. */
  spawnProcess(startTime = Date.now()): number {
    const pid = this.#nextPid++;
    this.processes.set(pid, startTime);
    return pid;
  }

  /** Makes the next `count` NDRV writes fail with `code` (ENOBUFS: dropped; others: thrown). */
  failNdrvWrites(count: number, code: ErrnoName): void {
    this.#failWrites = { count, code };
  }

  /** Sets net.link.fake.max_mtu as another program would (no checks). */
  setMaxMtuSysctl(value: number): void {
    this.#maxMtu = value;
  }

  /** Joins a link-layer multicast group on an interface. */
  joinMulticast(name: string, mac: string): void {
    this.interfaces.get(name)?.multicast.add(mac);
  }

  /** Renames an interface (its index stays), as SIOCSIFNAME would where a driver allows it. */
  renameInterface(name: string, to: string): void {
    const ifc = this.#get(name, 'SIOCSIFNAME');
    this.interfaces.delete(name);
    (ifc as { name: string }).name = to;
    this.interfaces.set(to, ifc);
    this.#ifInfo(ifc);
  }

  /** The routing sockets' buffers overflow: messages are lost, each watcher reads ENOBUFS. */
  overflowRoutes(): void {
    for (const watcher of this.#routeWatchers) watcher.fail(sysError('ENOBUFS', 'recv', 'PF_ROUTE'));
  }

  /** Every routing socket reads these bytes (for malformed-message tests). */
  injectRouteBytes(bytes: Uint8Array): void {
    this.#routeMessage(bytes);
  }

  /** Open routing-socket watchers. */
  get routeWatchers(): number {
    return this.#routeWatchers.size;
  }

  /** The feth interfaces that exist. */
  feths(): string[] {
    return [...this.interfaces.values()].filter((i) => i.kind === 'feth').map((i) => i.name);
  }

  // ---- The wire ----

  /** A frame leaves `ifc` (already a private copy). */
  transmit(ifc: SimInterface, frame: Uint8Array): void {
    for (const bpf of ifc.bpf) bpf.tap(frame, true);
    if (!ifc.up) return;
    const peer = ifc.peer;
    if (ifc.kind === 'feth' && peer && peer.up) this.#input(peer, frame);
  }

  /** A frame arrives on `ifc`. */
  #input(ifc: SimInterface, frame: Uint8Array): void {
    for (const bpf of ifc.bpf) bpf.tap(frame, false);
    const toMe = ifc.mac !== undefined && frame.subarray(0, 6).every((b, i) => b === ifc.mac![i]);
    const group = (frame[0]! & 1) === 1;
    if (toMe || group) ifc.received.push(frame);
    if (ifc.bridge && !toMe) {
      for (const member of ifc.bridge) if (member !== ifc) this.transmit(member, frame);
    }
  }

  /** Consumes one injected NDRV failure, if any. */
  takeWriteFailure(): ErrnoName | undefined {
    const fail = this.#failWrites;
    if (!fail || fail.count <= 0) return undefined;
    fail.count--;
    return fail.code;
  }

  #add(ifc: SimInterface): void {
    ifc.index = this.#nextIndex++;
    this.interfaces.set(ifc.name, ifc);
  }

  /** rt_ifmsg: RTM_IFINFO with the interface's flags and MTU. */
  #ifInfo(ifc: SimInterface): void {
    const IFF_BROADCAST = 0x2;
    const IFF_RUNNING = 0x40;
    const IFF_SIMPLEX = 0x800;
    const IFF_MULTICAST = 0x8000;
    const flags = (ifc.up ? 0x1 | IFF_RUNNING : 0) | IFF_BROADCAST | IFF_SIMPLEX | IFF_MULTICAST;
    this.#routeMessage(encodeDarwinIfInfo({ index: ifc.index, flags, mtu: ifc.mtu }));
  }

  #routeMessage(bytes: Uint8Array): void {
    for (const watcher of this.#routeWatchers) watcher.queue(bytes);
  }

  #requireRoot(syscall: string, request: string, path?: string): void {
    if (!this.root) throw sysError('EPERM', syscall, request, path);
  }

  #get(name: string, request: string): SimInterface {
    const ifc = this.interfaces.get(name);
    if (!ifc) throw sysError('ENXIO', 'ioctl', request, name);
    return ifc;
  }
}

interface BpfSettings {
  readonly device: string;
  readonly bufferSize: number;
  readonly seeSent: boolean;
  readonly snapLength: number;
  readonly onClose: () => void;
}

/** A BPF device: the kernel's store and hold buffers, and the native reader's poll loop. */
export class SimBpf implements BpfReader {
  readonly device: string;
  readonly bufferSize: number;
  /** Packets dropped because neither buffer had room (bs_drop). */
  dropped = 0;
  #ifc: SimInterface | undefined;
  readonly #options: BpfReaderOptions;
  readonly #settings: BpfSettings;
  #store: Uint8Array;
  #slen = 0;
  #hold: Uint8Array | undefined;
  #error: RawSystemError | undefined;
  #polling = false;
  #scheduled = false;
  #refed = true;
  #closed = false;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  /** The native pipe (pipeTo): its target and counts, as the addon's pipe thread keeps them. */
  #pipe: SimNdrv | undefined;
  #pipeCounts: PipeCountsArray = [0, 0, 0, 0, 0, 0, 0, 0];

  constructor(ifc: SimInterface, options: BpfReaderOptions, settings: BpfSettings) {
    this.#ifc = ifc;
    this.#options = options;
    this.#settings = settings;
    this.device = settings.device;
    this.bufferSize = settings.bufferSize;
    this.#store = new Uint8Array(settings.bufferSize);
  }

  /** The kernel taps a packet (bpf_tap_in / bpf_tap_out). */
  tap(frame: Uint8Array, outbound: boolean): void {
    if (this.#closed || (outbound && !this.#settings.seeSent)) return;
    const size = this.bufferSize;
    // catchpacket: header plus as much of the packet as the snap length and buffer allow.
    const totlen = Math.min(BPF_HDRLEN + Math.min(this.#settings.snapLength, frame.length), size);
    let at = wordAlign(this.#slen);
    if (at + totlen > size) {
      if (this.#hold) {
        this.dropped++;
        return;
      }
      this.#hold = this.#store.subarray(0, this.#slen);
      this.#store = new Uint8Array(size);
      at = 0;
    }
    const now = Date.now();
    const view = new DataView(this.#store.buffer, at);
    view.setInt32(0, Math.floor(now / 1000), true);
    view.setInt32(4, (now % 1000) * 1000, true);
    view.setUint32(8, totlen - BPF_HDRLEN, true);
    view.setUint32(12, frame.length, true);
    view.setUint16(16, BPF_HDRLEN, true);
    this.#store.set(frame.subarray(0, totlen - BPF_HDRLEN), at + BPF_HDRLEN);
    this.#slen = at + totlen;
    this.#wake();
  }

  /** pipeTo(): what the addon's pipe thread does (tapkit/pipe.h), on the poll's turns. */
  pipeTo(target: NdrvWriter | null): void {
    if (this.#closed) throw sysError('EBADF', 'read', undefined, this.device);
    if (target !== null && !(target instanceof SimNdrv))
      throw new TypeError('target must be an NdrvWriter or null');
    this.#pipe?.sources.delete(this);
    this.#pipe = target ?? undefined;
    if (target) {
      this.#pipeCounts = [0, 0, 0, 0, 0, 0, 0, 0];
      target.sources.add(this);
    }
    this.#wake();
  }

  pipeCounts(): PipeCountsArray {
    return [...this.#pipeCounts];
  }

  /** The pipe thread's work on one read: records split, frames checked and sent, all counted. */
  #pipeRead(read: Uint8Array, target: SimNdrv): void {
    const walk = walkBpfBuffer(read);
    const c = this.#pipeCounts;
    c[5] += walk.truncated;
    c[6] += walk.runts;
    if (walk.error) c[7]++;
    for (const frame of walk.frames) {
      if (!target.fits(frame)) {
        c[3]++;
        continue;
      }
      try {
        if (!target.write(frame)) c[4]++;
        c[0]++;
        c[1] += frame.length;
      } catch {
        c[3]++;
      }
    }
  }

  /** The interface went away: reads fail with ENXIO (bpfread once bd_bif is gone). */
  detach(): void {
    this.#ifc = undefined;
    this.#hold = undefined;
    this.#slen = 0;
    this.#error = sysError('ENXIO', 'read', undefined, this.device);
    this.#wake();
  }

  resume(): void {
    if (this.#closed) return;
    this.#polling = true;
    this.#updateKeepAlive();
    this.#wake();
  }

  pause(): void {
    this.#polling = false;
    this.#updateKeepAlive();
  }

  ref(): void {
    this.#refed = true;
    this.#updateKeepAlive();
  }

  unref(): void {
    this.#refed = false;
    this.#updateKeepAlive();
  }

  close(): void {
    if (this.#closed) return;
    this.#pipe?.sources.delete(this);
    this.#pipe = undefined;
    this.#closed = true;
    this.#polling = false;
    this.#updateKeepAlive();
    this.#ifc?.bpf.delete(this);
    this.#ifc = undefined;
    this.#settings.onClose();
  }

  /** An active poll handle keeps the loop alive, as uv_poll does while started and referenced. */
  #updateKeepAlive(): void {
    const want = this.#polling && this.#refed && !this.#closed;
    if (want && !this.#keepAlive) this.#keepAlive = setInterval(() => {}, 1 << 30);
    if (!want && this.#keepAlive) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }

  #hasData(): boolean {
    return this.#hold !== undefined || this.#slen > 0;
  }

  #wake(): void {
    if (!this.#polling || this.#scheduled || !(this.#hasData() || this.#error)) return;
    this.#scheduled = true;
    setImmediate(() => this.#poll());
  }

  /** One read(2) in immediate mode: the hold buffer if full, else what the store holds. */
  #read(): Uint8Array | undefined {
    if (this.#hold) {
      const hold = this.#hold;
      this.#hold = undefined;
      return hold;
    }
    if (this.#slen === 0) return undefined;
    const data = this.#store.subarray(0, this.#slen);
    this.#store = new Uint8Array(this.bufferSize);
    this.#slen = 0;
    return data;
  }

  /** The native reader's readable callback: read until EAGAIN or the cap, one JS call. */
  #poll(): void {
    this.#scheduled = false;
    if (!this.#polling || this.#closed) return;
    const reads: Uint8Array[] = [];
    for (let i = 0; i < READS_PER_BATCH; i++) {
      const data = this.#read();
      if (!data) break;
      reads.push(data);
    }
    const pipe = this.#pipe;
    if (pipe) {
      for (const read of reads) this.#pipeRead(read, pipe);
    } else if (reads.length > 0) {
      const total = reads.reduce((n, r) => n + r.length, 0);
      const buffer = new ArrayBuffer(total);
      const ends = new Uint32Array(reads.length);
      let at = 0;
      reads.forEach((r, i) => {
        new Uint8Array(buffer, at, r.length).set(r);
        at += r.length;
        ends[i] = at;
      });
      this.#options.onRead(buffer, ends);
    }
    if (this.#error && !this.#hasData() && this.#polling && !this.#closed) {
      this.#polling = false;
      this.#updateKeepAlive();
      this.#options.onError(this.#error);
      return;
    }
    this.#wake();
  }
}

/** An AF_NDRV socket bound and connected to an interface. */
export class SimNdrv implements NdrvWriter {
  readonly #kernel: SimulatedDarwinKernel;
  #ifc: SimInterface | undefined;
  readonly sendBufferSize: number;
  #closed = false;
  /** setFrameLimit(): what pipes into this socket may send (max 0: anything). */
  #limit = { min: 0, max: 0, tagged: 0 };
  /** Readers piping into this socket: stopped when it closes, as the addon does. */
  readonly sources = new Set<SimBpf>();

  constructor(kernel: SimulatedDarwinKernel, ifc: SimInterface, sendBufferSize: number) {
    this.#kernel = kernel;
    this.#ifc = ifc;
    this.sendBufferSize = sendBufferSize;
  }

  /** ndrv_handle_ifp_detach: socantsendmore, so sends fail with EPIPE. */
  detach(): void {
    this.#ifc = undefined;
  }

  write(frame: Uint8Array): boolean {
    if (this.#closed) throw sysError('EBADF', 'write');
    const ifc = this.#ifc;
    if (!ifc) throw sysError('EPIPE', 'write');
    if (frame.length > this.sendBufferSize) throw sysError('EMSGSIZE', 'write', undefined, ifc.name);
    const failure = this.#kernel.takeWriteFailure();
    if (failure === 'ENOBUFS' || failure === 'EAGAIN') return false;
    if (failure) throw sysError(failure, 'write', undefined, ifc.name);
    this.#kernel.transmit(ifc, Uint8Array.from(frame));
    return true;
  }

  setFrameLimit(min: number, max: number, tagged: number): void {
    this.#limit = { min, max, tagged };
  }

  /** FrameLimit::Fits of tapkit/pipe.h. */
  fits(frame: Uint8Array): boolean {
    const { min, max, tagged } = this.#limit;
    if (frame.length < min) return false;
    if (max === 0 || frame.length <= max) return true;
    const etherType = frame.length >= 14 ? (frame[12]! << 8) | frame[13]! : 0;
    return tagged > 0 && (etherType === 0x8100 || etherType === 0x88a8) && frame.length <= max + tagged;
  }

  writeBatch(frames: readonly Uint8Array[]): number {
    let dropped = 0;
    frames.forEach((frame, index) => {
      try {
        if (!this.write(frame)) dropped++;
      } catch (error) {
        throw Object.assign(error as Error, { index });
      }
    });
    return dropped;
  }

  close(): void {
    if (this.#closed) return;
    for (const source of this.sources) source.pipeTo(null);
    this.#closed = true;
    this.#ifc?.ndrv.delete(this);
    this.#ifc = undefined;
  }
}
