/**
 * The native addon (`tapkit_utun.node`, built on macOS only): its exact shape, and how it is
 * found. Loaded lazily, on the first open or probe, never at import.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import {
  TapError,
  TapErrorCode,
  loadNativeAddon,
  type DarwinRouteWatcher,
  type DarwinRouteWatcherOptions,
} from '@tapkit/core';
import { BACKEND } from './errors.js';
import type { UtunHandle, UtunHandleOptions, UtunSystem } from './utun-system.js';

/** The addon's exports: the system calls of {@link UtunSystem}, one to one. */
export interface RawUtunAddon {
  readonly UtunHandle: new (options: UtunHandleOptions) => UtunHandle;
  setMtu(name: string, mtu: number): void;
  setUp(name: string, up: boolean): void;
  addAddress(name: string, family: 4 | 6, address: Uint8Array, prefixLength: number): void;
  removeAddress(name: string, family: 4 | 6, address: Uint8Array, prefixLength: number): void;
  readonly RouteWatcher: new (options: DarwinRouteWatcherOptions & { fd?: number }) => DarwinRouteWatcher;
  interfaceIndex(name: string): number;
  interfaceName(index: number): string | undefined;
  /** Two connected non-blocking AF_UNIX datagram sockets: a stand-in utun for tests. */
  datagramPair(): [number, number];
}

/** The environment variable that points at an addon to load instead of the package's own. */
export const ADDON_PATH_VARIABLE = 'TAPKIT_UTUN_ADDON';

const FUNCTIONS = [
  'UtunHandle',
  'RouteWatcher',
  'setMtu',
  'setUp',
  'addAddress',
  'removeAddress',
  'interfaceIndex',
  'interfaceName',
  'datagramPair',
] as const;

/** The error for every platform but macOS. */
export function unsupportedPlatform(platform: string = process.platform): TapError {
  return new TapError(
    TapErrorCode.UNSUPPORTED_PLATFORM,
    `${BACKEND}: utun exists on macOS only, not on ${platform}` +
      (platform === 'linux' ? '; use the linux-tap backend (its TUN mode takes the same shim)' : ''),
    { backend: BACKEND },
  );
}

/**
 * Loads the addon: from `TAPKIT_UTUN_ADDON` when set (and only from there), else the package's
 * own build or prebuild through node-gyp-build. Node caches loaded addons; nothing is kept
 * here. Throws `ERR_TAP_UNSUPPORTED_PLATFORM` off macOS, `ERR_TAP_BACKEND_NOT_INSTALLED` when
 * no addon loads.
 */
export function loadUtunAddon(env: Readonly<Record<string, string | undefined>> = process.env): RawUtunAddon {
  if (process.platform !== 'darwin') throw unsupportedPlatform();
  return loadNativeAddon<RawUtunAddon>({
    backend: BACKEND,
    file: 'tapkit_utun.node',
    // src/ and dist/ both sit one level below the package root.
    packageRoot: fileURLToPath(new URL('..', import.meta.url)),
    envVariable: ADDON_PATH_VARIABLE,
    env,
    require: createRequire(import.meta.url),
    functions: FUNCTIONS,
    buildHint: "Build it with 'npm run build -w @tapkit/darwin-utun' (needs Xcode's command line tools)",
  });
}

/** The real system: the addon's calls, as a {@link UtunSystem}. */
export function loadNativeUtunSystem(env?: Readonly<Record<string, string | undefined>>): UtunSystem {
  const addon = loadUtunAddon(env);
  return {
    osInterface: true,
    openUtun: (options) => new addon.UtunHandle(options),
    setMtu: (name, mtu) => addon.setMtu(name, mtu),
    setUp: (name, up) => addon.setUp(name, up),
    addAddress: (name, family, address, prefixLength) =>
      addon.addAddress(name, family, address, prefixLength),
    removeAddress: (name, family, address, prefixLength) =>
      addon.removeAddress(name, family, address, prefixLength),
    watchRoutes: (options) => new addon.RouteWatcher(options),
    interfaceIndex: (name) => addon.interfaceIndex(name),
    interfaceName: (index) => addon.interfaceName(index),
  };
}
