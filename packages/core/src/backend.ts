/**
 * Backends and their selection: {@link definePortBackend} makes a backend from a port opener,
 * {@link openTap} picks one exactly as the design says — an explicit choice, then
 * `TAPKIT_BACKEND`, then the platform's list — and never falls back silently.
 *
 * @module
 */
import { TapError, TapErrorCode, isTapError } from './errors.js';
import { abortError, createTapDevice } from './engine.js';
import { resolveOpenOptions, type MtuLimits } from './options.js';
import type {
  ProbeResult,
  ResolvedOpenOptions,
  TapBackend,
  TapDevice,
  TapOpenOptions,
  TapPort,
} from './types.js';

/** What a backend author supplies to {@link definePortBackend}. */
export interface PortBackendSpec<O extends TapOpenOptions> {
  readonly name: string;
  /** The MTU range the backend can configure; options are checked against it. */
  readonly limits: MtuLimits;
  /**
   * The backend's own open options, beyond {@link TapOpenOptions}'. Any other option set (not
   * undefined) is refused with `ERR_TAP_UNSUPPORTED_OPTION`. Default: none.
   */
  readonly options?: readonly Exclude<keyof O, keyof TapOpenOptions>[];
  probe(): Promise<ProbeResult>;
  /** Open and configure the OS object. `options` are validated; `raw` carries backend-specific ones. */
  openPort(options: ResolvedOpenOptions, raw: O): Promise<TapPort>;
}

/**
 * Makes a {@link TapBackend} from a port opener: options are validated before the port is
 * opened, the AbortSignal is honoured (a port opened after an abort is closed again), and the
 * port is wrapped in the shared engine.
 */
export function definePortBackend<O extends TapOpenOptions>(spec: PortBackendSpec<O>): TapBackend<O> {
  return Object.freeze({
    name: spec.name,
    probe: () => spec.probe(),
    async open(options?: O): Promise<TapDevice> {
      const resolved = resolveOpenOptions(options, spec.limits);
      checkOptionNames(
        options,
        [...COMMON_OPTIONS, ...((spec.options ?? []) as readonly string[])],
        `the ${spec.name} backend`,
        spec.name,
      );
      const signal = resolved.signal;
      if (signal?.aborted) throw abortError('open', signal);
      const port = await spec.openPort(resolved, options ?? ({} as O));
      if (signal?.aborted) {
        await port.close();
        throw abortError('open', signal);
      }
      return createTapDevice(port, {
        backend: spec.name,
        rxQueueFrames: resolved.rxQueueFrames,
        up: resolved.up,
        addresses: resolved.addresses.map((a) => a.cidr),
      });
    },
  });
}

/** The options of {@link TapOpenOptions}: every backend takes them. */
const COMMON_OPTIONS: readonly (keyof TapOpenOptions)[] = [
  'backend',
  'name',
  'mtu',
  'mac',
  'addresses',
  'up',
  'rxQueueFrames',
  'signal',
  'env',
];

/**
 * Refuses an option set (not undefined) that is not one of `known`: a typo, or another
 * backend's option (`offload` on the mock) that would otherwise be ignored. `owner` names what
 * takes the options in the message (`the mock backend`, `openTapFd()`).
 */
export function checkOptionNames(
  options: object | undefined,
  known: readonly string[],
  owner: string,
  backend: string,
): void {
  if (options === undefined) return;
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined || known.includes(key)) continue;
    throw new TapError(
      TapErrorCode.UNSUPPORTED_OPTION,
      `${owner} does not support the option ${JSON.stringify(key)}; it takes ${known.join(', ')}`,
      { backend },
    );
  }
}

/** The backends tapkit knows by name, and the package each lives in. */
export const KNOWN_BACKENDS: Readonly<Record<string, string>> = Object.freeze({
  'linux-tap': '@tapkit/linux-tap',
  'darwin-feth': '@tapkit/darwin-feth',
  'darwin-utun': '@tapkit/darwin-utun',
  mock: '@tapkit/mock',
});

/** The backends tried, in order, on each platform when none is named. */
export const PLATFORM_BACKENDS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  linux: Object.freeze(['linux-tap']),
  darwin: Object.freeze(['darwin-feth', 'darwin-utun']),
});

/** Imports a backend package and returns its `backend` export. */
export type BackendLoader = (name: string) => Promise<TapBackend>;

