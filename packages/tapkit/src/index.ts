/**
 * `tapkit`: what most users install. Re-exports `@tapkit/core` — `openTap()` picks the
 * platform's backend at run time from the optional backend packages — and `@tapkit/mock`.
 *
 * @packageDocumentation
 */
export * from '@tapkit/core';
export { createMockNetwork } from '@tapkit/mock';
export type * from '@tapkit/mock';
