/**
 * The contract: what a {@link TapDevice} promises its users, what a {@link TapBackend} supplies,
 * and the small {@link TapPort} a backend implements so that the shared engine can turn it into
 * a TapDevice.
 *
 * @module
 */
import type { TapError } from './errors.js';

/**
 * A frame: a complete Ethernet frame, destination MAC first, no packet-info header, no FCS.
 * What you write may be any `Uint8Array` (a `Buffer` is one); what you read is a
 * {@link ReceivedFrame}.
 */
export type Frame = Uint8Array;

/**
 * A frame a device received: a Node.js `Buffer` (so `frame.toString('hex')` and the like work,
 * as with `dgram` and `net`), viewing memory the backend never reuses — no copy was made for
 * it. Mind `byteOffset`: several frames may share one `ArrayBuffer`.
 */
export type ReceivedFrame = Buffer;

/** What a device can do beyond the basic contract. */
export interface TapCapabilities {
  /**
   * Layer the user sees: 2, Ethernet frames (every backend's devices); 3, bare IP packets (a TUN
   * device, such as linux-tap's `linuxTun`: no Ethernet header, and an empty `mac`).
   */
  readonly layer: 2 | 3;
  /** Smallest and largest MTU this backend can configure. */
  readonly minMtu: number;
  readonly maxMtu: number;
  /** Several queues (fds) on one device can be opened. */
  readonly multiQueue: boolean;
  /**
   * TSO/GSO super-frames with offload metadata can be passed (opt-in mode): every frame read
   * and written then starts with a {@link VNET_HEADER_LENGTH}-byte virtio-net header.
   */
  readonly offload: boolean;
  /** {@link TapDevice.multicastGroups} reports the groups the OS joined on the device. */
  readonly multicastGroups: boolean;
  /** The device is a real OS interface (not in-memory). */
  readonly osInterface: boolean;
}

/** Counters since open. Drops are keyed by reason (e.g. `rxQueueFull`, `txError`, `nonIp`). */
export interface TapStats {
  readonly rxFrames: number;
  readonly rxBytes: number;
  readonly txFrames: number;
  readonly txBytes: number;
  /** Frames lost, by reason. Reasons with no drop are absent. */
  readonly drops: Readonly<Record<string, number>>;
}