/** Loads a known backend by name from its package, with an error that says how to fix a missing one. */
export async function loadBackend(name: string): Promise<TapBackend> {
  const pkg = KNOWN_BACKENDS[name];
  if (pkg === undefined) {
    throw new TapError(
      TapErrorCode.UNKNOWN_BACKEND,
      `unknown backend ${JSON.stringify(name)}; known backends: ${Object.keys(KNOWN_BACKENDS).join(', ')}`,
    );
  }
  let mod: { backend?: TapBackend };
  try {
    mod = (await import(pkg)) as { backend?: TapBackend };
  } catch (error) {
    const missing =
      (error as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND' ||
      (error as { code?: unknown }).code === 'MODULE_NOT_FOUND';
    throw new TapError(
      TapErrorCode.BACKEND_NOT_INSTALLED,
      missing
        ? `backend ${name} needs the package ${pkg}, which is not installed. Install it (npm install ${pkg}); ` +
            `if you installed 'tapkit', check that optional dependencies were not omitted (--omit=optional) ` +
            `and that node_modules was installed on this OS, not copied from another.`
        : `backend ${name}: the package ${pkg} is installed but failed to load: ${(error as Error).message}. ` +
            `Reinstall it on this machine (its native part may have been built for another OS or Node).`,
      { cause: error, backend: name },
    );
  }
  if (!mod.backend || typeof mod.backend.open !== 'function') {
    throw new TapError(TapErrorCode.BACKEND_NOT_INSTALLED, `${pkg} does not export a tapkit backend`, {
      backend: name,
    });
  }
  return mod.backend;
}

/** Extra knobs for {@link openTap}, mostly for tests and embedders. */
export interface SelectionContext {
  /** Platform to select for. Default `process.platform`. */
  readonly platform?: string;
  /** How names become backends. Default {@link loadBackend}. */
  readonly load?: BackendLoader;
}

/** Which backends {@link openTap} would try, in order, and why (`explicit`, `environment`, `platform`). */
export function backendCandidates(
  options: Pick<TapOpenOptions, 'backend' | 'env'> = {},
  context: SelectionContext = {},
): {
  readonly source: 'explicit' | 'environment' | 'platform';
  readonly names: readonly (string | TapBackend)[];
} {
  if (options.backend !== undefined) return { source: 'explicit', names: [options.backend] };
  const fromEnv = (options.env ?? process.env)['TAPKIT_BACKEND'];
  if (fromEnv !== undefined && fromEnv.trim() !== '')
    return { source: 'environment', names: [fromEnv.trim()] };
  const platform = context.platform ?? process.platform;
  return { source: 'platform', names: PLATFORM_BACKENDS[platform] ?? [] };
}

/**
 * Opens a TapDevice on the chosen backend.
 *
 * Selection: `options.backend` (a name or a backend object) wins; then `TAPKIT_BACKEND`; then
 * the platform's list (linux: `linux-tap`; darwin: `darwin-feth`, then `darwin-utun`), where
 * the first backend whose probe says it is available is opened. A backend chosen by name,
 * object or `TAPKIT_BACKEND` is opened directly and never replaced by another: its error is
 * the answer. When nothing on the platform list can be opened, the `ERR_TAP_NO_BACKEND` error
 * lists every backend tried and why it failed (`error.errors`).
 *
 * Options are {@link TapOpenOptions}; a backend's own (linux-tap's `queues`, the mock's
 * `network`…) type-check where the backend is named (`backend: 'linux-tap'` or the backend
 * object). An option the chosen backend does not take — a typo, or another backend's — is
 * refused with `ERR_TAP_UNSUPPORTED_OPTION`, never ignored.
 *
 * @example
 * ```ts
 * const dev = await openTap({ name: 'tap0', addresses: ['10.0.0.1/24'] });
 * try {
 *   for await (const frame of dev) console.log(frame.length);
 * } finally {
 *   await dev.close(); // or `await using dev = …` where that runs (TypeScript, Node.js ≥ 24)
 * }
 * ```
 */
export function openTap(options?: TapOpenOptions, context?: SelectionContext): Promise<TapDevice>;
export function openTap<O extends TapOpenOptions>(
  options: O & { readonly backend: string | TapBackend<O> },
  context?: SelectionContext,
): Promise<TapDevice>;
export async function openTap(
  options: TapOpenOptions = {},
  context: SelectionContext = {},
): Promise<TapDevice> {
  if (options.signal?.aborted) throw abortError('open', options.signal);
  const load = context.load ?? loadBackend;
  const { source, names } = backendCandidates(options, context);
  if (names.length === 0) {
    const platform = context.platform ?? process.platform;
    throw new TapError(
      TapErrorCode.UNSUPPORTED_PLATFORM,
      `tapkit has no backend for platform ${platform}; use backend: 'mock' for an in-memory device`,
    );
  }
  if (source !== 'platform') {
    // A backend the user named is opened as it is: its own error is the answer, with no probe
    // standing in the way (a backend can be usable where its probe is not, e.g. an injected
    // system port in tests).
    const [candidate] = names;
    const label = typeof candidate === 'string' ? candidate : candidate!.name;
    try {
      const backend = typeof candidate === 'string' ? await load(candidate) : candidate!;
      return await backend.open(options);
    } catch (error) {
      throw asTapError(error, label);
    }
  }
  const failures: TapError[] = [];
  for (const candidate of names) {
    const label = typeof candidate === 'string' ? candidate : candidate.name;
    let backend: TapBackend;
    let probe: ProbeResult;
    try {
      backend = typeof candidate === 'string' ? await load(candidate) : candidate;
      probe = await backend.probe();
    } catch (error) {
      failures.push(asTapError(error, label));
      continue;
    }
    if (!probe.available) {
      failures.push(probe.error);
      continue;
    }
    // An available backend that fails to open is the user's answer: no silent fallback.
    return backend.open(options);
  }
  const list = failures.map((e) => `  - ${e.backend ?? '?'}: ${e.message}`).join('\n');
  throw new TapError(
    TapErrorCode.NO_BACKEND,
    `no tapkit backend could be opened on ${context.platform ?? process.platform}:\n${list}`,
    { errors: failures },
  );
}

function asTapError(error: unknown, backend: string): TapError {
  if (isTapError(error)) {
    return error.backend === undefined
      ? new TapError(error.code, error.message, { ...error, cause: error, backend })
      : error;
  }
  return new TapError(TapErrorCode.SYSTEM, `${backend}: ${String(error)}`, { cause: error, backend });
}

/** A helper for backends' probe(): an unavailable result carrying a TapError (and what to do, when known). */
export function unavailable(
  backend: string,
  code: TapError['code'],
  reason: string,
  cause?: unknown,
  fix?: readonly string[],
): ProbeResult {
  return {
    available: false,
    reason,
    ...(fix !== undefined && { fix }),
    error: new TapError(
      code,
      `${backend}: ${reason}`,
      cause === undefined ? { backend } : { backend, cause },
    ),
  };
}
