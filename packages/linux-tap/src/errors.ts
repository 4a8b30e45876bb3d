/**
 * The addon's system errors, as TapErrors that say what to do.
 *
 * @module
 */
import { readFileSync, statSync } from 'node:fs';
import {
  TapError,
  TapErrorCode,
  fromSystemError,
  isTapError,
  portErrors,
  systemErrorDetails,
  systemErrorFields,
} from '@tapkit/core';

export const BACKEND = 'linux-tap';

/** The request an MTU change is made with (what its errors carry as `request`). */
export const MTU_REQUEST = 'RTM_SETLINK IFLA_MTU';

/** What a permission error on Linux asks for. */
export const PERMISSION_HINT =
  'Creating a tap/tun device needs CAP_NET_ADMIN: run as root, or grant the capability ' +
  '(e.g. setcap cap_net_admin+ep on the node binary, or AmbientCapabilities=CAP_NET_ADMIN in a ' +
  'systemd unit). Without it, only a persistent device created for this user beforehand ' +
  "('ip tuntap add dev NAME mode tap user USER') can be attached to.";

const CAP_NET_ADMIN = 12;

/** True when the effective capability set (from /proc/self/status) holds CAP_NET_ADMIN. */
export function hasNetAdmin(): boolean {
  const status = readFileSync('/proc/self/status', 'utf8');
  const hex = /^CapEff:\s*([0-9a-f]+)$/im.exec(status)?.[1];
  return hex !== undefined && ((BigInt(`0x${hex}`) >> BigInt(CAP_NET_ADMIN)) & 1n) === 1n;
}

/** Why this process may not open the clone device `path`, and what to do about it. */
export interface TunAccessProblem {
  readonly reason: string;
  readonly fix: readonly string[];
}

/**
 * When the clone device's mode keeps this process out (a `0600` /dev/net/tun, as some systems
 * ship it), says so: CAP_NET_ADMIN does not override file permissions, so asking for it would be
 * the wrong advice. Undefined when the mode is not the cause (or cannot be read).
 */
export function tunAccessProblem(path: string): TunAccessProblem | undefined {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return undefined;
  }
  const uid = process.getuid?.();
  if (uid === undefined || uid === 0) return undefined;
  const groups = new Set([process.getgid?.(), ...(process.getgroups?.() ?? [])]);
  const bits = stat.uid === uid ? stat.mode >> 6 : groups.has(stat.gid) ? stat.mode >> 3 : stat.mode;
  if ((bits & 6) === 6) return undefined;
  const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
  let admin = false;
  try {
    admin = hasNetAdmin();
  } catch {
    // no /proc: say nothing about the capability
  }
  return {
    reason:
      `${path} is mode ${mode} (owner uid ${stat.uid}, group gid ${stat.gid}), so this process (uid ${uid}) ` +
      'cannot open it for reading and writing; CAP_NET_ADMIN does not override file permissions' +
      (admin ? ' (this process has CAP_NET_ADMIN already)' : ', and this process lacks CAP_NET_ADMIN too'),
    fix: [
      `Make the device node usable by every user, as most distributions ship it: sudo chmod 0666 ${path}`,
      `Keep that across reboots with a udev rule: echo 'KERNEL=="tun", MODE="0666"' | sudo tee /etc/udev/rules.d/60-tun.rules`,
      ...(admin ? [] : [PERMISSION_HINT]),
    ],
  };
}

// errno names after which the device is no longer there: EBADFD is what a tun fd returns once
// its interface was deleted (ip link del, or its network namespace went away).
const GONE = new Set(['EBADFD', 'ENODEV', 'ENXIO']);

/**
 * An error from opening or configuring a device. `what` names the operation (`open tap
 * device tapkit%d`).
 */
