/**
 * The kernel-side fuzz, short (bench/kernel-fuzz.mjs runs a million frames): frames the kernel
 * sends out of a tap from a packet socket — random EtherTypes, VLAN and QinQ tags, IPv6
 * extension headers, jumbo and runt frames, bad checksums, lying headers — read through every
 * read API and decoded. Nothing throws but a TapError; every frame is read or counted dropped.
 */
import { describe, expect } from 'vitest';
import { itPrivileged, uniqueName } from './helpers.js';
import { READ_APIS, runKernelFuzz } from './fixtures/kernel-fuzz.mjs';

describe('linux-tap: kernel-side fuzz', () => {
  itPrivileged(
    'reads every odd frame the kernel sends through every read API, and accounts for each',
    async () => {
      const { figures, problems } = await runKernelFuzz({ count: 4000, seed: 7, name: uniqueName('tf') });
      expect(problems).toEqual([]);
      expect(Object.keys(figures.perApi)).toEqual(READ_APIS);
      expect(figures.sent).toBeGreaterThanOrEqual(5 * 4000 * 0.95); // the kernel may refuse a few
      expect(figures.read + figures.dropped).toBe(figures.sent);
      expect(Object.keys(figures.kinds).length).toBe(13); // every kind of odd frame was sent
    },
    180_000,
  );
});
