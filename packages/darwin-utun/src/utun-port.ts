/**
 * A utun as a {@link PacketPort}: the family-header framing, the batches from the system, and
 * the backpressure and error glue.
 *
 * @module
 */
import {
  DarwinInterfaceFollower,
  RECEIVE_SLAB_BYTES,
  TapError,
  TapErrorCode,
  type InterfaceAddress,
  type NativeSystemError,
} from '@tapkit/core';
import { BACKEND, closedError, ioError, isGone, isNoBuffer, openError } from './errors.js';
import type { PacketPort, PacketSink } from './packet-port.js';
import {
  UTUN_DATAGRAM_GAP,
  UTUN_HEADER_LENGTH,
  utunFamilyOf,
  type UtunHandle,
  type UtunSystem,
  type UtunSystemError,
} from './utun-system.js';

/**
 * MTUs a utun takes here. The kernel accepts any MTU on a classic utun (and clamps it on a
 * channel-backed one, which tapkit does not ask for); 16384 keeps a batch's slab reasonable.
 */
export const UTUN_LIMITS = Object.freeze({ minMtu: 68, maxMtu: 16384 });

/** The drop reason for a datagram whose family header is not the one its packet needs. */
export const UNKNOWN_FAMILY = 'unknownFamily';

const BATCH_PACKETS = 64; // most datagrams per JS call; the kernel keeps the rest for the next turn
const WRITE_HIGH_WATER = 1024 * 1024; // bytes queued behind EAGAIN before write() says false
const HEADROOM = UTUN_DATAGRAM_GAP + UTUN_HEADER_LENGTH;
const MAX_UNIT = 0xfffffffe; // sc_unit is unit + 1, a u_int32_t

/**
 * The unit for a requested name: `utun<N>` asks the kernel for that unit, no name lets it pick.
 * The kernel names utuns itself, so any other name is refused before anything is opened.
 */
export function utunUnitOf(name: string | undefined): number | undefined {
  if (name === undefined) return undefined;
  const match = /^utun(0|[1-9]\d*)$/.exec(name);
  const unit = match ? Number(match[1]) : NaN;
  if (!(unit <= MAX_UNIT)) {
    throw new TapError(
      TapErrorCode.INVALID_OPTION,
      `invalid name ${JSON.stringify(name)}: a utun is named utun<N> by the kernel; pass utun<N> to ask ` +
        'for that unit, or no name to let the kernel pick',
      { backend: BACKEND },
    );
  }
  return unit;
}

/** What {@link openUtunPort} configures. */
export interface UtunPortOptions {
  readonly unit: number | undefined;
  readonly mtu: number;
  readonly addresses: readonly InterfaceAddress[];
  readonly up: boolean;
}

/** Creates and configures a utun on `system`; closes it again if configuring fails. */
export function openUtunPort(system: UtunSystem, options: UtunPortOptions): UtunPacketPort {
  const requested = options.unit === undefined ? 'a utun' : `utun${options.unit}`;
  const port = new UtunPacketPort(system, options.unit, options.mtu, requested);
  const name = port.name;
  const step = (what: string, action: () => void): void => {
    try {
      action();
    } catch (error) {
      port.close();
      throw openError(error, `${what} on ${name}`);
    }
  };
  step(`set MTU ${options.mtu}`, () => system.setMtu(name, options.mtu));
  for (const address of options.addresses) {
    step(`add address ${address.cidr}`, () =>
      system.addAddress(name, address.family, address.address, address.prefixLength),
    );
  }
  // A utun is born up.
  if (!options.up) step('bring down', () => system.setUp(name, false));
  step('watch the routing socket', () => port.follow(options));
  return port;
}

/** One utun: see the module documentation. */
export class UtunPacketPort implements PacketPort {
  #mtu: number;
  readonly #system: UtunSystem;
  readonly headroom = HEADROOM;
  readonly osInterface: boolean;
  readonly #handle: UtunHandle;
  readonly #offsets = new Uint32Array(2 * BATCH_PACKETS);
  #sink: PacketSink | undefined;
  /** The utun as the routing socket reports it (see follow()); undefined for a system without one. */
  #follower: DarwinInterfaceFollower | undefined;
  #goneBeforeStart: TapError | undefined;
  #blocked = false;
  #closed = false;
  // Where the last datagram of the current slab ended: the next one's headroom starts there.
  #slab: ArrayBuffer | undefined;
  #slabEnd = 0;

