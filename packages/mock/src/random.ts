/**
 * The network's seeded randomness: mulberry32, a tiny 32-bit generator that is fast, good
 * enough for simulation, and reproducible — identical seeds give identical fault sequences.
 *
 * @module
 */

/** A source of numbers in [0, 1). */
export type Random = () => number;

/** mulberry32 (Tommy Ettinger): 32 bits of state, full period 2^32. */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}
