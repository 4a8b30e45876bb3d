/**
 * Backend loading as seen from the `tapkit` package.
 *
 * Core's {@link coreLoadBackend} imports backend packages from where `@tapkit/core` is
 * installed. That works with npm's hoisted node_modules, but not where each package sees only
 * its own dependencies (Yarn Plug'n'Play, pnpm without hoisting): there `@tapkit/core` cannot
 * see `@tapkit/linux-tap`, while `tapkit` — which lists every backend as a dependency — can.
 * So `tapkit` imports the backends itself, and falls back to core's loader (whose error says
 * how to fix a missing package) when it cannot.
 *
 * @module
 */
import {
  KNOWN_BACKENDS,
  loadBackend as coreLoadBackend,
  openTap as coreOpenTap,
  type SelectionContext,
  type TapBackend,
  type TapDevice,
  type TapOpenOptions,
} from '@tapkit/core';

/**
 * Imports a package from this file's location. The CommonJS build `require`s it, so that a
 * CommonJS program gets the CommonJS copy of the backend — and of `@tapkit/core`, the one it
 * already has (one `TapError` class, `instanceof` works). The ESM build `import()`s it.
 */
async function importHere(pkg: string): Promise<{ backend?: TapBackend }> {
  // esbuild empties `import.meta` in the CommonJS build, and only there.
  const commonJs = (import.meta as { url?: string }).url === undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the CommonJS build's own require
  if (commonJs) return require(pkg) as { backend?: TapBackend };
  return (await import(pkg)) as { backend?: TapBackend };
}

/**
 * Loads a known backend by name (`linux-tap`, `darwin-feth`, `darwin-utun`, `mock`) from the
 * packages `tapkit` depends on. A missing package gives core's `ERR_TAP_BACKEND_NOT_INSTALLED`,
 * which says how to install it.
 */
export async function loadBackend(name: string): Promise<TapBackend> {
  const pkg = Object.hasOwn(KNOWN_BACKENDS, name) ? KNOWN_BACKENDS[name] : undefined;
  if (pkg !== undefined) {
    try {
      const mod = await importHere(pkg);
      if (mod.backend && typeof mod.backend.open === 'function') return mod.backend;
    } catch {
      // Not visible from here: core's loader tries from its own location, and explains.
    }
  }
  return coreLoadBackend(name);
}

/**
 * Opens a TapDevice, choosing the backend exactly as `@tapkit/core`'s `openTap` does — an
 * explicit `backend`, then `TAPKIT_BACKEND`, then the platform's list (Linux: `linux-tap`;
 * macOS: `darwin-feth`, then `darwin-utun`) — and loading backend packages from `tapkit`'s own
 * dependencies. Never falls back silently; see `ERR_TAP_NO_BACKEND`.
 *
 * @example
 * ```ts
 * import { openTap } from 'tapkit';
 * const dev = await openTap({ addresses: ['10.0.0.1/24'] });
 * try {
 *   // … read and write frames
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
export function openTap(options: TapOpenOptions = {}, context: SelectionContext = {}): Promise<TapDevice> {
  return coreOpenTap(options, { ...context, load: context.load ?? loadBackend });
}
