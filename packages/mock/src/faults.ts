/**
 * Fault settings: what the switch does to frames on their way out of it to a port, in the
 * manner of Linux netem — loss, duplication, reordering, delay with jitter.
 *
 * @module
 */
import { TapError, TapErrorCode } from '@tapkit/core';

/** Faults applied at egress, to each frame the switch sends to a port. Absent means none. */
export interface MockFaults {
  /** Probability (0–1) that a frame is lost. */
  loss?: number;
  /** Probability (0–1) that a frame is delivered twice. */
  duplicate?: number;
  /** Probability (0–1) that a frame is held back and overtaken by the next one to that port. */
  reorder?: number;
  /** Delay every frame by this many milliseconds. */
  delayMs?: number;
  /** Add a uniform ±jitterMs to the delay (so frames can overtake each other, as with netem). */
  jitterMs?: number;
}

/** {@link MockFaults} checked, with every field present. */
export interface ResolvedFaults {
  readonly loss: number;
  readonly duplicate: number;
  readonly reorder: number;
  readonly delayMs: number;
  readonly jitterMs: number;
  /** Whether any fault is set: the switch skips the fault path (and the PRNG) when not. */
  readonly active: boolean;
  /** Whether frames go through timers. */
  readonly delayed: boolean;
}

function field(faults: MockFaults, key: keyof MockFaults, max: number): number {
  const value = faults[key] ?? 0;
  if (typeof value !== 'number' || !(value >= 0 && value <= max)) {
    const range = max === 1 ? 'a probability from 0 to 1' : 'a number of milliseconds >= 0';
    throw new TapError(TapErrorCode.INVALID_ARGUMENT, `faults.${key} must be ${range}, not ${String(value)}`);
  }
  return value;
}

// setTimeout's ceiling (about 24.8 days); longer delays would fire at once.
const MAX_DELAY_MS = 2 ** 31 - 1;

/** Validates fault settings. Throws INVALID_ARGUMENT naming the bad field. */
export function resolveFaults(faults: MockFaults): ResolvedFaults {
  if (typeof faults !== 'object' || faults === null) {
    throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'faults must be an object such as { loss: 0.1 }');
  }
  const loss = field(faults, 'loss', 1);
  const duplicate = field(faults, 'duplicate', 1);
  const reorder = field(faults, 'reorder', 1);
  const delayMs = field(faults, 'delayMs', MAX_DELAY_MS);
  const jitterMs = field(faults, 'jitterMs', MAX_DELAY_MS);
  const delayed = delayMs > 0 || jitterMs > 0;
  const active = delayed || loss > 0 || duplicate > 0 || reorder > 0;
  return Object.freeze({ loss, duplicate, reorder, delayMs, jitterMs, active, delayed });
}
