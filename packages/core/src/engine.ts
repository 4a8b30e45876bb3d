/**
 * The shared device engine: turns any backend's {@link TapPort} into a {@link TapDevice}.
 * Everything users can see — queueing, drops, backpressure, iteration, events, stats, close
 * semantics, abort — is written here once.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { TapError, TapErrorCode, fromSystemError, isTapError, systemErrorFields } from './errors.js';
import { EtherType } from './codec/ethernet.js';
import { checkMtu, parseCidr } from './options.js';
import type {
  AddAddressOptions,
  CloseOptions,
  InterfaceAddress,
  LinkChange,
  LinkState,
  Frame,
  ReceivedFrame,
  PipeCounts,
  PipeOptions,
  PortPipe,
  PortSink,
  ReadOptions,
  TapCapabilities,
  TapDevice,
  TapDeviceEvents,
  TapPort,
  TapStats,
} from './types.js';
import { VNET_HEADER_LENGTH } from './types.js';

/** How the engine is set up for one device. */
export interface EngineOptions {
  /** The backend's name, reported as {@link TapDevice.backend}. */
  readonly backend: string;
  /** Receive queue bound in frames. Default 1024. */
  readonly rxQueueFrames?: number;
  /** The up flag and addresses the open asked for: the device's state where the port does not say. */
  readonly up?: boolean;
  readonly addresses?: readonly string[];
}

const ETHERNET_HEADER = 14;
/** How long close() waits for accepted frames to be sent, by default (ms). */
const DEFAULT_FLUSH_TIMEOUT = 2000;
// How far past the queue bound a pausable port's batches are still kept: native ports read up
// to 64 frames a call, so a small rxQueueFrames does not turn one burst into drops.
const IN_FLIGHT_FRAMES = 256;
const VLAN_TAG = 4;
/** Room for the frames write() gathers in one JS turn (see write()); a longer frame goes alone. */
const GATHER_BYTES = 64 * 1024;

interface Waiter {
  /** How many frames this reader takes: 1 for read(), up to max for readBatch(). */
  readonly max: number;
  readonly resolve: (frames: ReceivedFrame[]) => void;
  readonly reject: (error: TapError) => void;
  readonly cleanup: () => void;
}

/** Codes of a write refused for the frame itself: see #refused. */
const CALLER_ERRORS: ReadonlySet<string> = new Set([
  TapErrorCode.INVALID_ARGUMENT,
  TapErrorCode.FRAME_TOO_LARGE,
  TapErrorCode.FRAME_TOO_SHORT,
]);

/** Why the port is paused: the receive queue is full, or the pipe's destination is. */
type PauseReason = 'queue' | 'pipe';

/** A pipe from one device to another: see pipeTo(). */
interface Pipe {
  readonly source: EngineDevice;
  readonly destination: TapDevice;
  /** The destination when it is an engine device too: it ends the pipe, and counts native pipes. */
  readonly engine: EngineDevice | undefined;
  /** Hands a batch to the destination, never throwing; false: wait for its `drain`. */
  readonly send: (frames: Frame[]) => boolean;
  /** Set while the source's port forwards in native code. */
  native: PortPipe | undefined;
  waitingForDrain: boolean;
  readonly onDrain: () => void;
  /** Removes the pipe's other listeners and settles pipeTo(): resolved for CLOSED, else rejected. */
  readonly settle: (error: TapError) => void;
}

/**
 * The error of an operation its signal aborted: `cause` is the signal's reason (as Node's own
 * APIs keep it), so a `TimeoutError` from `AbortSignal.timeout()` can be told from a user abort.
 */
export function abortError(what: string, signal: AbortSignal): TapError {
  const reason: unknown = signal.reason;
  const name = reason instanceof Error ? ` (${reason.name})` : '';
  return new TapError(TapErrorCode.ABORTED, `${what} was aborted${name}`, { cause: reason });
}

/**
 * The frames a native pipe's source received: those handed to the destination and those it
 * refused (counted as received on the JS path too). Bytes are known for the first only.
 */
function receivedFrames(counts: PipeCounts): number {
  return counts.frames + counts.refused;
}

/** Whether `value` has what pipeTo() uses of a destination. */
function isDevice(value: unknown): value is TapDevice {
  if (typeof value !== 'object' || value === null) return false;
  const device = value as Record<string, unknown>;
  return ['write', 'writeBatch', 'on', 'off'].every((method) => typeof device[method] === 'function');
}

/** A plain frame as an offload-mode one: behind a zero virtio-net header (checksums complete, no GSO). */
function withZeroVnetHeader(frame: Frame): Frame {
  const out = new Uint8Array(VNET_HEADER_LENGTH + frame.length);
  out.set(frame, VNET_HEADER_LENGTH);
  return out;
}

/**
 * How many frames of a batch the port sent before the one it threw for: a native error's
 * `index` (frames before it were sent), 0 when the error does not say.
 */