  constructor(system: UtunSystem, unit: number | undefined, mtu: number, what = 'a utun') {
    this.#mtu = mtu;
    this.#system = system;
    this.osInterface = system.osInterface;
    const reserve = mtu + UTUN_HEADER_LENGTH;
    try {
      this.#handle = system.openUtun({
        ...(unit === undefined ? {} : { unit }),
        batchPackets: BATCH_PACKETS,
        offsets: this.#offsets,
        datagramReserve: reserve,
        slabBytes: Math.max(RECEIVE_SLAB_BYTES, 4 * (reserve + HEADROOM + 8)),
        onRead: (slab, count) => this.#onRead(slab, count),
        onDrain: () => this.#onDrain(),
        onError: (error) => this.#onError(error),
      });
    } catch (error) {
      throw openError(error, `create ${what}`);
    }
  }

  get name(): string {
    return this.#handle.name;
  }

  get mtu(): number {
    return this.#mtu;
  }

  get up(): boolean | undefined {
    return this.#follower?.up;
  }

  get addresses(): readonly string[] | undefined {
    return this.#follower && [...this.#follower.addresses];
  }

  /**
   * Starts following the utun through the system's routing socket (when it has one): MTU, up
   * flag and addresses changed by others are reported, a vanished utun ends the device.
   */
  follow(options: {
    readonly mtu: number;
    readonly up: boolean;
    readonly addresses: readonly InterfaceAddress[];
  }): void {
    const system = this.#system;
    if (!system.watchRoutes || !system.interfaceIndex || !system.interfaceName) return;
    const index = system.interfaceIndex(this.name);
    if (index === 0) throw ioError(Object.assign(new Error('ENXIO'), { code: 'ENXIO' }), this.name);
    const nameOf = system.interfaceName.bind(system);
    this.#follower = new DarwinInterfaceFollower(
      {
        index,
        name: this.name,
        mtu: options.mtu,
        up: options.up,
        addresses: options.addresses.map((a) => a.cidr),
      },
      (i) => nameOf(i),
    );
    this.#watcher = system.watchRoutes({
      onMessages: (bytes) => this.#routed(bytes),
      onError: (error) => this.#routeError(error),
    });
  }

  #watcher: { close(): void } | undefined;

  #routed(bytes: Uint8Array): void {
    const follower = this.#follower;
    if (this.#closed || follower === undefined) return;
    const result = follower.apply(bytes);
    if (result.gone) {
      const error = new TapError(
        TapErrorCode.DEVICE_GONE,
        `${this.name} is gone (its index names no interface now)`,
        {
          backend: BACKEND,
        },
      );
      if (this.#sink) this.#sink.gone(error);
      else this.#goneBeforeStart = error;
    } else if (result.changed) {
      this.#report();
    }
  }

  /** Messages were lost (ENOBUFS): what was missed is not known, so the state stays as last seen. */
  #routeError(error: NativeSystemError): void {
    if (this.#closed || error.code !== 'ENOBUFS') return;
    this.#report();
  }

  #report(): void {
    const follower = this.#follower;
    if (follower === undefined) return;
    this.#mtu = follower.mtu;
    this.#sink?.link(follower.state());
  }

  // The setters the utun's ioctl configuration can do; changes made by others arrive through
  // the routing socket (follow()).
  setMtu(mtu: number): void {
    this.#configure(`set MTU ${mtu}`, () => this.#system.setMtu(this.name, mtu));
    this.#mtu = mtu;
    if (this.#follower) this.#follower.mtu = mtu;
  }

  setUp(up: boolean): void {
    this.#configure(up ? 'bring up' : 'bring down', () => this.#system.setUp(this.name, up));
    if (this.#follower) this.#follower.up = up;
  }

  addAddress(address: InterfaceAddress): void {
    this.#configure(`add address ${address.cidr}`, () =>
      this.#system.addAddress(this.name, address.family, address.address, address.prefixLength),
    );
    this.#follower?.addresses.add(address.cidr);
  }

  get removeAddress(): ((address: InterfaceAddress) => void) | undefined {
    const system = this.#system;
    if (!system.removeAddress) return undefined;
    return (address: InterfaceAddress) => {
      this.#configure(`remove address ${address.cidr}`, () =>
        system.removeAddress!(this.name, address.family, address.address, address.prefixLength),
      );
      this.#follower?.addresses.delete(address.cidr);
    };
  }

  #configure(what: string, action: () => void): void {
    if (this.#closed) throw closedError(this.name);
    try {
      action();
    } catch (error) {
      throw openError(error, `${what} on ${this.name}`);
    }
  }

  start(sink: PacketSink): void {
    this.#sink = sink;
    if (this.#goneBeforeStart) {
      sink.gone(this.#goneBeforeStart);
      return;
    }
    if (this.#follower) sink.link(this.#follower.state());
    this.#handle.resume();
  }

  /** Unframes a batch: checks each family header, hands the packets on as views. */
  #onRead(slab: ArrayBuffer, count: number): void {
    const sink = this.#sink;
    if (sink === undefined || this.#closed) return;
    if (slab !== this.#slab) {
      this.#slab = slab;
      this.#slabEnd = 0;
    }
    const offsets = this.#offsets;
    const packets: Uint8Array[] = [];
    let unknown = 0;
    for (let i = 0; i < count; i++) {
      const start = offsets[2 * i]!;
      const end = offsets[2 * i + 1]!;
      const datagram = new Uint8Array(slab, start, end - start);
      const family = datagram.length > UTUN_HEADER_LENGTH ? new DataView(slab, start, 4).getUint32(0) : -1;
      let packet: Uint8Array = datagram.subarray(UTUN_HEADER_LENGTH);
      if (family !== utunFamilyOf(packet)) {
        unknown++;
        continue;
      }
      // The promised gap makes room for an Ethernet header in place; a system that broke the
      // promise costs a copy, not a corrupted neighbour.
      if (start < this.#slabEnd + UTUN_DATAGRAM_GAP) packet = withHeadroom(packet);
      this.#slabEnd = end;
      packets.push(packet);
    }
    if (unknown > 0) sink.dropped(UNKNOWN_FAMILY, unknown);
    if (packets.length > 0) sink.receive(packets);
  }

  #onDrain(): void {
    if (!this.#blocked) return;
    this.#blocked = false;
    this.#sink?.writable();
  }

  #onError(error: UtunSystemError): void {
    const sink = this.#sink;
    if (this.#closed || sink === undefined) return;
    if (error.syscall === 'write' && !isGone(error)) {
      // A queued write the kernel refused: that packet is lost, the device goes on.
      sink.dropped(isNoBuffer(error) ? 'txNoBuffer' : 'txError');
      if (!isNoBuffer(error)) sink.error(ioError(error, this.name));
      return;
    }
    // A failed read stops reading for good: the device is done.
    sink.gone(ioError(error, this.name));
  }

  write(packet: Uint8Array): boolean {
    if (this.#closed) throw closedError(this.name);
    let queued: number;
    try {
      queued = this.#handle.write(familyOf(packet), packet);
    } catch (error) {
      return this.#writeFailed(error, 1);
    }
    return this.#accepted(queued);
  }

  writeBatch(packets: readonly Uint8Array[]): boolean {
    if (this.#closed) throw closedError(this.name);
    const families = new Uint8Array(packets.length);
    for (let i = 0; i < packets.length; i++) families[i] = familyOf(packets[i]!);
    let queued: number;
    try {
      queued = this.#handle.writeBatch(packets, families);
    } catch (error) {
      return this.#writeFailed(error, packets.length);
    }
    return this.#accepted(queued);
  }

  /**
   * A write the kernel refused. No buffer space is a drop, as on a NIC whose ring is full: the
   * packets from the failed one on are counted as `txNoBuffer` and the write succeeds.
   * Anything else is thrown; a vanished utun also ends the device.
   */
  #writeFailed(error: unknown, packets: number): boolean {
    if (isNoBuffer(error)) {
      const index = (error as Partial<UtunSystemError>).index ?? 0;
      this.#sink?.dropped('txNoBuffer', packets - index);
      return true;
    }
    const tapError = ioError(error, this.name);
    if (isGone(error)) this.#sink?.gone(tapError);
    throw tapError;
  }

  #accepted(queued: number): boolean {
    if (queued < WRITE_HIGH_WATER) return true;
    this.#blocked = true;
    return false;
  }

  pause(): void {
    if (!this.#closed) this.#handle.pause();
  }

  resume(): void {
    if (!this.#closed) this.#handle.resume();
  }

  ref(): void {
    this.#handle.ref();
  }

  unref(): void {
    this.#handle.unref();
  }

  /** Closes the control socket: the kernel destroys the interface with it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#handle.close();
  }
}

/** The family header for a packet the shim hands down (it only sends IPv4 and IPv6). */
function familyOf(packet: Uint8Array): number {
  const family = utunFamilyOf(packet);
  if (family === undefined) {
    throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'a utun carries only IPv4 and IPv6 packets', {
      backend: BACKEND,
    });
  }
  return family;
}

/** A copy of `packet` with `HEADROOM` free bytes in front of it. */
function withHeadroom(packet: Uint8Array): Uint8Array {
  const copy = new Uint8Array(HEADROOM + packet.length);
  copy.set(packet, HEADROOM);
  return copy.subarray(HEADROOM);
}
