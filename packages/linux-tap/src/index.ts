/**
 * `@tapkit/linux-tap`: tapkit's Linux backend. Devices come from /dev/net/tun (`IFF_TAP`,
 * non-persistent: the interface goes away with its last fd, even on a crash), are configured by
 * ioctl, and are read and written by a native addon that polls on the thread's own event loop
 * and hands frames over a batch at a time. Also: persistent devices an administrator prepares
 * for an unprivileged user ({@link preparePersistentTap}, `attach: true`), and an offload mode
 * that passes TSO/GSO super-frames with their virtio-net headers (`offload: true`).
 *
 * @example
 * ```ts
 * import { linuxTap } from '@tapkit/linux-tap';
 * await using dev = await linuxTap.open({ name: 'tap0', addresses: ['10.0.0.1/24'] });
 * for await (const frame of dev) console.log(frame.length);
 * ```
 * @packageDocumentation
 */
import { definePortBackend, type TapBackend } from '@tapkit/core';
import { openLinuxPort, TAP_LIMITS, type LinuxTapOptions } from './port.js';
import { probeLinuxTap } from './probe.js';
import { BACKEND } from './errors.js';

/** The linux-tap backend. */
export const linuxTap: TapBackend<LinuxTapOptions> = definePortBackend<LinuxTapOptions>({
  name: BACKEND,
  limits: TAP_LIMITS,
  options: ['queues', 'attach', 'offload', 'fd'],
  probe: () => probeLinuxTap(),
  openPort: openLinuxPort,
});

/** What core's loader reads from a backend package. */
export const backend = linuxTap;

export {
  openLinuxPort,
  openLinuxTunPort,
  OFFLOAD_MAX_FRAME_LENGTH,
  TAP_CAPABILITIES,
  TAP_LIMITS,
  TUN_LIMITS,
  type LinuxTapOptions,
  type LinuxTunOptions,
  type LinuxTunPort,
} from './port.js';
export {
  preparePersistentTap,
  removePersistentTap,
  type PersistentTapOptions,
  type PersistentTapInfo,
} from './persistent.js';
export {
  VNET_HEADER_LENGTH,
  VnetFlags,
  VnetGso,
  parseVnetHeader,
  writeVnetHeader,
  buildVnetHeader,
  withVnetHeader,
  vnetPayload,
  type VnetHeader,
} from './vnet.js';
export { probeLinuxTap } from './probe.js';
export { PERMISSION_HINT } from './errors.js';
