/**
 * The Linux port: a tap (or tun) device from /dev/net/tun, its queues, and the glue between
 * the addon's batches and the engine's {@link PortSink}.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import {
  TapError,
  TapErrorCode,
  checkInterfaceName,
  checkMtu,
  parseCidr,
  type Frame,
  type InterfaceAddress,
  type PortSink,
  type ResolvedOpenOptions,
  type TapCapabilities,
  type TapOpenOptions,
  type TapPort,
} from '@tapkit/core';
import { loadAddon, type RawAddon, type RawSystemError, type RawTapHandle } from './addon.js';
import { BACKEND, closedError, ioError, isGone, openError } from './errors.js';

/** Options of the linux-tap backend: {@link TapOpenOptions} plus Linux's own. */
export interface LinuxTapOptions extends TapOpenOptions {
  /**
   * How many queues (fds) to open on the device, 1–256. With more than one the device is made
   * with `IFF_MULTI_QUEUE`: the kernel spreads the frames it sends over the queues by flow;
   * all queues are read here, and writes go out through the first. Default 1.
   */
  queues?: number;
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

const MAX_QUEUES = 256; // MAX_TAP_QUEUES in drivers/net/tun.c
const BATCH_FRAMES = 64; // most frames per JS call; the kernel keeps the rest for the next turn
const MIN_SLAB_BYTES = 128 * 1024;
const WRITE_HIGH_WATER = 1024 * 1024; // bytes the addon holds back (EAGAIN) before write() says false
const ETHERNET_HEADER = 14;
const VLAN_TAG = 4;

function checkQueues(queues: unknown): number {
  if (queues === undefined) return 1;
  if (typeof queues !== 'number' || !Number.isInteger(queues) || queues < 1 || queues > MAX_QUEUES) {
    throw new TapError(
      TapErrorCode.INVALID_OPTION,
      `queues must be an integer from 1 to ${MAX_QUEUES}, not ${typeof queues === 'number' ? queues : typeof queues}`,
      {
        backend: BACKEND,
      },
    );
  }
  return queues;
}

/** The queues of one device and everything they share. */
class LinuxQueues {
  #name = '';
  readonly mtu: number;
  readonly #addon: RawAddon;
  readonly #mode: 'tap' | 'tun';
  readonly #handles: RawTapHandle[] = [];
  #sink: PortSink | undefined;
  #blocked = false;
  #closed = false;

  constructor(addon: RawAddon, mode: 'tap' | 'tun', mtu: number) {
    this.#addon = addon;
    this.#mode = mode;
    this.mtu = mtu;
  }

  get name(): string {
    return this.#name;
  }

  /** Creates the device (exclusively: an existing name is EBUSY) with `queues` queues. */
  open(requested: string | undefined, queues: number): void {
    const name = requested ?? (this.#mode === 'tap' ? 'tapkit%d' : 'tapkit-tun%d');
    try {
      this.#name = this.#openQueue(name, queues > 1, true).name;
      for (let i = 1; i < queues; i++) this.#openQueue(this.#name, true, false);
    } catch (error) {
      this.close();
      throw openError(error, `open ${this.#mode} device ${requested ?? ''}`.trimEnd());
    }
  }

  #openQueue(name: string, multiQueue: boolean, exclusive: boolean): RawTapHandle {
    const offsets = new Uint32Array(BATCH_FRAMES + 1);
    // Room for the largest frame the MTU allows; a larger one (the MTU was raised by someone
    // else) still arrives whole, through the addon's spill buffer.
    const reserve = this.#mode === 'tap' ? this.mtu + ETHERNET_HEADER + VLAN_TAG : this.mtu;
    const handle = new this.#addon.TapHandle({
      name,
      mode: this.#mode,
      multiQueue,
      exclusive,
      batchFrames: BATCH_FRAMES,
      offsets,
      frameReserve: reserve,
      slabBytes: Math.max(MIN_SLAB_BYTES, 4 * reserve),
      // One call per batch. The frames are views into a slab the addon never writes again.
      onRead: (slab, count) => {
        const frames: Frame[] = [];
        let start = offsets[0]!;
        for (let i = 1; i <= count; i++) {
          const end = offsets[i]!;
          frames.push(new Uint8Array(slab, start, end - start));
          start = end;
        }
        this.#sink?.receive(frames);
      },
      onDrain: () => {
        if (!this.#blocked) return;
        this.#blocked = false;
        this.#sink?.writable();
      },
      onError: (error) => this.#failed(error),
    });
    this.#handles.push(handle);
    return handle;
  }

