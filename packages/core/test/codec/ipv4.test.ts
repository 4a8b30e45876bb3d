import { describe, expect, it } from 'vitest';
import {
  buildEthernet,
  buildIPv4,
  formatIPv4Address,
  IpProtocol,
  parseIPv4,
  parseIPv4Address,
  verifyIPv4Checksum,
} from '../../src/codec/index.js';
import { expectTapError, fromHex, inSlab, INVALID, KERNEL, toHex } from './helpers.js';

describe('IPv4 addresses', () => {
  it('parses and formats dotted quads', () => {
    for (const s of ['0.0.0.0', '255.255.255.255', '192.0.2.1', '10.0.0.10', '1.22.199.250']) {
      expect(formatIPv4Address(parseIPv4Address(s))).toBe(s);
    }
    expect(toHex(parseIPv4Address('192.0.2.1'))).toBe('c0000201');
  });

  it.each([
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '1.2.3.1000',
    '01.2.3.4', // leading zero: octal to some parsers
    '1.2.3.00',
    '1..3.4',
    '.1.2.3',
    '1.2.3.4.',
    ' 1.2.3.4',
    '1.2.3.4 ',
    '1.2.3.-4',
    '0x1.2.3.4',
    '1.2.3.4/24',
    '١.2.3.4', // Arabic-Indic digit
    '::1',
  ])('refuses %j with INVALID_ARGUMENT', (s) => {
    expectTapError(() => parseIPv4Address(s), INVALID);
  });

  it('formats at an offset and refuses short input', () => {
    expect(formatIPv4Address(inSlab(fromHex('00 c0000201')), 1)).toBe('192.0.2.1');
    expectTapError(() => formatIPv4Address(new Uint8Array(3)), INVALID);
  });
});

describe('parseIPv4', () => {
  const packet = KERNEL.icmpEchoRequest.subarray(14);

  it('decodes the kernel echo request header', () => {
    const ip = parseIPv4(inSlab(packet));
    expect(ip).toMatchObject({
      version: 4,
      headerLength: 20,
      dscp: 0,
      ecn: 0,
      totalLength: 36,
      identification: 0xabfa,
      flags: 0b010,
      fragmentOffset: 0,
      ttl: 64,
      protocol: IpProtocol.ICMP,
      checksum: 0x90dc,
    });
    expect(formatIPv4Address(ip.src)).toBe('127.0.0.1');
    expect(formatIPv4Address(ip.dst)).toBe('127.0.0.1');
    expect(ip.payload.length).toBe(16);
    expect(ip.options.length).toBe(0);
    expect(verifyIPv4Checksum(packet)).toBe(true);
  });

  it('bounds the payload by totalLength, excluding Ethernet padding', () => {
    const ip = buildIPv4({
      src: parseIPv4Address('10.0.0.1'),
      dst: parseIPv4Address('10.0.0.2'),
      protocol: 17,
      payload: Uint8Array.of(9, 9),
    });
    const frame = buildEthernet({
      dst: 'ff:ff:ff:ff:ff:ff',
      src: '02:00:00:00:00:01',
      etherType: 0x0800,
      payload: ip,
      padTo60: true,
    });
    const parsed = parseIPv4(frame.subarray(14));
    expect([...parsed.payload]).toEqual([9, 9]);
  });

  it('exposes header options and skips them for the payload', () => {
    // IHL 6: one 4-byte option (router alert 94 04 00 00)
    const bytes = fromHex('4600001e 00000000 4002 0000 0a000001 e0000016 94040000 aabbccdd dead');
    const ip = parseIPv4(bytes);
    expect(ip.headerLength).toBe(24);
    expect(toHex(ip.options)).toBe('94040000');
    expect(toHex(ip.payload)).toBe('aabbccdddead'); // totalLength 30 = 24 + 6
  });

  it('reports DF, MF and fragment offsets', () => {
    const bytes = packet.slice();
    bytes[6] = 0x20 | 0x01; // MF + offset 0x100
    bytes[7] = 0x00;
    const ip = parseIPv4(bytes);
    expect(ip.flags).toBe(0b001);
    expect(ip.fragmentOffset).toBe(0x100);
  });

  it('throws MALFORMED for bad versions, header lengths and total lengths', () => {
    const mutate = (f: (b: Uint8Array) => void): Uint8Array => {
      const b = packet.slice();
      f(b);
      return b;
    };
    for (let n = 0; n < 20; n++) expectTapError(() => parseIPv4(packet.subarray(0, n)));
    expectTapError(() => parseIPv4(mutate((b) => (b[0] = 0x65)))); // version 6
    expectTapError(() => parseIPv4(mutate((b) => (b[0] = 0x44)))); // IHL 4
    expectTapError(() => parseIPv4(mutate((b) => (b[0] = 0x4f)))); // IHL 15 > totalLength 36
    expectTapError(() => parseIPv4(mutate((b) => (b[3] = 19)))); // totalLength < header
    expectTapError(() => parseIPv4(packet.subarray(0, 35))); // totalLength 36 > 35 available
  });
});

