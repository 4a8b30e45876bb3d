/**
 * The package-level backend: what `openTap({ backend: 'mock' })` and `TAPKIT_BACKEND=mock`
 * load.
 *
 * @module
 */
import { TapError, TapErrorCode, type TapBackend, type TapDevice } from '@tapkit/core';
import { createMockNetwork, type MockOpenOptions } from './network.js';

/**
 * The `mock` backend. `open({ network })` opens a device on that network; without one, each
 * device gets a fresh private network of its own — alone on its switch, it hears nothing until
 * something else joins, so pass a shared network (from {@link createMockNetwork}) to link devices.
 * A private network holds no timers or handles once its device is closed.
 */
export const backend: TapBackend<MockOpenOptions> = Object.freeze({
  name: 'mock',
  probe: () => Promise.resolve({ available: true as const }),
  open(options?: MockOpenOptions): Promise<TapDevice> {
    const network = options?.network;
    if (network === undefined) return createMockNetwork().open(options);
    // Duck-typed rather than instanceof, so that a network from another copy of this package
    // (ESM and CJS builds side by side) still works.
    const shape: unknown = network;
    if (typeof (shape as { open?: unknown } | null)?.open !== 'function') {
      return Promise.reject(
        new TapError(TapErrorCode.INVALID_OPTION, 'network must be a MockNetwork from createMockNetwork()'),
      );
    }
    return network.open(options);
  },
});
