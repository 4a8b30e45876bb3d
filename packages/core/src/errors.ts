/**
 * Every error tapkit raises is a {@link TapError} with a stable string `code`.
 * Match on `code` (or use {@link isTapError}), never on the message.
 *
 * @module
 */

/** The stable error codes. New codes may be added; existing ones never change meaning. */
export const TapErrorCode = {
  /** An option passed to open (name, MTU, MAC, address, queue size…) is invalid. */
  INVALID_OPTION: 'ERR_TAP_INVALID_OPTION',
  /**
   * An open option the chosen backend does not support: another backend's option (`offload` on
   * the mock) or one no backend knows (a typo). The message names the backend and its options.
   */
  UNSUPPORTED_OPTION: 'ERR_TAP_UNSUPPORTED_OPTION',
  /** An argument to a device method (a frame, a batch, a count) is invalid. */
  INVALID_ARGUMENT: 'ERR_TAP_INVALID_ARGUMENT',
  /** A frame is longer than the device accepts (`mtu + 14`, `+ 4` with an 802.1Q tag). */
  FRAME_TOO_LARGE: 'ERR_TAP_FRAME_TOO_LARGE',
  /** A frame is shorter than an Ethernet header (14 bytes). */
  FRAME_TOO_SHORT: 'ERR_TAP_FRAME_TOO_SHORT',
  /** The device was closed: a write after close, or a read pending when close() was called. */
  CLOSED: 'ERR_TAP_CLOSED',
  /**
   * The backend cannot do the operation asked for (e.g. `setMtu` on a backend that cannot change
   * a live interface's MTU); the message names the backend.
   */
  UNSUPPORTED_OPERATION: 'ERR_TAP_UNSUPPORTED_OPERATION',
  /** The device is already doing what was asked for (a second `pipeTo` from one device). */
  BUSY: 'ERR_TAP_BUSY',
  /** The operation was aborted through its AbortSignal. */
  ABORTED: 'ERR_TAP_ABORTED',
  /** The device disappeared underneath tapkit (interface deleted, port disconnected). */
  DEVICE_GONE: 'ERR_TAP_DEVICE_GONE',
  /** The process lacks a privilege the operation needs; the message says which. */
  PERMISSION_DENIED: 'ERR_TAP_PERMISSION_DENIED',
  /** An interface with the requested name exists already and cannot be opened. */
  NAME_IN_USE: 'ERR_TAP_NAME_IN_USE',
  /** The backend cannot run on this platform (wrong OS, OS too old). */
  UNSUPPORTED_PLATFORM: 'ERR_TAP_UNSUPPORTED_PLATFORM',
  /** The backend's package is not installed, or its native addon cannot be loaded. */
  BACKEND_NOT_INSTALLED: 'ERR_TAP_BACKEND_NOT_INSTALLED',
  /** No backend could be opened; `errors` on the error lists each one tried and why. */
  NO_BACKEND: 'ERR_TAP_NO_BACKEND',
  /** An unknown backend name was asked for. */
  UNKNOWN_BACKEND: 'ERR_TAP_UNKNOWN_BACKEND',
  /** The kernel facility the backend needs is missing (no /dev/net/tun, no tun module). */
  KERNEL_SUPPORT_MISSING: 'ERR_TAP_KERNEL_SUPPORT_MISSING',
  /** The requested MTU exceeds what the device or kernel can carry. */
  MTU_UNSUPPORTED: 'ERR_TAP_MTU_UNSUPPORTED',
  /** Bytes could not be decoded as the protocol asked for (codecs). */
  MALFORMED: 'ERR_TAP_MALFORMED',
  /** The operating system refused an operation for another reason; see `errno`/`syscall`. */
  SYSTEM: 'ERR_TAP_SYSTEM',
} as const;

/** One of the {@link TapErrorCode} values. */
export type TapErrorCodeValue = (typeof TapErrorCode)[keyof typeof TapErrorCode];

/** Extra facts an error may carry. */
export interface TapErrorDetails {
  /** The OS error number, when the OS said why. */
  errno?: number;
  /** The OS error name (`EPERM`, `EBUSY`…), when the OS said why. */
  osCode?: string;
  /** The system call that failed. */
  syscall?: string;
  /** The underlying error. */
  cause?: unknown;
  /** For {@link TapErrorCode.NO_BACKEND}: the error each backend tried gave. */
  errors?: readonly TapError[];
  /** The backend that raised the error, when there is one. */
  backend?: string;
}

// A registered symbol, so that isTapError works across copies of this package and realms.
const TAP_ERROR_BRAND = Symbol.for('tapkit.TapError');

/** The one error class of tapkit. */
export class TapError extends Error {
  /** Stable, machine-readable code: one of {@link TapErrorCode}. */
  readonly code: TapErrorCodeValue;
  readonly errno?: number;
  readonly osCode?: string;
  readonly syscall?: string;
  readonly backend?: string;
  readonly errors?: readonly TapError[];

  constructor(code: TapErrorCodeValue, message: string, details: TapErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TapError';
    this.code = code;
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.osCode !== undefined) this.osCode = details.osCode;
    if (details.syscall !== undefined) this.syscall = details.syscall;
    if (details.backend !== undefined) this.backend = details.backend;
    if (details.errors !== undefined) this.errors = details.errors;
    Object.defineProperty(this, TAP_ERROR_BRAND, { value: true });
  }
}

/**
 * True when `err` is a TapError (from any copy of tapkit, in any realm), and, when `code` is
 * given, has that code. Does not rely on `instanceof`.
 */
