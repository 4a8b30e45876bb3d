/**
 * `@tapkit/darwin-utun`: tapkit's fallback backend for macOS — a utun (layer 3) under an
 * L2-over-L3 shim that answers ARP and neighbour discovery itself, so the program sees a
 * layer-2 TapDevice. The shim is platform-free and exported: it turns any packet device (a
 * Linux tun, a userspace stack) into a TapDevice.
 *
 * @example
 * ```ts
 * import { darwinUtun } from '@tapkit/darwin-utun';
 * const dev = await darwinUtun.open({ addresses: ['10.9.0.1/24'] });
 * try {
 *   for await (const frame of dev) console.log(frame.length);
 * } finally {
 *   await dev.close(); // or `await using dev = …` where that runs (TypeScript, Node.js ≥ 24)
 * }
 * ```
 * @packageDocumentation
 */
export { darwinUtun, probeDarwinUtun, type DarwinUtunOptions } from './backend.js';
import { darwinUtun } from './backend.js';

/** What core's loader reads from a backend package. */
export const backend = darwinUtun;

export {
  createL2Shim,
  resolveShimOptions,
  L2Shim,
  ShimDrop,
  MAX_LEARNED_ADDRESSES,
  MAX_NEIGHBORS,
  MAX_PENDING_REPLIES,
  type L2ShimOptions,
  type ResolvedShimOptions,
} from './shim.js';
export { defineShimBackend, type ShimBackendSpec, type ShimOpenOptions } from './shim-backend.js';
export type { PacketPort, PacketSink } from './packet-port.js';
export { LinkAddresses, type OnLinkMode } from './on-link.js';
export {
  UTUN_AF_INET,
  UTUN_AF_INET6,
  UTUN_HEADER_LENGTH,
  UTUN_DATAGRAM_GAP,
  frameUtunDatagram,
  parseUtunDatagram,
  utunFamilyOf,
  type UtunSystem,
  type UtunHandle,
  type UtunHandleOptions,
  type UtunSystemError,
} from './utun-system.js';
export {
  UTUN_LIMITS,
  UNKNOWN_FAMILY,
  UtunPacketPort,
  openUtunPort,
  utunUnitOf,
  type UtunPortOptions,
} from './utun-port.js';
export { loadNativeUtunSystem, ADDON_PATH_VARIABLE } from './native.js';
export {
  createSimulatedUtunSystem,
  type SimulatedUtun,
  type SimulatedUtunOptions,
  type SimulatedUtunSystem,
} from './simulated.js';
export { PERMISSION_HINT } from './errors.js';
