/**
 * Mock networks: an isolated in-memory LAN — a learning switch with devices and virtual hosts
 * on its ports, fault injection and capture. All state hangs off the network object, so any
 * number of networks (in any number of worker threads) are independent.
 *
 * @module
 */
import {
  checkInterfaceName,
  checkMtu,
  definePortBackend,
  describeValue,
  parseCidr,
  isNameTemplate,
  fromSystemError,
  isTapError,
  TapError,
  TapErrorCode,
  type ResolvedOpenOptions,
  type TapBackend,
  type TapDevice,
  type TapOpenOptions,
} from '@tapkit/core';
import { Capture, type MockCapture, type MockCaptureOptions } from './capture.js';
import { resolveFaults, type MockFaults } from './faults.js';
import { STATION, resolveHostOptions, VirtualHost, type VirtualHostOptions } from './host.js';
import { MOCK_CAPABILITIES, MockPort, changeLink, type LinkChangeRequest } from './port.js';
import { mulberry32, type Random } from './random.js';
import { Link, Switch, type MockNetworkStats, type PortKind } from './switch.js';

/** Options of {@link createMockNetwork}. */
export interface MockNetworkOptions {
  /** Seed of the network's PRNG (faults, host MACs). Default 1: runs are reproducible. */
  seed?: number;
  /** A label for messages and {@link MockNetwork.name}. Default `mock`. */
  name?: string;
  /** A port's write() returns false once this many of its frames wait for the switch. Default 256. */
  txHighWater?: number;
  /** Frames the switch holds for a paused receiver before dropping (`backlogFull`). Default 1000, like a txqueuelen. */
  backlogFrames?: number;
}

/** Open options of the mock backend. */
export interface MockOpenOptions extends TapOpenOptions {
  /** The network to attach to. Package-level `backend`: default a fresh private network. */
  network?: MockNetwork;
}

/** A port on a mock network, as {@link MockNetwork.ports} lists it. */
export interface MockPortInfo {
  readonly name: string;
  /** `station`: a device's OS station (see {@link MockNetwork.open}). */
  readonly kind: PortKind;
  readonly mac: string;
  readonly mtu: number;
  /** A device port's interface is up (hosts and stations: always). */
  readonly up: boolean;
  /** The receiver is paused (its queue is full) and frames wait in its backlog. */
  readonly paused: boolean;
  readonly backlog: number;
}

const DEFAULTS = { seed: 1, txHighWater: 256, backlogFrames: 1000 } as const;

function invalidOption(message: string): TapError {
  return new TapError(TapErrorCode.INVALID_OPTION, message);
}

function positiveInteger(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalidOption(`${name} must be a positive integer, not ${describeValue(value)}`);
  }
  return value;
}

/**
 * An in-memory Ethernet LAN. Devices open on it through {@link MockNetwork.open} (or
 * `backend.open({ network })`); virtual hosts join with {@link MockNetwork.addHost}.
 */
export class MockNetwork implements AsyncDisposable {
  readonly name: string;
  readonly seed: number;
  /** A backend (name `mock`) that opens devices on this network. */
  readonly backend: TapBackend<MockOpenOptions>;

  readonly #switch: Switch;
  /** Host MACs come from their own stream, so adding a host does not shift fault outcomes. */
  readonly #macRandom: Random;
  #closing: Promise<void> | undefined;

