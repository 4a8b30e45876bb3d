/**
 * Handing a device to a process that cannot open one: a privileged helper opens and configures
 * it and passes the fd on (child stdio, `SCM_RIGHTS`, systemd), where `linuxTap.open({ fd })`
 * adopts it — or any other program that reads a tap fd.
 *
 * @module
 */
import { closeSync } from 'node:fs';
import { abortError, checkOptionNames, resolveOpenOptions, type TapOpenOptions } from '@tapkit/core';
import { loadAddon } from './addon.js';
import { BACKEND, openError } from './errors.js';
import { configureLink } from './link.js';
import { TAP_LIMITS, markInterface, newDeviceConfig } from './port.js';
import { getLink } from './rtnetlink.js';

/** Options of {@link openTapFd}: the device's settings, as for `linuxTap.open()`. */
export type TapFdOptions = Pick<
  TapOpenOptions,
  'name' | 'mtu' | 'mac' | 'addresses' | 'up' | 'signal' | 'env'
>;

const FD_OPTIONS: readonly (keyof TapFdOptions)[] = [
  'name',
  'mtu',
  'mac',
  'addresses',
  'up',
  'signal',
  'env',
];

/** A configured tap device's fd: see {@link openTapFd}. */
export interface TapFd {
  /**
   * The fd (`IFF_TAP | IFF_NO_PI`, blocking, close-on-exec): yours to pass on and to close
   * (`fs.closeSync`). The interface lives while any copy of it is open.
   */
  readonly fd: number;
  /** The interface's name (a template such as `tap%d` filled in). */
  readonly name: string;
  readonly mac: Buffer;
  readonly mtu: number;
}

/**
 * Creates a tap device, configures it as `linuxTap.open()` would (name, MTU, MAC, addresses,
 * up), and returns its fd instead of a TapDevice: what a privileged helper hands to a process
 * that has no CAP_NET_ADMIN, which adopts it with `linuxTap.open({ fd })`. Nothing is left
 * behind on failure. Needs root or CAP_NET_ADMIN.
 *
 * @example
 * ```ts
 * import { spawn } from 'node:child_process';
 * import { closeSync } from 'node:fs';
 * import { openTapFd } from '@tapkit/linux-tap';
 * const tap = await openTapFd({ name: 'tap%d', addresses: ['10.0.0.1/24'] });
 * // The child (unprivileged) runs `linuxTap.open({ fd: 3 })`.
 * spawn('setpriv', ['--reuid=nobody', 'node', 'app.mjs'], { stdio: ['inherit', 'inherit', 'inherit', tap.fd] });
 * closeSync(tap.fd); // the child holds its own copy
 * ```
 */
// async although nothing is awaited: every failure becomes a rejection, never a throw.
export async function openTapFd(options?: TapFdOptions): Promise<TapFd> {
  const resolved = resolveOpenOptions(options, TAP_LIMITS);
  checkOptionNames(options, FD_OPTIONS, 'openTapFd()', BACKEND);
  const signal = resolved.signal;
  if (signal?.aborted) throw abortError('openTapFd()', signal);
  const addon = loadAddon(options?.env ?? process.env);
  let opened: { fd: number; name: string };
  try {
    opened = addon.openTapFd(resolved.name ?? 'tapkit%d');
  } catch (error) {
    throw openError(error, `open tap device ${resolved.name ?? ''}`.trimEnd());
  }
  const { fd, name } = opened;
  try {
    markInterface(name, { backend: BACKEND, persistent: false });
    configureLink(addon, getLink(addon, name).index, name, newDeviceConfig(resolved), (error, what) =>
      openError(error, `${what} on ${name}`),
    );
    if (signal?.aborted) throw abortError('openTapFd()', signal);
    return Object.freeze({ fd, name, mac: Buffer.from(resolved.mac), mtu: resolved.mtu });
  } catch (error) {
    closeSync(fd); // the last copy: the interface goes with it
    throw openError(error, `configure tap device ${name}`);
  }
}
