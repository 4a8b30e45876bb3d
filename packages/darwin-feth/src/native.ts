/**
 * The native {@link DarwinSystem}: the addon (`tapkit_darwin_feth.node`, built only on macOS),
 * its exact shape, and how it is found.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TapErrorCode, type DarwinRouteWatcher, type DarwinRouteWatcherOptions } from '@tapkit/core';
import { backendError } from './errors.js';
import type { BpfReader, BpfReaderOptions, DarwinSystem, NdrvWriter, NdrvWriterOptions } from './system.js';

/** What the addon exports: the system calls, plus classes for the two fds of a device. */
export type RawAddon = Omit<
  DarwinSystem,
  'platform' | 'kernelRelease' | 'isRoot' | 'openBpf' | 'openNdrv' | 'watchRoutes'
> & {
  readonly RouteWatcher: new (options: DarwinRouteWatcherOptions) => DarwinRouteWatcher;
  readonly BpfReader: new (name: string, options: BpfReaderOptions) => BpfReader;
  readonly NdrvWriter: new (name: string, options: NdrvWriterOptions) => NdrvWriter;
};

/** The environment variable that points at an addon to load instead of the package's own. */
export const ADDON_PATH_VARIABLE = 'TAPKIT_DARWIN_FETH_ADDON';

const ADDON_FILE = 'tapkit_darwin_feth.node';

const EXPORTS = [
  'BpfReader',
  'NdrvWriter',
  'RouteWatcher',
  'processStartTime',
  'listInterfaces',
  'createInterface',
  'destroyInterface',
  'setPeer',
  'getPeer',
  'getDeviceMtu',
  'setMtu',
  'setMac',
  'setMetric',
  'setUp',
  'addAddress',
  'removeAddress',
  'interfaceIndex',
  'interfaceName',
  'multicastMemberships',
  'sysctlGet',
  'sysctlSet',
] as const satisfies readonly (keyof RawAddon)[];

function notInstalled(message: string, cause?: unknown) {
  return backendError(TapErrorCode.BACKEND_NOT_INSTALLED, message, cause);
}

/**
 * Loads the addon: from `TAPKIT_DARWIN_FETH_ADDON` when set (and only from there), else the
 * package's build or prebuild through node-gyp-build, else `build/Release` directly. Node
 * caches loaded addons, so this costs a few lookups per open and keeps no state here.
 */
export function loadAddon(env: Readonly<Record<string, string | undefined>>): RawAddon {
  const require = createRequire(import.meta.url);
  // src/ and dist/ both sit one level below the package root.
  const root = fileURLToPath(new URL('..', import.meta.url));
  const override = env[ADDON_PATH_VARIABLE];
  const tried: string[] = [];
  let loaded: unknown;
  let lastError: unknown;
  const attempt = (label: string, load: () => unknown) => {
    if (loaded !== undefined) return;
    try {
      loaded = load();
    } catch (error) {
      lastError = error;
      tried.push(`${label}: ${(error as Error).message.split('\n')[0]}`);
    }
  };
  if (override !== undefined && override !== '') {
    attempt(`${ADDON_PATH_VARIABLE}=${override}`, () => require(override));
  } else {
    attempt(`node-gyp-build in ${root}`, () => (require('node-gyp-build') as (dir: string) => unknown)(root));
    attempt(join(root, 'build', 'Release', ADDON_FILE), () =>
      require(join(root, 'build', 'Release', ADDON_FILE)),
    );
  }
  if (loaded === undefined) {
    throw notInstalled(
      `the native addon could not be loaded (tried ${tried.join('; ')}). Build it on macOS with ` +
        `'npm run build -w @tapkit/darwin-feth' (needs Xcode's command line tools), or set ${ADDON_PATH_VARIABLE} ` +
        `to a ${ADDON_FILE} file.`,
      lastError,
    );
  }
  const missing = EXPORTS.filter(
    (key) => typeof (loaded as Record<string, unknown> | null)?.[key] !== 'function',
  );
  if (missing.length > 0) {
    throw notInstalled(`the loaded native addon is not ${ADDON_FILE} (missing ${missing.join(', ')})`);
  }
  return loaded as RawAddon;
}

/** The DarwinSystem of this Mac. Throws `ERR_TAP_UNSUPPORTED_PLATFORM` anywhere else. */
export function loadNativeSystem(
  env: Readonly<Record<string, string | undefined>> = process.env,
  platform: string = process.platform,
): DarwinSystem {
  if (platform !== 'darwin') {
    throw backendError(
      TapErrorCode.UNSUPPORTED_PLATFORM,
      `feth interfaces exist only on macOS (this is ${platform}); on Linux use the linux-tap backend, ` +
        "anywhere use 'mock'",
    );
  }
  const addon = loadAddon(env);
  return Object.freeze({
    platform,
    kernelRelease: () => release(),
    isRoot: () => process.geteuid?.() === 0,
    processStartTime: (pid: number) => addon.processStartTime(pid),
    listInterfaces: () => addon.listInterfaces(),
    createInterface: (name: string) => addon.createInterface(name),
    destroyInterface: (name: string) => addon.destroyInterface(name),
    setPeer: (name: string, peer: string) => addon.setPeer(name, peer),
    getPeer: (name: string) => addon.getPeer(name),
    getDeviceMtu: (name: string) => addon.getDeviceMtu(name),
    setMtu: (name: string, mtu: number) => addon.setMtu(name, mtu),
    setMac: (name: string, mac: Uint8Array) => addon.setMac(name, mac),
    setMetric: (name: string, metric: number) => addon.setMetric(name, metric),
    setUp: (name: string, up: boolean) => addon.setUp(name, up),
    addAddress: (name: string, family: 4 | 6, address: Uint8Array, prefixLength: number) =>
      addon.addAddress(name, family, address, prefixLength),
    removeAddress: (name: string, family: 4 | 6, address: Uint8Array, prefixLength: number) =>
      addon.removeAddress(name, family, address, prefixLength),
    interfaceIndex: (name: string) => addon.interfaceIndex(name),
    interfaceName: (index: number) => addon.interfaceName(index),
    watchRoutes: (options: DarwinRouteWatcherOptions) => new addon.RouteWatcher(options),
    multicastMemberships: () => addon.multicastMemberships(),
    sysctlGet: (name: string) => addon.sysctlGet(name),
    sysctlSet: (name: string, value: number) => addon.sysctlSet(name, value),
    openBpf: (name: string, options: BpfReaderOptions) => new addon.BpfReader(name, options),
    openNdrv: (name: string, options: NdrvWriterOptions) => new addon.NdrvWriter(name, options),
  });
}