/** Options every backend understands. Backends extend this with their own. */
export interface TapOpenOptions {
  /**
   * The backend: an object, or a name (`linux-tap`, `darwin-feth`, `darwin-utun`, `mock`).
   * When absent, `TAPKIT_BACKEND` from the environment, then the platform's list, are used.
   */
  backend?: string | TapBackend;
  /**
   * Interface name. 1–15 characters of `[A-Za-z0-9_.-]`; or a template with one `%d`
   * (`tap%d`), which linux-tap's kernel and the mock replace with the lowest number that makes a
   * free name (the macOS backends name their interfaces themselves and refuse it). Absent: the
   * backend picks one.
   */
  name?: string;
  /**
   * MTU in bytes, an integer within the backend's range (at most 68–65535): a non-integer is
   * `ERR_TAP_INVALID_OPTION`, an integer out of range `ERR_TAP_MTU_UNSUPPORTED`. Default 1500.
   */
  mtu?: number;
  /** MAC as `aa:bb:cc:dd:ee:ff` or 6 bytes; unicast. Default: random, locally administered. */
  mac?: string | Uint8Array;
  /** Addresses as CIDR strings (`10.0.0.1/24`, `fd00::1/64`) to assign to the interface. */
  addresses?: readonly string[];
  /** Bring the interface up. Default true. */
  up?: boolean;
  /**
   * Receive queue bound, in frames. Default 1024. When it is reached the backend is paused (the
   * OS then queues or drops, as a NIC would); frames the backend had already read are still
   * kept, up to the bound again or 256 frames (whichever is more), beyond which — and for
   * backends that cannot pause — they are dropped as `rxQueueFull`.
   */
  rxQueueFrames?: number;
  /** Abort the open. */
  signal?: AbortSignal;
  /** Environment to read `TAPKIT_BACKEND` from. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** {@link TapOpenOptions} after validation: values normalised, defaults applied. */
export interface ResolvedOpenOptions {
  readonly name: string | undefined;
  readonly mtu: number;
  readonly mac: Uint8Array;
  readonly addresses: readonly InterfaceAddress[];
  readonly up: boolean;
  readonly rxQueueFrames: number;
  readonly signal: AbortSignal | undefined;
}

/** A parsed CIDR address. */
export interface InterfaceAddress {
  readonly family: 4 | 6;
  /** 4 or 16 bytes. */
  readonly address: Uint8Array;
  readonly prefixLength: number;
  /** The address as given, normalised (`10.0.0.1/24`, `fd00::1/64`). */
  readonly cidr: string;
}

/** The result of {@link TapBackend.probe}. */
export type ProbeResult =
  | { readonly available: true }
  | {
      readonly available: false;
      readonly reason: string;
      readonly error: TapError;
      /** What to do about it, where the backend knows better than the error code's general advice. */
      readonly fix?: readonly string[];
    };

/**
 * A way of making TapDevices. Backends are plain objects; selection is by name or object.
 *
 * @typeParam O - the options this backend accepts.
 */
export interface TapBackend<O extends TapOpenOptions = TapOpenOptions> {
  /** Stable name (`linux-tap`, `mock`, …). */
  readonly name: string;
  /** Whether this backend can open a device here and now, and if not, why. Never throws. */
  probe(): Promise<ProbeResult>;
  /** Opens a device. Options are validated before any OS call. */
  open(options?: O): Promise<TapDevice>;
}

/** Options for {@link TapDevice.read}. */
/** Options for {@link TapDevice.close}. */
export interface CloseOptions {
  /** How long, in ms, close() waits for accepted frames to be sent. Default 2000; 0: none. */
  readonly flushTimeout?: number;
}

export interface ReadOptions {
  signal?: AbortSignal;
}

/** Options for {@link TapDevice.pipeTo}. */
export interface PipeOptions {
  /** Stops the pipe; the promise then rejects with `ERR_TAP_ABORTED`. */
  signal?: AbortSignal;
}

/**
 * The live state of a device's interface, as the OS reports it: what a `link` event reports
 * changes of.
 */
export interface LinkState {
  readonly name: string;
  readonly mtu: number;
  /** The interface is administratively up (`IFF_UP`). */
  readonly up: boolean;
  /** The addresses on the interface as CIDR strings, normalised as at open (`10.0.0.1/24`, `fd00::1/64`). */
  readonly addresses: readonly string[];
}

/** What a `link` event reports: only what changed is present. */
export interface LinkChange {
  readonly mtu?: { readonly from: number; readonly to: number };
  readonly name?: { readonly from: string; readonly to: string };
  readonly up?: { readonly from: boolean; readonly to: boolean };
  readonly addresses?: { readonly added: readonly string[]; readonly removed: readonly string[] };
}

/** Options for {@link TapDevice.addAddress}. */
export interface AddAddressOptions {
  /**
   * Run IPv6 duplicate address detection: the address stays tentative (unusable) until it is
   * done. Default false: usable at once, as the addresses given at open are. Ignored for IPv4.
   */
  readonly dad?: boolean;
}

/** Events a TapDevice emits. */
export interface TapDeviceEvents {
  /**
   * The interface changed: MTU, name, up/down or addresses, whether through this device's
   * setters or by someone else (`ip link set …`). The device's properties show the new state
   * when it is emitted.
   */
  link: [change: LinkChange];
  /** A frame arrived. While any `frame` listener is attached, frames go to listeners, not the read queue. */
  frame: [frame: ReceivedFrame];
  /** The write queue fell below its high-water mark after a `write()` returned false. */
  drain: [];
  /** The device closed; `error` is set when it closed because the device went away. */
  close: [error?: TapError];
  /**
   * An asynchronous failure (device gone, a frame `write()` accepted that the OS then refused, a
   * failed queued write). Only emitted when listened to; refused frames are counted in `stats()` either way.
   */
  error: [error: TapError];
}

/**
 * A layer-2 virtual Ethernet device.
 *
 * Reading: `await dev.read()`, `for await (const frame of dev)`, `dev.readBatch()`, or
 * `dev.on('frame', …)`. Received frames wait in a bounded queue ({@link TapOpenOptions.rxQueueFrames});
 * when it is full the backend is paused (the OS then queues or drops, as a NIC would) and frames
 * that cannot be kept are counted as `rxQueueFull` drops.
 *
 * Writing: `dev.write(frame)` accepts the frame synchronously and returns `false` when the write
 * queue is over its high-water mark — then `await dev.drain()` before writing more, as with
 * Node streams. Invalid frames throw a {@link TapError} synchronously; the device keeps working.
 *
 * Closing: `await dev.close()` (or `await using dev = …`). Pending reads reject with
 * `ERR_TAP_CLOSED` and iterators end; later writes throw `ERR_TAP_CLOSED`; closing again is a
 * no-op; no fd or interface is left behind.
 */
export interface TapDevice extends AsyncIterable<ReceivedFrame>, AsyncDisposable {
  /** The interface name the OS knows (or the mock port's name); follows a rename. */
  readonly name: string;
  /** The backend's name. */
  readonly backend: string;
  /**
   * The MAC of the device's OS station: the operating system's end of the link, which holds the
   * device's addresses, sends from this MAC and answers ARP/neighbour discovery with it (on the
   * mock, a station the device brings onto the network; on darwin-utun, the shim on the OS's
   * behalf). Your program is the other end and uses MACs of its own. 6 bytes; a copy.
   */
  readonly mac: Uint8Array;
  /**
   * The MTU: the largest payload a frame can carry; frames up to `mtu + 14` (+4 tagged) are
   * accepted. Follows the interface: writes are checked against the current MTU.
   */
  readonly mtu: number;
  /** The interface is administratively up; follows the interface. */
  readonly up: boolean;
  /** The interface's addresses as CIDR strings; follows the interface. A copy. */
  readonly addresses: readonly string[];
  readonly capabilities: TapCapabilities;
  /** True once close() was called or the device went away. */
  readonly closed: boolean;

