import { describe, expect, it } from 'vitest';
import {
  buildIcmpv6Echo,
  buildNeighborAdvertisement,
  buildNeighborSolicitation,
  formatIPv6Address,
  formatMac,
  Icmpv6Type,
  parseIcmpv6,
  parseIcmpv6Echo,
  parseIPv6Address,
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
  verifyIcmpv6Checksum,
} from '../../src/codec/index.js';
import { expectTapError, fromHex, inSlab, INVALID, KERNEL, toHex } from './helpers.js';

const loopback = parseIPv6Address('::1');
const echo = KERNEL.icmpv6EchoRequest.subarray(54);
const ns = KERNEL.neighborSolicitation.subarray(54);
const nsAddrs = { src: parseIPv6Address('fd00::2'), dst: parseIPv6Address('ff02::1:ff00:78') };
const target = parseIPv6Address('fd00::78');

describe('ICMPv6 echo', () => {
  it('decodes and verifies the kernel echo request', () => {
    expect(parseIcmpv6Echo(inSlab(echo))).toEqual({
      type: Icmpv6Type.EchoRequest,
      code: 0,
      checksum: 0x5cfe,
      identifier: 0x16a4,
      sequence: 1,
      data: fromHex('0001020304050607'),
    });
    expect(verifyIcmpv6Checksum(echo, loopback, loopback)).toBe(true);
    expect(verifyIcmpv6Checksum(echo, loopback, parseIPv6Address('::2'))).toBe(false);
  });

  it('rebuilds it byte for byte', () => {
    const built = buildIcmpv6Echo({
      type: 128,
      identifier: 0x16a4,
      sequence: 1,
      data: fromHex('0001020304050607'),
      src: loopback,
      dst: loopback,
    });
    expect(toHex(built)).toBe(toHex(echo));
  });

  it('round-trips replies with odd-length data', () => {
    const src = parseIPv6Address('fe80::1');
    const dst = parseIPv6Address('fe80::2');
    const bytes = buildIcmpv6Echo({
      type: Icmpv6Type.EchoReply,
      identifier: 7,
      sequence: 9,
      data: Uint8Array.of(1, 2, 3),
      src,
      dst,
    });
    expect(verifyIcmpv6Checksum(bytes, src, dst)).toBe(true);
    expect(parseIcmpv6Echo(bytes)).toMatchObject({
      type: 129,
      identifier: 7,
      sequence: 9,
      data: Uint8Array.of(1, 2, 3),
    });
  });

  it('returns undefined for other types, MALFORMED when truncated, INVALID_ARGUMENT for bad builds', () => {
    expect(parseIcmpv6Echo(ns)).toBeUndefined();
    for (let n = 0; n < 8; n++) expectTapError(() => parseIcmpv6Echo(echo.subarray(0, n)));
    const ok = {
      type: 128,
      identifier: 1,
      sequence: 1,
      data: new Uint8Array(0),
      src: loopback,
      dst: loopback,
    };
    expectTapError(() => buildIcmpv6Echo({ ...ok, type: 8 }), INVALID);
    expectTapError(() => buildIcmpv6Echo({ ...ok, dst: new Uint8Array(4) }), INVALID);
  });

  it('parseIcmpv6 decodes any header and throws MALFORMED under 4 bytes', () => {
    expect(parseIcmpv6(ns)).toMatchObject({ type: 135, code: 0, checksum: 0x7bae });
    expect(parseIcmpv6(ns).body.length).toBe(ns.length - 4);
    for (let n = 0; n < 4; n++) expectTapError(() => parseIcmpv6(ns.subarray(0, n)));
    expect(verifyIcmpv6Checksum(new Uint8Array(2), loopback, loopback)).toBe(false);
  });
});

