/**
 * Persistent tap devices: prepared once by an administrator (root or CAP_NET_ADMIN) for a user
 * or group, then attached to without privileges (`linuxTap.open({ name, attach: true })`).
 * The programmatic form of `ip tuntap add dev NAME mode tap user USER`.
 *
 * @module
 */
import { TapError, TapErrorCode, checkInterfaceName, formatMac, resolveOpenOptions } from '@tapkit/core';
import { loadAddon, type RawAddon, type RawSystemError } from './addon.js';
import { BACKEND, openError } from './errors.js';
import { IFF_PERSIST, TAP_LIMITS, markInterface } from './port.js';
import { configureLink } from './link.js';
import { getLink } from './rtnetlink.js';

/** Options of {@link preparePersistentTap}. */
export interface PersistentTapOptions {
  /** Interface name, 1–15 characters of `[A-Za-z0-9_.-]`. Required. */
  name: string;
  /**
   * The user (uid, or name resolved through NSS) that may attach without CAP_NET_ADMIN. With
   * both `owner` and `group`, a process must match both. At least one of them is required: a
   * persistent device with neither can be attached to by anyone who can open /dev/net/tun.
   */
  owner?: number | string;
  /** The group (gid or name) whose members may attach without CAP_NET_ADMIN. */
  group?: number | string;
  /** MTU, 68–65521. Default 1500. */
  mtu?: number;
  /** MAC as `aa:bb:cc:dd:ee:ff` or 6 bytes. Default: the kernel's random one. */
  mac?: string | Uint8Array;
  /** CIDR addresses to assign (`10.0.0.1/24`, `fd00::1/64`). */
  addresses?: readonly string[];
  /** Bring the interface up (its carrier comes on when a process attaches). Default true. */
  up?: boolean;
  /** Make it multi-queue (`IFF_MULTI_QUEUE`), so that attachers can open several queues. Default false. */
  multiQueue?: boolean;
  /** Where `TAPKIT_LINUX_ADDON` is read from. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** What {@link preparePersistentTap} made. */
export interface PersistentTapInfo {
  readonly name: string;
  readonly mtu: number;
  readonly mac: string;
  readonly owner: number | undefined;
  readonly group: number | undefined;
}

function invalid(message: string): TapError {
  return new TapError(TapErrorCode.INVALID_OPTION, message, { backend: BACKEND });
}

/** A uid/gid from a number or a name. */
function resolveId(addon: RawAddon, kind: 'user' | 'group', value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const key = kind === 'user' ? 'owner' : 'group';
  if (typeof value === 'string' && /^\d+$/.test(value)) value = Number(value);
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value >= 0xffffffff) {
      throw invalid(`${key} must be an id from 0 to 4294967294, not ${value}`);
    }
    return value;
  }
  if (typeof value !== 'string' || value === '') throw invalid(`${key} must be a ${kind} name or id`);
  const id = addon.lookupId(kind, value);
  if (id === undefined) throw invalid(`${key}: there is no ${kind} named ${JSON.stringify(value)}`);
  return id;
}

/**
 * Creates a persistent tap device that `owner` (and/or members of `group`) can attach to without
 * privileges, configured as asked; the device stays after this returns, until
 * {@link removePersistentTap} (or `ip link del`, or a reboot). Needs CAP_NET_ADMIN.
 * Throws `ERR_TAP_NAME_IN_USE` when the name exists.
 *
 * @example
 * ```ts
 * // as root, once (a setup script, a systemd unit):
 * await preparePersistentTap({ name: 'tap-app', owner: 'app', addresses: ['10.0.0.1/24'] });
 * // as user app:
 * const dev = await linuxTap.open({ name: 'tap-app', attach: true });
 * try {
 *   // … read and write frames
 * } finally {
 *   await dev.close(); // or `await using dev = …` where that runs (TypeScript, Node.js ≥ 24)
 * }
 * ```
 */