  /** The next received frame. Rejects with `ERR_TAP_CLOSED`, `ERR_TAP_DEVICE_GONE` or `ERR_TAP_ABORTED`. */
  read(options?: ReadOptions): Promise<ReceivedFrame>;
  /** All frames queued now (at least one, at most `max`), waiting for one if none is. */
  readBatch(max?: number, options?: ReadOptions): Promise<ReceivedFrame[]>;
  /** Async iteration over batches: the cheapest way to relay. Ends on close. */
  batches(options?: ReadOptions): AsyncIterableIterator<ReceivedFrame[]>;
  /** Async iteration over frames. Ends on close; throws if the device goes away. */
  frames(options?: ReadOptions): AsyncIterableIterator<ReceivedFrame>;

  /**
   * Sends one frame. Returns false when the write queue is over its high-water mark (the frame
   * is still accepted): wait for {@link TapDevice.drain} before writing more.
   * Throws `ERR_TAP_FRAME_TOO_LARGE`, `ERR_TAP_FRAME_TOO_SHORT`, `ERR_TAP_INVALID_ARGUMENT`, `ERR_TAP_CLOSED`.
   *
   * The frame is copied (reuse its buffer at once) and goes to the OS with the others written in
   * the same JavaScript turn, as one batch when the turn ends — or sooner, at 64 KiB, or when
   * `writeBatch()`, `drain()`, `stats()` or `close()` is called. A frame the OS then refuses (the
   * kernel's EINVAL for an offload frame's virtio-net header, say) is counted in
   * `stats().drops.txError` and emitted as an `error` event; `writeBatch()` throws it instead.
   * `await close()` before the process exits: it sends what the last turn gathered.
   */
  write(frame: Frame): boolean;
  /**
   * Sends several frames now (after what `write()` gathered), all validated first: a bad one
   * throws before any is sent. Returns as {@link TapDevice.write}; also throws what the OS
   * refused (the frames before that one were sent).
   */
  writeBatch(frames: readonly Frame[]): boolean;
  /** Resolves when the write queue is below its high-water mark (at once if it is). */
  drain(): Promise<void>;

  /**
   * Forwards every frame this device receives to `destination` until either device is closed or
   * `options.signal` aborts; meanwhile reads, iterators and `frame` listeners of this device get
   * nothing (they resume when the pipe ends). Frames already queued go first. Where both devices
   * are of a backend that can (linux-tap), frames move in native code without entering
   * JavaScript; otherwise the engine forwards each received batch with `writeBatch`, waiting for
   * `drain` when it returns false. The relay of two devices is `a.pipeTo(b)` and `b.pipeTo(a)`.
   *
   * Piped frames count in this device's rx stats and the destination's tx stats; frames the
   * destination refuses are dropped and counted in its `drops` (`txError`, or the backend's
   * reason such as linux-tap's `interfaceDown`); for a destination that is not one of tapkit's
   * own devices, in this device's `drops` as `pipeTxError`.
   *
   * Frames are converted between framings: piped from a plain device into one in offload mode
   * (`capabilities.offload`), each gets a zero virtio-net header (a frame with its checksums
   * complete). The other way round is refused: an offload-mode frame is a header and often a
   * TSO/GSO super-frame, which a plain device cannot carry (open both in offload mode, or neither).
   *
   * Resolves when either device is closed by the user. Rejects with `ERR_TAP_ABORTED` when the
   * signal aborts, with the device's error when either device is gone, with `ERR_TAP_BUSY` when
   * this device is piping already, and with `ERR_TAP_INVALID_ARGUMENT` for a destination that is
   * not a TapDevice, is this device, or is a plain device while this one is in offload mode.
   */
  pipeTo(destination: TapDevice, options?: PipeOptions): Promise<void>;

