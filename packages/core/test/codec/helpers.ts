// Shared test helpers for the codec tests (not a test file itself).
import { seededRandom } from '@tapkit/test-support';
import { expect } from 'vitest';
import { isTapError, TapErrorCode, type TapErrorCodeValue } from '../../src/errors.js';

export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/[\s:]/g, '');
  return Uint8Array.from(clean.match(/../g) ?? [], (h) => parseInt(h, 16));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A seeded generator, so fuzz failures reproduce. */
export const prng = seededRandom;

export function randomBytes(rand: () => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => Math.floor(rand() * 256));
}

/**
 * A copy of `bytes` as a view at an odd offset inside a larger slab of garbage: what frames in
 * a receive ring look like, and a way to catch parsers that ignore byteOffset or read past the
 * end of their view.
 */
export function inSlab(bytes: Uint8Array, rand: () => number = prng(1), before = 13, after = 19): Uint8Array {
  const slab = randomBytes(rand, before + bytes.length + after);
  slab.set(bytes, before);
  return slab.subarray(before, before + bytes.length);
}

/** Expects `fn` to throw a TapError with `code`. */
export function expectTapError(fn: () => unknown, code: TapErrorCodeValue = TapErrorCode.MALFORMED): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected a throw').toBeDefined();
  expect(isTapError(thrown), `expected a TapError, got ${String(thrown)}`).toBe(true);
  expect((thrown as { code: string }).code).toBe(code);
}

export const MALFORMED = TapErrorCode.MALFORMED;
export const INVALID = TapErrorCode.INVALID_ARGUMENT;

// Frames captured from Linux 6.x (tshark on lo/eth0): real-world known answers, checksums
// verified by Wireshark.
export const KERNEL = {
  /** eth0 (02:fc:00:00:00:01, 192.0.2.2) asks for 192.0.2.78. */
  arpRequest: fromHex('ffffffffffff02fc000000010806000108000604000102fc00000001c0000202000000000000c000024e'),
  /** fd00::2 solicits fd00::78 with its source link-layer address. Checksum 0x7bae. */
  neighborSolicitation: fromHex(
    '3333ff00007802fc0000000186dd6000000000203afffd000000000000000000000000000002ff02000000000000' +
      '00000001ff00007887007bae00000000fd000000000000000000000000000078010102fc00000001',
  ),
  /** `ping -p 41424344 -s 8 127.0.0.1` request: IPv4 checksum 0x90dc, ICMP 0x5cd5. */
  icmpEchoRequest: fromHex(
    '000000000000000000000000080045000024abfa4000400190dc7f0000017f00000108005cd516a300014142434400000000',
  ),
  /** The kernel's reply to it (no DF, id 0xabfb). */
  icmpEchoReply: fromHex(
    '000000000000000000000000080045000024abfb00004001d0db7f0000017f000001000064d516a300014142434400000000',
  ),
  /** `ping -6 -s 8 ::1` request: flow label 0x3dae9, ICMPv6 checksum 0x5cfe. */
  icmpv6EchoRequest: fromHex(
    '00000000000000000000000086dd6003dae900103a400000000000000000000000000000000100000000000000000000' +
      '00000000000180005cfe16a400010001020304050607',
  ),
};