export async function preparePersistentTap(options: PersistentTapOptions): Promise<PersistentTapInfo> {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  const name = checkInterfaceName(options.name);
  const { env, owner: ownerOption, group: groupOption, multiQueue, mtu, mac, addresses, up } = options;
  if (multiQueue !== undefined && typeof multiQueue !== 'boolean')
    throw invalid('multiQueue must be a boolean');
  const resolved = resolveOpenOptions({ name, mtu, mac, addresses, up }, TAP_LIMITS);
  const addon = loadAddon(env ?? process.env);
  const owner = resolveId(addon, 'user', ownerOption);
  const group = resolveId(addon, 'group', groupOption);
  if (owner === undefined && group === undefined) {
    throw invalid(
      'give an owner (user name or uid) or a group: a persistent device with neither can be attached to by ' +
        'any user who can open /dev/net/tun',
    );
  }
  try {
    addon.setPersistent({
      name,
      persistent: true,
      exclusive: true,
      multiQueue: multiQueue ?? false,
      owner,
      group,
    });
  } catch (error) {
    throw openError(error, `prepare persistent tap ${name}`);
  }
  try {
    const { index } = getLink(addon, name);
    configureLink(
      addon,
      index,
      name,
      {
        mtu: resolved.mtu,
        mac: mac === undefined ? undefined : resolved.mac,
        addresses: resolved.addresses,
        up: resolved.up || undefined,
      },
      (error, what) => openError(error, `${what} on ${name}`),
    );
    markInterface(name, { backend: BACKEND, persistent: true });
    const link = getLink(addon, index);
    return { name, mtu: link.mtu, mac: formatMac(link.mac), owner, group };
  } catch (error) {
    // Undo: a device that is not persistent any more goes with the fd setPersistent closes.
    try {
      addon.setPersistent({ name, persistent: false });
    } catch {
      // it is gone already
    }
    throw openError(error, `configure persistent tap ${name}`);
  }
}

/**
 * Deletes a persistent tap device (made by {@link preparePersistentTap} or `ip tuntap add`).
 * Resolves true when it deleted one, false when there was no such device. Throws
 * `ERR_TAP_NAME_IN_USE` while a process has it open (close it there, or `ip link del` it, which
 * ends that process's device), and `ERR_TAP_INVALID_OPTION` when `name` is not a persistent
 * tap device.
 * Needs CAP_NET_ADMIN, or to be the device's owner.
 */
export async function removePersistentTap(
  name: string,
  options: { env?: Readonly<Record<string, string | undefined>> } = {},
): Promise<boolean> {
  checkInterfaceName(name);
  const addon = loadAddon(options.env ?? process.env);
  const what = `remove persistent tap ${name}`;
  try {
    getLink(addon, name);
  } catch (error) {
    if ((error as Partial<RawSystemError>).code === 'ENODEV') return false;
    throw openError(error, what);
  }
  let flags: number;
  try {
    // Not persistent any more, the device goes when the addon closes its fd. (Should the name
    // have vanished meanwhile, this made a device of its own, which goes the same way.)
    flags = addon.setPersistent({ name, persistent: false }).flags;
  } catch (error) {
    const sys = error as Partial<RawSystemError>;
    if (sys.code === 'EBUSY') {
      throw new TapError(
        TapErrorCode.NAME_IN_USE,
        `${what}: a process has it open; close it there first (or 'ip link del ${name}', which ends that ` +
          "process's device)",
        {
          backend: BACKEND,
          cause: error,
          osCode: 'EBUSY',
          ...(sys.errno !== undefined && { errno: sys.errno }),
        },
      );
    }
    if (sys.code === 'EINVAL' && sys.request === 'TUNSETIFF') {
      throw invalid(`${what}: ${name} is not a tap device`);
    }
    throw openError(error, what);
  }
  // It existed, but was not persistent: a multi-queue device another process has open, whose
  // queue this borrowed for a moment and gave back.
  if ((flags & IFF_PERSIST) === 0) throw invalid(`${what}: ${name} is not a persistent device`);
  return true;
}