export function openError(error: unknown, what: string): TapError {
  if (isTapError(error)) return error;
  const sys = systemErrorFields(error);
  const reason = `${sys.code ?? 'error'}${sys.request ? ` from ${sys.request}` : ''}`;
  if (sys.syscall === 'open' && (sys.code === 'ENOENT' || sys.code === 'ENODEV' || sys.code === 'ENXIO')) {
    return new TapError(
      TapErrorCode.KERNEL_SUPPORT_MISSING,
      `${what}: ${sys.path ?? '/dev/net/tun'} is not usable (${reason}): the kernel's tun/tap support is missing. ` +
        "Load the tun module ('modprobe tun'); in a container, pass the device in (e.g. 'docker run --device /dev/net/tun --cap-add NET_ADMIN').",
      systemErrorDetails(error, BACKEND),
    );
  }
  if (sys.syscall === 'open' && (sys.code === 'EACCES' || sys.code === 'EPERM')) {
    const path = sys.path ?? '/dev/net/tun';
    const problem = tunAccessProblem(path);
    return new TapError(
      TapErrorCode.PERMISSION_DENIED,
      problem
        ? `${what}: ${problem.reason} (${reason}). ${problem.fix.join('. ')}`
        : `${what}: ${path} cannot be opened by this user (${reason}). ${PERMISSION_HINT}`,
      systemErrorDetails(error, BACKEND),
    );
  }
  if (sys.code === 'EINVAL' && sys.request === 'TUNSETIFF') {
    return new TapError(
      TapErrorCode.INVALID_OPTION,
      `${what}: the kernel refused the interface name (${reason}): it is not a valid name, or it belongs to ` +
        'an interface of another kind or with other queue settings',
      systemErrorDetails(error, BACKEND),
    );
  }
  if (sys.code === 'EINVAL' && sys.request === MTU_REQUEST) {
    return new TapError(
      TapErrorCode.MTU_UNSUPPORTED,
      `${what}: the kernel refused the MTU (${reason})`,
      systemErrorDetails(error, BACKEND),
    );
  }
  if (sys.request === 'RTM_NEWADDR') {
    if (sys.code !== 'EPERM' && sys.code !== 'EACCES') {
      return new TapError(
        TapErrorCode.INVALID_OPTION,
        `${what}: the kernel refused the address (${reason})` +
          (sys.code === 'EAFNOSUPPORT' ? ': IPv6 is disabled on this system' : ''),
        systemErrorDetails(error, BACKEND),
      );
    }
  }
  return fromSystemError(error, what, { backend: BACKEND, permissionHint: PERMISSION_HINT });
}

/** Who may attach to a tun/tap device, from sysfs (owner and group are -1 when unset). */
function attachers(name: string): string {
  const read = (file: string): string | undefined => {
    try {
      const value = readFileSync(`/sys/class/net/${name}/${file}`, 'utf8').trim();
      return value === '-1' ? undefined : value;
    } catch {
      return undefined;
    }
  };
  const owner = read('owner');
  const group = read('group');
  if (owner === undefined && group === undefined) return 'processes with CAP_NET_ADMIN';
  const who = `processes${owner ? ` of uid ${owner}` : ''}${group ? ` in gid ${group}` : ''}`;
  return `${who}, or with CAP_NET_ADMIN`;
}

/**
 * An error from attaching to a persistent device (`what` absent) or from changing a setting of
 * one after attaching (`what` names the step).
 */
