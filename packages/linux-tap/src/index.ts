/**
 * `@tapkit/linux-tap`: tapkit's Linux backend. Devices come from /dev/net/tun (`IFF_TAP`,
 * non-persistent: the interface goes away with its last fd, even on a crash), are configured by
 * ioctl, and are read and written by a native addon that polls on the thread's own event loop
 * and hands frames over a batch at a time.
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
  probe: () => probeLinuxTap(),
  openPort: openLinuxPort,
});

/** What core's loader reads from a backend package. */
export const backend = linuxTap;

export {
  openLinuxPort,
  openLinuxTunPort,
  TAP_CAPABILITIES,
  TAP_LIMITS,
  TUN_LIMITS,
  type LinuxTapOptions,
  type LinuxTunOptions,
  type LinuxTunPort,
} from './port.js';
export { probeLinuxTap } from './probe.js';
export { PERMISSION_HINT } from './errors.js';