describe('neighbour solicitation', () => {
  it('decodes the kernel solicitation', () => {
    const parsed = parseNeighborSolicitation(inSlab(ns));
    expect(formatIPv6Address(parsed!.target)).toBe('fd00::78');
    expect(formatMac(parsed!.sourceLinkLayer!)).toBe('02:fc:00:00:00:01');
    expect(verifyIcmpv6Checksum(ns, nsAddrs.src, nsAddrs.dst)).toBe(true);
  });

  it('rebuilds it byte for byte, and without the option', () => {
    const built = buildNeighborSolicitation({ ...nsAddrs, target, sourceLinkLayer: '02:fc:00:00:00:01' });
    expect(toHex(built)).toBe(toHex(ns));
    const dad = buildNeighborSolicitation({ src: new Uint8Array(16), dst: nsAddrs.dst, target });
    expect(dad.length).toBe(24);
    expect(parseNeighborSolicitation(dad)).toEqual({ target, sourceLinkLayer: undefined });
    expect(verifyIcmpv6Checksum(dad, new Uint8Array(16), nsAddrs.dst)).toBe(true);
  });

  it('walks past other options and takes the first link-layer one', () => {
    // nonce option (type 14, 1 unit) before the source link-layer address; a second one ignored
    const body = fromHex(
      '87000000 00000000' + toHex(target) + '0e01aabbccddeeff' + '010102000000000a' + '010102000000000b',
    );
    expect(formatMac(parseNeighborSolicitation(body)!.sourceLinkLayer!)).toBe('02:00:00:00:00:0a');
  });

  it('throws MALFORMED for zero-length, overrunning and truncated options', () => {
    const head = '87000000 00000000' + toHex(target);
    expectTapError(() => parseNeighborSolicitation(fromHex(head + '0100020000000001'))); // length 0
    expectTapError(() => parseNeighborSolicitation(fromHex(head + '0102020000000001'))); // 16 > 8 left
    expectTapError(() => parseNeighborSolicitation(fromHex(head + '01'))); // 1-byte option header
    expectTapError(() => parseNeighborSolicitation(fromHex(head + '0e01aabbccddeeff00'))); // trailing byte
  });

  it('returns undefined for other types, MALFORMED when short or with a nonzero code', () => {
    expect(parseNeighborSolicitation(echo)).toBeUndefined();
    expectTapError(() => parseNeighborSolicitation(new Uint8Array(0)));
    for (let n = 1; n < 24; n++) expectTapError(() => parseNeighborSolicitation(ns.subarray(0, n)));
    const coded = ns.slice();
    coded[1] = 1;
    expectTapError(() => parseNeighborSolicitation(coded));
  });

  it('refuses bad inputs with INVALID_ARGUMENT', () => {
    expectTapError(() => buildNeighborSolicitation({ ...nsAddrs, target: new Uint8Array(4) }), INVALID);
    expectTapError(() => buildNeighborSolicitation({ ...nsAddrs, target, sourceLinkLayer: 'zz' }), INVALID);
    expectTapError(() => buildNeighborSolicitation({ ...nsAddrs, src: new Uint8Array(4), target }), INVALID);
  });
});

describe('neighbour advertisement', () => {
  const addrs = { src: target, dst: nsAddrs.src };

  it('round-trips every flag combination, with and without the option', () => {
    for (let flags = 0; flags < 8; flags++) {
      const flagSet = {
        router: (flags & 4) !== 0,
        solicited: (flags & 2) !== 0,
        override: (flags & 1) !== 0,
      };
      for (const targetLinkLayer of [undefined, '02:00:00:00:00:78']) {
        const bytes = buildNeighborAdvertisement({ ...addrs, target, targetLinkLayer, ...flagSet });
        expect(bytes[4]).toBe(flags << 5);
        expect(verifyIcmpv6Checksum(bytes, addrs.src, addrs.dst)).toBe(true);
        const parsed = parseNeighborAdvertisement(inSlab(bytes))!;
        expect(parsed).toMatchObject(flagSet);
        expect(parsed.target).toEqual(target);
        expect(parsed.targetLinkLayer && formatMac(parsed.targetLinkLayer)).toBe(targetLinkLayer);
      }
    }
  });

  it('ignores a source link-layer option, and is undefined for a solicitation', () => {
    const body = fromHex('88000000 60000000' + toHex(target) + '0101020000000001');
    expect(parseNeighborAdvertisement(body)).toMatchObject({
      solicited: true,
      override: true,
      targetLinkLayer: undefined,
    });
    expect(parseNeighborAdvertisement(ns)).toBeUndefined();
  });

  it('throws MALFORMED for a zero-length option and when short', () => {
    const head = '88000000 60000000' + toHex(target);
    expectTapError(() => parseNeighborAdvertisement(fromHex(head + '0200020000000001')));
    expectTapError(() => parseNeighborAdvertisement(fromHex(head).subarray(0, 23)));
  });
});
