/**
 * Loading a backend's native addon, the same way for every backend: from an override path in
 * the environment when set (and only from there), else the package's own build or prebuild
 * through node-gyp-build, checked for the functions the backend needs. One error,
 * `ERR_TAP_BACKEND_NOT_INSTALLED`, says what was tried and how to fix it.
 *
 * @module
 */
import { TapError, TapErrorCode } from './errors.js';

/**
 * The size of the slabs native backends read frames into (each slab an ArrayBuffer whose frames
 * JS gets as views), unless a frame needs more. Small on purpose: a slab lives until its last
 * frame is let go, and one that V8 finds alive at two minor collections moves to the old
 * generation, which only a full collection frees. At 128 KiB a JS-loop relay's ArrayBuffers
 * climbed to 50–60 MiB between full collections (its RSS not flat over 30 minutes); at 32 KiB
 * minor collections free them (a 150-s link soak: RSS second-half spread 3.7% against 11.7%).
 */
export const RECEIVE_SLAB_BYTES = 32 * 1024;

/** What {@link loadNativeAddon} needs to know about a backend's addon. */
export interface NativeAddonSpec {
  /** The backend (`linux-tap`), for messages. */
  readonly backend: string;
  /** The addon's file name (`tapkit_linux.node`), for messages. */
  readonly file: string;
  /** The package root, where node-gyp-build looks in build/ and prebuilds/. */
  readonly packageRoot: string;
  /** The environment variable that names an addon file to load instead. */
  readonly envVariable: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** `require` from the backend package, which depends on node-gyp-build. */
  readonly require: (id: string) => unknown;
  /** Functions the addon must export. */
  readonly functions: readonly string[];
  /** How to build it (`npm run build -w @tapkit/linux-tap` …). */
  readonly buildHint: string;
}

function notInstalled(spec: NativeAddonSpec, message: string, cause: unknown): TapError {
  return new TapError(TapErrorCode.BACKEND_NOT_INSTALLED, `${spec.backend}: ${message}`, {
    cause,
    backend: spec.backend,
  });
}

/** Loads and checks a backend's addon; Node caches loaded addons, so this keeps no state. */
export function loadNativeAddon<T>(spec: NativeAddonSpec): T {
  const override = spec.env[spec.envVariable];
  let loaded: unknown;
  if (override !== undefined && override !== '') {
    try {
      loaded = spec.require(override);
    } catch (error) {
      throw notInstalled(
        spec,
        `could not load the native addon from ${spec.envVariable}=${override}: ${(error as Error).message}`,
        error,
      );
    }
  } else {
    try {
      const nodeGypBuild = spec.require('node-gyp-build') as (dir: string) => unknown;
      loaded = nodeGypBuild(spec.packageRoot);
    } catch (error) {
      throw notInstalled(
        spec,
        `the native addon could not be loaded from ${spec.packageRoot} (tried build/Release, build/Debug and ` +
          `prebuilds/${process.platform}-${process.arch}): ${(error as Error).message}. ` +
          `${spec.buildHint}, or set ${spec.envVariable} to a ${spec.file} file.`,
        error,
      );
    }
  }
  const missing = spec.functions.filter(
    (key) => typeof (loaded as Record<string, unknown> | null)?.[key] !== 'function',
  );
  if (missing.length > 0) {
    throw notInstalled(
      spec,
      `the loaded native addon is not ${spec.file} (missing ${missing.join(', ')})`,
      undefined,
    );
  }
  return loaded as T;
}
