/**
 * The darwin-utun backend: a macOS utun (layer 3) under the L2 shim.
 *
 * @module
 */
import {
  TapError,
  TapErrorCode,
  isTapError,
  unavailable,
  type ProbeResult,
  type TapBackend,
} from '@tapkit/core';
import { BACKEND, PERMISSION_HINT } from './errors.js';
import { loadNativeUtunSystem } from './native.js';
import { defineShimBackend, type ShimOpenOptions } from './shim-backend.js';
import { UTUN_LIMITS, openUtunPort, utunUnitOf } from './utun-port.js';
import type { UtunSystem } from './utun-system.js';

/** Options of the darwin-utun backend. */
export interface DarwinUtunOptions extends ShimOpenOptions {
  /**
   * The interface name: `utun<N>` asks the kernel for that unit; absent, the kernel picks one.
   * (A utun cannot have any other name.)
   */
  name?: string;
  /**
   * The system to open the utun on. Default: the native addon, on macOS only. Tests and
   * simulations pass `createSimulatedUtunSystem()`, which works on every platform.
   */
  system?: UtunSystem;
}

function checkSystem(system: unknown): UtunSystem {
  const shape = system as Partial<Record<keyof UtunSystem, unknown>> | null;
  const calls = ['openUtun', 'setMtu', 'setUp', 'addAddress'] as const;
  if (typeof shape !== 'object' || shape === null || calls.some((key) => typeof shape[key] !== 'function')) {
    throw new TapError(
      TapErrorCode.INVALID_OPTION,
      `system must be a UtunSystem (${calls.join(', ')}), e.g. from createSimulatedUtunSystem()`,
      { backend: BACKEND },
    );
  }
  return system as UtunSystem;
}

/**
 * Whether a utun can be opened here: macOS, the addon loads, and the process is root. Never
 * throws.
 */
export async function probeDarwinUtun(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<ProbeResult> {
  try {
    loadNativeUtunSystem(env); // off macOS: ERR_TAP_UNSUPPORTED_PLATFORM
  } catch (error) {
    if (isTapError(error)) return { available: false, reason: error.message, error };
    return unavailable(BACKEND, TapErrorCode.BACKEND_NOT_INSTALLED, String(error), error);
  }
  if (process.getuid?.() !== 0) {
    return unavailable(
      BACKEND,
      TapErrorCode.PERMISSION_DENIED,
      `this process is not root. ${PERMISSION_HINT}`,
    );
  }
  return { available: true };
}

/**
 * The darwin-utun backend. On macOS it opens a utun through the kernel-control socket
 * (`utun<N>` named by the kernel, or the one asked for), sets its MTU and addresses, and puts
 * the L2 shim on it; the utun is destroyed when the device closes (or the process dies).
 * Elsewhere `probe()` says unavailable and `open()` fails with `ERR_TAP_UNSUPPORTED_PLATFORM`,
 * unless a `system` is passed in.
 *
 * @example
 * ```ts
 * const dev = await darwinUtun.open({ addresses: ['10.9.0.1/24'] });
 * try {
 *   // The OS is at 10.9.0.1 behind dev.mac; your program is any other 10.9.0.x, at a MAC of its own.
 * } finally {
 *   await dev.close(); // or `await using dev = …` where that runs (TypeScript, Node.js ≥ 24)
 * }
 * ```
 */
export const darwinUtun: TapBackend<DarwinUtunOptions> = defineShimBackend<DarwinUtunOptions>({
  name: BACKEND,
  limits: UTUN_LIMITS,
  options: ['system'],
  probe: () => probeDarwinUtun(),
  // async: every failure becomes a rejection, never a throw.
  async openPacketPort(options, raw) {
    const unit = utunUnitOf(options.name); // before any OS call
    const system = raw.system === undefined ? loadNativeUtunSystem(raw.env) : checkSystem(raw.system);
    return openUtunPort(system, { unit, mtu: options.mtu, addresses: options.addresses, up: options.up });
  },
});