function sentBefore(error: unknown): number {
  const index = systemErrorFields(isTapError(error) ? error.cause : error).index;
  return typeof index === 'number' && index > 0 ? index : 0;
}

/** A port without writeBatch() takes a batch frame by frame. */
function writeEach(port: TapPort, frames: readonly Frame[]): boolean {
  let accepted = true;
  for (const frame of frames) accepted = port.write(frame) && accepted;
  return accepted;
}

// Array.isArray as a plain boolean: its type guard would turn `readonly Frame[]` into any[].
const isArray: (value: unknown) => boolean = Array.isArray;

/**
 * Checks a frame against the device's limits (`maxFrameLength` when the port sets one); throws
 * the TapError the contract names.
 */
function checkFrame(
  frame: unknown,
  mtu: number,
  maxFrameLength: number | undefined,
  minFrameLength = ETHERNET_HEADER,
): asserts frame is Frame {
  if (!(frame instanceof Uint8Array)) {
    throw new TapError(
      TapErrorCode.INVALID_ARGUMENT,
      `a frame must be a Uint8Array or Buffer, not ${typeof frame}`,
    );
  }
  const length = frame.length;
  if (length < minFrameLength) {
    throw new TapError(
      TapErrorCode.FRAME_TOO_SHORT,
      minFrameLength === ETHERNET_HEADER
        ? `frame of ${length} bytes is shorter than an Ethernet header (14 bytes)`
        : `frame of ${length} bytes is shorter than the device's minimum of ${minFrameLength} bytes`,
    );
  }
  let limit = maxFrameLength;
  if (limit === undefined) {
    const etherType = (frame[12]! << 8) | frame[13]!;
    const tagged = etherType === EtherType.VLAN || etherType === EtherType.QinQ;
    limit = mtu + ETHERNET_HEADER + (tagged ? VLAN_TAG : 0);
  }
  if (length > limit) {
    throw new TapError(
      TapErrorCode.FRAME_TOO_LARGE,
      maxFrameLength === undefined
        ? `frame of ${length} bytes exceeds the device's limit of ${limit} bytes (MTU ${mtu} + ${limit - mtu} header)`
        : `frame of ${length} bytes exceeds the device's limit of ${limit} bytes`,
    );
  }
}

class EngineDevice extends EventEmitter implements TapDevice, PortSink {
  readonly backend: string;
  readonly capabilities: TapCapabilities;
  readonly #mac: Uint8Array;
  readonly #port: TapPort;
  /** The interface as last reported (see link()): writes are checked against its MTU. */
  #name: string;
  #mtu: number;
  #up: boolean;
  #addresses: readonly string[];
  #maxFrameLength: number | undefined;
  readonly #minFrameLength: number | undefined;

  // Receive queue: frames from #head on are unread. Bounded by #capacity, see receive().
  #queue: ReceivedFrame[] = [];
  #head = 0;
  readonly #capacity: number;
  readonly #pausedBy = new Set<PauseReason>();
  readonly #waiters: Waiter[] = [];

  /** The pipe from this device while pipeTo() runs: received frames go to it, not the queue. */
  #pipe: Pipe | undefined;
  /** Pipes into this device from other engine devices: they end with it. */
  readonly #inbound = new Set<Pipe>();

  /**
   * write()'s frames of the current JS turn: copies (the caller may reuse its buffer) one after
   * another in #gather, frame i at (#spans[2i], length #spans[2i + 1]), sent to the port as one
   * batch when the turn ends (see write()). Both are made at the first write() and reused: ports
   * copy what they keep of a frame.
   */
  #gather: Uint8Array | undefined;
  #spans: Uint32Array | undefined;
  #gathered = 0;
  #gatheredBytes = 0;
  #writeBlocked = false;
  /** What the port reported not sent (notSent) during the write in progress; undefined outside one. */
  #notSent: { frames: number; bytes: number } | undefined;
  #drainWaiters: { resolve: () => void; reject: (e: TapError) => void }[] = [];

  #rxFrames = 0;
  #rxBytes = 0;
  #txFrames = 0;
  #txBytes = 0;
  readonly #drops = new Map<string, number>();

  /** Set when the device is closed (by the user) or gone (by the OS); reads then fail with it. */
  #endError: TapError | undefined;
  #closePromise: Promise<void> | undefined;

