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
 * const dev = await linuxTap.open({ name: 'tap0', addresses: ['10.0.0.1/24'] });
 * try {
 *   for await (const frame of dev) console.log(frame.length);
 * } finally {
 *   await dev.close(); // or `await using dev = …` where that runs (TypeScript, Node.js ≥ 24)
 * }
 * ```
 * @packageDocumentation
 */
import {
  definePortBackend,
  TapError,
  TapErrorCode,
  type TapBackend,
  type TapOpenOptions,
} from '@tapkit/core';
import { openLinuxPort, openLinuxTunPort, TAP_LIMITS, TUN_LIMITS, type LinuxTapOptions } from './port.js';
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

/** Options of {@link linuxTun}: core's (but `mac`: a tun has none), plus `queues`. */
export interface LinuxTunDeviceOptions extends Omit<TapOpenOptions, 'mac'> {
  /** Queues (fds), 1–256, as {@link LinuxTapOptions.queues}. Default 1. */
  queues?: number;
}

/**
 * A tun device (layer 3) with the whole TapDevice API — `read()`, iterators, `AbortSignal`,
 * stats, backpressure, `pipeTo()` to another tun — where frames are bare IP packets (IPv4 or
 * IPv6, told apart by the version nibble): no Ethernet header, `capabilities.layer` 3, an empty
 * `mac`. Packets written must be 20 bytes to `mtu` long. Root or CAP_NET_ADMIN, as for a tap.
 *
 * @example
 * ```ts
 * const tun = await linuxTun.open({ name: 'tun%d', addresses: ['10.0.0.1/24'] });
 * for await (const packet of tun) console.log(packet[0] >> 4, packet.length); // version, size
 * ```
 */
export const linuxTun: TapBackend<LinuxTunDeviceOptions> = definePortBackend<LinuxTunDeviceOptions>({
  name: 'linux-tun',
  limits: TUN_LIMITS,
  options: ['queues'],
  probe: () => probeLinuxTap(),
  openPort: async (options, raw) => {
    if ((raw as TapOpenOptions).mac !== undefined) {
      throw new TapError(
        TapErrorCode.UNSUPPORTED_OPTION,
        'the linux-tun backend does not support the option "mac": a tun has no MAC',
        {
          backend: 'linux-tun',
        },
      );
    }
    return openLinuxTunPort({
      name: options.name,
      mtu: options.mtu,
      addresses: options.addresses.map((a) => a.cidr),
      up: options.up,
      queues: raw.queues,
      env: raw.env,
    });
  },
});

/** What core's loader reads from a backend package. */
export const backend = linuxTap;

export {
  openLinuxPort,
  openLinuxTunPort,
  OFFLOAD_MAX_FRAME_LENGTH,
  TAP_CAPABILITIES,
  TAP_LIMITS,
  TUN_CAPABILITIES,
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
export { openTapFd, type TapFd, type TapFdOptions } from './fd.js';
export {
  openUdpLink,
  UDP_LINK_BACKEND,
  UDP_LINK_CAPABILITIES,
  type UdpEndpoint,
  type UdpLink,
  type UdpLinkOptions,
} from './udp-link.js';
export { probeLinuxTap } from './probe.js';
export { PERMISSION_HINT } from './errors.js';
