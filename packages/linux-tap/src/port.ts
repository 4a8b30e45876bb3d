/**
 * The Linux port: a tap (or tun) device from /dev/net/tun, its queues, and the glue between
 * the addon's batches and the engine's {@link PortSink}.
 *
 * @module
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  RECEIVE_SLAB_BYTES,
  TapError,
  TapErrorCode,
  checkInterfaceName,
  checkMtu,
  describeValue,
  isNameTemplate,
  parseCidr,
  type Frame,
  type InterfaceAddress,
  type LinkState,
  type PortPipe,
  type PortSink,
  type ResolvedOpenOptions,
  type TapCapabilities,
  type TapOpenOptions,
  type TapPort,
  formatMarker,
  type InterfaceMarker,
} from '@tapkit/core';
import { loadAddon, type RawAddon, type RawSystemError, type RawTapHandle } from './addon.js';
import { BACKEND, attachError, closedError, ioError, isGone, openError } from './errors.js';
import { InterfaceLink, configureLink, type LinkConfig } from './link.js';
import { getLink } from './rtnetlink.js';
import { VNET_HEADER_LENGTH } from './vnet.js';

/** Options of the linux-tap backend: {@link TapOpenOptions} plus Linux's own. */
export interface LinuxTapOptions extends TapOpenOptions {
  /**
   * How many queues (fds) to open on the device, 1–256. With more than one the device is made
   * with `IFF_MULTI_QUEUE`: the kernel spreads the frames it sends over the queues by flow;
   * all queues are read here, and writes go out through the first. Default 1.
   */
  queues?: number;
  /**
   * Attach to the existing persistent tap device `name` (made with {@link preparePersistentTap}
   * or `ip tuntap add … user U`) instead of creating one: what lets a process without
   * CAP_NET_ADMIN use a tap, when it is the device's owner or in its group. Its MTU, MAC,
   * addresses and up flag stay as prepared unless given here (changing them needs
   * CAP_NET_ADMIN). Closing does not delete the device. Default false.
   */
  attach?: boolean;
  /**
   * Offload mode: the device passes TSO/GSO super-frames (up to 64 KiB) and partial checksums
   * with their metadata, which makes relays and tunnels far cheaper. Every frame read and
   * written is then a 12-byte virtio-net header followed by the Ethernet frame (see
   * `parseVnetHeader`, `withVnetHeader`, `vnetPayload`); `capabilities.offload` is true. Default false.
   */
  offload?: boolean;
  /**
   * Adopt this open tap fd instead of opening one: what a process handed a device by a
   * privileged helper (over a Unix socket, `SCM_RIGHTS`) or by systemd needs. The fd must be
   * attached to a tap device without packet information or a vnet header (`IFF_TAP |
   * IFF_NO_PI`); the device keeps its name, and its MTU and MAC unless given here (changing
   * them, or giving addresses or `up`, needs CAP_NET_ADMIN). tapkit owns the fd from then on:
   * closing the device closes it. Not with `name`, `attach`, `queues` or `offload`.
   */
  fd?: number;
}

/** MTUs a tap takes: the kernel allows 68 up to 65535 minus the Ethernet header. */
export const TAP_LIMITS = Object.freeze({ minMtu: 68, maxMtu: 65521 });
/** MTUs a tun takes (it has no link header). */
export const TUN_LIMITS = Object.freeze({ minMtu: 68, maxMtu: 65535 });

export const TAP_CAPABILITIES: TapCapabilities = Object.freeze({
  layer: 2,
  minMtu: TAP_LIMITS.minMtu,
  maxMtu: TAP_LIMITS.maxMtu,
  multiQueue: true,
  offload: false,
  multicastGroups: true,
  osInterface: true,
});

/**
 * The longest frame in offload mode: the virtio-net header, then a tagged Ethernet frame
 * holding the largest IP packet (an IPv6 packet with a 65,535-byte payload).
 */
export const OFFLOAD_MAX_FRAME_LENGTH = VNET_HEADER_LENGTH + 14 + 4 + 40 + 65_535;

const OFFLOAD_CAPABILITIES: TapCapabilities = Object.freeze({ ...TAP_CAPABILITIES, offload: true });

// TUN_F_* (linux/if_tun.h): what we accept from the kernel in offload mode. UFO (0x10) is
// obsolete; USO needs Linux 6.2 and is dropped by the addon where the kernel lacks it.
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
const TUN_F_TSO_ECN = 0x08;
const TUN_F_USO4 = 0x20;
const TUN_F_USO6 = 0x40;
const OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_USO4 | TUN_F_USO6;
export const IFF_PERSIST = 0x0800;