  /** Sets MTU, MAC, addresses and the up flag, by ioctl. */
  configure(options: { mac?: Uint8Array; addresses: readonly InterfaceAddress[]; up: boolean }): void {
    const name = this.#name;
    const addon = this.#addon;
    const step = (what: string, action: () => void): void => {
      try {
        action();
      } catch (error) {
        this.close();
        throw openError(error, `${what} on ${name}`);
      }
    };
    step(`set MTU ${this.mtu}`, () => addon.setMtu(name, this.mtu));
    const mac = options.mac;
    if (mac) step('set MAC', () => addon.setMac(name, mac));
    let ipv4 = 0;
    for (const address of options.addresses) {
      if (address.family === 4) {
        // SIOCSIFADDR replaces the address of a label: each IPv4 address after the first gets
        // an alias label of its own.
        const label = ipv4 === 0 ? name : `${name}:${ipv4}`;
        if (label.length > 15) {
          this.close();
          throw new TapError(
            TapErrorCode.INVALID_OPTION,
            `cannot add ${address.cidr} to ${name}: a second IPv4 address needs the label ${label}, longer than ` +
              '15 characters; use a shorter interface name',
            { backend: BACKEND },
          );
        }
        step(`add address ${address.cidr}`, () =>
          addon.addAddress(name, 4, address.address, address.prefixLength, label),
        );
        ipv4++;
      } else {
        step(`add address ${address.cidr}`, () =>
          addon.addAddress(name, 6, address.address, address.prefixLength),
        );
      }
    }
    if (options.up) step('bring up', () => addon.setUp(name, true));
  }

  #failed(error: RawSystemError): void {
    const sink = this.#sink;
    if (this.#closed || sink === undefined) return;
    if (error.syscall === 'write' && error.code === 'EIO') {
      sink.dropped('interfaceDown'); // see #writeFailed
      return;
    }
    if (error.syscall === 'write' && !isGone(error)) {
      // A queued write the kernel refused: that frame is lost, the device goes on.
      sink.dropped('txError');
      sink.error(ioError(error, this.#name));
      return;
    }
    // A failed read stops reading for good (the addon polls no more): the device is done.
    sink.gone(ioError(error, this.#name));
  }

  /**
   * A write the kernel refused. EIO means the interface is down: like a NIC whose link is
   * down, the frames are dropped (counted as `interfaceDown`) and the write succeeds.
   * Anything else is thrown; a vanished interface also ends the device.
   */
  #writeFailed(error: unknown, frames: number): boolean {
    const sys = error as Partial<RawSystemError>;
    if (sys.code === 'EIO') {
      this.#sink?.dropped('interfaceDown', frames - (sys.index ?? 0));
      return true;
    }
    const tapError = ioError(error, this.#name);
    if (isGone(error)) this.#sink?.gone(tapError);
    throw tapError;
  }

  #accepted(queued: number): boolean {
    if (queued < WRITE_HIGH_WATER) return true;
    this.#blocked = true;
    return false;
  }

  start(sink: PortSink): void {
    this.#sink = sink;
    for (const handle of this.#handles) handle.resume();
  }

  write(frame: Frame): boolean {
    if (this.#closed) throw closedError(this.#name);
    let queued: number;
    try {
      queued = this.#handles[0]!.write(frame);
    } catch (error) {
      return this.#writeFailed(error, 1);
    }
    return this.#accepted(queued);
  }

  writeBatch(frames: readonly Frame[]): boolean {
    if (this.#closed) throw closedError(this.#name);
    let queued: number;
    try {
      queued = this.#handles[0]!.writeBatch(frames);
    } catch (error) {
      return this.#writeFailed(error, frames.length);
    }
    return this.#accepted(queued);
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

  /** Closes every queue; the kernel deletes the (non-persistent) device with the last one. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const handle of this.#handles) handle.close();
  }

  get closed(): boolean {
    return this.#closed;
  }
}

/** A tap device: the port the engine turns into a TapDevice. */
class LinuxTapPort extends LinuxQueues implements TapPort {
  readonly #mac: Uint8Array;
  readonly capabilities = TAP_CAPABILITIES;

  constructor(addon: RawAddon, mtu: number, mac: Uint8Array) {
    super(addon, 'tap', mtu);
    this.#mac = Uint8Array.from(mac);
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
  const addon = loadAddon(raw.env ?? process.env);
  const port = new LinuxTapPort(addon, options.mtu, options.mac);
  port.open(options.name, queues);
  port.configure({ mac: options.mac, addresses: options.addresses, up: options.up });
  return port;
}

/** Options of {@link openLinuxTunPort}. */
export interface LinuxTunOptions {
  /** Interface name, 1–15 characters of `[A-Za-z0-9_.-]`. Default: the kernel picks `tapkit-tunN`. */
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
  /** Closes the device; idempotent. */
  close(): void;
  readonly closed: boolean;
}

class LinuxTunPortImpl extends LinuxQueues implements LinuxTunPort {
  readonly layer = 3 as const;
}

/** Opens a tun device (layer 3: IP packets). Options are validated here. */
export async function openLinuxTunPort(options: LinuxTunOptions = {}): Promise<LinuxTunPort> {
  const name = options.name === undefined ? undefined : checkInterfaceName(options.name);
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
  port.configure({ addresses, up: options.up ?? true });
  return port;
}
