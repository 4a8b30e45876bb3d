/**
 * The native addon (`tapkit_linux.node`): its exact shape, and how it is found.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { loadNativeAddon, type NativeSystemError } from '@tapkit/core';

/** The addon's system errors: core's {@link NativeSystemError}. */
export type RawSystemError = NativeSystemError;

/** Options of `new TapHandle()`. */
export interface RawHandleOptions {
  /** Interface name; may hold `%d` for the kernel to fill in. Ignored with `fd`. */
  readonly name?: string;
  /** Default `tap`. */
  readonly mode?: 'tap' | 'tun';
  /** `IFF_MULTI_QUEUE`: every queue of the device must be opened with it. */
  readonly multiQueue?: boolean;
  /**
   * `IFF_TUN_EXCL`: fail with EBUSY if the name exists, instead of attaching to it. Without it,
   * a multi-queue device is attached to as one of its queues even without `multiQueue`.
   */
  readonly exclusive?: boolean;
  /** `IFF_VNET_HDR` with a 12-byte header (struct virtio_net_hdr_v1) in front of every frame. */
  readonly vnetHeader?: boolean;
  /**
   * `TUNSETOFFLOAD` with these `TUN_F_*` bits (the device's, they outlive the fd); absent: not
   * called. USO bits the kernel does not know are left out.
   */
  readonly offloads?: number;
  /** The clone device. Default `/dev/net/tun`. */
  readonly path?: string;
  /** Adopt this already open fd (the handle owns it afterwards) instead of opening one. */
  readonly fd?: number;
  /** Most frames handed to `onRead` at once (1–4096). */
  readonly batchFrames: number;
  /** Frame boundaries of the batch being delivered: at least `batchFrames + 1` elements. */
  readonly offsets: Uint32Array;
  /** Free space a read needs: the largest frame expected (a larger one is still read whole). */
  readonly frameReserve: number;
  /** Size of each receive slab (≥ frameReserve). */
  readonly slabBytes: number;
  /**
   * A batch arrived: frame `i` is `slab[offsets[i] … offsets[i + 1])`, `i < count`. `slab` is
   * never written again by the addon; `offsets` is, so read it before returning.
   */
  readonly onRead: (slab: ArrayBuffer, count: number) => void;
  /** Every queued write was sent. */
  readonly onDrain: () => void;
  /** A read failed (then reading stops) or a queued write was refused (that frame is dropped). */
  readonly onError: (error: RawSystemError) => void;
}

/** One queue (fd) of a tap/tun device, polled on this thread's event loop. */
export interface RawTapHandle {
  /** The interface name the kernel gave (empty for an adopted fd). */
  readonly name: string;
  /** The device's flags after attaching (TUNGETIFF: `IFF_PERSIST`, `IFF_MULTI_QUEUE`…); 0 for an adopted fd. */
  readonly flags: number;
  /** The `TUN_F_*` offloads set. */
  readonly offloads: number;
  /** Sends a frame; returns the bytes queued behind EAGAIN (0 when sent at once). */
  write(frame: Uint8Array): number;
  /** Sends frames in order; returns as `write`. */
  writeBatch(frames: readonly Uint8Array[]): number;
  /**
   * Sends `count` frames of one buffer in order, frame `i` being `buffer[spans[2i] …
   * spans[2i] + spans[2i + 1])`: a batch of views into one slab in one call. Returns as `write`;
   * a failed write's error carries the frame's `index`, as `writeBatch`'s does. Absent in addon
   * builds from before it (a stale local build): then `writeBatch` is used.
   */
  writeSpans?(buffer: ArrayBuffer, spans: Uint32Array, count: number): number;
  /**
   * From now on writes every frame read here to `target` (another open handle) in C++, never
   * calling `onRead`; `null` stops. Reading pauses while the target has frames queued. Absent in
   * addon builds from before it (a stale local build): the engine then forwards in JS.
   */
  pipeTo?(target: RawTapHandle | null): void;
  /**
   * The latest pipe's counts: frames written; bytes of those and of the frames refused with EIO
   * (the interface is down); frames refused with EIO; frames refused otherwise.
   */
  pipeCounts?(): [frames: number, bytes: number, interfaceDown: number, refused: number];
  /**
   * The frames this handle takes from a pipe into it: `min` to `max` bytes (`max` 0: any), plus
   * `tagged` for an Ethernet frame with a VLAN tag; a frame outside is refused (counted with
   * `refused`). Absent in addon builds from before it: then pipes write every frame.
   */
  setFrameLimit?(min: number, max: number, tagged: number): void;
  /** Starts (again) delivering frames to `onRead`. */
  resume(): void;
  /** Stops delivering frames; the kernel queues, then drops. */
  pause(): void;
  ref(): void;
  unref(): void;
  /**
   * Stops polling and closes the fd; idempotent, safe inside a callback. Returns how many
   * queued frames (held back by EAGAIN) it dropped.
   */
  close(): number;
}

