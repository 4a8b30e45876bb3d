/**
 * `@tapkit/darwin-feth`: tapkit's macOS backend. A device is a pair of `feth` interfaces (macOS
 * 10.13+, no kernel extension): `feth1xxxx` carries the addresses and is what the OS and other
 * programs see; its peer `feth2xxxx` is where tapkit reads frames (BPF) and injects them
 * (AF_NDRV). Needs root. Pairs are removed on close, on exit and on SIGINT/SIGTERM/SIGHUP; pairs
 * a killed process left are removed by the next open or {@link cleanupStalePairs}.
 *
 * On other platforms the package imports fine and `open()` fails with
 * `ERR_TAP_UNSUPPORTED_PLATFORM`.
 *
 * @example
 * ```ts
 * import { darwinFeth } from '@tapkit/darwin-feth';
 * const dev = await darwinFeth.open({ networkId: 'my-vpn', addresses: ['10.7.0.1/24'] });
 * try {
 *   for await (const frame of dev) console.log(dev.name, frame.length);
 * } finally {
 *   await dev.close(); // or `await using dev = …` where that runs (TypeScript, Node.js ≥ 24)
 * }
 * ```
 * @packageDocumentation
 */
import type { TapBackend } from '@tapkit/core';
import { createDarwinFethBackend } from './backend.js';
import type { DarwinFethOptions } from './options.js';

/** The darwin-feth backend, over the native addon (loaded on first open). */
export const darwinFeth: TapBackend<DarwinFethOptions> = createDarwinFethBackend();

/** What core's loader reads from a backend package. */
export const backend = darwinFeth;

export {
  createDarwinFethBackend,
  probeDarwinFeth,
  cleanupStalePairs,
  listTapkitInterfaces,
  type DarwinFethConfig,
  type CleanupOptions,
} from './backend.js';
export type { CleanupReport, TapkitPair, MemberStatus, OwnerStatus } from './cleanup.js';
export { FETH_LIMITS, type DarwinFethOptions } from './options.js';
export { FETH_CAPABILITIES } from './port.js';
export { walkBpfBuffer, walkBpfBatch, type BpfWalk } from './bpf.js';
export { pairForSlot, pairOfInterface, slotForNetworkId, type PairNames } from './naming.js';
export { PERMISSION_HINT, darwinError } from './errors.js';
export { EXIT_CLEANUP_KEY, processExitCleanup, type ExitCleanup } from './exit.js';
export { ADDON_PATH_VARIABLE, loadNativeSystem } from './native.js';
export type {
  DarwinSystem,
  RawSystemError,
  InterfaceInfo,
  DeviceMtu,
  MulticastMembership,
  BpfReader,
  BpfReaderOptions,
  NdrvWriter,
  NdrvWriterOptions,
} from './system.js';
