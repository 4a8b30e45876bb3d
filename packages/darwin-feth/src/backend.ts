/**
 * The darwin-feth backend: probe, open, and the cleanup entry points, over any
 * {@link DarwinSystem} (the native one by default).
 *
 * @module
 */
import {
  TapErrorCode,
  definePortBackend,
  isTapError,
  type ProbeResult,
  type TapBackend,
  type TapError,
} from '@tapkit/core';
import {
  listPairs,
  sweepStalePairs,
  type CleanupReport,
  type Inspector,
  type TapkitPair,
} from './cleanup.js';
import { backendError, darwinError, PERMISSION_HINT } from './errors.js';
import { processExitCleanup, type ExitCleanup } from './exit.js';
import { BACKEND, MIN_DARWIN_MAJOR } from './facts.js';
import { loadNativeSystem } from './native.js';
import { FETH_LIMITS, resolveRuntimeDir, type DarwinFethOptions } from './options.js';
import { openFethPort, type FethContext } from './port.js';
import { StateStore } from './state.js';
import type { DarwinSystem } from './system.js';

/** How a darwin-feth backend is wired. Every field is optional; the defaults are the real Mac. */
export interface DarwinFethConfig {
  /** The system calls: a {@link DarwinSystem}, or a function giving one. Default: the native addon, loaded on first use. */
  readonly system?: DarwinSystem | (() => DarwinSystem);
  /** Default runtime directory (an open's `runtimeDir` option wins). See {@link DarwinFethOptions.runtimeDir}. */
  readonly runtimeDir?: string;
  /** Where pairs register for removal at exit. Default: the process-wide registry (see exit.ts). */
  readonly exitCleanup?: ExitCleanup;
  /** Environment for `TAPKIT_RUNTIME_DIR` and `TAPKIT_DARWIN_FETH_ADDON`. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Options of {@link cleanupStalePairs} and {@link listTapkitInterfaces}. */
export interface CleanupOptions extends DarwinFethConfig {
  /** Report what would be removed, remove nothing. */
  readonly dryRun?: boolean;
}

function systemOf(config: DarwinFethConfig): DarwinSystem {
  const { system } = config;
  if (system === undefined) return loadNativeSystem(config.env ?? process.env);
  return typeof system === 'function' ? system() : system;
}

function inspector(system: DarwinSystem): Inspector {
  return { system, pid: process.pid, processStart: system.processStartTime(process.pid) };
}

function storeOf(config: DarwinFethConfig, option?: unknown): StateStore {
  return new StateStore(resolveRuntimeDir(option, config.runtimeDir, config.env ?? process.env));
}

function notAvailable(error: TapError): ProbeResult {
  return { available: false, reason: error.message, error };
}

/** Whether darwin-feth can open a device here and now, and if not, why. Never throws. */
export async function probeDarwinFeth(config: DarwinFethConfig = {}): Promise<ProbeResult> {
  let system: DarwinSystem;
  try {
    system = systemOf(config);
  } catch (error) {
    return notAvailable(
      isTapError(error) ? error : backendError(TapErrorCode.BACKEND_NOT_INSTALLED, String(error), error),
    );
  }
  const release = system.kernelRelease();
  if (!(Number.parseInt(release, 10) >= MIN_DARWIN_MAJOR)) {
    return notAvailable(
      backendError(
        TapErrorCode.UNSUPPORTED_PLATFORM,
        `feth needs macOS 10.13 (Darwin ${MIN_DARWIN_MAJOR}) or later; this is Darwin ${release}`,
      ),
    );
  }
  if (!system.isRoot()) return notAvailable(backendError(TapErrorCode.PERMISSION_DENIED, PERMISSION_HINT));
  return { available: true };
}

/**
 * Makes a darwin-feth backend. The package's {@link darwinFeth} is `createDarwinFethBackend()`;
 * pass a `system` to run over another implementation (the tests' simulated kernel).
 */
export function createDarwinFethBackend(config: DarwinFethConfig = {}): TapBackend<DarwinFethOptions> {
  return definePortBackend<DarwinFethOptions>({
    name: BACKEND,
    limits: FETH_LIMITS,
    options: ['networkId', 'metric', 'runtimeDir'],
    probe: () => probeDarwinFeth(config),
    openPort: async (options, raw) => {
      // Checked before the system is loaded, so that a bad option reads as one everywhere.
      const store = storeOf(config, raw.runtimeDir);
      const system = systemOf(config);
      const context: FethContext = {
        ...inspector(system),
        system,
        store,
        exitCleanup: config.exitCleanup ?? processExitCleanup(),
      };
      return openFethPort(context, options, raw);
    },
  });
}

/**
 * Removes the feth pairs that dead tapkit processes left: only pairs tapkit recorded, only
 * when their owner is gone, only interfaces that are still the ones tapkit made. With
 * `dryRun`, reports what it would remove. For `tapkit cleanup`; every open does it too.
 */
export async function cleanupStalePairs(options: CleanupOptions = {}): Promise<CleanupReport> {
  const system = systemOf(options);
  try {
    return sweepStalePairs(inspector(system), storeOf(options), { dryRun: options.dryRun ?? false });
  } catch (error) {
    throw darwinError(error, 'clean up stale feth pairs');
  }
}

/** The feth pairs tapkit recorded on this Mac, whose they are, and whether they still exist. For `tapkit list`. */
export async function listTapkitInterfaces(options: DarwinFethConfig = {}): Promise<TapkitPair[]> {
  const system = systemOf(options);
  try {
    return listPairs(inspector(system), storeOf(options));
  } catch (error) {
    throw darwinError(error, 'list the feth pairs');
  }
}