export function attachError(error: unknown, name: string, what?: string): TapError {
  if (isTapError(error)) return error;
  const sys = systemErrorFields(error);
  const reason = `${sys.code ?? 'error'}${sys.request ? ` from ${sys.request}` : ''}`;
  if (what !== undefined) {
    if (sys.code === 'EPERM' || sys.code === 'EACCES') {
      return new TapError(
        TapErrorCode.PERMISSION_DENIED,
        `${what} on ${name}: changing an attached device needs CAP_NET_ADMIN (${reason}). Leave mtu, mac, ` +
          'addresses and up out to use it as it was prepared, or give them to preparePersistentTap()',
        systemErrorDetails(error, BACKEND),
      );
    }
    return openError(error, `${what} on ${name}`);
  }
  const at = `attach to ${name}`;
  if (sys.code === 'ENODEV' && sys.request === 'RTM_GETLINK') {
    return new TapError(
      TapErrorCode.DEVICE_GONE,
      `${at}: there is no interface ${name} (${reason}). Prepare it first, as root: preparePersistentTap() ` +
        `or 'ip tuntap add dev ${name} mode tap user USER'`,
      systemErrorDetails(error, BACKEND),
    );
  }
  if (sys.code === 'EBUSY') {
    return new TapError(
      TapErrorCode.NAME_IN_USE,
      `${at}: another process has it open (${reason}); a device that is not multi-queue takes one at a time`,
      systemErrorDetails(error, BACKEND),
    );
  }
  if (sys.request === 'TUNSETIFF' && (sys.code === 'EPERM' || sys.code === 'EACCES')) {
    const uid = process.getuid?.() ?? '?';
    return new TapError(
      TapErrorCode.PERMISSION_DENIED,
      `${at}: this process (uid ${uid}) may not (${reason}): it can be attached to by ${attachers(name)}`,
      systemErrorDetails(error, BACKEND),
    );
  }
  if (sys.syscall === 'open' && (sys.code === 'EACCES' || sys.code === 'EPERM')) {
    return new TapError(
      TapErrorCode.PERMISSION_DENIED,
      `${at}: ${sys.path ?? '/dev/net/tun'} cannot be opened by this user (${reason}); attaching needs read ` +
        'and write access to it (mode 0666, the usual default, or a group this user is in)',
      systemErrorDetails(error, BACKEND),
    );
  }
  if (sys.code === 'EINVAL' && sys.request === 'TUNSETIFF') {
    return new TapError(
      TapErrorCode.INVALID_OPTION,
      `${at}: the kernel refused (${reason}): it is not a tap device, or it is not multi-queue and more ` +
        'than one queue was asked for',
      systemErrorDetails(error, BACKEND),
    );
  }
  return openError(error, at);
}

export const { isGone, ioError, closedError } = portErrors({
  backend: BACKEND,
  gone: GONE,
  goneSubject: 'the interface is gone',
  goneHint: ': it was deleted, or its network namespace was',
  permissionHint: PERMISSION_HINT,
});

/** An error from changing an open device's interface (`setMtu`, `addAddress`…): `what` says which. */
export function changeError(error: unknown, what: string): TapError {
  if (isTapError(error)) return error;
  const sys = systemErrorFields(error);
  const details = systemErrorDetails(error, BACKEND);
  switch (sys.code) {
    case 'EPERM':
    case 'EACCES':
      return new TapError(
        TapErrorCode.PERMISSION_DENIED,
        `${what}: permission denied. Changing an interface needs CAP_NET_ADMIN (run as root, or grant the capability)`,
        details,
      );
    case 'EEXIST':
      return new TapError(
        TapErrorCode.INVALID_ARGUMENT,
        `${what}: the interface has that address already`,
        details,
      );
    case 'EADDRNOTAVAIL':
      return new TapError(
        TapErrorCode.INVALID_ARGUMENT,
        `${what}: the interface has no such address`,
        details,
      );
    case 'EINVAL':
      if (sys.request === MTU_REQUEST) {
        return new TapError(TapErrorCode.MTU_UNSUPPORTED, `${what}: the kernel refused the MTU`, details);
      }
      return fromSystemError(error, what, { backend: BACKEND });
    case 'ENODEV':
      // Moved to another namespace, the device still works; only its settings are out of reach.
      return new TapError(
        TapErrorCode.SYSTEM,
        `${what}: the interface is not in this thread's network namespace (moved, or deleted); ` +
          'change it where it is (ip -n NAMESPACE link set …)',
        details,
      );
    default:
      return fromSystemError(error, what, { backend: BACKEND });
  }
}
