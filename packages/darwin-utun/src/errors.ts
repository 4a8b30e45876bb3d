/**
 * System errors from utun calls, as TapErrors that say what to do.
 *
 * @module
 */
import {
  TapError,
  TapErrorCode,
  fromSystemError,
  isTapError,
  portErrors,
  systemErrorDetails,
  systemErrorFields,
} from '@tapkit/core';

export const BACKEND = 'darwin-utun';

/** What a permission error asks for. */
export const PERMISSION_HINT =
  'Creating a utun needs root (the utun kernel control is privileged): run the process with sudo. ' +
  'darwin-feth needs root too.';

// After these the interface (or its socket) is no longer there.
const GONE = new Set(['ENXIO', 'ENODEV', 'ENOTCONN', 'EPIPE', 'EBADF']);
// The kernel had no room for a packet (utun's input queue or mbufs): like a NIC's full ring.
const NO_BUFFER = new Set(['ENOBUFS', 'ENOSPC']);

/** An error from creating or configuring a utun; `what` names the step (`create utun3`). */
export function openError(error: unknown, what: string): TapError {
  if (isTapError(error)) return error;
  const sys = systemErrorFields(error);
  const reason = `${sys.code ?? 'error'}${sys.request ? ` from ${sys.request}` : ''}`;
  if (sys.syscall === 'connect' && sys.code === 'EBUSY') {
    return new TapError(
      TapErrorCode.NAME_IN_USE,
      `${what}: that utun unit is in use by another process (${reason}); ask for another name, or none`,
      systemErrorDetails(error, BACKEND),
    );
  }
  if (sys.request === 'CTLIOCGINFO' && (sys.code === 'ENOENT' || sys.code === 'ENOTSUP')) {
    return new TapError(
      TapErrorCode.KERNEL_SUPPORT_MISSING,
      `${what}: the kernel has no utun control (${reason})`,
      systemErrorDetails(error, BACKEND),
    );
  }
  if (sys.request === 'SIOCSIFMTU' && sys.code === 'EINVAL') {
    return new TapError(TapErrorCode.MTU_UNSUPPORTED, `${what}: the kernel refused the MTU (${reason})`, {
      ...systemErrorDetails(error, BACKEND),
    });
  }
  if ((sys.request === 'SIOCAIFADDR' || sys.request === 'SIOCAIFADDR_IN6') && sys.code === 'EINVAL') {
    return new TapError(
      TapErrorCode.INVALID_OPTION,
      `${what}: the kernel refused the address (${reason})`,
      systemErrorDetails(error, BACKEND),
    );
  }
  if ((sys.request === 'SIOCDIFADDR' || sys.request === 'SIOCDIFADDR_IN6') && sys.code === 'EADDRNOTAVAIL') {
    return new TapError(
      TapErrorCode.INVALID_ARGUMENT,
      `${what}: the interface has no such address (${reason})`,
      systemErrorDetails(error, BACKEND),
    );
  }
  return fromSystemError(error, what, { backend: BACKEND, permissionHint: PERMISSION_HINT });
}

export const { isGone, ioError, closedError } = portErrors({
  backend: BACKEND,
  gone: GONE,
  goneSubject: 'the utun is gone',
  permissionHint: PERMISSION_HINT,
});

/** True when the kernel refused a packet for want of buffers: a drop, not a failure. */
export function isNoBuffer(error: unknown): boolean {
  const code = systemErrorFields(error).code;
  return code !== undefined && NO_BUFFER.has(code);
}
