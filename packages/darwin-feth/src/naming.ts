/**
 * Which feth units a tapkit pair uses. Slot `k` (0–9999) is the pair `feth1kkkk` (the member
 * carrying the user's addresses, the name users see) and `feth2kkkk` (its I/O peer): units of
 * 10000 and above, clear of ZeroTier's feth0–feth9999. A network id picks its slot by hash, so
 * the same network gets the same names across restarts; otherwise the lowest free slot is used.
 *
 * @module
 */
import { TapError, TapErrorCode } from '@tapkit/core';
import { BACKEND, FETH_PREFIX, IO_UNIT_OFFSET, PAIR_SLOTS, USER_UNIT_BASE } from './facts.js';

/** The two members of a tapkit feth pair. */
export interface PairNames {
  /** 0–9999. */
  readonly slot: number;
  /** The member that carries the user's addresses: `feth1xxxx`. */
  readonly user: string;
  /** The member tapkit reads (BPF) and writes (NDRV): `feth2xxxx`. */
  readonly io: string;
}

/** The pair in slot `slot` (0–9999). */
export function pairForSlot(slot: number): PairNames {
  if (!Number.isInteger(slot) || slot < 0 || slot >= PAIR_SLOTS) {
    throw new RangeError(`pair slot ${slot} is outside 0–${PAIR_SLOTS - 1}`);
  }
  const unit = USER_UNIT_BASE + slot;
  return Object.freeze({
    slot,
    user: `${FETH_PREFIX}${unit}`,
    io: `${FETH_PREFIX}${unit + IO_UNIT_OFFSET}`,
  });
}

const FETH_NAME = /^feth([1-9][0-9]{0,4})$/;

/**
 * The pair an interface name belongs to, if it is a member of one in tapkit's range
 * (`feth10000`–`feth29999`), else undefined.
 */
export function pairOfInterface(name: string): PairNames | undefined {
  const match = FETH_NAME.exec(name);
  if (!match) return undefined;
  const unit = Number(match[1]);
  const user = unit >= USER_UNIT_BASE + IO_UNIT_OFFSET ? unit - IO_UNIT_OFFSET : unit;
  const slot = user - USER_UNIT_BASE;
  return slot >= 0 && slot < PAIR_SLOTS ? pairForSlot(slot) : undefined;
}

/**
 * The slot a network id hashes to: FNV-1a (32 bit) over its UTF-8 bytes, modulo 10000. Stable
 * across releases: changing it would rename every user's interfaces.
 */
export function slotForNetworkId(networkId: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(networkId)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % PAIR_SLOTS;
}

/** Every slot once, starting at `first` and wrapping around. */
export function* slotsFrom(first: number): Generator<number> {
  for (let i = 0; i < PAIR_SLOTS; i++) yield (first + i) % PAIR_SLOTS;
}

/**
 * Checks a `name` option: darwin-feth can only make `feth<unit>` interfaces (the kernel names
 * clones by unit), and tapkit's user-facing members are `feth10000`–`feth19999`.
 */
export function checkFethName(name: string): PairNames {
  const pair = pairOfInterface(name);
  if (pair === undefined || pair.user !== name) {
    throw new TapError(
      TapErrorCode.INVALID_OPTION,
      `invalid name ${JSON.stringify(name)} for darwin-feth: macOS names feth interfaces by unit, and tapkit's ` +
        `are feth${USER_UNIT_BASE}–feth${USER_UNIT_BASE + PAIR_SLOTS - 1} (units below 10000 are left to ZeroTier). ` +
        'Leave name unset to get a free one, or pass networkId for a stable one.',
      { backend: BACKEND },
    );
  }
  return pair;
}