const MAX_QUEUES = 256; // MAX_TAP_QUEUES in drivers/net/tun.c
const BATCH_FRAMES = 64; // most frames per JS call; the kernel keeps the rest for the next turn
const WRITE_HIGH_WATER = 1024 * 1024; // bytes the addon holds back (EAGAIN) before write() says false
const ETHERNET_HEADER = 14;
const VLAN_TAG = 4;

function checkFlag(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') {
    throw new TapError(TapErrorCode.INVALID_OPTION, `${name} must be a boolean`, { backend: BACKEND });
  }
  return value;
}

function checkQueues(queues: unknown): number {
  if (queues === undefined) return 1;
  if (typeof queues !== 'number' || !Number.isInteger(queues) || queues < 1 || queues > MAX_QUEUES) {
    throw new TapError(
      TapErrorCode.INVALID_OPTION,
      `queues must be an integer from 1 to ${MAX_QUEUES}, not ${describeValue(queues)}`,
      {
        backend: BACKEND,
      },
    );
  }
  return queues;
}

/**
 * The kernel's own drop counters of an interface (sysfs, this thread's network namespace), as
 * the device sees them: `rxKernelDropped` are frames the OS had for the device and dropped (the
 * kernel's `tx_dropped`: the queue to our fd was full), `txKernelDropped` frames written to it
 * that the kernel dropped (its `rx_dropped` and `rx_frame_errors`). Undefined when the interface
 * is not visible here (deleted, or moved to another namespace).
 */
function readKernelDrops(name: string): Record<string, number> | undefined {
  const read = (counter: string): number =>
    Number(readFileSync(`/sys/class/net/${name}/statistics/${counter}`, 'utf8'));
  try {
    return {
      rxKernelDropped: read('tx_dropped'),
      txKernelDropped: read('rx_dropped') + read('rx_frame_errors'),
    };
  } catch {
    return undefined;
  }
}

/** The queues of one device and everything they share. */
export class LinuxQueues {
  #name = '';
  /** The MTU asked for at open: what receive buffers are sized for. */
  readonly #openMtu: number;
  /** The interface, followed live (name, MTU, up, addresses): set once the device exists. */
  #link: InterfaceLink | undefined;
  readonly #addon: RawAddon;
  readonly #mode: 'tap' | 'tun';
  /** Offload mode: frames carry a virtio-net header in front. */
  readonly offload: boolean;
  readonly #minFrame: number;
  #attached = false;
  readonly #handles: RawTapHandle[] = [];
  #sink: PortSink | undefined;
  #blocked = false;
  /** Frames wait in the addon's queue (the kernel said EAGAIN): set by a write, cleared on drain. */
  #queued = false;
  /** Ends close()'s wait for that queue to empty. */
  #flushed: (() => void) | undefined;
  #closed = false;
  /** The kernel's drop counters when the device was opened, and as last seen: see osDrops(). */
  #kernelDropsAtOpen: Record<string, number> = {};
  #kernelDrops: Record<string, number> = {};
  /** Frames of a batch counted `interfaceDown` behind the one the kernel refused: never written. */
  #downUnwritten = 0;
  /** writeSpans' (offset, length) pairs, grown as needed. */
  #spans = new Uint32Array(2 * BATCH_FRAMES);

  constructor(addon: RawAddon, mode: 'tap' | 'tun', mtu: number, offload = false) {
    this.#addon = addon;
    this.#mode = mode;
    this.#openMtu = mtu;
    this.offload = offload;
    this.#minFrame = offload ? VNET_HEADER_LENGTH + ETHERNET_HEADER : 0;
  }

  get name(): string {
    return this.#link?.name ?? this.#name;
  }

  get mtu(): number {
    return this.#link?.mtu ?? this.#openMtu;
  }

  get up(): boolean | undefined {
    return this.#link?.up;
  }

  get addresses(): readonly string[] | undefined {
    return this.#link?.addresses;
  }

