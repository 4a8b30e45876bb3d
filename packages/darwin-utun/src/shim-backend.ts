/**
 * A backend from any layer-3 device: open the packet port, put the shim on it, and let core's
 * engine do the rest.
 *
 * @module
 */
import {
  definePortBackend,
  type MtuLimits,
  type ProbeResult,
  type ResolvedOpenOptions,
  type TapBackend,
  type TapOpenOptions,
} from '@tapkit/core';
import type { OnLinkMode } from './on-link.js';
import type { PacketPort } from './packet-port.js';
import { L2Shim, resolveShimOptions } from './shim.js';

/** Open options of a shim backend: core's, plus the shim's own. */
export interface ShimOpenOptions extends TapOpenOptions {
  /** Which addresses the OS side answers ARP and neighbour solicitations for. Default `'prefixes'`. */
  onLink?: OnLinkMode;
}

/** What {@link defineShimBackend} needs. */
export interface ShimBackendSpec<O extends ShimOpenOptions> {
  readonly name: string;
  /** The MTU range the layer-3 device can take. */
  readonly limits: MtuLimits;
  /** The backend's own open options, beyond core's and the shim's (`onLink`). */
  readonly options?: readonly Exclude<keyof O, keyof ShimOpenOptions>[];
  probe(): Promise<ProbeResult>;
  /**
   * Opens and configures the layer-3 device (name, MTU, `options.addresses`, up) from
   * validated options. The shim's own options were checked before this is called.
   */
  openPacketPort(options: ResolvedOpenOptions, raw: O): Promise<PacketPort>;
}

/**
 * Makes a TapBackend from a layer-3 device opener: every device it opens is the packet port
 * under an {@link L2Shim}. Options (core's and the shim's) are checked before the device is
 * opened; the addresses configured on the device are the shim's on-link prefixes.
 */
export function defineShimBackend<O extends ShimOpenOptions>(spec: ShimBackendSpec<O>): TapBackend<O> {
  return definePortBackend<O>({
    name: spec.name,
    limits: spec.limits,
    options: ['onLink', ...(spec.options ?? [])] as Exclude<keyof O, keyof TapOpenOptions>[],
    probe: () => spec.probe(),
    async openPort(options, raw) {
      const shim = resolveShimOptions({
        mac: options.mac,
        addresses: options.addresses,
        onLink: raw.onLink,
        limits: spec.limits,
      });
      const lower = await spec.openPacketPort(options, raw);
      return new L2Shim(lower, shim);
    },
  });
}