/** Options of `new LinkWatcher()`. */
export interface RawLinkWatcherOptions {
  /** Notifications arrived: rtnetlink messages back to back (see src/rtnetlink.ts). */
  readonly onMessages: (messages: Buffer) => void;
  /** ENOBUFS: notifications were lost (read the state again); anything else: watching stopped. */
  readonly onError: (error: RawSystemError) => void;
}

/**
 * A NETLINK_ROUTE socket subscribed to link and IPv4/IPv6 address notifications, polled on this
 * thread's loop. It never holds the loop; a worker's exit closes it.
 */
export interface RawLinkWatcher {
  /** Stops watching and closes the socket; idempotent. */
  close(): void;
}

/** Options of `setPersistent`. */
export interface RawPersistOptions {
  readonly name: string;
  /** Make the device persistent (true) or not (false: closing the fd then deletes it). */
  readonly persistent: boolean;
  /** Default `tap`. */
  readonly mode?: 'tap' | 'tun';
  /** Create the device; EBUSY if the name exists. */
  readonly exclusive?: boolean;
  /** `IFF_MULTI_QUEUE` (attaching to a multi-queue device works without it). */
  readonly multiQueue?: boolean;
  /** `TUNSETOWNER`: the uid that may attach without CAP_NET_ADMIN. */
  readonly owner?: number;
  /** `TUNSETGROUP`: the gid whose members may attach without CAP_NET_ADMIN. */
  readonly group?: number;
  readonly path?: string;
}

/** The addon's exports. */
export interface RawAddon {
  readonly TapHandle: new (options: RawHandleOptions) => RawTapHandle;
  readonly LinkWatcher: new (options: RawLinkWatcherOptions) => RawLinkWatcher;
  /**
   * Sends one rtnetlink request on a fresh socket and returns the messages the kernel answered
   * with (empty for an ack); throws its error as a system error (`syscall: 'rtnetlink'`,
   * `request`: the message type, `path`: `subject`).
   */
  rtnetlinkRequest(message: Uint8Array, request: string, subject: string): Buffer;
  /** Attaches to (or creates) a device, sets owner and group, then its persistence; the fd is closed after. */
  setPersistent(options: RawPersistOptions): { name: string; flags: number };
  /** A user's uid or a group's gid (through NSS), undefined when there is none. */
  lookupId(kind: 'user' | 'group', name: string): number | undefined;
  /**
   * Creates the tap `name` (never attaching to an existing one; `%d` filled in) and returns its
   * fd, blocking and close-on-exec, owned by the caller.
   */
  openTapFd(name: string, path?: string): { fd: number; name: string };
  /**
   * A UDP socket bound to `local` (port 0: the kernel picks) and connected to `remote`,
   * non-blocking and close-on-exec: `[fd, bound port]`, the fd owned by the caller. Absent in
   * addon builds from before it.
   */
  openUdpSocket?(
    localFamily: 4 | 6,
    local: Uint8Array,
    localPort: number,
    remoteFamily: 4 | 6,
    remote: Uint8Array,
    remotePort: number,
  ): [fd: number, port: number];
  /** Two connected non-blocking SOCK_SEQPACKET fds (for tests: a frame-preserving fd pair). */
  seqpacketPair(): [number, number];
}

/** The environment variable that points at an addon to load instead of the package's own. */
export const ADDON_PATH_VARIABLE = 'TAPKIT_LINUX_ADDON';

const FUNCTIONS = [
  'TapHandle',
  'LinkWatcher',
  'rtnetlinkRequest',
  'setPersistent',
  'lookupId',
  'openTapFd',
  'seqpacketPair',
] as const;

/**
 * Loads the addon: from `TAPKIT_LINUX_ADDON` when set (and only from there), else the
 * package's own build or prebuild via node-gyp-build. Node caches loaded addons, so calling
 * this per open costs a few file lookups, and no state is kept here.
 */
export function loadAddon(env: Readonly<Record<string, string | undefined>> = process.env): RawAddon {
  return loadNativeAddon<RawAddon>({
    backend: 'linux-tap',
    file: 'tapkit_linux.node',
    // src/ and dist/ both sit one level below the package root.
    packageRoot: fileURLToPath(new URL('..', import.meta.url)),
    envVariable: ADDON_PATH_VARIABLE,
    env,
    require: createRequire(import.meta.url),
    functions: FUNCTIONS,
    buildHint: "Build it with 'npm run build -w @tapkit/linux-tap' (needs a C++ compiler and Python)",
  });
}