export function isTapError(err: unknown, code?: TapErrorCodeValue): err is TapError {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as Record<symbol, unknown>)[TAP_ERROR_BRAND] !== true) {
    // Errors that crossed a structured clone (worker threads) lose the symbol: accept the shape.
    const shape = err as { name?: unknown; code?: unknown };
    if (shape.name !== 'TapError' || typeof shape.code !== 'string' || !shape.code.startsWith('ERR_TAP_')) {
      return false;
    }
  }
  return code === undefined || (err as TapError).code === code;
}

/**
 * The system error every tapkit native addon throws (and Node's own system errors fit):
 * `{ code: 'EPERM', errno: -1, syscall: 'ioctl', request: 'TUNSETIFF', path: 'tap0' }`.
 */
export interface NativeSystemError extends Error {
  /** `EPERM`, `EBUSY`… */
  readonly code: string;
  /** Negative, as in Node's system errors (`-1` for EPERM). */
  readonly errno: number;
  readonly syscall: string;
  /** For `ioctl`, `sysctl`, `setsockopt`: the request (`TUNSETIFF`, `SIOCSIFMTU`…). */
  readonly request?: string;
  /** The file or interface the call was about. */
  readonly path?: string;
  /** For a batch write: the frame that failed (the ones before it were sent). */
  readonly index?: number;
}

/** The fields of a {@link NativeSystemError} that `error` has (none when it is not an object). */
export function systemErrorFields(error: unknown): Partial<NativeSystemError> {
  return typeof error === 'object' && error !== null ? error : {};
}

/** TapError details (cause, errno, osCode, syscall, backend) taken from an OS error. */
export function systemErrorDetails(error: unknown, backend?: string): TapErrorDetails {
  const sys = systemErrorFields(error);
  const details: TapErrorDetails = { cause: error };
  if (typeof sys.errno === 'number') details.errno = sys.errno;
  if (typeof sys.code === 'string') details.osCode = sys.code;
  if (typeof sys.syscall === 'string') details.syscall = sys.syscall;
  if (backend !== undefined) details.backend = backend;
  return details;
}

/**
 * Turns an OS error (`{ code: 'EPERM', errno, syscall }`) into a TapError with a stable code and
 * a message that says what to do. `what` names the operation ("open tap0"); `permissionHint`
 * says what privilege is needed.
 */
export function fromSystemError(
  err: unknown,
  what: string,
  options: { backend?: string; permissionHint?: string } = {},
): TapError {
  if (isTapError(err)) return err;
  const details = systemErrorDetails(err, options.backend);
  const { osCode, syscall } = details;
  const message = systemErrorFields(err).message;
  const reason = typeof message === 'string' ? message : String(err);
  const at = syscall ? ` (${syscall})` : '';
  switch (osCode) {
    case 'EPERM':
    case 'EACCES':
      return new TapError(
        TapErrorCode.PERMISSION_DENIED,
        `${what}: permission denied${at}. ${options.permissionHint ?? 'Run as root.'}`,
        details,
      );
    case 'EBUSY':
    case 'EEXIST':
      return new TapError(
        TapErrorCode.NAME_IN_USE,
        `${what}: the interface is in use or exists already with other settings${at}`,
        details,
      );
    case 'ENODEV':
    case 'ENXIO':
      return new TapError(TapErrorCode.DEVICE_GONE, `${what}: no such device${at}: ${reason}`, details);
    default:
      return new TapError(TapErrorCode.SYSTEM, `${what} failed${at}: ${reason}`, details);
  }
}

/** What {@link portErrors} needs to know of a backend. */
export interface PortErrorOptions {
  readonly backend: string;
  /** The OS codes (`ENXIO`…) after which the device is no longer there. */
  readonly gone: ReadonlySet<string>;
  /** What going away means for this backend: "the utun is gone", "the interface is gone". */
  readonly goneSubject: string;
  /** Said after the errno, e.g. ": it was deleted, or its network namespace was". Optional. */
  readonly goneHint?: string;
  readonly permissionHint: string;
}

/** The I/O error helpers a backend's port uses, the same for every backend but for its words. */
export interface PortErrors {
  /** True when an I/O error means the device is gone. */
  readonly isGone: (error: unknown) => boolean;
  /** An error from reading or writing an open device: DEVICE_GONE, or as {@link fromSystemError}. */
  readonly ioError: (error: unknown, name: string) => TapError;
  /** Thrown by a port's methods after close. */
  readonly closedError: (name: string) => TapError;
}

/** A backend's {@link PortErrors}. */
export function portErrors(options: PortErrorOptions): PortErrors {
  const { backend, gone, goneSubject, goneHint = '', permissionHint } = options;
  const isGone = (error: unknown): boolean => {
    const code = systemErrorFields(error).code;
    return code !== undefined && gone.has(code);
  };
  return {
    isGone,
    ioError: (error, name) => {
      if (isTapError(error)) return error;
      const sys = systemErrorFields(error);
      if (isGone(error)) {
        return new TapError(
          TapErrorCode.DEVICE_GONE,
          `${name}: ${goneSubject} (${sys.code} from ${sys.syscall ?? 'I/O'})${goneHint}`,
          systemErrorDetails(error, backend),
        );
      }
      return fromSystemError(error, `${sys.syscall ?? 'I/O'} on ${name}`, { backend, permissionHint });
    },
    closedError: (name) => new TapError(TapErrorCode.CLOSED, `${name} is closed`, { backend }),
  };
}
