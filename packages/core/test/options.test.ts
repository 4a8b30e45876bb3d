import { describe, expect, it } from 'vitest';
import { checkInterfaceName, parseCidr, resolveOpenOptions } from '../src/options.js';
import { TapErrorCode, isTapError } from '../src/errors.js';
import { TapError, fromSystemError } from '../src/errors.js';

const limits = { minMtu: 68, maxMtu: 9000 };

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
    return undefined;
  } catch (error) {
    return isTapError(error) ? error.code : 'not a TapError';
  }
}

describe('open options', () => {
  it('applies defaults: MTU 1500, a random locally administered unicast MAC, up, 1024 frames', () => {
    const o = resolveOpenOptions(undefined, limits);
    expect(o).toMatchObject({ name: undefined, mtu: 1500, up: true, rxQueueFrames: 1024, addresses: [] });
    expect(o.mac.length).toBe(6);
    expect(o.mac[0]! & 1).toBe(0);
    expect(o.mac[0]! & 2).toBe(2);
    expect(resolveOpenOptions({}, { minMtu: 68, maxMtu: 1280 }).mtu).toBe(1280);
  });

  it.each([
    ['', 'empty'],
    ['a'.repeat(16), 'too long'],
    ['tap 0', 'space'],
    ['tap/0', 'slash'],
    ['tap:0', 'colon'],
    ['..', 'dot-dot'],
    [42, 'not a string'],
  ] as [unknown, string][])('refuses the interface name %j (%s)', (name) => {
    expect(codeOf(() => checkInterfaceName(name))).toBe(TapErrorCode.INVALID_OPTION);
  });

  it('accepts names of 1–15 letters, digits and _.-', () => {
    expect(checkInterfaceName('tap0')).toBe('tap0');
    expect(checkInterfaceName('a'.repeat(15))).toBe('a'.repeat(15));
    expect(checkInterfaceName('br-lan_1.2')).toBe('br-lan_1.2');
  });

  it('refuses a non-integer MTU as invalid, naming its type, and an integer out of range as unsupported', () => {
    for (const mtu of [1500.5, NaN, '1500', true]) {
      expect(codeOf(() => resolveOpenOptions({ mtu: mtu as number }, limits))).toBe(
        TapErrorCode.INVALID_OPTION,
      );
    }
    expect(() => resolveOpenOptions({ mtu: '1500' as unknown as number }, limits)).toThrow(
      'invalid MTU: it must be an integer number of bytes, not the string "1500"',
    );
    expect(() => resolveOpenOptions({ mtu: 1500.5 }, limits)).toThrow('not the number 1500.5');
    for (const mtu of [0, 67, 9001, 65536, 70000]) {
      expect(codeOf(() => resolveOpenOptions({ mtu }, limits))).toBe(TapErrorCode.MTU_UNSUPPORTED);
    }
    expect(() => resolveOpenOptions({ mtu: 0 }, limits)).toThrow('(68–9000)');
    expect(resolveOpenOptions({ mtu: 68 }, limits).mtu).toBe(68);
  });

  it('takes a MAC as a string or bytes; refuses multicast, all-zero and malformed ones', () => {
    expect([...resolveOpenOptions({ mac: '02:AA:bb:cc:dd:ee' }, limits).mac]).toEqual([
      2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
    ]);
    const bytes = Uint8Array.of(2, 1, 2, 3, 4, 5);
    const resolved = resolveOpenOptions({ mac: bytes }, limits).mac;
    expect([...resolved]).toEqual([...bytes]);
    bytes[5] = 9;
    expect(resolved[5]).toBe(5); // a copy
    for (const mac of [
      '01:00:5e:00:00:01',
      'ff:ff:ff:ff:ff:ff',
      '00:00:00:00:00:00',
      '02:00:00:00:00',
      'zz:00:00:00:00:00',
      new Uint8Array(5),
    ]) {
      expect(codeOf(() => resolveOpenOptions({ mac }, limits))).toBe(TapErrorCode.INVALID_OPTION);
    }
  });

  it('parses IPv4 and IPv6 CIDRs and normalises them', () => {
    expect(parseCidr('10.0.0.1/24')).toMatchObject({ family: 4, prefixLength: 24, cidr: '10.0.0.1/24' });
    expect(parseCidr('FD00:0:0::1/64')).toMatchObject({ family: 6, prefixLength: 64, cidr: 'fd00::1/64' });
    expect([...parseCidr('fe80::1/128').address.subarray(0, 2)]).toEqual([0xfe, 0x80]);
  });

  it.each([
    '10.0.0.1',
    '10.0.0.1/33',
    '10.0.0.256/24',
    '10.0.0/24',
    'fd00::1/129',
    'fd00:::1/64',
    '10.0.0.1/-1',
    '10.0.0.1/2a',
    'fd00::1/',
  ])('refuses the address %j', (cidr) => {
    expect(codeOf(() => resolveOpenOptions({ addresses: [cidr] }, limits))).toBe(TapErrorCode.INVALID_OPTION);
  });

  it('refuses options of the wrong type', () => {
    expect(codeOf(() => resolveOpenOptions(5 as never, limits))).toBe(TapErrorCode.INVALID_OPTION);
    expect(codeOf(() => resolveOpenOptions({ addresses: '10.0.0.1/24' as never }, limits))).toBe(
      TapErrorCode.INVALID_OPTION,
    );
    expect(codeOf(() => resolveOpenOptions({ up: 'yes' as never }, limits))).toBe(
      TapErrorCode.INVALID_OPTION,
    );
    expect(codeOf(() => resolveOpenOptions({ rxQueueFrames: 0 }, limits))).toBe(TapErrorCode.INVALID_OPTION);
    expect(codeOf(() => resolveOpenOptions({ signal: {} as never }, limits))).toBe(
      TapErrorCode.INVALID_OPTION,
    );
  });
});

