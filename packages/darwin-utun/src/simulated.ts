/**
 * A simulated utun system: the kernel side of utun in memory, speaking the real wire format
 * (4-byte big-endian family header, Darwin's AF values) and delivering batches the way the
 * native addon does (a slab, datagram boundaries, a gap before each datagram). It runs
 * darwin-utun on any platform, without privileges: for tests, CI and simulations.
 *
 * Its routing socket (`watchRoutes`) sends what xnu sends when an interface changes — RTM_IFINFO
 * after an MTU or flags change, RTM_NEWADDR / RTM_DELADDR — as bytes in xnu's layout, a batch per
 * event-loop turn; so a test that calls `setMtu()` on the system acts as `ifconfig` would.
 *
 * It is stricter than the kernel: a datagram written with the wrong family header is counted
 * in `rejected` and dropped (the kernel would go by the IP version), so framing bugs show.
 *
 * @example
 * ```ts
 * const system = createSimulatedUtunSystem();
 * const dev = await darwinUtun.open({ system, addresses: ['10.9.0.1/24'] });
 * try {
 *   const utun = system.interface(dev.name)!;
 *   utun.onPacket = (packet) => { … };   // what the program sends to the "OS"
 *   utun.send(ipPacket);                  // the "OS" sends to the program
 * } finally {
 *   await dev.close(); // or `await using dev = …` where that runs (TypeScript, Node.js ≥ 24)
 * }
 * ```
 * @module
 */
import {
  encodeDarwinAddressMessage,
  encodeDarwinIfInfo,
  SimulatedRouteWatcher,
  type DarwinRouteWatcher,
  type DarwinRouteWatcherOptions,
} from '@tapkit/core';
import {
  UTUN_AF_INET,
  UTUN_AF_INET6,
  UTUN_DATAGRAM_GAP,
  frameUtunDatagram,
  parseUtunDatagram,
  type UtunHandle,
  type UtunHandleOptions,
  type UtunSystem,
  type UtunSystemError,
} from './utun-system.js';

/** Options of {@link createSimulatedUtunSystem}. */
export interface SimulatedUtunOptions {
  /** The first unit the kernel picks when none is asked for. Default 0. */
  readonly firstUnit?: number;
  /** Datagrams held for a reader that does not read; more are dropped. Default 512. */
  readonly maxPending?: number;
}

/** One simulated utun, seen from the kernel's side. */
export interface SimulatedUtun {
  readonly name: string;
  readonly unit: number;
  /** if_index. */
  readonly index: number;
  readonly mtu: number;
  readonly up: boolean;
  /** The addresses configured, as `address/prefix`. */
  readonly addresses: readonly string[];
  readonly closed: boolean;
  /** Packets the program wrote that the kernel took. */
  readonly received: number;
  /** Datagrams the program wrote with a family header that does not fit the packet. */
  readonly rejected: number;
  /** Datagrams dropped because the program was not reading and the queue was full. */
  readonly overflowed: number;
  /** Called with every packet the program writes (family header checked and removed). */
  onPacket: ((packet: Uint8Array) => void) | undefined;
  /** The OS sends an IP packet out of the interface: the program reads it. */
  send(packet: Uint8Array): void;
  /** The OS sends a datagram exactly as given (family header included): for framing tests. */
  sendDatagram(datagram: Uint8Array): void;
  /** Holds the program's writes back, as a full socket buffer would, until `releaseWrites()`. */
  stallWrites(): void;
  /** Takes the held writes and tells the program it can write again. */
  releaseWrites(): void;
  /** Makes the next write fail with this errno name (`ENOBUFS`, `ENXIO`…). */
  failNextWrite(code: string): void;
  /** Makes reading fail with this errno name (default `ENXIO`): the device goes away. */
  failReads(code?: string): void;
}

/** A simulated system: a {@link UtunSystem} plus the kernel-side controls. */
export interface SimulatedUtunSystem extends UtunSystem {
  /** An open utun by name. */
  interface(name: string): SimulatedUtun | undefined;
  /** The open utuns. */
  interfaces(): SimulatedUtun[];
  /** Joins two utuns like a wire: a packet the program writes on one, it reads on the other. */
  link(a: string, b: string): void;
  /** Makes the next call of `operation` fail with this errno name. */
  failNext(operation: 'openUtun' | 'setMtu' | 'setUp' | 'addAddress' | 'removeAddress', code: string): void;
  removeAddress(name: string, family: 4 | 6, address: Uint8Array, prefixLength: number): void;
  watchRoutes(options: DarwinRouteWatcherOptions): DarwinRouteWatcher;
  interfaceIndex(name: string): number;
  interfaceName(index: number): string | undefined;
  /** The routing sockets lose their messages and read ENOBUFS. */
  overflowRoutes(): void;
  /** Every routing socket reads these bytes (for malformed-message tests). */
  injectRouteBytes(bytes: Uint8Array): void;
}

