import { describe, expect, it } from 'vitest';
import {
  buildEthernet,
  buildIPv6,
  formatIPv6Address,
  isIPv6Multicast,
  linkLocalFromMac,
  parseIPv6,
  parseIPv6Address,
  solicitedNodeMulticast,
} from '../../src/codec/index.js';
import { expectTapError, fromHex, inSlab, INVALID, KERNEL, prng, toHex } from './helpers.js';

const canonical = (s: string): string => formatIPv6Address(parseIPv6Address(s));

describe('IPv6 text forms', () => {
  it.each([
    // RFC 5952 §4.2.1: shorten as much as possible
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['2001:db8::0:1', '2001:db8::1'],
    // §4.2.2: a single 16-bit 0 field is not shortened
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:db8::1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    // §4.2.3: the longest run; the first on a tie
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    // §4.1: no leading zeros; §4.3: lowercase
    ['2001:0db8::0001', '2001:db8::1'],
    ['2001:DB8:AC10:FE01::', '2001:db8:ac10:fe01::'],
    // edges
    ['::', '::'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1::', '1::'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['fe80::fc:ff:fe00:1', 'fe80::fc:ff:fe00:1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    // §5: IPv4-mapped addresses in mixed notation; other embeddings as hex
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::FFFF:c000:0201', '::ffff:192.0.2.1'],
    ['0:0:0:0:0:ffff:1.2.3.4', '::ffff:1.2.3.4'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['::1.2.3.4', '::102:304'],
    ['1:2:3:4:5::1.2.3.4', '1:2:3:4:5:0:102:304'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
  ])('%s → %s', (input, expected) => {
    expect(canonical(input)).toBe(expected);
    expect(canonical(expected)).toBe(expected); // canonical output parses back to itself
  });

  it.each([
    '',
    ':',
    ':::',
    '1:::2',
    '1::2::3',
    '::1::',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::',
    '::1:2:3:4:5:6:7:8',
    '12345::',
    'g::',
    ':1::2',
    '1::2:',
    '1:2:3:4:5:6:7:',
    ':1:2:3:4:5:6:7',
    '1.2.3.4',
    '::1.2.3',
    '::1.2.3.4:5',
    '::256.1.1.1',
    '::ffff:01.2.3.4',
    '1:2:3:4:5:6::1.2.3.4',
    '1:2:3:4:5:6:7:1.2.3.4',
    'fe80::1%eth0',
    ' ::1',
    '::1 ',
    '[::1]',
    '::-1',
    '0x1::',
  ])('refuses %j with INVALID_ARGUMENT', (s) => {
    expectTapError(() => parseIPv6Address(s), INVALID);
  });

  it('names the reason for a refusal', () => {
    expect(() => parseIPv6Address('1::2::3')).toThrow(/"1::2::3".*once/);
    expect(() => parseIPv6Address('fe80::1%eth0')).toThrow(/zone/);
  });

  it('agrees with the WHATWG URL serializer on random addresses', () => {
    const rand = prng(11);
    for (let n = 0; n < 2000; n++) {
      const bytes = new Uint8Array(16);
      // Mostly-zero groups make runs, ties and edge runs common.
      for (let g = 0; g < 8; g++) {
        if (rand() < 0.45) continue;
        bytes[2 * g] = rand() < 0.5 ? 0 : Math.floor(rand() * 256);
        bytes[2 * g + 1] = Math.floor(rand() * 256);
      }
      if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) continue; // mapped
      const text = formatIPv6Address(bytes);
      expect(`[${text}]`).toBe(new URL(`http://[${text}]/`).hostname);
      expect(parseIPv6Address(text)).toEqual(bytes);
      // The uncompressed form parses to the same bytes.
      const full = Array.from({ length: 8 }, (_, g) =>
        ((bytes[2 * g]! << 8) | bytes[2 * g + 1]!).toString(16),
      ).join(':');
      expect(parseIPv6Address(full)).toEqual(bytes);
    }
  });

  it('formats at an offset, from a slab view, and refuses short input', () => {
    const bytes = fromHex('aaaa 20010db8000000000000000000000001');
    expect(formatIPv6Address(inSlab(bytes), 2)).toBe('2001:db8::1');
    expectTapError(() => formatIPv6Address(new Uint8Array(16), 1), INVALID);
  });
});

const KERNEL_PACKET = KERNEL.icmpv6EchoRequest.subarray(14);

describe('parseIPv6', () => {
  const packet = KERNEL_PACKET;

  it('decodes the kernel echo request header', () => {
    const ip = parseIPv6(inSlab(packet));
    expect(ip).toMatchObject({
      version: 6,
      trafficClass: 0,
      flowLabel: 0x3dae9,
      payloadLength: 16,
      nextHeader: 58,
      hopLimit: 64,
    });
    expect(formatIPv6Address(ip.src)).toBe('::1');
    expect(formatIPv6Address(ip.dst)).toBe('::1');
    expect(ip.payload.length).toBe(16);
  });

  it('bounds the payload by payloadLength', () => {
    const bytes = buildIPv6({
      src: new Uint8Array(16),
      dst: new Uint8Array(16),
      nextHeader: 17,
      payload: Uint8Array.of(5),
    });
    const withTrailer = Uint8Array.from([...bytes, 0, 0, 0]);
    expect([...parseIPv6(withTrailer).payload]).toEqual([5]);
  });

  it('throws MALFORMED for short packets, other versions and overlong payload lengths', () => {
    for (let n = 0; n < 40; n++) expectTapError(() => parseIPv6(packet.subarray(0, n)));
    expectTapError(() => parseIPv6(packet.subarray(0, 55)));
    const v4 = packet.slice();
    v4[0] = 0x40;
    expectTapError(() => parseIPv6(v4));
  });
});

describe('buildIPv6', () => {
  it('reproduces the kernel echo request byte for byte', () => {
    const built = buildIPv6({
      src: parseIPv6Address('::1'),
      dst: parseIPv6Address('::1'),
      nextHeader: 58,
      flowLabel: 0x3dae9,
      payload: KERNEL_PACKET.subarray(40),
    });
    expect(toHex(built)).toBe(toHex(KERNEL_PACKET));
  });

  it('round-trips traffic class, flow label and hop limit', () => {
    const src = parseIPv6Address('fd00::1');
    const dst = parseIPv6Address('ff02::1');
    for (const [trafficClass, flowLabel, hopLimit] of [
      [0xab, 0xfffff, 255],
      [0xff, 0, 0],
      [1, 0x12345, 1],
    ] as const) {
      const ip = parseIPv6(
        buildIPv6({
          src,
          dst,
          nextHeader: 17,
          payload: new Uint8Array(3),
          trafficClass,
          flowLabel,
          hopLimit,
        }),
      );
      expect(ip).toMatchObject({ trafficClass, flowLabel, hopLimit, payloadLength: 3 });
      expect(ip.src).toEqual(src);
      expect(ip.dst).toEqual(dst);
    }
  });

  it('survives Ethernet padding on a tiny packet', () => {
    const bytes = buildIPv6({
      src: new Uint8Array(16),
      dst: new Uint8Array(16),
      nextHeader: 59,
      payload: new Uint8Array(0),
    });
    const frame = buildEthernet({
      dst: '33:33:00:00:00:01',
      src: '02:00:00:00:00:01',
      etherType: 0x86dd,
      payload: bytes,
      padTo60: true,
    });
    expect(parseIPv6(frame.subarray(14)).payload.length).toBe(0);
  });

  it('refuses bad inputs with INVALID_ARGUMENT', () => {
    const ok = {
      src: new Uint8Array(16),
      dst: new Uint8Array(16),
      nextHeader: 17,
      payload: new Uint8Array(0),
    };
    expectTapError(() => buildIPv6({ ...ok, dst: new Uint8Array(4) }), INVALID);
    expectTapError(() => buildIPv6({ ...ok, flowLabel: 0x100000 }), INVALID);
    expectTapError(() => buildIPv6({ ...ok, trafficClass: 256 }), INVALID);
    expectTapError(() => buildIPv6({ ...ok, hopLimit: -1 }), INVALID);
    expectTapError(() => buildIPv6({ ...ok, nextHeader: 300 }), INVALID);
    expectTapError(() => buildIPv6({ ...ok, payload: new Uint8Array(65536) }), INVALID);
  });
});

describe('IPv6 helpers', () => {
  it('computes solicited-node multicast groups (RFC 4291 §2.7.1)', () => {
    expect(formatIPv6Address(solicitedNodeMulticast(parseIPv6Address('fd00::78')))).toBe('ff02::1:ff00:78');
    expect(formatIPv6Address(solicitedNodeMulticast(parseIPv6Address('fe80::2aa:ff:fe28:9c5a')))).toBe(
      'ff02::1:ff28:9c5a',
    );
    expectTapError(() => solicitedNodeMulticast(new Uint8Array(4)), INVALID);
  });

  it('recognises multicast addresses', () => {
    expect(isIPv6Multicast(parseIPv6Address('ff02::1'))).toBe(true);
    expect(isIPv6Multicast(parseIPv6Address('fe80::1'))).toBe(false);
    expect(isIPv6Multicast(new Uint8Array(1).fill(0xff))).toBe(false);
  });

  it('derives link-local addresses from MACs (modified EUI-64)', () => {
    // Linux gave eth0 (02:fc:00:00:00:01) fe80::fc:ff:fe00:1; RFC 4291 appendix A's example too.
    expect(formatIPv6Address(linkLocalFromMac('02:fc:00:00:00:01'))).toBe('fe80::fc:ff:fe00:1');
    expect(formatIPv6Address(linkLocalFromMac(fromHex('0034567890ab')))).toBe('fe80::234:56ff:fe78:90ab');
    expectTapError(() => linkLocalFromMac('nope'), INVALID);
  });
});