  constructor(options: MockNetworkOptions = {}) {
    if (typeof options !== 'object' || options === null)
      throw invalidOption('network options must be an object');
    const seed = options.seed ?? DEFAULTS.seed;
    if (typeof seed !== 'number' || !Number.isFinite(seed))
      throw invalidOption(`seed must be a number, not ${String(seed)}`);
    const name = options.name ?? 'mock';
    if (typeof name !== 'string') throw invalidOption('name must be a string');
    this.name = name;
    this.seed = seed;
    this.#switch = new Switch({
      name,
      random: mulberry32(seed),
      txHighWater: positiveInteger(options.txHighWater, 'txHighWater', DEFAULTS.txHighWater),
      backlogFrames: positiveInteger(options.backlogFrames, 'backlogFrames', DEFAULTS.backlogFrames),
    });
    this.#macRandom = mulberry32(seed ^ 0x5bd1e995);
    this.backend = definePortBackend<MockOpenOptions>({
      name: 'mock',
      limits: MOCK_CAPABILITIES,
      options: ['network'],
      probe: () => Promise.resolve({ available: true }),
      openPort: (resolved, raw) => {
        if (raw.network !== undefined && raw.network !== this) {
          throw invalidOption(`this backend opens on network ${this.name}; use the other network's backend`);
        }
        return Promise.resolve(this.#openPort(resolved));
      },
    });
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#switch.closed;
  }

  /**
   * Opens a device on this network: `network.backend.open(options)`. As on a real backend,
   * `device.mac` is the device's OS station: a station at that MAC joins the network with the
   * device (port `<name>:os`), holds `options.addresses` and answers ARP, neighbour discovery
   * and ping for them; it leaves with the device.
   */
  open(options?: MockOpenOptions): Promise<TapDevice> {
    return this.backend.open(options);
  }

  #openPort(options: ResolvedOpenOptions): MockPort {
    this.#checkOpen();
    const name = this.#claimName(options.name, 'mock');
    // Batches of at most half the receive queue: see Switch.#hand.
    const chunk = Math.max(1, options.rxQueueFrames - (options.rxQueueFrames >> 1));
    const link = new Link(name, 'device', Uint8Array.from(options.mac), options.mtu, chunk, undefined);
    link.up = options.up;
    link.addresses = options.addresses.map((a) => a.cidr);
    this.#switch.attach(link);
    // The device's OS station, as on a real backend: at device.mac, holding the device's
    // addresses, answering ARP, neighbour discovery and ping on the network.
    const addresses = (family: 4 | 6) =>
      options.addresses.filter((a) => a.family === family).map((a) => Uint8Array.from(a.address));
    link.station = new VirtualHost(
      this.#switch,
      `${name}:os`,
      Uint8Array.from(options.mac),
      { ...STATION, ipv4: addresses(4), ipv6: addresses(6), mtu: options.mtu },
      'station',
    );
    return new MockPort(this.#switch, link);
  }

  /** Adds a virtual host on a new switch port. Throws INVALID_OPTION / NAME_IN_USE / MTU_UNSUPPORTED. */
  addHost(options: VirtualHostOptions = {}): VirtualHost {
    const resolved = resolveHostOptions(options);
    this.#checkOpen();
    const name = this.#claimName(resolved.name, 'host');
    return new VirtualHost(this.#switch, name, resolved.mac ?? this.#hostMac(), resolved);
  }

  /**
   * A requested name if free; for a template (`app%d`) or none, the lowest free `app0`,
   * `app1`… (`<prefix>N` without a name), as the kernel numbers tap0, tap1….
   */
  #claimName(requested: string | undefined, prefix: string): string {
    const links = this.#switch.links;
    if (requested !== undefined && isNameTemplate(requested)) {
      for (let i = 0; ; i++) {
        const name = requested.replace('%d', String(i));
        if (name.length > 15) {
          throw new TapError(
            TapErrorCode.NAME_IN_USE,
            `no free name for ${requested} on network ${this.name}`,
          );
        }
        if (!links.has(name)) return name;
      }
    }
    if (requested !== undefined) {
      if (links.has(requested)) {
        throw new TapError(
          TapErrorCode.NAME_IN_USE,
          `a port named ${requested} exists already on network ${this.name}`,
        );
      }
      return requested;
    }
    for (let i = 0; ; i++) if (!links.has(`${prefix}${i}`)) return `${prefix}${i}`;
  }

  /** A locally administered unicast MAC from the seeded stream, unique on this network. */
  #hostMac(): Uint8Array {
    const taken = new Set([...this.#switch.links.values()].map((l) => l.mac.join()));
    for (;;) {
      const mac = Uint8Array.from({ length: 6 }, () => Math.floor(this.#macRandom() * 256));
      mac[0] = (mac[0]! & 0xfc) | 0x02;
      if (!taken.has(mac.join())) return mac;
    }
  }

  #checkOpen(): void {
    if (this.closed) throw new TapError(TapErrorCode.CLOSED, `mock network ${this.name} is closed`);
  }

  #link(portName: string): Link {
    const link = typeof portName === 'string' ? this.#switch.links.get(portName) : undefined;
    if (link === undefined) {
      throw new TapError(
        TapErrorCode.INVALID_ARGUMENT,
        `no port named ${String(portName)} on network ${this.name}`,
      );
    }
    return link;
  }

  /**
   * Sets the faults applied to frames on their way out to `portName`, or (without a name) the
   * default for every port that has no faults of its own. `null` removes them: a port then
   * follows the default again. Faults draw from the network's seeded PRNG.
   */
  setFaults(faults: MockFaults | null, portName?: string): void {
    const resolved = faults === null ? undefined : resolveFaults(faults);
    this.#switch.setFaults(resolved, portName === undefined ? undefined : this.#link(portName));
  }

  /**
   * Pulls a port off the network, as if its interface were deleted: a device fails its pending
   * reads with ERR_TAP_DEVICE_GONE and closes; a host is detached.
   */
  disconnect(portName: string): void {
    const link = this.#link(portName);
    this.#switch.remove(
      link,
      new TapError(
        TapErrorCode.DEVICE_GONE,
        `mock port ${link.name} was disconnected from network ${this.name}`,
      ),
    );
  }

  /**
   * Makes the port's next write (or writeBatch, or host send) throw `error` — by default an
   * ERR_TAP_SYSTEM error as for EIO. Later writes work again.
   */
  failNextWrite(portName: string, error?: TapError | Error): void {
    const link = this.#link(portName);
    const what = `write to mock port ${link.name}`;
    link.failNext =
      error === undefined
        ? new TapError(TapErrorCode.SYSTEM, `${what} failed (injected): input/output error`, {
            osCode: 'EIO',
            errno: 5,
            syscall: 'write',
          })
        : isTapError(error)
          ? error
          : fromSystemError(error, what);
  }

  // ---- Admin verbs: what `ip link` / `ip addr` do to a device's interface. The device follows,
  // with a `link` event, as a real one follows its OS interface.

  /** Sets a device port's MTU (`ip link set dev X mtu N`). */
  setMtu(portName: string, mtu: number): void {
    this.#admin(portName, { mtu: checkMtu(mtu, MOCK_CAPABILITIES) });
  }

  /** Renames a device port (`ip link set dev X name Y`). Throws NAME_IN_USE for a taken name. */
  rename(portName: string, name: string): void {
    this.#admin(portName, { name: checkInterfaceName(name) });
  }

  /** Brings a device port's interface up or down: down, it neither takes nor sends frames. */
  setUp(portName: string, up: boolean): void {
    if (typeof up !== 'boolean') throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'up must be a boolean');
    this.#admin(portName, { up });
  }

  /** Adds an address to a device port's interface (its OS station answers for it). */
  addAddress(portName: string, cidr: string): void {
    this.#admin(portName, { add: parseCidr(cidr) });
  }

  /** Removes an address from a device port's interface. */
  removeAddress(portName: string, cidr: string): void {
    this.#admin(portName, { remove: parseCidr(cidr) });
  }

  #admin(portName: string, change: LinkChangeRequest): void {
    this.#checkOpen();
    const link = this.#link(portName);
    if (link.kind !== 'device') {
      throw new TapError(
        TapErrorCode.INVALID_ARGUMENT,
        `${portName} is a ${link.kind} port: only a device's interface can be changed`,
      );
    }
    changeLink(this.#switch, link, change);
  }

  /** Starts a pcap capture of frames entering the switch, or of frames from and to one port. */
  capture(options: MockCaptureOptions = {}): MockCapture {
    this.#checkOpen();
    if (typeof options !== 'object' || options === null) {
      throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'capture options must be an object');
    }
    const link = options.port === undefined ? undefined : this.#link(options.port);
    const capture = new Capture(this.#switch, link, options);
    this.#switch.addTap(capture);
    return capture;
  }

  /** The ports on the switch, in the order they joined. */
  ports(): MockPortInfo[] {
    return [...this.#switch.links.values()].map((l) => ({
      name: l.name,
      kind: l.kind,
      mac: [...l.mac].map((b) => b.toString(16).padStart(2, '0')).join(':'),
      mtu: l.mtu,
      up: l.up,
      paused: l.paused,
      backlog: l.backlog.length,
    }));
  }

  /** The switch's forwarding database: which port each learned MAC is behind. */
  fdb(): { mac: string; port: string }[] {
    return this.#switch.fdb();
  }

  stats(): MockNetworkStats {
    return this.#switch.stats();
  }

  /**
   * Closes the network: every device sees ERR_TAP_DEVICE_GONE and closes, hosts are detached,
   * timers are cleared, captures are closed. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const captures = [...this.#switch.taps];
    this.#switch.close(new TapError(TapErrorCode.DEVICE_GONE, `mock network ${this.name} was closed`));
    this.#closing = Promise.all(captures.map((c) => c.close())).then(() => undefined);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Creates an isolated mock network. */
export function createMockNetwork(options?: MockNetworkOptions): MockNetwork {
  return new MockNetwork(options);
}
