/**
 * `@tapkit/core/testing`: the conformance suite every backend runs against itself.
 *
 * @packageDocumentation
 */
export {
  conformanceSuite,
  conformanceFrame,
  conformanceSeq,
  receiveMarked,
  type ConformanceTarget,
  type TestApi,
} from './conformance.js';
