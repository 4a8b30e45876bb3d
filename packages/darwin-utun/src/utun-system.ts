/**
 * What darwin-utun needs from the operating system, as a port: the native addon implements it
 * on macOS (`loadNativeUtunSystem`), `createSimulatedUtunSystem()` everywhere.
 *
 * The wire format is the kernel's: every datagram on a utun control socket is a 4-byte
 * big-endian protocol family (AF_INET = 2, AF_INET6 = 30 on Darwin) followed by the IP packet.
 *
 * @module
 */
import type { DarwinRouteWatcher, DarwinRouteWatcherOptions, NativeSystemError } from '@tapkit/core';

/** Darwin's AF_INET: the family header of an IPv4 packet. */
export const UTUN_AF_INET = 2;
/** Darwin's AF_INET6 (Linux's is 10): the family header of an IPv6 packet. */
export const UTUN_AF_INET6 = 30;
/** The length of the family header in front of every packet. */
export const UTUN_HEADER_LENGTH = 4;
/**
 * Free bytes a system leaves in front of every datagram it delivers. With the 4-byte family
 * header they give each packet 14 bytes of room: the shim writes the Ethernet header there
 * instead of copying the packet.
 */
export const UTUN_DATAGRAM_GAP = 10;

/** The addon's system errors: core's {@link NativeSystemError}. */
export type UtunSystemError = NativeSystemError;

/** Options of {@link UtunSystem.openUtun}. */
export interface UtunHandleOptions {
  /** Create utun<unit> (the control socket's `sc_unit` is unit + 1). Absent: the kernel picks. */
  readonly unit?: number;
  /**
   * Adopt this open utun control socket instead of creating one (one handed over by a privileged
   * helper; in tests, one end of the addon's `datagramPair()`). The handle owns it afterwards.
   */
  readonly fd?: number;
  /** Most datagrams handed to `onRead` at once. */
  readonly batchPackets: number;
  /** Datagram boundaries of the batch being delivered: `2 × batchPackets` elements. */
  readonly offsets: Uint32Array;
  /** Room a read needs: the largest datagram expected (MTU + 4). */
  readonly datagramReserve: number;
  /** Size of each receive slab. */
  readonly slabBytes: number;
  /**
   * A batch arrived: datagram `i` is `slab[offsets[2i] … offsets[2i + 1])`, `i < count`, family
   * header first. At least {@link UTUN_DATAGRAM_GAP} bytes lie unused before each datagram.
   * `slab` is never written again by the system; `offsets` is, so read it before returning.
   */
  readonly onRead: (slab: ArrayBuffer, count: number) => void;
  /** Every queued write was sent. */
  readonly onDrain: () => void;
  /** A read failed (then reading stops) or a queued write was refused (that packet is lost). */
  readonly onError: (error: UtunSystemError) => void;
}

/** An open utun: its control socket, polled on this thread's event loop. */
export interface UtunHandle {
  /** `utunN`, as the kernel named it (`UTUN_OPT_IFNAME`). */
  readonly name: string;
  /**
   * Sends `packet` behind the 4-byte big-endian `family` header (one datagram). Returns the bytes
   * queued behind EAGAIN (0 when sent at once). Throws a {@link UtunSystemError}.
   */
  write(family: number, packet: Uint8Array): number;
  /** Sends packets in order, `families[i]` for `packets[i]`; returns as `write`. */
  writeBatch(packets: readonly Uint8Array[], families: Uint8Array): number;
  /** Starts (again) delivering datagrams to `onRead`. */
  resume(): void;
  /** Stops delivering; the kernel queues, then drops. */
  pause(): void;
  ref(): void;
  unref(): void;
  /** Closes the socket; the kernel destroys the interface with it. Idempotent. */
  close(): void;
}

/** The operating system, as darwin-utun sees it. */
export interface UtunSystem {
  /** True when the interfaces are real ones (the native addon). */
  readonly osInterface: boolean;
  /** Creates a utun. Throws a {@link UtunSystemError} (EBUSY: the unit is taken; EPERM: not root). */
  openUtun(options: UtunHandleOptions): UtunHandle;
  /** SIOCSIFMTU. */
  setMtu(name: string, mtu: number): void;
  /** SIOCSIFFLAGS with IFF_UP set or cleared. */
  setUp(name: string, up: boolean): void;
  /**
   * Adds an address (SIOCAIFADDR / SIOCAIFADDR_IN6; an IPv4 address is its own destination) and,
   * for a prefix shorter than a host's, a route for the prefix through the interface.
   */
  addAddress(name: string, family: 4 | 6, address: Uint8Array, prefixLength: number): void;
  /**
   * SIOCDIFADDR / SIOCDIFADDR_IN6 (EADDRNOTAVAIL: no such address). Optional: without it the
   * device's `removeAddress()` rejects with `ERR_TAP_UNSUPPORTED_OPERATION`.
   */
  removeAddress?(name: string, family: 4 | 6, address: Uint8Array, prefixLength: number): void;
  /**
   * A routing socket (PF_ROUTE) polled on this thread's loop, never holding it: RTM_IFINFO,
   * RTM_NEWADDR, RTM_DELADDR… of every interface, as bytes (see core's darwin-route). With
   * `interfaceIndex` and `interfaceName`, the device follows changes made by others. Optional.
   */
  watchRoutes?(options: DarwinRouteWatcherOptions): DarwinRouteWatcher;
  /** if_nametoindex: 0 when there is no such interface. */
  interfaceIndex?(name: string): number;
  /** if_indextoname: undefined when the index names no interface. */
  interfaceName?(index: number): string | undefined;
}

/** The family header for an IP packet (by its version nibble), or undefined when it is neither. */
export function utunFamilyOf(packet: Uint8Array): number | undefined {
  const version = packet.length > 0 ? packet[0]! >> 4 : 0;
  return version === 4 ? UTUN_AF_INET : version === 6 ? UTUN_AF_INET6 : undefined;
}

/** One datagram as the kernel frames it: the big-endian family, then the packet. */
export function frameUtunDatagram(packet: Uint8Array, family = utunFamilyOf(packet) ?? 0): Uint8Array {
  const datagram = new Uint8Array(UTUN_HEADER_LENGTH + packet.length);
  new DataView(datagram.buffer).setUint32(0, family);
  datagram.set(packet, UTUN_HEADER_LENGTH);
  return datagram;
}

/**
 * The packet in a datagram, when its family header is one darwin-utun carries and agrees with
 * the packet's version; undefined otherwise. A view, not a copy.
 */
export function parseUtunDatagram(datagram: Uint8Array): Uint8Array | undefined {
  if (datagram.length <= UTUN_HEADER_LENGTH) return undefined;
  const family = datagram[0]! * 0x1000000 + ((datagram[1]! << 16) | (datagram[2]! << 8) | datagram[3]!);
  const packet = datagram.subarray(UTUN_HEADER_LENGTH);
  return family === utunFamilyOf(packet) ? packet : undefined;
}