  /** Counters since open. */
  stats(): TapStats;
  /** Multicast groups the OS joined on this device, as MAC strings; `[]` where not supported. */
  multicastGroups(): Promise<string[]>;

  /**
   * Sets the interface's MTU (checked against `capabilities`: `ERR_TAP_MTU_UNSUPPORTED` out of
   * range). Resolves once the OS took it; `mtu` and write checks follow, with a `link` event.
   * A backend that cannot rejects with `ERR_TAP_UNSUPPORTED_OPERATION`.
   */
  setMtu(mtu: number): Promise<void>;
  /** Brings the interface up or down; as {@link TapDevice.setMtu}. */
  setUp(up: boolean): Promise<void>;
  /**
   * Adds an address (`10.0.0.2/24`, `fd00::2/64`) to the interface; as {@link TapDevice.setMtu}.
   * Several IPv4 addresses may be added. IPv6 addresses skip duplicate address detection unless
   * `options.dad` is true.
   */
  addAddress(cidr: string, options?: AddAddressOptions): Promise<void>;
  /** Removes an address from the interface; as {@link TapDevice.setMtu}. */
  removeAddress(cidr: string): Promise<void>;

  /**
   * Lets the process exit while the device is open. An open device holds the event loop (on
   * every backend, the mock included) until it is closed or unref()ed.
   */
  unref(): this;
  /** Undoes {@link TapDevice.unref}. */
  ref(): this;

  /**
   * Closes the device. Idempotent. Frames `write()` accepted that the OS has not taken yet (held
   * back by backpressure) are flushed first, for up to `options.flushTimeout` ms; any still unsent
   * then are dropped and counted in `stats().drops.closeUnsent`, never lost silently.
   */
  close(options?: CloseOptions): Promise<void>;

