/**
 * The system calls darwin-feth needs, as one port: {@link DarwinSystem}. The native addon
 * implements it on macOS; the tests implement it with a simulated darwin kernel. Everything
 * else — naming, option checks, the setup and teardown sequence, the BPF record walker,
 * cleanup bookkeeping, error mapping — is TypeScript above this line.
 *
 * Every method is synchronous: each is one or a few non-blocking system calls, and teardown
 * must be able to run inside a process 'exit' listener.
 *
 * @module
 */
import type { DarwinRouteWatcher, DarwinRouteWatcherOptions, NativeSystemError } from '@tapkit/core';

/** The addon's system errors: core's {@link NativeSystemError}. */
export type RawSystemError = NativeSystemError;

/** An interface as getifaddrs(3) reports its link-layer entry. */
export interface InterfaceInfo {
  readonly name: string;
  /** The link-layer address; undefined for interfaces without one (lo0, utun…). */
  readonly mac: Uint8Array | undefined;
  readonly mtu: number;
  readonly metric: number;
  readonly up: boolean;
}

/** SIOCGIFDEVMTU: the MTU now and the range the driver accepts. */
export interface DeviceMtu {
  readonly current: number;
  readonly min: number;
  readonly max: number;
}

/** One link-layer multicast membership, as getifmaddrs(3) reports it. */
export interface MulticastMembership {
  readonly interfaceName: string;
  readonly mac: Uint8Array;
}

/** Options of {@link DarwinSystem.openBpf}. */
export interface BpfReaderOptions {
  /** The buffer size to ask for with BIOCSBLEN; the kernel may give less (see `bufferSize`). */
  readonly bufferSize: number;
  /**
   * Bytes read from the BPF device: `buffer` holds one or more read(2) results back to back;
   * read `i` ends at `chunkEnds[i]` (and starts where read `i - 1` ended). Each read holds
   * whole `bpf_hdr` records as the kernel packs them. The buffer is never written again: JS
   * owns it.
   */
  readonly onRead: (buffer: ArrayBuffer, chunkEnds: Uint32Array) => void;
  /** A read failed (ENXIO once the interface is gone); no more reads follow. */
  readonly onError: (error: RawSystemError) => void;
}

/**
 * A BPF device bound to an interface: `/dev/bpfN` with BIOCSBLEN, BIOCIMMEDIATE 1,
 * BIOCSSEESENT 0, BIOCSETIF, BIOCSHDRCMPLT 1, BIOCPROMISC, non-blocking, polled for readable
 * only on the environment's event loop. Reading starts with {@link BpfReader.resume}.
 */
export interface BpfReader {
  /** The buffer size the kernel granted: every read asks for exactly this many bytes. */
  readonly bufferSize: number;
  /** The device opened (`/dev/bpf3`). */
  readonly device: string;
  resume(): void;
  pause(): void;
  ref(): void;
  unref(): void;
  /** Stops polling and closes the fd. Idempotent; safe inside onRead. */
  close(): void;
  /**
   * From now on a thread of its own reads the fd, splits each read into records as the walker
   * does (truncated records and runts skipped and counted) and sends every whole frame to
   * `target`, without calling `onRead`; `null` stops. Frames outside the target's frame limit
   * are refused and counted. Closing either end stops the pipe first. Absent in addon builds
   * from before it: the engine then forwards in JS.
   */
  pipeTo?(target: NdrvWriter | null): void;
  /** The latest pipe's counts (see {@link PipeCountsArray}). */
  pipeCounts?(): PipeCountsArray;
}

/**
 * A native pipe's counts: frames sent (ENOBUFS drops included, as `write` counts them) and their
 * bytes; frames refused for a down interface (unused on NDRV); frames refused otherwise (too
 * long or short for the target, or a send error); frames dropped for want of buffers; records
 * skipped as truncated; as runts; reads whose walk stopped at a malformed record.
 */
export type PipeCountsArray = [
  frames: number,
  bytes: number,
  interfaceDown: number,
  refused: number,
  noBuffers: number,
  truncated: number,
  runts: number,
  malformed: number,
];

/** Options of {@link DarwinSystem.openNdrv}. */
export interface NdrvWriterOptions {
  /** SO_SNDBUF to set; undefined keeps the default (8192). */
  readonly sendBufferSize: number | undefined;
}