// Darwin's errno values for the names the simulation raises.
const ERRNO: Readonly<Record<string, number>> = {
  EPERM: 1,
  ENOENT: 2,
  ENXIO: 6,
  EBADF: 9,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  EPIPE: 32,
  ENOTSUP: 45,
  EADDRNOTAVAIL: 49,
  ENOBUFS: 55,
  ENOTCONN: 57,
};

function systemError(code: string, syscall: string, path?: string, request?: string): UtunSystemError {
  const error = new Error(
    `${code}: simulated failure, ${syscall}${request ? ` ${request}` : ''}${path ? ` '${path}'` : ''}`,
  ) as Error & Record<string, unknown>;
  error['code'] = code;
  error['errno'] = -(ERRNO[code] ?? 5);
  error['syscall'] = syscall;
  if (path !== undefined) error['path'] = path;
  if (request !== undefined) error['request'] = request;
  return error as unknown as UtunSystemError;
}

function formatAddress(family: 4 | 6, address: Uint8Array): string {
  if (family === 4) return address.join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((address[i]! << 8) | address[i + 1]!).toString(16));
  return words.join(':');
}

/** Creates an empty simulated system. Each one is independent: no state is shared. */
export function createSimulatedUtunSystem(options: SimulatedUtunOptions = {}): SimulatedUtunSystem {
  return new SimulatedSystem(options.firstUnit ?? 0, options.maxPending ?? 512);
}

class SimulatedSystem implements SimulatedUtunSystem {
  readonly osInterface = false;
  readonly #units = new Map<number, SimulatedHandle>();
  readonly #failures = new Map<string, string>();
  readonly #firstUnit: number;
  readonly #maxPending: number;
  readonly #routeWatchers = new Set<SimulatedRouteWatcher>();
  #nextIndex = 20; // lo0, en0… come first on a Mac

  constructor(firstUnit: number, maxPending: number) {
    this.#firstUnit = firstUnit;
    this.#maxPending = maxPending;
  }

