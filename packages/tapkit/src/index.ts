/**
 * `tapkit`: what most users install. Re-exports `@tapkit/core` and `@tapkit/mock`; its
 * {@link openTap} picks the platform's backend at run time from the backend packages `tapkit`
 * lists as optional dependencies (`@tapkit/linux-tap`, `@tapkit/darwin-feth`,
 * `@tapkit/darwin-utun`), and never falls back silently to another.
 *
 * @example
 * ```ts
 * import { openTap } from 'tapkit';
 * const dev = await openTap({ addresses: ['10.0.0.1/24'] });
 * try {
 *   for await (const frame of dev) console.log(frame.length);
 * } finally {
 *   await dev.close(); // or `await using dev = …` where that runs (TypeScript, Node.js ≥ 24)
 * }
 * ```
 *
 * @packageDocumentation
 */
export * from '@tapkit/core';
// These two shadow core's exports of the same names: they load backends from tapkit's own
// dependencies (see backends.ts).
export { openTap, loadBackend } from './backends.js';
export { createMockNetwork } from '@tapkit/mock';
export type * from '@tapkit/mock';
export { runDemo, type DemoOptions, type DemoResult } from './demo.js';