describe('verifyIPv4Checksum', () => {
  it('is false for a corrupted header and for too little to check', () => {
    const bytes = KERNEL.icmpEchoRequest.slice(14);
    bytes[8] = 63; // ttl changed without fixing the checksum
    expect(verifyIPv4Checksum(bytes)).toBe(false);
    expect(verifyIPv4Checksum(new Uint8Array(10))).toBe(false);
    expect(verifyIPv4Checksum(fromHex('4f' + '00'.repeat(30)))).toBe(false); // IHL past the end
  });
});

describe('buildIPv4', () => {
  it('reproduces the kernel echo request byte for byte', () => {
    const original = KERNEL.icmpEchoRequest.subarray(14);
    const built = buildIPv4({
      src: parseIPv4Address('127.0.0.1'),
      dst: parseIPv4Address('127.0.0.1'),
      protocol: IpProtocol.ICMP,
      identification: 0xabfa,
      payload: original.subarray(20),
    });
    expect(toHex(built)).toBe(toHex(original));
  });

  it('reproduces the kernel echo reply (no DF)', () => {
    const original = KERNEL.icmpEchoReply.subarray(14);
    const built = buildIPv4({
      src: original.subarray(12, 16),
      dst: original.subarray(16, 20),
      protocol: 1,
      identification: 0xabfb,
      dontFragment: false,
      payload: original.subarray(20),
    });
    expect(toHex(built)).toBe(toHex(original));
  });

  it('round-trips every field', () => {
    const src = parseIPv4Address('198.51.100.7');
    const dst = parseIPv4Address('203.0.113.9');
    const payload = Uint8Array.from({ length: 333 }, (_, i) => i);
    const bytes = buildIPv4({
      src,
      dst,
      protocol: 6,
      payload,
      ttl: 1,
      identification: 0xffff,
      dscp: 46,
      ecn: 3,
    });
    const ip = parseIPv4(bytes);
    expect(ip).toMatchObject({
      ttl: 1,
      identification: 0xffff,
      dscp: 46,
      ecn: 3,
      protocol: 6,
      flags: 0b010,
      totalLength: 353,
    });
    expect(ip.src).toEqual(src);
    expect(ip.dst).toEqual(dst);
    expect(ip.payload).toEqual(payload);
    expect(verifyIPv4Checksum(bytes)).toBe(true);
  });

  it('refuses bad inputs with INVALID_ARGUMENT', () => {
    const ok = { src: new Uint8Array(4), dst: new Uint8Array(4), protocol: 17, payload: new Uint8Array(0) };
    expectTapError(() => buildIPv4({ ...ok, src: new Uint8Array(16) }), INVALID);
    expectTapError(() => buildIPv4({ ...ok, protocol: 256 }), INVALID);
    expectTapError(() => buildIPv4({ ...ok, ttl: 256 }), INVALID);
    expectTapError(() => buildIPv4({ ...ok, ttl: 1.5 }), INVALID);
    expectTapError(() => buildIPv4({ ...ok, dscp: 64 }), INVALID);
    expectTapError(() => buildIPv4({ ...ok, identification: 0x10000 }), INVALID);
    expectTapError(() => buildIPv4({ ...ok, payload: new Uint8Array(65516) }), INVALID);
    expect(buildIPv4({ ...ok, payload: new Uint8Array(65515) }).length).toBe(65535);
  });
});