  #fail(operation: string, syscall: string, path?: string, request?: string): void {
    const code = this.#failures.get(operation);
    if (code === undefined) return;
    this.#failures.delete(operation);
    throw systemError(code, syscall, path, request);
  }

  #byName(name: string, request: string): SimulatedHandle {
    const match = /^utun(\d+)$/.exec(name);
    const handle = match ? this.#units.get(Number(match[1])) : undefined;
    if (handle === undefined) throw systemError('ENXIO', 'ioctl', name, request);
    return handle;
  }

  failNext(operation: 'openUtun' | 'setMtu' | 'setUp' | 'addAddress' | 'removeAddress', code: string): void {
    this.#failures.set(operation, code);
  }

  openUtun(options: UtunHandleOptions): UtunHandle {
    this.#fail('openUtun', 'connect');
    let unit = options.unit;
    if (unit === undefined) {
      unit = this.#firstUnit;
      while (this.#units.has(unit)) unit++;
    } else if (this.#units.has(unit)) {
      throw systemError('EBUSY', 'connect', `utun${unit}`);
    }
    const handle = new SimulatedHandle(unit, this.#nextIndex++, options, this.#maxPending, () =>
      this.#units.delete(unit),
    );
    this.#units.set(unit, handle);
    return handle;
  }

  setMtu(name: string, mtu: number): void {
    this.#fail('setMtu', 'ioctl', name, 'SIOCSIFMTU');
    const handle = this.#byName(name, 'SIOCSIFMTU');
    handle.mtu = mtu;
    this.#ifInfo(handle);
  }

  setUp(name: string, up: boolean): void {
    this.#fail('setUp', 'ioctl', name, 'SIOCSIFFLAGS');
    const handle = this.#byName(name, 'SIOCSIFFLAGS');
    handle.up = up;
    this.#ifInfo(handle);
  }

  addAddress(name: string, family: 4 | 6, address: Uint8Array, prefixLength: number): void {
    const request = family === 4 ? 'SIOCAIFADDR' : 'SIOCAIFADDR_IN6';
    this.#fail('addAddress', 'ioctl', name, request);
    const handle = this.#byName(name, request);
    handle.addresses.push(`${formatAddress(family, address)}/${prefixLength}`);
    this.#route(
      encodeDarwinAddressMessage({
        index: handle.index,
        deleted: false,
        address: { family, address, prefixLength, cidr: '' },
      }),
    );
  }

  removeAddress(name: string, family: 4 | 6, address: Uint8Array, prefixLength: number): void {
    const request = family === 4 ? 'SIOCDIFADDR' : 'SIOCDIFADDR_IN6';
    this.#fail('removeAddress', 'ioctl', name, request);
    const handle = this.#byName(name, request);
    const text = formatAddress(family, address);
    const at = handle.addresses.findIndex((a) => a.slice(0, a.lastIndexOf('/')) === text);
    if (at < 0) throw systemError('EADDRNOTAVAIL', 'ioctl', name, request);
    const [removed] = handle.addresses.splice(at, 1);
    const kept = Number(removed!.slice(removed!.lastIndexOf('/') + 1));
    this.#route(
      encodeDarwinAddressMessage({
        index: handle.index,
        deleted: true,
        address: { family, address, prefixLength: kept, cidr: '' },
      }),
    );
    void prefixLength; // the kernel finds the address by its bytes
  }

  watchRoutes(options: DarwinRouteWatcherOptions): DarwinRouteWatcher {
    const watcher = new SimulatedRouteWatcher(options, (w) => this.#routeWatchers.delete(w));
    this.#routeWatchers.add(watcher);
    return watcher;
  }

  interfaceIndex(name: string): number {
    return this.interface(name)?.index ?? 0;
  }

  interfaceName(index: number): string | undefined {
    for (const handle of this.#units.values()) if (handle.index === index) return handle.name;
    return undefined;
  }

  overflowRoutes(): void {
    for (const watcher of this.#routeWatchers)
      watcher.fail(systemError('ENOBUFS', 'recv', undefined, 'PF_ROUTE'));
  }

  injectRouteBytes(bytes: Uint8Array): void {
    this.#route(bytes);
  }

  /** rt_ifmsg: RTM_IFINFO with the utun's flags (IFF_POINTOPOINT, IFF_MULTICAST) and MTU. */
  #ifInfo(handle: SimulatedHandle): void {
    const flags = (handle.up ? 0x1 | 0x40 : 0) | 0x10 | 0x8000;
    this.#route(encodeDarwinIfInfo({ index: handle.index, flags, mtu: handle.mtu }));
  }

  #route(bytes: Uint8Array): void {
    for (const watcher of this.#routeWatchers) watcher.queue(bytes);
  }

  interface(name: string): SimulatedUtun | undefined {
    const match = /^utun(\d+)$/.exec(name);
    return match ? this.#units.get(Number(match[1])) : undefined;
  }

  interfaces(): SimulatedUtun[] {
    return [...this.#units.values()];
  }

  link(a: string, b: string): void {
    const first = this.#byName(a, 'link');
    const second = this.#byName(b, 'link');
    first.peer = second;
    second.peer = first;
  }
}

class SimulatedHandle implements UtunHandle, SimulatedUtun {
  readonly name: string;
  readonly unit: number;
  readonly index: number;
  mtu = 1500;
  up = true; // a utun is born up
  readonly addresses: string[] = [];
  closed = false;
  received = 0;
  rejected = 0;
  overflowed = 0;
  onPacket: ((packet: Uint8Array) => void) | undefined;
  peer: SimulatedHandle | undefined;

  readonly #options: UtunHandleOptions;
  readonly #maxPending: number;
  readonly #onClose: () => void;
  // Kernel → program: datagrams waiting to be read.
  #pending: Uint8Array[] = [];
  #reading = false;
  #readError: string | undefined;
  #timer: NodeJS.Immediate | undefined;
  #refed = true;
  // The slab being filled, as the addon does: delivered bytes are never written again.
  #slab: ArrayBuffer | undefined;
  #slabUsed = 0;
  // Program → kernel: held writes while stalled.
  #stalled = false;
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #failWrite: string | undefined;

  constructor(
    unit: number,
    index: number,
    options: UtunHandleOptions,
    maxPending: number,
    onClose: () => void,
  ) {
    this.unit = unit;
    this.index = index;
    this.name = `utun${unit}`;
    this.#options = options;
    this.#maxPending = maxPending;
    this.#onClose = onClose;
  }

  // ---- kernel side ----

  send(packet: Uint8Array): void {
    const family = packet.length > 0 && packet[0]! >> 4 === 6 ? UTUN_AF_INET6 : UTUN_AF_INET;
    this.sendDatagram(frameUtunDatagram(packet, family));
  }

  sendDatagram(datagram: Uint8Array): void {
    if (this.closed) return;
    if (this.#pending.length >= this.#maxPending) {
      this.overflowed++;
      return;
    }
    this.#pending.push(Uint8Array.from(datagram));
    this.#schedule();
  }

  stallWrites(): void {
    this.#stalled = true;
  }

  releaseWrites(): void {
    this.#stalled = false;
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    for (const datagram of held) this.#take(datagram);
    if (held.length > 0 && !this.closed) {
      setImmediate(() => {
        if (!this.closed) this.#options.onDrain();
      });
    }
  }

  failNextWrite(code: string): void {
    this.#failWrite = code;
  }

  failReads(code = 'ENXIO'): void {
    this.#readError = code;
    this.#schedule();
  }

  /** The kernel takes a datagram the program wrote. */
  #take(datagram: Uint8Array): void {
    const packet = parseUtunDatagram(datagram);
    if (packet === undefined) {
      this.rejected++;
      return;
    }
    this.received++;
    this.onPacket?.(packet);
    this.peer?.send(packet);
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.closed || !this.#reading) return;
    if (this.#pending.length === 0 && this.#readError === undefined) return;
    this.#timer = setImmediate(() => {
      this.#timer = undefined;
      this.#deliver();
    });
    if (!this.#refed) this.#timer.unref();
  }

  /** One poll turn: a batch of up to batchPackets datagrams, or the read error. */
  #deliver(): void {
    if (this.closed || !this.#reading) return;
    if (this.#readError !== undefined) {
      this.#reading = false;
      this.#options.onError(systemError(this.#readError, 'read', this.name));
      return;
    }
    const { offsets, batchPackets, datagramReserve, slabBytes } = this.#options;
    let count = 0;
    while (count < batchPackets && this.#pending.length > 0) {
      const datagram = this.#pending[0]!;
      let start = ((this.#slabUsed + 7) & ~7) + UTUN_DATAGRAM_GAP;
      const room = Math.max(datagram.length, datagramReserve);
      if (this.#slab === undefined || start + room > this.#slab.byteLength) {
        if (count > 0) break; // a batch lives in one slab: deliver, then take a fresh one
        this.#slab = new ArrayBuffer(Math.max(slabBytes, UTUN_DATAGRAM_GAP + room + 8));
        start = UTUN_DATAGRAM_GAP;
      }
      new Uint8Array(this.#slab, start, datagram.length).set(datagram);
      offsets[2 * count] = start;
      offsets[2 * count + 1] = start + datagram.length;
      this.#slabUsed = start + datagram.length;
      this.#pending.shift();
      count++;
    }
    if (count > 0) this.#options.onRead(this.#slab!, count);
    this.#schedule();
  }

  // ---- the program's side: UtunHandle ----

  write(family: number, packet: Uint8Array): number {
    if (this.closed) throw systemError('EBADF', 'write', this.name);
    const failure = this.#failWrite;
    if (failure !== undefined) {
      this.#failWrite = undefined;
      throw systemError(failure, 'write', this.name);
    }
    const datagram = frameUtunDatagram(packet, family);
    if (this.#stalled) {
      this.#held.push(datagram);
      this.#heldBytes += datagram.length;
      return this.#heldBytes;
    }
    this.#take(datagram);
    return 0;
  }

  writeBatch(packets: readonly Uint8Array[], families: Uint8Array): number {
    let queued = 0;
    for (let i = 0; i < packets.length; i++) {
      try {
        queued = this.write(families[i]!, packets[i]!);
      } catch (error) {
        (error as Record<string, unknown>)['index'] = i;
        throw error;
      }
    }
    return queued;
  }

  resume(): void {
    if (this.closed) return;
    this.#reading = true;
    this.#schedule();
  }

  pause(): void {
    this.#reading = false;
    if (this.#timer !== undefined) clearImmediate(this.#timer);
    this.#timer = undefined;
  }

  ref(): void {
    this.#refed = true;
    this.#timer?.ref();
  }

  unref(): void {
    this.#refed = false;
    this.#timer?.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pause();
    this.#pending = [];
    this.#held = [];
    this.#slab = undefined;
    if (this.peer !== undefined) this.peer.peer = undefined;
    this.peer = undefined;
    this.#onClose();
  }
}
