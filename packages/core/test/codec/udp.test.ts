import { describe, expect, it } from 'vitest';
import {
  buildUdp,
  checksumPartial,
  internetChecksum,
  parseIPv4Address,
  parseIPv6Address,
  parseUdp,
  pseudoHeaderSum,
  verifyUdpChecksum,
} from '../../src/codec/index.js';
import { expectTapError, fromHex, inSlab, INVALID, prng, randomBytes, toHex } from './helpers.js';

const payload = new TextEncoder().encode('tapkit');
const v4 = { src: parseIPv4Address('192.0.2.1'), dst: parseIPv4Address('198.51.100.2') };
const v6 = { src: parseIPv6Address('fd00::1'), dst: parseIPv6Address('fd00::2') };

/** The checksum from an explicitly laid-out pseudo-header: independent of pseudoHeaderSum. */
function referenceUdpChecksum(src: Uint8Array, dst: Uint8Array, udp: Uint8Array): number {
  const pseudo =
    src.length === 4
      ? Uint8Array.from([...src, ...dst, 0, 17, udp.length >> 8, udp.length & 0xff])
      : Uint8Array.from([...src, ...dst, 0, 0, udp.length >> 8, udp.length & 0xff, 0, 0, 0, 17]);
  const zeroed = udp.slice();
  zeroed[6] = zeroed[7] = 0;
  return internetChecksum(Uint8Array.from([...pseudo, ...zeroed])) || 0xffff;
}

describe('buildUdp', () => {
  // Both datagrams were checked good by tshark 4.0 (udp.check_checksum).
  it('matches a tshark-verified IPv4 datagram (checksum 0x94eb)', () => {
    expect(toHex(buildUdp({ ...v4, srcPort: 12345, dstPort: 53, payload }))).toBe(
      '30390035000e94eb7461706b6974',
    );
  });

  it('matches a tshark-verified IPv6 datagram (checksum 0x871e)', () => {
    expect(toHex(buildUdp({ ...v6, srcPort: 12345, dstPort: 53, payload }))).toBe(
      '30390035000e871e7461706b6974',
    );
  });

  it('agrees with an explicit pseudo-header on random datagrams, and verifies', () => {
    const rand = prng(21);
    for (let n = 0; n < 300; n++) {
      const addrs =
        rand() < 0.5
          ? { src: randomBytes(rand, 4), dst: randomBytes(rand, 4) }
          : { src: randomBytes(rand, 16), dst: randomBytes(rand, 16) };
      const data = randomBytes(rand, Math.floor(rand() * 200));
      const udp = buildUdp({
        ...addrs,
        srcPort: Math.floor(rand() * 65536),
        dstPort: Math.floor(rand() * 65536),
        payload: data,
      });
      expect((udp[6]! << 8) | udp[7]!).toBe(referenceUdpChecksum(addrs.src, addrs.dst, udp));
      expect(verifyUdpChecksum(inSlab(udp, rand), addrs.src, addrs.dst)).toBe(true);
    }
  });

  it('sends a computed checksum of 0 as 0xffff', () => {
    // Choose the 2-byte payload that makes the ones'-complement sum 0xffff.
    const head = Uint8Array.of(0x30, 0x39, 0x00, 0x35, 0x00, 0x0a, 0, 0);
    let sum = checksumPartial(head, pseudoHeaderSum(v4.src, v4.dst, 17, 10));
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    const word = 0xffff - sum;
    const udp = buildUdp({
      ...v4,
      srcPort: 12345,
      dstPort: 53,
      payload: Uint8Array.of(word >> 8, word & 0xff),
    });
    expect(toHex(udp.subarray(6, 8))).toBe('ffff');
    expect(verifyUdpChecksum(udp, v4.src, v4.dst)).toBe(true);
  });

  it('refuses bad inputs with INVALID_ARGUMENT', () => {
    const ok = { ...v4, srcPort: 1, dstPort: 2, payload };
    expectTapError(() => buildUdp({ ...ok, dst: v6.dst }), INVALID); // mixed families
    expectTapError(() => buildUdp({ ...ok, src: new Uint8Array(5), dst: new Uint8Array(5) }), INVALID);
    expectTapError(() => buildUdp({ ...ok, srcPort: 65536 }), INVALID);
    expectTapError(() => buildUdp({ ...ok, dstPort: -1 }), INVALID);
    expectTapError(() => buildUdp({ ...ok, payload: new Uint8Array(65528) }), INVALID);
    expect(buildUdp({ ...ok, payload: new Uint8Array(65527) }).length).toBe(65535);
  });
});

describe('parseUdp', () => {
  it('round-trips, with the payload bounded by the length field', () => {
    const udp = buildUdp({ ...v6, srcPort: 5353, dstPort: 5353, payload });
    const withTrailer = inSlab(Uint8Array.from([...udp, 0xee, 0xee]));
    const d = parseUdp(withTrailer);
    expect(d).toMatchObject({ srcPort: 5353, dstPort: 5353, length: 14 });
    expect(d.payload).toEqual(payload);
    expect(d.payload.byteOffset).toBe(withTrailer.byteOffset + 8);
  });

  it('throws MALFORMED for short datagrams and bad length fields', () => {
    for (let n = 0; n < 8; n++) expectTapError(() => parseUdp(new Uint8Array(n)));
    expectTapError(() => parseUdp(fromHex('0001 0002 0007 0000'))); // length < 8
    expectTapError(() => parseUdp(fromHex('0001 0002 0009 0000'))); // length > bytes
    expect(parseUdp(fromHex('0001 0002 0008 0000')).payload.length).toBe(0);
  });
});

describe('verifyUdpChecksum', () => {
  it('detects corruption, in the data and in the addresses', () => {
    const udp = buildUdp({ ...v4, srcPort: 1, dstPort: 2, payload });
    expect(verifyUdpChecksum(udp, v4.src, v4.dst)).toBe(true);
    expect(verifyUdpChecksum(udp, v4.dst, parseIPv4Address('192.0.2.9'))).toBe(false);
    const bad = udp.slice();
    bad[9] = bad[9]! ^ 1;
    expect(verifyUdpChecksum(bad, v4.src, v4.dst)).toBe(false);
  });

  it('treats a zero checksum as "none" over IPv4 but invalid over IPv6', () => {
    const none = fromHex('0001 0002 000a 0000 abcd');
    expect(verifyUdpChecksum(none, v4.src, v4.dst)).toBe(true);
    expect(verifyUdpChecksum(none, v6.src, v6.dst)).toBe(false);
  });

  it('is false for unreadable headers and refuses mismatched addresses', () => {
    expect(verifyUdpChecksum(new Uint8Array(4), v4.src, v4.dst)).toBe(false);
    expect(verifyUdpChecksum(fromHex('0001 0002 00ff 1234'), v4.src, v4.dst)).toBe(false);
    expectTapError(() => verifyUdpChecksum(new Uint8Array(8), v4.src, v6.dst), INVALID);
  });
});