  constructor(port: TapPort, options: EngineOptions) {
    super();
    this.#port = port;
    this.#name = port.name;
    this.backend = options.backend;
    this.#mtu = port.mtu;
    this.#up = port.up ?? options.up ?? true;
    this.#addresses = [...(port.addresses ?? options.addresses ?? [])];
    this.#maxFrameLength = port.maxFrameLength;
    this.#minFrameLength = port.minFrameLength;
    this.#mac = Uint8Array.from(port.mac);
    this.capabilities = Object.freeze({ ...port.capabilities });
    this.#capacity = options.rxQueueFrames ?? 1024;
    // A 'frame' listener switches the device to flowing mode: hand it what is queued.
    this.on('newListener', (event: string) => {
      if (event === 'frame' && this.#queued > 0) queueMicrotask(() => this.#flushToListeners());
    });
  }

  get mac(): Uint8Array {
    return Uint8Array.from(this.#mac);
  }

  get name(): string {
    return this.#name;
  }

  get mtu(): number {
    return this.#mtu;
  }

  get up(): boolean {
    return this.#up;
  }

  get addresses(): readonly string[] {
    return [...this.#addresses];
  }

  get closed(): boolean {
    return this.#endError !== undefined;
  }

  // ---- PortSink: called by the port ----

  receive(frames: ReceivedFrame[]): void {
    if (this.#endError) return;
    const pipe = this.#pipe;
    if (pipe) {
      for (const frame of frames) this.#countRx(frame);
      this.#forward(pipe, frames);
      return;
    }
    if (this.listenerCount('frame') > 0) {
      for (let k = 0; k < frames.length; k++) {
        if (this.#endError) return; // a listener closed the device
        // A listener removed the last listener (paused, as for backpressure) or started a pipe:
        // the rest of the batch goes where frames go now (readers, the queue, the pipe).
        if (this.listenerCount('frame') === 0 || this.#pipe) return this.receive(frames.slice(k));
        const frame = frames[k]!;
        this.#countRx(frame);
        this.emit('frame', frame);
      }
      return;
    }
    let i = 0;
    const n = frames.length;
    // Readers waiting now are served straight from the batch.
    while (i < n && this.#waiters.length > 0) {
      const waiter = this.#waiters.shift()!;
      waiter.cleanup();
      const take = Math.min(waiter.max, n - i);
      const served = take === n && i === 0 ? frames : frames.slice(i, i + take);
      for (const frame of served) this.#countRx(frame);
      i += take;
      waiter.resolve(served);
    }
    // A port that can pause has already read the batch from the OS: keep it (up to a batch in
    // flight past the bound) and pause. A port that cannot pause loses what does not fit.
    const limit = this.#port.pause
      ? this.#capacity + Math.max(this.#capacity, IN_FLIGHT_FRAMES)
      : this.#capacity;
    const room = limit - this.#queued;
    const keep = Math.min(n - i, Math.max(room, 0));
    for (let k = 0; k < keep; k++) {
      const frame = frames[i + k]!;
      this.#countRx(frame);
      this.#queue.push(frame);
    }
    if (keep < n - i) this.#drop('rxQueueFull', n - i - keep);
    if (this.#queued >= this.#capacity) this.#pause('queue');
  }

  /** Pauses the port (if it can pause) for `reason`; it resumes once no reason is left. */
  #pause(reason: PauseReason): void {
    if (this.#pausedBy.size === 0) this.#port.pause?.();
    this.#pausedBy.add(reason);
  }

  #resume(reason: PauseReason): void {
    // Called for every frame taken from the queue: most of the time nothing is paused.
    if (this.#pausedBy.size === 0) return;
    if (!this.#pausedBy.delete(reason) || this.#pausedBy.size > 0 || this.#endError) return;
    this.#port.resume?.();
  }

  writable(): void {
    if (!this.#writeBlocked) return;
    this.#writeBlocked = false;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w.resolve();
    this.emit('drain');
  }

  dropped(reason: string, count = 1): void {
    this.#drop(reason, count);
  }

  notSent(reason: string, frames: number, bytes: number): void {
    this.#drop(reason, frames);
    if (this.#notSent) {
      this.#notSent.frames += frames;
      this.#notSent.bytes += bytes;
    }
  }

  gone(error: TapError): void {
    if (this.#endError) return;
    this.#end(error);
    // Released on a later microtask: gone() runs inside the port's own callback, and a close()
    // that throws there must not become an uncaught exception.
    this.#closePromise = Promise.resolve()
      .then(() => this.#port.close())
      .then(
        () => this.#emitEnd(error),
        () => this.#emitEnd(error),
      );
  }

  error(error: TapError): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  link(state: Partial<LinkState>): void {
    if (this.#endError) return;
    const change: { -readonly [K in keyof LinkChange]: LinkChange[K] } = {};
    if (state.name !== undefined && state.name !== this.#name) {
      change.name = { from: this.#name, to: state.name };
      this.#name = state.name;
    }
    if (state.mtu !== undefined && state.mtu !== this.#mtu) {
      change.mtu = { from: this.#mtu, to: state.mtu };
      this.#mtu = state.mtu;
      this.#maxFrameLength = this.#port.maxFrameLength; // a port's own limit may follow the MTU
    }
    if (state.up !== undefined && state.up !== this.#up) {
      change.up = { from: this.#up, to: state.up };
      this.#up = state.up;
    }
    if (state.addresses !== undefined) {
      const now = new Set(state.addresses);
      const before = new Set(this.#addresses);
      const added = [...now].filter((a) => !before.has(a));
      const removed = this.#addresses.filter((a) => !now.has(a));
      if (added.length > 0 || removed.length > 0) {
        change.addresses = { added, removed };
        this.#addresses = [...now];
      }
    }
    if (Object.keys(change).length > 0) this.emit('link', change);
  }

  // ---- Changing the interface ----

  setMtu(mtu: number): Promise<void> {
    return this.#change('setMtu', () => {
      const checked = checkMtu(mtu, this.capabilities);
      return [() => this.#port.setMtu?.(checked), () => ({ mtu: checked })];
    });
  }

  setUp(up: boolean): Promise<void> {
    return this.#change('setUp', () => {
      if (typeof up !== 'boolean') {
        throw new TapError(TapErrorCode.INVALID_ARGUMENT, `setUp() takes a boolean, not ${typeof up}`);
      }
      return [() => this.#port.setUp?.(up), () => ({ up })];
    });
  }

  addAddress(cidr: string, options?: AddAddressOptions): Promise<void> {
    return this.#change('addAddress', () => {
      const address = parseCidr(cidr);
      const dad = options?.dad ?? false;
      if (typeof dad !== 'boolean') {
        throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'addAddress(): options.dad must be a boolean');
      }
      return [
        () => this.#port.addAddress?.(address, { dad }),
        () => ({ addresses: [...new Set([...this.#addresses, address.cidr])] }),
      ];
    });
  }

  removeAddress(cidr: string): Promise<void> {
    return this.#change('removeAddress', () => {
      const address: InterfaceAddress = parseCidr(cidr);
      return [
        () => this.#port.removeAddress?.(address),
        () => ({ addresses: this.#addresses.filter((a) => a !== address.cidr) }),
      ];
    });
  }

  /**
   * Runs a setter: `prepare` validates the arguments and returns the port call and the state it
   * leads to, recorded (with its `link` event) once the port is done — from the state then, which
   * a port that follows its interface may have updated meanwhile. Every failure is a rejection.
   */
  async #change(
    what: 'setMtu' | 'setUp' | 'addAddress' | 'removeAddress',
    prepare: () => [() => Promise<void> | void, () => Partial<LinkState>],
  ): Promise<void> {
    const [call, after] = prepare();
    if (this.#endError) throw this.#endError;
    if (this.#port[what] === undefined) {
      throw new TapError(
        TapErrorCode.UNSUPPORTED_OPERATION,
        `the ${this.backend} backend cannot ${what}() on an open device`,
        { backend: this.backend },
      );
    }
    await call();
    this.link(after());
  }

  // ---- Reading ----

  read(options?: ReadOptions): Promise<ReceivedFrame> {
    // A frame already queued costs one promise: the per-frame loops of the README run here.
    if (this.#queued > 0 && !options?.signal?.aborted) return Promise.resolve(this.#dequeueOne());
    return this.#take(1, options, 'read()').then((frames) => frames[0]!);
  }

  readBatch(max = Number.MAX_SAFE_INTEGER, options?: ReadOptions): Promise<ReceivedFrame[]> {
    if (!Number.isInteger(max) || max < 1) {
      return Promise.reject(
        new TapError(
          TapErrorCode.INVALID_ARGUMENT,
          `readBatch(max): max must be a positive integer, not ${max}`,
        ),
      );
    }
    return this.#take(max, options, 'readBatch()');
  }

  #take(max: number, options: ReadOptions | undefined, what: string): Promise<ReceivedFrame[]> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(abortError(what, signal));
    if (this.#queued > 0) return Promise.resolve(this.#dequeue(max));
    if (this.#endError) return Promise.reject(this.#endError);
    return new Promise<ReceivedFrame[]>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const waiter: Waiter = {
        max,
        resolve,
        reject,
        cleanup: () => {
          if (onAbort) signal!.removeEventListener('abort', onAbort);
        },
      };
      if (signal) {
        onAbort = () => {
          const at = this.#waiters.indexOf(waiter);
          if (at >= 0) this.#waiters.splice(at, 1);
          reject(abortError(what, signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.#waiters.push(waiter);
    });
  }

  get #queued(): number {
    return this.#queue.length - this.#head;
  }

  #dequeue(max: number): ReceivedFrame[] {
    const take = Math.min(max, this.#queued);
    const out = this.#queue.slice(this.#head, this.#head + take);
    // Let them go, as #dequeueOne() does: a slot left set keeps its frame, and the native slab it
    // views, alive until the array is replaced (see RECEIVE_SLAB_BYTES for why that matters).
    this.#queue.fill(undefined!, this.#head, this.#head + take);
    this.#advance(take);
    return out;
  }

  /** {@link #dequeue} of one frame, without the array. */
  #dequeueOne(): ReceivedFrame {
    const frame = this.#queue[this.#head]!;
    this.#queue[this.#head] = undefined!; // let it go: the queue array may live on a while
    this.#advance(1);
    return frame;
  }

  #advance(taken: number): void {
    this.#head += taken;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head); // reclaim the read part now and then
      this.#head = 0;
    }
    // Resume the port once half the bound is free, not at the first free slot (hysteresis).
    if (this.#queued <= this.#capacity >> 1) this.#resume('queue');
  }

  #flushToListeners(): void {
    // One frame at a time: a listener may remove itself (or close the device) after any frame, and
    // what it has not been handed stays queued for whoever reads next.
    while (this.#queued > 0 && this.listenerCount('frame') > 0 && !this.#endError && !this.#pipe) {
      this.emit('frame', this.#dequeueOne());
    }
  }

  frames(options?: ReadOptions): AsyncIterableIterator<ReceivedFrame> {
    // While frames are queued, one promise and one result object a frame.
    const queued = () => (this.#queued > 0 && !options?.signal?.aborted ? this.#dequeueOne() : undefined);
    return this.#iterator((o) => this.read(o), options, queued);
  }

  batches(options?: ReadOptions): AsyncIterableIterator<ReceivedFrame[]> {
    return this.#iterator((o) => this.readBatch(undefined, o), options);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ReceivedFrame> {
    return this.frames();
  }

  /**
   * An iterator over `next`: ends when the device is closed by the user, throws otherwise.
   * `ready`, when given, hands out a value at once when there is one (undefined otherwise).
   */
  #iterator<T>(
    next: (options: ReadOptions | undefined) => Promise<T>,
    options: ReadOptions | undefined,
    ready?: () => T | undefined,
  ): AsyncIterableIterator<T> {
    let finished = false;
    const done = { value: undefined, done: true } as IteratorReturnResult<undefined>;
    const iterator: AsyncIterableIterator<T> = {
      next: () => {
        if (finished) return Promise.resolve(done);
        const value = ready?.();
        if (value !== undefined) return Promise.resolve({ value, done: false });
        return next(options).then(
          (value) => ({ value, done: false }),
          (error: unknown) => {
            finished = true;
            if (error instanceof TapError && error.code === TapErrorCode.CLOSED) return done;
            throw error;
          },
        );
      },
      return: () => {
        finished = true;
        return Promise.resolve(done);
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  // ---- Writing ----

  write(frame: Frame): boolean {
    checkFrame(frame, this.#mtu, this.#maxFrameLength, this.#minFrameLength);
    this.#checkOpen();
    // The frames written in one JS turn (a `for await` pass over a batch, a burst of `frame`
    // events) go to the port together when the turn ends, as writeBatch() sends them: one native
    // call and back-to-back syscalls instead of one of each per frame, for a copy.
    const length = frame.length;
    if (this.#gatheredBytes + length > GATHER_BYTES) {
      this.#flush();
      if (length > GATHER_BYTES) return this.#sendChecked([frame], length);
    }
    const start = this.#gatheredBytes;
    (this.#gather ??= new Uint8Array(GATHER_BYTES)).set(frame, start);
    const n = this.#gathered;
    let spans = (this.#spans ??= new Uint32Array(128));
    if (spans.length < 2 * n + 2) {
      const grown = new Uint32Array(2 * spans.length);
      grown.set(spans);
      spans = this.#spans = grown;
    }
    spans[2 * n] = start;
    spans[2 * n + 1] = length;
    this.#gathered = n + 1;
    this.#gatheredBytes = start + length;
    if (n === 0) process.nextTick(this.#flush);
    return !this.#writeBlocked;
  }

  writeBatch(frames: readonly Frame[]): boolean {
    if (!isArray(frames)) {
      throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'writeBatch() takes an array of frames');
    }
    let bytes = 0;
    for (const frame of frames) {
      checkFrame(frame, this.#mtu, this.#maxFrameLength, this.#minFrameLength);
      bytes += frame.length;
    }
    this.#checkOpen();
    if (frames.length === 0) return !this.#writeBlocked;
    return this.#sendChecked(frames, bytes);
  }

  /** Sends checked frames now, after what write() gathered; throws what the port throws. */
  #sendChecked(frames: readonly Frame[], bytes: number): boolean {
    try {
      return this.#send(frames, bytes);
    } catch (error) {
      this.#refused(error);
      throw error;
    }
  }

  /** Sends what write() gathered (see write()); never throws. */
  readonly #flush = (): void => {
    const count = this.#gathered;
    if (count === 0) return;
    const gather = this.#gather!;
    const spans = this.#spans!;
    // Both are the frames' until they are sent: a write() meanwhile (from an `error` listener)
    // gathers into new ones.
    this.#gather = this.#spans = undefined;
    this.#gathered = this.#gatheredBytes = 0;
    const port = this.#port;
    const lengthOf = (i: number): number => spans[2 * i + 1]!;
    if (port.writeSpans) {
      // The frames as (offset, length) pairs: no view a frame.
      const buffer = gather.buffer as ArrayBuffer;
      this.#sendAccepted(count, lengthOf, (first) =>
        port.writeSpans!(buffer, first === 0 ? spans : spans.subarray(2 * first), count - first),
      );
    } else {
      const frames = Array.from({ length: count }, (_, i) => gather.subarray(spans[2 * i], spans[2 * i]! + lengthOf(i)));
      if (port.writeBatch) this.#sendAccepted(count, lengthOf, (first) => port.writeBatch!(frames.slice(first)));
      // A port without writeBatch() takes them one at a time: then a refusal is its frame's.
      else for (let i = 0; i < count; i++) this.#sendAccepted(1, () => lengthOf(i), () => port.write(frames[i]!));
    }
    this.#gather ??= gather;
    this.#spans ??= spans;
  };

  /**
   * Sends `count` frames write() has accepted: `send(first)` hands the port those from `first`
   * on. A frame the port refuses is counted (`txError`) and reported as an `error` event, not
   * thrown, and the frames behind it still go.
   */
  #sendAccepted(count: number, lengthOf: (i: number) => number, send: (first: number) => boolean): void {
    const bytesOf = (from: number, to: number): number => {
      let bytes = 0;
      for (let i = from; i < to; i++) bytes += lengthOf(i);
      return bytes;
    };
    for (let first = 0; first < count; ) {
      if (this.#endError) return this.#drop('closeUnsent', count - first);
      try {
        this.#counted(count - first, bytesOf(first, count), () => send(first));
        return;
      } catch (error) {
        const sent = Math.min(sentBefore(error), count - first - 1);
        this.#txFrames += sent;
        this.#txBytes += bytesOf(first, first + sent);
        this.#drop('txError');
        if (!this.#endError) this.error(isTapError(error) ? error : fromSystemError(error, `write to ${this.name}`));
        first += sent + 1;
      }
    }
  }

  /**
   * Counts a write the port threw for as `txError`, unless the frame itself was at fault (too
   * long or short, malformed: the port's own checks, as the engine's, are the caller's error,
   * thrown and not counted, whatever the backend or mode).
   */
  #refused(error: unknown): void {
    if (!(error instanceof TapError && CALLER_ERRORS.has(error.code))) this.#drop('txError');
  }

  /** Hands checked frames to the port, after what write() gathered; throws what the port throws. */
  #send(frames: readonly Frame[], bytes: number): boolean {
    this.#flush();
    return this.#sendNow(frames, bytes);
  }

  /** Hands checked frames to the port and counts them; throws what the port throws. */
  #sendNow(frames: readonly Frame[], bytes: number): boolean {
    const port = this.#port;
    return this.#counted(frames.length, bytes, () =>
      port.writeBatch ? port.writeBatch(frames) : writeEach(port, frames),
    );
  }

  /** Runs `send`, the port taking `count` frames of `bytes`, and counts what it sent; throws what it throws. */
  #counted(count: number, bytes: number, send: () => boolean): boolean {
    const notSent = (this.#notSent = { frames: 0, bytes: 0 });
    let accepted: boolean;
    try {
      accepted = send();
    } finally {
      this.#notSent = undefined;
    }
    this.#txFrames += count - notSent.frames;
    this.#txBytes += bytes - notSent.bytes;
    return this.#accepted(accepted);
  }

  /**
   * Sends frames piped in from another engine device, as writeBatch() would, but never throws:
   * every frame refused (too long or short for this device, or by the port) is dropped and
   * counted as `txError`.
   */
  #writePiped(frames: readonly Frame[]): boolean {
    let fitting: Frame[] | undefined; // made at the first frame that does not fit
    let bytes = 0;
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i]!;
      try {
        checkFrame(frame, this.#mtu, this.#maxFrameLength, this.#minFrameLength);
      } catch {
        fitting ??= frames.slice(0, i);
        this.#drop('txError');
        continue;
      }
      bytes += frame.length;
      fitting?.push(frame);
    }
    const batch = fitting ?? frames;
    if (batch.length === 0) return !this.#writeBlocked;
    try {
      return this.#send(batch, bytes);
    } catch {
      this.#drop('txError', batch.length);
      return !this.#writeBlocked;
    }
  }

  /** Records the port's answer; the device stays blocked until the port says it is writable. */
  #accepted(accepted: boolean): boolean {
    if (!accepted) this.#writeBlocked = true;
    return !this.#writeBlocked;
  }

  #checkOpen(): void {
    if (this.#endError) {
      throw this.#endError.code === TapErrorCode.CLOSED
        ? new TapError(TapErrorCode.CLOSED, `cannot write: device ${this.name} is closed`)
        : this.#endError;
    }
  }

  drain(): Promise<void> {
    this.#flush(); // the port's answer for what write() gathered decides
    if (this.#endError) return Promise.reject(this.#endError);
    if (!this.#writeBlocked) return Promise.resolve();
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  // ---- Piping ----

  pipeTo(destination: TapDevice, options?: PipeOptions): Promise<void> {
    if (!isDevice(destination) || destination === this) {
      return Promise.reject(
        new TapError(TapErrorCode.INVALID_ARGUMENT, 'pipeTo() takes another TapDevice as its destination'),
      );
    }
    const layer = (destination as Partial<TapDevice>).capabilities?.layer ?? 2;
    if (layer !== this.capabilities.layer) {
      return Promise.reject(
        new TapError(
          TapErrorCode.INVALID_ARGUMENT,
          `pipeTo(): ${this.name} carries layer-${this.capabilities.layer} frames, ${destination.name} layer-${layer}`,
        ),
      );
    }
    if (this.#pipe) {
      return Promise.reject(
        new TapError(
          TapErrorCode.BUSY,
          `device ${this.name} is piping to ${this.#pipe.destination.name} already`,
        ),
      );
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(abortError('pipeTo()', signal));
    if (this.#endError) return Promise.reject(this.#endError);
    const engine = #port in destination ? destination : undefined;
    if (destination.closed) {
      return Promise.reject(
        (engine ? engine.#endError : undefined) ??
          new TapError(TapErrorCode.CLOSED, `cannot pipe to ${destination.name}: it is closed`),
      );
    }
    // Frames of an offload-mode device are a virtio-net header and, often, a TSO/GSO
    // super-frame: a plain destination would put the header on the wire as MAC addresses.
    const offload = this.capabilities.offload;
    // (A TapDevice of another kind may not say: then it is a plain one.)
    const intoOffload = (destination.capabilities as TapCapabilities | undefined)?.offload === true;
    if (offload && !intoOffload) {
      return Promise.reject(
        new TapError(
          TapErrorCode.INVALID_ARGUMENT,
          `cannot pipe ${this.name} into ${destination.name}: ${this.name} is in offload mode (its frames ` +
            `carry a virtio-net header and may be TSO/GSO super-frames) and ${destination.name} is not; ` +
            'open both in offload mode, or neither',
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => this.#endPipe(pipe, abortError('pipeTo()', signal!));
      // Only a destination of another kind is watched through its events: an engine device
      // ends the pipes into it itself, synchronously, before its port is closed.
      const onClose = (error?: TapError) =>
        this.#endPipe(
          pipe,
          error ?? new TapError(TapErrorCode.CLOSED, `device ${destination.name} was closed`),
        );
      const pipe: Pipe = {
        source: this,
        destination,
        engine,
        send: (frames) => {
          const out = intoOffload && !offload ? frames.map(withZeroVnetHeader) : frames;
          return engine ? engine.#writePiped(out) : this.#sendToForeign(destination, out);
        },
        native: undefined,
        waitingForDrain: false,
        onDrain: () => {
          pipe.waitingForDrain = false;
          destination.off('drain', pipe.onDrain);
          this.#resume('pipe');
        },
        settle: (error) => {
          signal?.removeEventListener('abort', onAbort);
          if (!engine) destination.off('close', onClose);
          if (error.code === TapErrorCode.CLOSED) resolve();
          else reject(error);
        },
      };
      this.#pipe = pipe;
      signal?.addEventListener('abort', onAbort, { once: true });
      if (engine) engine.#inbound.add(pipe);
      else destination.on('close', onClose);
      // What was queued goes first; then, between two engine devices, the port may take over.
      if (this.#queued > 0) this.#forward(pipe, this.#dequeue(this.#queued));
      if (engine && this.#pipe === pipe && offload === intoOffload) {
        try {
          pipe.native = this.#port.pipeTo?.(engine.#port);
        } catch (error) {
          // A port that fails to start its pipe must not leave this device piping nowhere.
          this.#endPipe(
            pipe,
            error instanceof TapError
              ? error
              : new TapError(TapErrorCode.SYSTEM, `could not pipe ${this.name} to ${destination.name}`, {
                  cause: error,
                }),
          );
        }
      }
    });
  }

  /** Hands frames to the pipe's destination; while it is over its high-water mark, the port is paused. */
  #forward(pipe: Pipe, frames: Frame[]): void {
    if (pipe.send(frames) || pipe.waitingForDrain) return;
    pipe.waitingForDrain = true;
    pipe.destination.on('drain', pipe.onDrain);
    this.#pause('pipe');
  }

  /**
   * Sends to a destination that is not an engine device: frames it refuses cannot be counted in
   * its stats, so they are counted here, as `pipeTxError`.
   */
  #sendToForeign(destination: TapDevice, frames: Frame[]): boolean {
    try {
      return destination.writeBatch(frames);
    } catch {
      // One frame it refuses fails the whole batch: send them one by one.
    }
    let accepted = true;
    for (const frame of frames) {
      try {
        accepted = destination.write(frame) && accepted;
      } catch {
        this.#drop('pipeTxError');
      }
    }
    return accepted;
  }

  /**
   * Ends this device's pipe: stops a native one and folds its counts into both devices' own
   * counters, lets received frames reach the queue again, and settles pipeTo() with `error`.
   */
  #endPipe(pipe: Pipe, error: TapError): void {
    if (this.#pipe !== pipe) return;
    this.#pipe = undefined;
    const { native, engine } = pipe;
    if (native && engine) {
      native.stop(); // synchronously: #end runs before either port is closed
      const counts = native.counts();
      this.#rxFrames += receivedFrames(counts);
      this.#rxBytes += counts.bytes;
      engine.#txFrames += counts.frames;
      engine.#txBytes += counts.bytes;
      for (const [reason, count] of Object.entries(counts.drops)) engine.#drop(reason, count);
      for (const [reason, count] of Object.entries(counts.sourceDrops ?? {})) this.#drop(reason, count);
    }
    if (engine) engine.#inbound.delete(pipe);
    if (pipe.waitingForDrain) pipe.onDrain();
    pipe.settle(error);
  }

  // ---- Stats and the rest ----

  #countRx(frame: Frame): void {
    this.#rxFrames++;
    this.#rxBytes += frame.length;
  }

  #drop(reason: string, count = 1): void {
    this.#drops.set(reason, (this.#drops.get(reason) ?? 0) + count);
  }

  stats(): TapStats {
    this.#flush(); // what write() accepted is counted once the port has it
    const stats = {
      rxFrames: this.#rxFrames,
      rxBytes: this.#rxBytes,
      txFrames: this.#txFrames,
      txBytes: this.#txBytes,
      drops: Object.fromEntries(this.#drops),
    };
    // A native pipe counts on its own until it ends (then #endPipe folds its counts in).
    const out = this.#pipe?.native?.counts();
    if (out) {
      stats.rxFrames += receivedFrames(out);
      stats.rxBytes += out.bytes;
      for (const [reason, count] of Object.entries(out.sourceDrops ?? {})) {
        stats.drops[reason] = (stats.drops[reason] ?? 0) + count;
      }
    }
    for (const pipe of this.#inbound) {
      const piped = pipe.native?.counts();
      if (!piped) continue;
      stats.txFrames += piped.frames;
      stats.txBytes += piped.bytes;
      for (const [reason, count] of Object.entries(piped.drops)) {
        stats.drops[reason] = (stats.drops[reason] ?? 0) + count;
      }
    }
    // Last: the OS's counters are read after what they may overlap with has been counted.
    for (const [reason, count] of Object.entries(this.#port.osDrops?.({ ...stats.drops }) ?? {})) {
      if (count > 0) stats.drops[reason] = (stats.drops[reason] ?? 0) + count;
    }
    return stats;
  }

  multicastGroups(): Promise<string[]> {
    if (this.#endError) return Promise.reject(this.#endError);
    return this.#port.multicastGroups ? this.#port.multicastGroups() : Promise.resolve([]);
  }

  unref(): this {
    this.#port.unref?.();
    return this;
  }

  ref(): this {
    this.#port.ref?.();
    return this;
  }

  close(options?: CloseOptions): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    const flushTimeout = options?.flushTimeout ?? DEFAULT_FLUSH_TIMEOUT;
    if (typeof flushTimeout !== 'number' || !(flushTimeout >= 0) || flushTimeout === Infinity) {
      return Promise.reject(
        new TapError(
          TapErrorCode.INVALID_ARGUMENT,
          `close(): flushTimeout must be a finite number of ms ≥ 0, not ${String(flushTimeout)}`,
        ),
      );
    }
    this.#flush(); // frames write() accepted go before the port closes
    const error = new TapError(TapErrorCode.CLOSED, `device ${this.name} was closed`);
    this.#end(error);
    this.#closePromise = Promise.resolve()
      .then(() => this.#port.close({ flushTimeout }))
      .finally(() => this.#emitEnd(undefined));
    return this.#closePromise;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Moves to the closed state: queued frames are discarded, every waiter fails with `error`, and
   * the pipes from and into this device end with it.
   */
  #end(error: TapError): void {
    this.#endError = error;
    this.#queue = [];
    this.#head = 0;
    if (this.#pipe) this.#endPipe(this.#pipe, error);
    for (const pipe of [...this.#inbound]) pipe.source.#endPipe(pipe, error);
    const waiters = this.#waiters.splice(0);
    for (const w of waiters) {
      w.cleanup();
      w.reject(error);
    }
    const drains = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const d of drains) d.reject(error);
  }

  #emitEnd(error: TapError | undefined): void {
    if (error && this.listenerCount('error') > 0) this.emit('error', error);
    this.emit('close', error);
  }
}

/**
 * Wraps a backend's port in the shared engine. The port is started at once.
 *
 * @example
 * ```ts
 * const device = createTapDevice(port, { backend: 'my-backend', rxQueueFrames: 1024 });
 * ```
 */
export function createTapDevice(port: TapPort, options: EngineOptions): TapDevice {
  const device = new EngineDevice(port, options);
  port.start(device);
  return device;
}

export type { TapDeviceEvents };