  /** Follows the interface `name`, from now on. */
  #watch(name: string): void {
    this.#link = new InterfaceLink(this.#addon, name);
  }

  /**
   * Creates the device (exclusively: an existing name is EBUSY) with `queues` queues; or, with
   * `attach`, attaches them to the existing persistent device `requested`.
   */
  open(requested: string | undefined, queues: number, attach = false): void {
    const name = requested ?? (this.#mode === 'tap' ? 'tapkit%d' : 'tapkit-tun%d');
    // Offloads belong to the device and outlive the fd: set them when asked for, and clear
    // them on a device that may have kept another user's (no header here to carry them).
    const offloads = this.offload ? OFFLOADS : attach ? 0 : undefined;
    try {
      const first = this.#openQueue(name, queues > 1, !attach, offloads);
      this.#name = first.name;
      if (attach && (first.flags & IFF_PERSIST) === 0) {
        throw new TapError(
          TapErrorCode.INVALID_OPTION,
          `${name} is not a persistent ${this.#mode} device: attach is for devices prepared with ` +
            "preparePersistentTap() or 'ip tuntap add'",
          { backend: BACKEND },
        );
      }
      this.#attached = attach;
      for (let i = 1; i < queues; i++) this.#openQueue(this.#name, true, false, undefined);
      this.#watch(this.#name);
      // An attached device has counted before: only what it counts from now on is ours.
      this.#kernelDropsAtOpen = this.#kernelDrops = readKernelDrops(this.#name) ?? {};
    } catch (error) {
      this.#discard();
      if (attach) throw attachError(error, name);
      throw openError(error, `open ${this.#mode} device ${requested ?? ''}`.trimEnd());
    }
  }

  /** Adopts `fd`, already attached to the tap device `name` (see {@link LinuxTapOptions.fd}). */
  adopt(fd: number, name: string): void {
    try {
      this.#openQueue(name, false, false, undefined, fd);
      this.#watch(name);
    } catch (error) {
      this.#discard();
      throw openError(error, `adopt fd ${fd} of ${name}`);
    }
    this.#name = name;
    this.#attached = true; // its settings are changed only where asked, as on an attached device
  }

  /**
   * Adopts a connected datagram socket (a UDP link, see udp-link.ts) as the one queue: a read is
   * a frame from the peer, a write one to it. There is no interface to follow or change.
   */
  adoptSocket(fd: number, name: string): void {
    this.#name = name;
    try {
      this.#openQueue(name, false, false, undefined, fd);
    } catch (error) {
      this.#discard();
      throw openError(error, `adopt the socket of ${name}`);
    }
  }

  #openQueue(
    name: string,
    multiQueue: boolean,
    exclusive: boolean,
    offloads: number | undefined,
    fd?: number,
  ): RawTapHandle {
    const offsets = new Uint32Array(BATCH_FRAMES + 1);
    // Room for the largest frame the MTU allows (in offload mode, a super-frame); a larger one
    // (the MTU was raised by someone else) still arrives whole, through the addon's spill buffer.
    const reserve = this.offload
      ? OFFLOAD_MAX_FRAME_LENGTH
      : this.#mode === 'tap'
        ? this.#openMtu + ETHERNET_HEADER + VLAN_TAG
        : this.#openMtu;
    const handle = new this.#addon.TapHandle({
      name,
      ...(fd !== undefined && { fd }),
      mode: this.#mode,
      multiQueue,
      exclusive,
      vnetHeader: this.offload,
      ...(offloads !== undefined && { offloads }),
      batchFrames: BATCH_FRAMES,
      offsets,
      frameReserve: reserve,
      slabBytes: Math.max(RECEIVE_SLAB_BYTES, 4 * reserve),
      // One call per batch. The frames are views into a slab the addon never writes again.
      onRead: (slab, count) => {
        const frames: Buffer[] = [];
        let start = offsets[0]!;
        for (let i = 1; i <= count; i++) {
          const end = offsets[i]!;
          frames.push(Buffer.from(slab, start, end - start));
          start = end;
        }
        this.#sink?.receive(frames);
      },
      onDrain: () => {
        this.#queued = false;
        this.#flushed?.();
        if (!this.#blocked) return;
        this.#blocked = false;
        this.#sink?.writable();
      },
      onError: (error) => this.#failed(error),
    });
    this.#handles.push(handle);
    return handle;
  }

  /**
   * Sets the MTU, MAC, addresses and up flag given (see {@link configureLink}), then reads the
   * interface's whole state. On failure the port is discarded.
   */
  configure(settings: LinkConfig): void {
    const link = this.#link!;
    const name = this.name;
    configureLink(this.#addon, link.index, name, settings, (error, what) => {
      this.#discard();
      return this.#attached ? attachError(error, name, what) : openError(error, `${what} on ${name}`);
    });
    link.refresh();
  }

  // TapPort's setters (see InterfaceLink).
  setMtu(mtu: number): Promise<void> {
    return this.#setters('setMtu()').setMtu(mtu);
  }

  setUp(up: boolean): Promise<void> {
    return this.#setters('setUp()').setUp(up);
  }

  addAddress(address: InterfaceAddress, options: { readonly dad: boolean }): Promise<void> {
    return this.#setters('addAddress()').addAddress(address, options);
  }

  removeAddress(address: InterfaceAddress): Promise<void> {
    return this.#setters('removeAddress()').removeAddress(address);
  }

  #setters(what: string): InterfaceLink['setters'] {
    if (this.#link) return this.#link.setters;
    throw new TapError(
      TapErrorCode.UNSUPPORTED_OPERATION,
      `${what}: ${this.name} is a socket, not an interface`,
      {
        backend: BACKEND,
      },
    );
  }

  #failed(error: RawSystemError): void {
    const sink = this.#sink;
    // Closing, queued frames may still be flushed: their failures count.
    if (sink === undefined || (this.#closed && error.syscall !== 'write')) return;
    if (error.syscall === 'write' && error.code === 'EIO') {
      sink.dropped('interfaceDown'); // see #writeFailed
      return;
    }
    if (error.syscall === 'write' && !isGone(error)) {
      // A queued write the kernel refused: that frame is lost, the device goes on.
      sink.dropped('txError');
      sink.error(ioError(error, this.name));
      return;
    }
    // A failed read stops reading for good (the addon polls no more): the device is done.
    sink.gone(ioError(error, this.name));
  }

  /**
   * A write the kernel refused. EIO means the interface is down: like a NIC whose link is
   * down, the frames are dropped (counted as `interfaceDown`, not as sent) and the write succeeds.
   * Anything else is thrown; a vanished interface also ends the device.
   */
  #writeFailed(error: unknown, count: number, lengthOf: (i: number) => number): boolean {
    const sys = error as Partial<RawSystemError>;
    if (sys.code === 'EIO') {
      const index = sys.index ?? 0;
      let bytes = 0;
      for (let i = index; i < count; i++) bytes += lengthOf(i);
      this.#downUnwritten += count - index - 1;
      this.#sink?.notSent('interfaceDown', count - index, bytes);
      return true;
    }
    if (sys.code === 'EINVAL') {
      throw new TapError(
        TapErrorCode.INVALID_ARGUMENT,
        `${this.name}: the kernel refused the frame (EINVAL)` +
          (this.offload ? ': its virtio-net header does not fit the frame behind it' : ''),
        { backend: BACKEND, cause: error, errno: sys.errno ?? -22, osCode: 'EINVAL', syscall: 'write' },
      );
    }
    const tapError = ioError(error, this.name);
    if (isGone(error)) this.#sink?.gone(tapError);
    throw tapError;
  }

  #accepted(queued: number): boolean {
    this.#queued = queued > 0;
    if (queued < WRITE_HIGH_WATER) return true;
    this.#blocked = true;
    return false;
  }

  start(sink: PortSink): void {
    this.#sink = sink;
    this.#link?.start((state: Partial<LinkState>) => {
      if (state.mtu !== undefined) this.#updateFrameLimit(state.mtu);
      sink.link(state);
    });
    this.#updateFrameLimit(this.mtu);
    for (const handle of this.#handles) handle.resume();
  }

  /**
   * Tells the addon which frames this device takes, for native pipes into it: what the engine's
   * checkFrame() and #check() let through, at `mtu`. A frame outside is refused and counted
   * (`txError`) by the pipe, as by the engine's JS pipe, instead of being written.
   */
  #updateFrameLimit(mtu: number): void {
    const { maxFrameLength, minFrameLength } = this as Partial<TapPort>;
    const tap = this.#mode === 'tap';
    const max = maxFrameLength ?? (tap ? mtu + ETHERNET_HEADER : mtu);
    const tagged = maxFrameLength === undefined && tap ? VLAN_TAG : 0;
    const min = Math.max(minFrameLength ?? ETHERNET_HEADER, this.#minFrame);
    for (const handle of this.#handles) handle.setFrameLimit?.(min, max, tagged);
  }

  /**
   * What the engine checks of a tap's frames, a tun's packets get here: a Uint8Array of at most
   * the MTU. In offload mode a frame is at least a virtio-net header and an Ethernet header.
   */
  #check(frame: Frame): void {
    if (this.#mode === 'tun') {
      if (!(frame instanceof Uint8Array)) {
        throw new TapError(
          TapErrorCode.INVALID_ARGUMENT,
          `a packet must be a Uint8Array or Buffer, not ${typeof frame}`,
          { backend: BACKEND },
        );
      }
      if (frame.length > this.mtu) {
        throw new TapError(
          TapErrorCode.FRAME_TOO_LARGE,
          `packet of ${frame.length} bytes exceeds ${this.name}'s MTU of ${this.mtu}`,
          { backend: BACKEND },
        );
      }
    }
    if (frame.length < this.#minFrame) {
      throw new TapError(
        TapErrorCode.FRAME_TOO_SHORT,
        `frame of ${frame.length} bytes is shorter than a virtio-net header and an Ethernet header ` +
          `(${this.#minFrame} bytes; the device is in offload mode)`,
        { backend: BACKEND },
      );
    }
  }

  write(frame: Frame): boolean {
    if (this.#closed) throw closedError(this.name);
    this.#check(frame);
    let queued: number;
    try {
      queued = this.#handles[0]!.write(frame);
    } catch (error) {
      return this.#writeFailed(error, 1, () => frame.length);
    }
    return this.#accepted(queued);
  }

  writeBatch(frames: readonly Frame[]): boolean {
    if (this.#closed) throw closedError(this.name);
    for (const frame of frames) this.#check(frame);
    let queued: number;
    try {
      queued = this.#writeFrames(frames);
    } catch (error) {
      return this.#writeFailed(error, frames.length, (i) => frames[i]!.length);
    }
    return this.#accepted(queued);
  }

  /** Frames the engine has checked, as (offset, length) pairs into `buffer`: one N-API call. */
  writeSpans(buffer: ArrayBuffer, spans: Uint32Array, count: number): boolean {
    if (this.#closed) throw closedError(this.name);
    const handle = this.#handles[0]!;
    if (handle.writeSpans === undefined) {
      return this.writeBatch(Array.from({ length: count }, (_, i) => new Uint8Array(buffer, spans[2 * i], spans[2 * i + 1])));
    }
    let queued: number;
    try {
      queued = handle.writeSpans(buffer, spans, count);
    } catch (error) {
      return this.#writeFailed(error, count, (i) => spans[2 * i + 1]!);
    }
    return this.#accepted(queued);
  }

  /**
   * A batch whose frames are all views of one ArrayBuffer (a relay's: frames read from one
   * slab) goes to the addon as the buffer and (offset, length) pairs, one N-API call with no
   * per-frame lookups; any other batch frame by frame.
   */
  #writeFrames(frames: readonly Frame[]): number {
    const handle = this.#handles[0]!;
    const count = frames.length;
    if (count < 2 || handle.writeSpans === undefined) return handle.writeBatch(frames);
    const buffer = frames[0]?.buffer;
    if (!(buffer instanceof ArrayBuffer)) return handle.writeBatch(frames);
    let spans = this.#spans;
    if (spans.length < 2 * count) spans = this.#spans = new Uint32Array(2 * count);
    for (let i = 0; i < count; i++) {
      const frame = frames[i];
      if (!(frame instanceof Uint8Array) || frame.buffer !== buffer) return handle.writeBatch(frames);
      spans[2 * i] = frame.byteOffset;
      spans[2 * i + 1] = frame.byteLength;
    }
    return handle.writeSpans(buffer, spans, count);
  }

  /**
   * A pipe in native code: each queue's frames go straight to the destination's first queue.
   * Only between open linux-tap ports of one kind (tap or tun, offload or not), whose frames
   * mean the same on both sides.
   */
  pipeTo(destination: TapPort): PortPipe | undefined {
    if (
      !(#handles in destination) ||
      (destination as LinuxQueues) === this ||
      this.#closed ||
      destination.#closed ||
      destination.#mode !== this.#mode ||
      destination.offload !== this.offload
    ) {
      return undefined;
    }
    const target = destination.#handles[0]!;
    const sources = this.#handles;
    destination.#updateFrameLimit(destination.mtu);
    if (sources.some((handle) => handle.pipeTo === undefined)) return undefined;
    try {
      for (const handle of sources) handle.pipeTo!(target);
    } catch (error) {
      for (const handle of sources) handle.pipeTo!(null); // none of them pipes, then
      throw ioError(error, this.name);
    }
    let stopped = false;
    return {
      counts: () => {
        const total = [0, 0, 0, 0];
        for (const handle of sources) handle.pipeCounts!().forEach((n, i) => (total[i]! += n));
        const [written = 0, bytes = 0, interfaceDown = 0, refused = 0] = total;
        // As writeBatch() counts them: a frame refused (with EIO: the interface is down) was not
        // sent, and is counted as a drop.
        const drops: Record<string, number> = {};
        if (interfaceDown > 0) drops.interfaceDown = interfaceDown;
        if (refused > 0) drops.txError = refused;
        return { frames: written, bytes, refused: refused + interfaceDown, drops };
      },
      stop: () => {
        if (stopped) return;
        stopped = true;
        if (!this.#closed) for (const handle of sources) handle.pipeTo!(null);
      },
    };
  }

  /**
   * The kernel's drops on its side of the device since it was opened (see readKernelDrops).
   * Its `rx_dropped` also counts every write it refused with EIO (the link down), which the
   * device has counted as `interfaceDown` already: those are left out (the frames of a batch
   * behind a refused one were never written, so the kernel did not count them).
   */
  osDrops(counted: Readonly<Record<string, number>>): Record<string, number> {
    if (!this.#link) return {};
    if (!this.#closed) this.#kernelDrops = readKernelDrops(this.name) ?? this.#kernelDrops;
    const drops: Record<string, number> = {};
    for (const [reason, count] of Object.entries(this.#kernelDrops)) {
      drops[reason] = count - (this.#kernelDropsAtOpen[reason] ?? 0);
    }
    if (drops.txKernelDropped !== undefined) {
      const refusedDown = (counted.interfaceDown ?? 0) - this.#downUnwritten;
      drops.txKernelDropped = Math.max(0, drops.txKernelDropped - refusedDown);
    }
    return drops;
  }

  pause(): void {
    for (const handle of this.#handles) handle.pause();
  }

  resume(): void {
    for (const handle of this.#handles) handle.resume();
  }

  unref(): void {
    for (const handle of this.#handles) handle.unref();
  }

  ref(): void {
    for (const handle of this.#handles) handle.ref();
  }

  /**
   * Closes every queue; the kernel deletes the device with the last one unless it is
   * persistent (an attached device stays). Frames the kernel has not taken yet (EAGAIN) are
   * sent first, for up to `flushTimeout` ms (default 0: none); the rest are counted as
   * `closeUnsent` drops.
   */
  close(options?: { readonly flushTimeout: number }): Promise<void> | void {
    const timeout = options?.flushTimeout ?? 0;
    if (this.#closed || !this.#queued || timeout === 0) return this.#discard();
    this.#closed = true;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeout);
      this.#flushed = () => {
        clearTimeout(timer);
        resolve();
      };
    }).then(() => this.#release());
  }

  /** Closes at once, without flushing (a device that failed to open, or has nothing queued). */
  #discard(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
  }

  #release(): void {
    if (this.#link) this.#kernelDrops = readKernelDrops(this.name) ?? this.#kernelDrops; // the last word
    this.#link?.close();
    let unsent = 0;
    for (const handle of this.#handles) unsent += handle.close();
    if (unsent > 0) this.#sink?.dropped('closeUnsent', unsent);
  }

  get closed(): boolean {
    return this.#closed;
  }
}

/** A tap device: the port the engine turns into a TapDevice. */
class LinuxTapPort extends LinuxQueues implements TapPort {
  readonly #mac: Uint8Array;
  readonly capabilities: TapCapabilities;
  readonly maxFrameLength: number | undefined;
  /** In offload mode a virtio-net header and an Ethernet header: the engine checks it at write(). */
  readonly minFrameLength: number | undefined;

  constructor(addon: RawAddon, mtu: number, mac: Uint8Array, offload: boolean) {
    super(addon, 'tap', mtu, offload);
    this.#mac = Uint8Array.from(mac);
    this.capabilities = offload ? OFFLOAD_CAPABILITIES : TAP_CAPABILITIES;
    this.maxFrameLength = offload ? OFFLOAD_MAX_FRAME_LENGTH : undefined;
    this.minFrameLength = offload ? VNET_HEADER_LENGTH + ETHERNET_HEADER : undefined;
  }

  get mac(): Uint8Array {
    return Uint8Array.from(this.#mac);
  }

  /** The link-layer groups the kernel joined on the device, from /proc/net/dev_mcast. */
  async multicastGroups(): Promise<string[]> {
    if (this.closed) throw closedError(this.name);
    // Lines: index, name, users, global users, address as 12 hex digits. This is the calling
    // thread's network namespace: a device moved to another one shows no groups here.
    const text = await readFile('/proc/self/net/dev_mcast', 'utf8');
    const groups: string[] = [];
    for (const line of text.split('\n')) {
      const fields = line.trim().split(/\s+/);
      const hex = fields[4];
      if (fields[1] === this.name && hex !== undefined && /^[0-9a-f]{12}$/i.test(hex)) {
        groups.push(hex.toLowerCase().replace(/(..)(?!$)/g, '$1:'));
      }
    }
    return groups;
  }
}

/**
 * Opens a tap device. Called by the backend with validated options; call it directly only with
 * options you validated yourself (e.g. through core's `resolveOpenOptions`).
 */
// async although nothing is awaited: every failure becomes a rejection, never a throw.
export async function openLinuxPort(
  options: ResolvedOpenOptions,
  raw: LinuxTapOptions = {},
): Promise<TapPort> {
  const queues = checkQueues(raw.queues);
  const attach = checkFlag(raw.attach, 'attach');
  const offload = checkFlag(raw.offload, 'offload');
  const addon = loadAddon(raw.env ?? process.env);
  if (raw.fd !== undefined) return adoptLinuxPort(addon, options, raw);
  if (attach) return attachLinuxPort(addon, options, raw, queues, offload);
  const port = new LinuxTapPort(addon, options.mtu, options.mac, offload);
  port.open(options.name, queues);
  markInterface(port.name, { backend: BACKEND, persistent: false });
  port.configure(newDeviceConfig(options));
  return port;
}

/** The settings of a device tapkit created: it starts down, so it is brought up only when asked. */
export function newDeviceConfig(options: ResolvedOpenOptions): LinkConfig {
  const { mtu, mac, addresses } = options;
  return { mtu, mac, addresses, up: options.up ? true : undefined };
}

/**
 * Attaches to a persistent device. It keeps the settings it was prepared with: only the ones
 * the caller gave, and only where they differ, are changed (which needs CAP_NET_ADMIN).
 */
function attachLinuxPort(
  addon: RawAddon,
  options: ResolvedOpenOptions,
  raw: LinuxTapOptions,
  queues: number,
  offload: boolean,
): TapPort {
  const name = options.name;
  if (name === undefined || isNameTemplate(name)) {
    throw new TapError(
      TapErrorCode.INVALID_OPTION,
      `attach needs the name of the persistent device${name === undefined ? '' : `, not a template (${name})`}`,
      { backend: BACKEND },
    );
  }
  let link;
  try {
    link = getLink(addon, name);
  } catch (error) {
    throw attachError(error, name);
  }
  const mtu = raw.mtu !== undefined && options.mtu !== link.mtu ? options.mtu : undefined;
  const mac = raw.mac !== undefined && !sameBytes(options.mac, link.mac) ? options.mac : undefined;
  const up = raw.up !== undefined && raw.up !== link.up ? raw.up : undefined;
  const port = new LinuxTapPort(addon, mtu ?? link.mtu, mac ?? link.mac, offload);
  port.open(name, queues, true);
  port.configure({ mtu, mac, addresses: options.addresses, up });
  return port;
}

// if_tun.h: the flags /sys/class/net/NAME/tun_flags reports.
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;

/**
 * The tap device an fd is attached to, from the kernel's own account (`iff:` in
 * /proc/self/fdinfo, then the device's tun_flags); an error saying what is wrong otherwise.
 */
function tapOfFd(fd: number): string {
  const refuse = (why: string) =>
    new TapError(TapErrorCode.INVALID_OPTION, `fd ${fd} cannot be adopted: ${why}`, { backend: BACKEND });
  let info: string;
  try {
    info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  } catch {
    throw refuse('it is not open in this process');
  }
  const name = /^iff:\s*(\S+)$/m.exec(info)?.[1];
  if (name === undefined)
    throw refuse('it is not attached to a tun/tap device (/dev/net/tun after TUNSETIFF)');
  let flags = NaN;
  try {
    flags = Number.parseInt(readFileSync(`/sys/class/net/${name}/tun_flags`, 'utf8'), 16);
  } catch {
    // no sysfs: the checks below fail
  }
  if ((flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)) !== (IFF_TAP | IFF_NO_PI)) {
    throw refuse(`${name} is not a tap device opened with IFF_TAP | IFF_NO_PI and without IFF_VNET_HDR`);
  }
  return name;
}

/** Adopts an open tap fd: see {@link LinuxTapOptions.fd}. */
function adoptLinuxPort(addon: RawAddon, options: ResolvedOpenOptions, raw: LinuxTapOptions): TapPort {
  const fd = raw.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new TapError(
      TapErrorCode.INVALID_OPTION,
      `fd must be an open file descriptor, not ${describeValue(fd)}`,
      {
        backend: BACKEND,
      },
    );
  }
  const conflict = (['name', 'attach', 'queues', 'offload'] as const).find((key) => raw[key] !== undefined);
  if (conflict !== undefined) {
    throw new TapError(
      TapErrorCode.INVALID_OPTION,
      `fd cannot be combined with ${conflict}: the fd decides it`,
      {
        backend: BACKEND,
      },
    );
  }
  const name = tapOfFd(fd);
  let link;
  try {
    link = getLink(addon, name);
  } catch (error) {
    throw openError(error, `adopt fd ${fd} of ${name}`);
  }
  const mtu = raw.mtu !== undefined && options.mtu !== link.mtu ? options.mtu : undefined;
  const mac = raw.mac !== undefined && !sameBytes(options.mac, link.mac) ? options.mac : undefined;
  const up = raw.up !== undefined && raw.up !== link.up ? raw.up : undefined;
  const port = new LinuxTapPort(addon, mtu ?? link.mtu, mac ?? link.mac, false);
  port.adopt(fd, name);
  port.configure({ mtu, mac, addresses: options.addresses, up });
  return port;
}

/**
 * Labels a device as tapkit's through its alias (`ip link` shows `alias tapkit:linux-tap`), so
 * `tapkit list` and other tools can tell it apart. Best effort: a device works without it.
 */
export function markInterface(name: string, marker: InterfaceMarker): void {
  try {
    writeFileSync(`/sys/class/net/${name}/ifalias`, formatMarker(marker));
  } catch {
    // not permitted (an attached, unprivileged user) or no sysfs: the label is only a hint
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Options of {@link openLinuxTunPort}. */
export interface LinuxTunOptions {
  /**
   * Interface name, 1–15 characters of `[A-Za-z0-9_.-]`, or a template such as `tun%d`.
   * Default: the kernel picks `tapkit-tunN`.
   */
  name?: string;
  /** MTU, 68–65535. Default 1500. */
  mtu?: number;
  /** CIDR addresses to assign (`10.0.0.1/24`, `fd00::1/64`). */
  addresses?: readonly string[];
  /** Bring the interface up. Default true. */
  up?: boolean;
  /** Queues (fds), 1–256, as {@link LinuxTapOptions.queues}. Default 1. */
  queues?: number;
  /** Where `TAPKIT_LINUX_ADDON` is read from. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/**
 * A tun device: layer 3. What it reads and writes are bare IP packets (IPv4 or IPv6, told apart
 * by the version nibble), not Ethernet frames, so it is not a TapPort and the engine's frame
 * checks do not apply. It has the port's shape otherwise — batches to a {@link PortSink},
 * `write` returning false over the high-water mark — so an L2-over-L3 shim can wrap it into a
 * TapPort.
 */
export interface LinuxTunPort {
  readonly layer: 3;
  readonly name: string;
  readonly mtu: number;
  /** Start delivering received packets (a batch per call) to `sink`. Called once. */
  start(sink: PortSink): void;
  /** Sends an IP packet (at most `mtu` bytes); false when over the high-water mark (then wait for `sink.writable()`). */
  write(packet: Uint8Array): boolean;
  writeBatch(packets: readonly Uint8Array[]): boolean;
  pause(): void;
  resume(): void;
  unref(): void;
  ref(): void;
  /** Closes the device; idempotent. Queued packets are flushed first, as {@link TapPort.close} says. */
  close(options?: { readonly flushTimeout: number }): Promise<void> | void;
  readonly closed: boolean;
}

/** What a tun device can do: layer 3 (IP packets), several queues. */
export const TUN_CAPABILITIES: TapCapabilities = Object.freeze({
  layer: 3,
  minMtu: TUN_LIMITS.minMtu,
  maxMtu: TUN_LIMITS.maxMtu,
  multiQueue: true,
  offload: false,
  multicastGroups: false,
  osInterface: true,
});

/** A tun device: a LinuxTunPort, and a TapPort for the engine (see `linuxTun`). */
class LinuxTunPortImpl extends LinuxQueues implements LinuxTunPort, TapPort {
  readonly layer = 3 as const;
  /** A tun has no link-layer address. */
  readonly mac = new Uint8Array(0);
  readonly capabilities = TUN_CAPABILITIES;
  /** An IP packet: at least an IPv4 header, at most the MTU. */
  readonly minFrameLength = 20;
  get maxFrameLength(): number {
    return this.mtu;
  }
}

/** Opens a tun device (layer 3: IP packets). Options are validated here. */
export async function openLinuxTunPort(options: LinuxTunOptions = {}): Promise<LinuxTunPort & TapPort> {
  const name = options.name === undefined ? undefined : checkInterfaceName(options.name, { template: true });
  const mtu = checkMtu(options.mtu ?? 1500, TUN_LIMITS);
  if (options.addresses !== undefined && !Array.isArray(options.addresses)) {
    throw new TapError(TapErrorCode.INVALID_OPTION, 'addresses must be an array of CIDR strings', {
      backend: BACKEND,
    });
  }
  const addresses = (options.addresses ?? []).map((cidr) => parseCidr(cidr));
  if (options.up !== undefined && typeof options.up !== 'boolean') {
    throw new TapError(TapErrorCode.INVALID_OPTION, 'up must be a boolean', { backend: BACKEND });
  }
  const queues = checkQueues(options.queues);
  const addon = loadAddon(options.env ?? process.env);
  const port = new LinuxTunPortImpl(addon, 'tun', mtu);
  port.open(name, queues);
  port.configure({ mtu, addresses, up: (options.up ?? true) || undefined });
  return port;
}