  on<E extends keyof TapDeviceEvents>(event: E, listener: (...args: TapDeviceEvents[E]) => void): this;
  once<E extends keyof TapDeviceEvents>(event: E, listener: (...args: TapDeviceEvents[E]) => void): this;
  off<E extends keyof TapDeviceEvents>(event: E, listener: (...args: TapDeviceEvents[E]) => void): this;
}

/**
 * Where a port delivers what happens on its side. The engine implements it.
 */
export interface PortSink {
  /**
   * Frames received, a batch at a time. The engine takes ownership of the array and the frames:
   * the port must not reuse their memory.
   */
  receive(frames: ReceivedFrame[]): void;
  /** The port's write queue dropped below its high-water mark. */
  writable(): void;
  /** Frames the port dropped, by reason (shim: `nonIp`, `unknownMac`…). */
  dropped(reason: string, count?: number): void;
  /**
   * Frames of the write in progress (inside the port's `write`/`writeBatch`) that the port did
   * not send, and does not throw for: dropped and counted under `reason`, and not counted as sent
   * (`txFrames`, `txBytes`). Outside a write, the same as {@link dropped}.
   */
  notSent(reason: string, frames: number, bytes: number): void;
  /** The device went away (interface deleted, port disconnected). The engine closes the device. */
  gone(error: TapError): void;
  /** A non-fatal asynchronous error (e.g. a queued write the OS refused). */
  error(error: TapError): void;
  /**
   * The interface's state as the OS reports it now (what the port knows of it): the engine
   * compares it with the device's and emits a `link` event for what changed.
   */
  link(state: Partial<LinkState>): void;
}

/**
 * What a backend implements: the OS object, opened and configured. The engine
 * ({@link createTapDevice}) adds everything users see.
 */
export interface TapPort {
  readonly name: string;
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly capabilities: TapCapabilities;
  /**
   * The longest frame the port takes, when that is not `mtu + 14` (+4 with an 802.1Q tag): for
   * a port whose frames carry a header in front or may be TSO/GSO super-frames. The engine
   * checks writes against it instead. Optional.
   */
  readonly maxFrameLength?: number;
  /**
   * The shortest frame the port takes, when that is not an Ethernet header (14 bytes): e.g. 20,
   * an IPv4 header, for a layer-3 port. Optional.
   */
  readonly minFrameLength?: number;
  /** Start delivering received frames to `sink`. Called once. */
  start(sink: PortSink): void;
  /**
   * Send a frame that the engine has already validated. Return false if the port's own queue
   * is now over its high-water mark (then call `sink.writable()` when it is not), true otherwise.
   * Throw a TapError for a failure the user should see (from a batch: with the failed frame's
   * index in its `cause`, as native errors have it). Copy what is kept past the call: the engine
   * reuses the memory of the frames it gathered from `write()`.
   */
  write(frame: Frame): boolean;
  /** Send several validated frames; same return as write. Default: write each. */
  writeBatch?(frames: readonly Frame[]): boolean;
  /**
   * Send `count` validated frames of one buffer, frame i being `buffer[spans[2i], spans[2i] +
   * spans[2i + 1])`; same return and errors as writeBatch. Optional: the engine sends the frames
   * `write()` gathered this way, without a view for each.
   */
  writeSpans?(buffer: ArrayBuffer, spans: Uint32Array, count: number): boolean;
  /** Stop delivering (receive queue full); `resume` starts again. Optional. */
  pause?(): void;
  resume?(): void;
  /** Multicast groups joined on the device (MAC strings). Optional. */
  multicastGroups?(): Promise<string[]>;
  /**
   * The interface's up flag and addresses at open, when the port knows them (default: as the
   * open options asked). Later changes go to {@link PortSink.link}.
   */
  readonly up?: boolean;
  readonly addresses?: readonly string[];
  /**
   * Change the interface. Arguments are validated by the engine, which also records the change
   * (and emits the `link` event) once the returned promise resolves. Each is optional: the
   * engine rejects with `ERR_TAP_UNSUPPORTED_OPERATION` for a port that has none.
   */
  setMtu?(mtu: number): Promise<void> | void;
  setUp?(up: boolean): Promise<void> | void;
  addAddress?(address: InterfaceAddress, options: { readonly dad: boolean }): Promise<void> | void;
  removeAddress?(address: InterfaceAddress): Promise<void> | void;
  /**
   * Drops the OS counted on its side of the device since it was opened, by reason: reported in
   * {@link TapDevice.stats} with the engine's own. `counted` are the drops already counted for
   * the device (the engine's and its native pipes'): an OS counter that also counts some of those
   * (linux's `rx_dropped` counts the writes it refused for a down link) leaves them out, so no
   * frame is counted twice. Optional; must be cheap and never throw.
   */
  osDrops?(counted: Readonly<Record<string, number>>): Readonly<Record<string, number>>;
  /** Let the process exit while open / undo it. Optional. */
  unref?(): void;
  ref?(): void;
  /**
   * Release every OS resource. Called once; must not throw for an already-gone device. Frames
   * accepted but not yet sent go first, for up to `options.flushTimeout` ms; the rest are reported
   * to the sink as `closeUnsent` drops.
   */
  close(options?: { readonly flushTimeout: number }): Promise<void> | void;
  /**
   * Forward every frame this port receives straight to `destination` (another open port) instead
   * of to the sink, until the returned pipe is stopped. Returns undefined when this port cannot
   * do so for that destination (another backend, another mode): the engine then forwards in JS.
   * Optional. Frames the port read before the call still go to the sink.
   */
  pipeTo?(destination: TapPort): PortPipe | undefined;
}

/** A port forwarding to another one: see {@link TapPort.pipeTo}. */
export interface PortPipe {
  /** What was forwarded so far. */
  counts(): PipeCounts;
  /** Stops forwarding: received frames go to the sink again. Idempotent. */
  stop(): void;
}

/** What a {@link PortPipe} did, counted as writeBatch() would count it on the destination. */
export interface PipeCounts {
  /** Frames (and their bytes) handed to the destination: its tx. */
  readonly frames: number;
  readonly bytes: number;
  /** Frames the source received that the destination refused outright (not in `frames`). */
  readonly refused: number;
  /** Drops to add to the destination's stats, by reason. */
  readonly drops: Readonly<Record<string, number>>;
  /**
   * Drops to add to the source's stats, by reason: what the source's port would have reported
   * with `sink.dropped()` had it read the frames for JS (darwin-feth: `rxTruncated`, `rxRunt`,
   * `rxMalformed`). Optional.
   */
  readonly sourceDrops?: Readonly<Record<string, number>>;
}

/** Bytes of the virtio-net header in front of each frame of a device in offload mode. */
export const VNET_HEADER_LENGTH = 12;
