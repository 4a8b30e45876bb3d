import { describe, expect, it } from 'vitest';
import { pairForSlot, pairOfInterface, slotForNetworkId } from '../src/index.js';
import { slotsFrom } from '../src/naming.js';

describe('pair names', () => {
  it('puts slot k at feth1kkkk (user-facing) and feth2kkkk (I/O)', () => {
    expect(pairForSlot(0)).toEqual({ slot: 0, user: 'feth10000', io: 'feth20000' });
    expect(pairForSlot(42)).toEqual({ slot: 42, user: 'feth10042', io: 'feth20042' });
    expect(pairForSlot(9999)).toEqual({ slot: 9999, user: 'feth19999', io: 'feth29999' });
    expect(() => pairForSlot(10000)).toThrow(RangeError);
    expect(() => pairForSlot(-1)).toThrow(RangeError);
  });

  it('recognises members of tapkit pairs only (feth10000–feth29999)', () => {
    expect(pairOfInterface('feth10042')?.slot).toBe(42);
    expect(pairOfInterface('feth20042')?.user).toBe('feth10042');
    for (const name of [
      'feth0',
      'feth9999',
      'feth30000',
      'feth010000',
      'feth',
      'en0',
      'feth10000x',
      'utun10000',
    ]) {
      expect(pairOfInterface(name)).toBeUndefined();
    }
  });

  it('stays out of ZeroTier’s range: every name is at least feth10000', () => {
    // ZeroTier destroys feth names of 5 to 8 characters (feth0–feth9999) when it starts.
    for (const slot of [0, 1, 5000, 9999]) {
      const { user, io } = pairForSlot(slot);
      expect(user.length).toBe(9);
      expect(io.length).toBe(9);
    }
  });

  it('hashes network ids to stable slots (these values must never change)', () => {
    // FNV-1a('a') = 0xe40c292c = 3826002220 (the published test vector), mod 10000 = 2220.
    expect(slotForNetworkId('8056c2e21c000001')).toBe(slotForNetworkId('8056c2e21c000001'));
    expect([slotForNetworkId('a'), slotForNetworkId('office'), slotForNetworkId('8056c2e21c000001')]).toEqual(
      [2220, 497, 6211],
    );
  });

  it('tries every slot once, wrapping around', () => {
    const slots = [...slotsFrom(9998)];
    expect(slots).toHaveLength(10000);
    expect(slots.slice(0, 3)).toEqual([9998, 9999, 0]);
    expect(new Set(slots).size).toBe(10000);
  });
});
