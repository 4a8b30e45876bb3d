/**
 * The addon's system errors, as TapErrors that say what to do.
 *
 * @module
 */
import { TapError, TapErrorCode, fromSystemError, isTapError, type TapErrorDetails } from '@tapkit/core';
import type { RawSystemError } from './addon.js';

export const BACKEND = 'linux-tap';

/** What a permission error on Linux asks for. */
export const PERMISSION_HINT =
  'Creating a tap/tun device needs CAP_NET_ADMIN: run as root, or grant the capability ' +
  '(e.g. setcap cap_net_admin+ep on the node binary, or AmbientCapabilities=CAP_NET_ADMIN in a ' +
  'systemd unit). Without it, only a persistent device created for this user beforehand ' +
  "('ip tuntap add dev NAME mode tap user USER') can be attached to.";

// errno names after which the device is no longer there: EBADFD is what a tun fd returns once
// its interface was deleted (ip link del, or its network namespace went away).
const GONE = new Set(['EBADFD', 'ENODEV', 'ENXIO']);

function raw(error: unknown): Partial<RawSystemError> {
  return typeof error === 'object' && error !== null ? error : {};
}

function details(error: unknown): TapErrorDetails {
  const sys = raw(error);
  return {
    cause: error,
    backend: BACKEND,
    ...(typeof sys.errno === 'number' ? { errno: sys.errno } : {}),
    ...(typeof sys.code === 'string' ? { osCode: sys.code } : {}),
    ...(typeof sys.syscall === 'string' ? { syscall: sys.syscall } : {}),
  };
}

/**
 * An error from opening or configuring a device. `what` names the operation (`open tap
 * device tapkit%d`).
 */
export function openError(error: unknown, what: string): TapError {
  if (isTapError(error)) return error;
  const sys = raw(error);
  const reason = `${sys.code ?? 'error'}${sys.request ? ` from ${sys.request}` : ''}`;
  if (sys.syscall === 'open' && (sys.code === 'ENOENT' || sys.code === 'ENODEV' || sys.code === 'ENXIO')) {
    return new TapError(
      TapErrorCode.KERNEL_SUPPORT_MISSING,
      `${what}: ${sys.path ?? '/dev/net/tun'} is not usable (${reason}): the kernel's tun/tap support is missing. ` +
        "Load the tun module ('modprobe tun'); in a container, pass the device in (e.g. 'docker run --device /dev/net/tun --cap-add NET_ADMIN').",
      details(error),
    );
  }
  if (sys.syscall === 'open' && (sys.code === 'EACCES' || sys.code === 'EPERM')) {
    return new TapError(
      TapErrorCode.PERMISSION_DENIED,
      `${what}: ${sys.path ?? '/dev/net/tun'} cannot be opened by this user (${reason}). ${PERMISSION_HINT}`,
      details(error),
    );
  }
  if (sys.code === 'EINVAL' && sys.request === 'TUNSETIFF') {
    return new TapError(
      TapErrorCode.INVALID_OPTION,
      `${what}: the kernel refused the interface name (${reason}): it is not a valid name, or it belongs to ` +
        'an interface of another kind or with other queue settings',
      details(error),
    );
  }
  if (sys.code === 'EINVAL' && sys.request === 'SIOCSIFMTU') {
    return new TapError(
      TapErrorCode.MTU_UNSUPPORTED,
      `${what}: the kernel refused the MTU (${reason})`,
      details(error),
    );
  }
  if (sys.request === 'SIOCSIFADDR' || sys.request === 'SIOCSIFNETMASK') {
    if (sys.code !== 'EPERM' && sys.code !== 'EACCES') {
      return new TapError(
        TapErrorCode.INVALID_OPTION,
        `${what}: the kernel refused the address (${reason})` +
          (sys.code === 'EAFNOSUPPORT' ? ': IPv6 is disabled on this system' : ''),
        details(error),
      );
    }
  }
  return fromSystemError(error, what, { backend: BACKEND, permissionHint: PERMISSION_HINT });
}

/** True when an I/O error means the interface is gone. */
export function isGone(error: unknown): boolean {
  const code = raw(error).code;
  return code !== undefined && GONE.has(code);
}

/** An error from reading or writing an open device. */
export function ioError(error: unknown, name: string): TapError {
  if (isTapError(error)) return error;
  const sys = raw(error);
  if (isGone(error)) {
    return new TapError(
      TapErrorCode.DEVICE_GONE,
      `${name}: the interface is gone (${sys.code} from ${sys.syscall ?? 'I/O'}): it was deleted, or its network namespace was`,
      details(error),
    );
  }
  return fromSystemError(error, `${sys.syscall ?? 'I/O'} on ${name}`, {
    backend: BACKEND,
    permissionHint: PERMISSION_HINT,
  });
}

/** Thrown by a port's methods after close. */
export function closedError(name: string): TapError {
  return new TapError(TapErrorCode.CLOSED, `${name} is closed`, { backend: BACKEND });
}
