import { describe, expect, it } from 'vitest';
import {
  BROADCAST_MAC,
  broadcastMac,
  formatMac,
  ipv4MulticastMac,
  ipv6MulticastMac,
  isBroadcastMac,
  isLocallyAdministeredMac,
  isMulticastMac,
  isUnicastMac,
  macEquals,
  parseIPv4Address,
  parseIPv6Address,
  parseMac,
  randomMac,
  writeMac,
} from '../../src/codec/index.js';
import { expectTapError, fromHex, inSlab, INVALID, toHex } from './helpers.js';

describe('parseMac', () => {
  it('accepts colon and dash forms in any case', () => {
    for (const s of ['aa:bb:cc:0d:ee:ff', 'AA-BB-CC-0D-EE-FF', 'Aa:bB:cC:0d:Ee:fF']) {
      expect(toHex(parseMac(s))).toBe('aabbcc0deeff');
    }
  });

  it.each([
    '',
    'aa:bb:cc:dd:ee',
    'aa:bb:cc:dd:ee:ff:00',
    'aa:bb-cc:dd:ee:ff', // mixed separators
    'aa.bb.cc.dd.ee.ff',
    'aabb.ccdd.eeff',
    'aabbccddeeff',
    'gg:bb:cc:dd:ee:ff',
    ' aa:bb:cc:dd:ee:f',
    'a:bb:cc:dd:ee:fff',
    'aa:bb:cc:dd:ee:ff ',
  ])('refuses %j with INVALID_ARGUMENT', (s) => {
    expectTapError(() => parseMac(s), INVALID);
  });

  it('says what a MAC should look like', () => {
    expect(() => parseMac('nope')).toThrow(/"nope".*aa:bb:cc:dd:ee:ff/);
  });

  it('copies 6 bytes and refuses other lengths and types', () => {
    const bytes = fromHex('020000000001');
    const mac = parseMac(bytes);
    expect(mac).toEqual(bytes);
    expect(mac).not.toBe(bytes);
    bytes[0] = 0xff;
    expect(mac[0]).toBe(0x02);
    expectTapError(() => parseMac(new Uint8Array(5)), INVALID);
    expectTapError(() => parseMac(new Uint8Array(7)), INVALID);
    expectTapError(() => parseMac(42 as unknown as string), INVALID);
    expectTapError(() => parseMac(null as unknown as string), INVALID);
  });

  it('writeMac writes into a buffer at an offset', () => {
    const out = new Uint8Array(10);
    writeMac(out, 2, '01:02:03:04:05:06');
    expect(toHex(out)).toBe('00000102030405060000');
  });
});

describe('formatMac', () => {
  it('formats lowercase with colons, at an offset, from a slab view', () => {
    expect(formatMac(fromHex('AABBCC0DEEFF'))).toBe('aa:bb:cc:0d:ee:ff');
    expect(formatMac(inSlab(fromHex('00112233445566778899')), 3)).toBe('33:44:55:66:77:88');
  });

  it('refuses fewer than 6 bytes at the offset', () => {
    expectTapError(() => formatMac(new Uint8Array(5)), INVALID);
    expectTapError(() => formatMac(new Uint8Array(8), 3), INVALID);
  });

  it('round-trips with parseMac', () => {
    const mac = randomMac();
    expect(parseMac(formatMac(mac))).toEqual(mac);
  });
});

describe('classification', () => {
  it('macEquals compares at offsets and is false for short inputs', () => {
    const a = fromHex('ffff 020000000001');
    const b = fromHex('020000000001');
    expect(macEquals(a, b, 2)).toBe(true);
    expect(macEquals(a, b)).toBe(false);
    expect(macEquals(b, a, 0, 2)).toBe(true);
    expect(macEquals(a, b, 3)).toBe(false); // only 5 bytes left in a
  });

  it('tells broadcast, multicast, unicast and locally administered apart', () => {
    const cases: [string, boolean, boolean, boolean][] = [
      // mac, broadcast, multicast, local
      ['ff:ff:ff:ff:ff:ff', true, true, true],
      ['01:00:5e:00:00:01', false, true, false],
      ['33:33:00:00:00:01', false, true, true],
      ['02:00:00:00:00:01', false, false, true],
      ['00:1b:21:00:00:01', false, false, false],
    ];
    for (const [s, broadcast, multicast, local] of cases) {
      const mac = parseMac(s);
      expect([
        isBroadcastMac(mac),
        isMulticastMac(mac),
        isUnicastMac(mac),
        isLocallyAdministeredMac(mac),
      ]).toEqual([broadcast, multicast, !multicast, local]);
    }
    expect(isUnicastMac(new Uint8Array(3))).toBe(false);
    expect(isMulticastMac(fromHex('00 01 00 00 00 00 00'), 1)).toBe(true);
  });

  it('randomMac is unicast, locally administered and random', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const mac = randomMac();
      expect(mac.length).toBe(6);
      expect(isUnicastMac(mac) && isLocallyAdministeredMac(mac)).toBe(true);
      seen.add(formatMac(mac));
    }
    expect(seen.size).toBe(500);
  });

  it('broadcastMac returns a fresh copy each time', () => {
    const a = broadcastMac();
    a[0] = 0;
    expect(broadcastMac()).toEqual(BROADCAST_MAC);
    expect(isBroadcastMac(BROADCAST_MAC)).toBe(true);
  });
});

describe('multicast group MACs', () => {
  it('maps IPv4 groups to 01:00:5e + the low 23 bits', () => {
    expect(formatMac(ipv4MulticastMac(parseIPv4Address('224.0.0.251')))).toBe('01:00:5e:00:00:fb');
    expect(formatMac(ipv4MulticastMac(parseIPv4Address('239.129.2.3')))).toBe('01:00:5e:01:02:03');
    expectTapError(() => ipv4MulticastMac(new Uint8Array(16)), INVALID);
  });

  it('maps IPv6 groups to 33:33 + the last 4 bytes', () => {
    expect(formatMac(ipv6MulticastMac(parseIPv6Address('ff02::1:ff00:78')))).toBe('33:33:ff:00:00:78');
    expect(formatMac(ipv6MulticastMac(parseIPv6Address('ff02::1')))).toBe('33:33:00:00:00:01');
    expectTapError(() => ipv6MulticastMac(new Uint8Array(4)), INVALID);
  });
});
