import { describe, expect, it } from 'vitest';
import { checksumPartial, finishChecksum, internetChecksum, pseudoHeaderSum } from '../../src/codec/index.js';
import { fromHex, inSlab, KERNEL, prng, randomBytes } from './helpers.js';

/** A deliberately naive reference: fold after every word. */
function referenceChecksum(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) {
    sum += (data[i]! << 8) + (i + 1 < data.length ? data[i + 1]! : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

describe('internetChecksum', () => {
  it('matches the RFC 1071 §3 worked example', () => {
    const data = fromHex('0001 f203 f4f5 f6f7');
    expect(checksumPartial(data)).toBe(0xddf2); // the example's folded sum
    expect(internetChecksum(data)).toBe(0x220d);
  });

  it('matches a well-known IPv4 header (checksum 0xb861)', () => {
    const header = fromHex('4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7');
    expect(internetChecksum(header)).toBe(0xb861);
    header[10] = 0xb8;
    header[11] = 0x61;
    expect(internetChecksum(header)).toBe(0); // over a correct checksum field: 0
  });

  it('matches a header the Linux kernel checksummed (0x90dc)', () => {
    const header = KERNEL.icmpEchoRequest.subarray(14, 34);
    expect(internetChecksum(header)).toBe(0);
    const zeroed = header.slice();
    zeroed[10] = zeroed[11] = 0;
    expect(internetChecksum(zeroed)).toBe(0x90dc);
  });

  it('pads an odd last byte with zero', () => {
    expect(internetChecksum(Uint8Array.of(0x01))).toBe(0xfeff);
    expect(internetChecksum(Uint8Array.of(0x12, 0x34, 0x56))).toBe(~(0x1234 + 0x5600) & 0xffff);
  });

  it('is 0xffff for empty and all-zero data', () => {
    expect(internetChecksum(new Uint8Array(0))).toBe(0xffff);
    expect(internetChecksum(new Uint8Array(10))).toBe(0xffff);
  });

  it('agrees with a naive reference on random data, including large all-0xff buffers', () => {
    const rand = prng(7);
    for (let n = 0; n < 300; n++) {
      const data = randomBytes(rand, Math.floor(rand() * 1600));
      expect(internetChecksum(data)).toBe(referenceChecksum(data));
    }
    const big = new Uint8Array(1 << 20).fill(0xff);
    expect(internetChecksum(big)).toBe(referenceChecksum(big));
  });

  it('respects byteOffset: a view in a slab sums only its own bytes', () => {
    const data = fromHex('0001 f203 f4f5 f6f7');
    expect(internetChecksum(inSlab(data))).toBe(0x220d);
    expect(internetChecksum(inSlab(data.subarray(0, 7)))).toBe(referenceChecksum(data.subarray(0, 7)));
  });

  it('composes: partial sums over even-length pieces equal the whole', () => {
    const data = randomBytes(prng(3), 101);
    const sum = checksumPartial(
      data.subarray(40),
      checksumPartial(data.subarray(10, 40), checksumPartial(data.subarray(0, 10))),
    );
    expect(finishChecksum(sum)).toBe(internetChecksum(data));
    expect(internetChecksum(data.subarray(50), checksumPartial(data.subarray(0, 50)))).toBe(
      internetChecksum(data),
    );
  });

  it('takes a [start, end) range and clamps end to the view', () => {
    const data = randomBytes(prng(4), 64);
    expect(finishChecksum(checksumPartial(data, 0, 8, 30))).toBe(internetChecksum(data.subarray(8, 30)));
    expect(finishChecksum(checksumPartial(data, 0, 8, 1000))).toBe(internetChecksum(data.subarray(8)));
  });
});

describe('pseudoHeaderSum', () => {
  it('equals the sum of an explicit IPv4 pseudo-header', () => {
    const src = fromHex('c0a80001');
    const dst = fromHex('0a000002');
    const explicit = fromHex('c0a80001 0a000002 00 11 1234');
    expect(finishChecksum(pseudoHeaderSum(src, dst, 17, 0x1234))).toBe(internetChecksum(explicit));
  });

  it('equals the sum of an explicit IPv6 pseudo-header (32-bit length)', () => {
    const src = fromHex('fd000000000000000000000000000001');
    const dst = fromHex('ff0200000000000000000001ff000001');
    const explicit = new Uint8Array(40);
    explicit.set(src, 0);
    explicit.set(dst, 16);
    explicit.set(fromHex('00012345 000000 3a'), 32);
    expect(finishChecksum(pseudoHeaderSum(src, dst, 58, 0x12345))).toBe(internetChecksum(explicit));
  });
});
