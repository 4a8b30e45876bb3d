/**
 * System errors from the darwin calls, as TapErrors that say what happened and what to do.
 *
 * @module
 */
import {
  TapError,
  TapErrorCode,
  fromSystemError,
  isTapError,
  systemErrorDetails,
  systemErrorFields,
  type NativeSystemError,
} from '@tapkit/core';
import { BACKEND, MAX_MTU_SYSCTL } from './facts.js';

/** What a permission error on macOS asks for. */
export const PERMISSION_HINT =
  'darwin-feth needs root: creating and configuring feth interfaces (SIOCIFCREATE2, SIOCSDRVSPEC), ' +
  `setting ${MAX_MTU_SYSCTL}, opening /dev/bpf* and AF_NDRV sockets are all root-only on macOS. ` +
  'Run the program with sudo; read access to /dev/bpf* (e.g. ChmodBPF) alone is not enough.';

/** `EBUSY from ioctl SIOCSDRVSPEC` */
function reason(sys: Partial<NativeSystemError>): string {
  const call = sys.request ? `${sys.syscall ?? 'call'} ${sys.request}` : (sys.syscall ?? 'call');
  return `${sys.code ?? 'error'} from ${call}`;
}

const GONE = new Set(['ENXIO', 'ENODEV', 'EPIPE', 'EADDRNOTAVAIL']);

/**
 * Maps an error from a {@link DarwinSystem} call to a TapError. `what` names the operation
 * (`create feth10000`); the code depends on the errno and on the call that failed.
 */
export function darwinError(error: unknown, what: string): TapError {
  if (isTapError(error)) return error;
  const sys = systemErrorFields(error);
  const code = sys.code;
  const request = sys.request;
  const why = reason(sys);
  const make = (tapCode: TapError['code'], message: string) =>
    new TapError(tapCode, `${what}: ${message} (${why})`, systemErrorDetails(error, BACKEND));

  if (code === 'EPERM' || code === 'EACCES') {
    return make(TapErrorCode.PERMISSION_DENIED, `permission denied. ${PERMISSION_HINT}`);
  }
  switch (request) {
    case 'SIOCIFCREATE2':
      if (code === 'EEXIST')
        return make(TapErrorCode.NAME_IN_USE, 'an interface with this name exists already');
      if (code === 'EINVAL') {
        return make(
          TapErrorCode.KERNEL_SUPPORT_MISSING,
          'this kernel cannot create feth interfaces (macOS 10.13 or later is needed)',
        );
      }
      if (code === 'ENXIO') return make(TapErrorCode.INVALID_OPTION, "the unit is above the kernel's limit");
      break;
    case 'SIOCSDRVSPEC':
      // feth_set_drvspec / feth_config: the three ways peering fails.
      if (code === 'EBUSY') {
        return make(
          TapErrorCode.NAME_IN_USE,
          'the feth is already peered (another program is using it) or is being destroyed',
        );
      }
      if (code === 'ENXIO') return make(TapErrorCode.DEVICE_GONE, 'the peer interface does not exist');
      if (code === 'EINVAL') {
        return make(TapErrorCode.SYSTEM, 'the kernel refused the peering request: the peer is not a feth');
      }
      break;
    case 'SIOCSIFMTU':
      if (code === 'EINVAL') {
        return make(
          TapErrorCode.MTU_UNSUPPORTED,
          "the kernel refused the MTU: it is above the interface's ceiling",
        );
      }
      break;
    case MAX_MTU_SYSCTL:
      if (code === 'EINVAL') {
        return make(TapErrorCode.MTU_UNSUPPORTED, `the kernel refused this value of ${MAX_MTU_SYSCTL}`);
      }
      break;
    case 'SIOCAIFADDR':
    case 'SIOCAIFADDR_IN6':
      return make(TapErrorCode.INVALID_OPTION, 'the kernel refused the address');
    case 'SIOCDIFADDR':
    case 'SIOCDIFADDR_IN6':
      if (code === 'EADDRNOTAVAIL')
        return make(TapErrorCode.INVALID_ARGUMENT, 'the interface has no such address');
      if (code === 'EINVAL')
        return make(TapErrorCode.INVALID_ARGUMENT, 'the kernel refused to remove the address');
      break;
  }
  if (sys.syscall === 'open' && code === 'EBUSY') {
    return make(TapErrorCode.SYSTEM, 'every /dev/bpf device is in use');
  }
  if (sys.syscall === 'socket' && (code === 'EAFNOSUPPORT' || code === 'EPROTONOSUPPORT')) {
    return make(TapErrorCode.KERNEL_SUPPORT_MISSING, 'this kernel has no AF_NDRV sockets');
  }
  if (code === 'EMSGSIZE') {
    return make(TapErrorCode.FRAME_TOO_LARGE, "the frame is larger than the NDRV socket's send buffer");
  }
  if (code !== undefined && GONE.has(code)) {
    return make(TapErrorCode.DEVICE_GONE, 'the interface is gone');
  }
  return fromSystemError(error, what, { backend: BACKEND, permissionHint: PERMISSION_HINT });
}

/** An error about the darwin-feth backend itself, not from a system call. */
export function backendError(code: TapError['code'], message: string, cause?: unknown): TapError {
  return new TapError(
    code,
    `${BACKEND}: ${message}`,
    cause === undefined ? { backend: BACKEND } : { backend: BACKEND, cause },
  );
}