/** An AF_NDRV socket bound and connected to an interface: frames written go out of it. */
export interface NdrvWriter {
  /** Sends one frame. False when the kernel had no buffer for it (ENOBUFS, EAGAIN): dropped. */
  write(frame: Uint8Array): boolean;
  /**
   * Sends frames in order; returns how many were dropped for want of buffers. Another error
   * is thrown with `index` set to the frame that failed; the ones before it were sent.
   */
  writeBatch(frames: readonly Uint8Array[]): number;
  /** Closes the socket (stopping pipes into it first). Idempotent. */
  close(): void;
  /**
   * The frames pipes into this socket send: `min` to `max` bytes, `tagged` more for a frame with
   * a VLAN tag (what the engine lets a write through at the MTU). Optional, as `pipeTo`.
   */
  setFrameLimit?(min: number, max: number, tagged: number): void;
}

/** The system calls darwin-feth makes. */
export interface DarwinSystem {
  /** `process.platform` of the system (a simulated kernel says `darwin`). */
  readonly platform: string;
  /** `uname -r`: `23.4.0` on macOS 14.4. */
  kernelRelease(): string;
  /** geteuid() == 0. */
  isRoot(): boolean;
  /** When process `pid` started (sysctl KERN_PROC_PID, p_starttime), in ms; undefined if none. */
  processStartTime(pid: number): number | undefined;

  /** Every interface (getifaddrs, AF_LINK entries). */
  listInterfaces(): InterfaceInfo[];
  /** SIOCIFCREATE2 with exactly this name. EEXIST if it exists, ENXIO unit out of range, EINVAL no such cloner. */
  createInterface(name: string): void;
  /** SIOCIFDESTROY. ENXIO if there is no such interface. */
  destroyInterface(name: string): void;
  /** SIOCSDRVSPEC IF_FAKE_S_CMD_SET_PEER: peer `name` with `peer` (both sides are set); '' unpeers. */
  setPeer(name: string, peer: string): void;
  /** SIOCGDRVSPEC IF_FAKE_G_CMD_GET_PEER: the peer's name, '' when unpeered. */
  getPeer(name: string): string;
  /** SIOCGIFDEVMTU. */
  getDeviceMtu(name: string): DeviceMtu;
  /** SIOCSIFMTU. */
  setMtu(name: string, mtu: number): void;
  /** SIOCSIFLLADDR. */
  setMac(name: string, mac: Uint8Array): void;
  /** SIOCSIFMETRIC. */
  setMetric(name: string, metric: number): void;
  /** SIOCGIFFLAGS + SIOCSIFFLAGS with IFF_UP set or cleared. */
  setUp(name: string, up: boolean): void;
  /** SIOCAIFADDR (IPv4) or SIOCAIFADDR_IN6 (IPv6, infinite lifetimes). */
  addAddress(name: string, family: 4 | 6, address: Uint8Array, prefixLength: number): void;
  /**
   * SIOCDIFADDR (IPv4) or SIOCDIFADDR_IN6 (IPv6). EADDRNOTAVAIL when the interface has no such
   * address.
   */
  removeAddress(name: string, family: 4 | 6, address: Uint8Array, prefixLength: number): void;
  /** if_nametoindex: the interface's index, 0 when there is no such interface. */
  interfaceIndex(name: string): number;
  /** if_indextoname: the interface's name, undefined when the index names none (it was destroyed). */
  interfaceName(index: number): string | undefined;
  /**
   * A routing socket (PF_ROUTE) polled on this thread's event loop: every routing message the
   * kernel sends (RTM_IFINFO, RTM_NEWADDR, RTM_DELADDR… of every interface) goes to
   * `onMessages`, several at a time. It never holds the event loop open.
   */
  watchRoutes(options: DarwinRouteWatcherOptions): DarwinRouteWatcher;
  /** getifmaddrs: every link-layer multicast membership on every interface. */
  multicastMemberships(): MulticastMembership[];
  /** sysctlbyname, unsigned int. ENOENT if the name does not exist. */
  sysctlGet(name: string): number;
  sysctlSet(name: string, value: number): void;

  /** Opens a BPF device on `name` (see {@link BpfReader}). */
  openBpf(name: string, options: BpfReaderOptions): BpfReader;
  /** Opens an AF_NDRV socket bound and connected to `name` (SO_NOSIGPIPE, non-blocking). */
  openNdrv(name: string, options: NdrvWriterOptions): NdrvWriter;
}