describe('TapError', () => {
  it('is recognised by isTapError without instanceof, also after losing its brand', () => {
    const error = new TapError(TapErrorCode.CLOSED, 'closed');
    expect(isTapError(error)).toBe(true);
    expect(isTapError(error, TapErrorCode.CLOSED)).toBe(true);
    expect(isTapError(error, TapErrorCode.ABORTED)).toBe(false);
    const cloned = structuredClone({ name: error.name, code: error.code, message: error.message });
    expect(isTapError(cloned, TapErrorCode.CLOSED)).toBe(true);
    expect(isTapError(new Error('x'))).toBe(false);
    expect(isTapError({ name: 'TapError', code: 'EPERM' })).toBe(false);
    expect(isTapError(null)).toBe(false);
  });

  it('maps OS errors to stable codes, keeping errno, syscall and cause', () => {
    const os = Object.assign(new Error('Operation not permitted'), {
      code: 'EPERM',
      errno: -1,
      syscall: 'ioctl',
    });
    const error = fromSystemError(os, 'open tap0', {
      permissionHint: 'Needs CAP_NET_ADMIN.',
      backend: 'linux-tap',
    });
    expect(error).toMatchObject({
      code: TapErrorCode.PERMISSION_DENIED,
      errno: -1,
      syscall: 'ioctl',
      osCode: 'EPERM',
      backend: 'linux-tap',
    });
    expect(error.message).toContain('CAP_NET_ADMIN');
    expect(error.cause).toBe(os);
    expect(fromSystemError({ code: 'EBUSY' }, 'x').code).toBe(TapErrorCode.NAME_IN_USE);
    expect(fromSystemError({ code: 'ENODEV' }, 'x').code).toBe(TapErrorCode.DEVICE_GONE);
    expect(fromSystemError('weird', 'x').code).toBe(TapErrorCode.SYSTEM);
  });
});
