import { describe, expect, it } from 'vitest';
import { TapError, TapErrorCode, type TapErrorCodeValue } from '@tapkit/core';
import { darwinError } from '../src/index.js';
import { sysError, type ErrnoName } from './kernel.js';

describe('darwinError', () => {
  it.each<[ErrnoName, string, string | undefined, TapErrorCodeValue, RegExp]>([
    ['EPERM', 'ioctl', 'SIOCIFCREATE2', TapErrorCode.PERMISSION_DENIED, /needs root/],
    ['EACCES', 'open', undefined, TapErrorCode.PERMISSION_DENIED, /ChmodBPF/],
    ['EPERM', 'socket', undefined, TapErrorCode.PERMISSION_DENIED, /AF_NDRV/],
    ['EEXIST', 'ioctl', 'SIOCIFCREATE2', TapErrorCode.NAME_IN_USE, /exists already/],
    ['EINVAL', 'ioctl', 'SIOCIFCREATE2', TapErrorCode.KERNEL_SUPPORT_MISSING, /10\.13/],
    ['ENXIO', 'ioctl', 'SIOCIFCREATE2', TapErrorCode.INVALID_OPTION, /unit/],
    ['EBUSY', 'ioctl', 'SIOCSDRVSPEC', TapErrorCode.NAME_IN_USE, /already peered/],
    ['ENXIO', 'ioctl', 'SIOCSDRVSPEC', TapErrorCode.DEVICE_GONE, /peer interface does not exist/],
    ['EINVAL', 'ioctl', 'SIOCSDRVSPEC', TapErrorCode.SYSTEM, /not a feth/],
    ['EINVAL', 'ioctl', 'SIOCSIFMTU', TapErrorCode.MTU_UNSUPPORTED, /ceiling/],
    ['EINVAL', 'sysctl', 'net.link.fake.max_mtu', TapErrorCode.MTU_UNSUPPORTED, /max_mtu/],
    ['EINVAL', 'ioctl', 'SIOCAIFADDR_IN6', TapErrorCode.INVALID_OPTION, /address/],
    ['EBUSY', 'open', undefined, TapErrorCode.SYSTEM, /\/dev\/bpf/],
    ['EMSGSIZE', 'write', undefined, TapErrorCode.FRAME_TOO_LARGE, /send buffer/],
    ['ENXIO', 'read', undefined, TapErrorCode.DEVICE_GONE, /gone/],
    ['ENXIO', 'ioctl', 'BIOCSETIF', TapErrorCode.DEVICE_GONE, /gone/],
    ['EPIPE', 'write', undefined, TapErrorCode.DEVICE_GONE, /gone/],
    ['EADDRNOTAVAIL', 'bind', undefined, TapErrorCode.DEVICE_GONE, /gone/],
    ['EINVAL', 'write', undefined, TapErrorCode.SYSTEM, /failed/],
  ])('%s from %s %s is %s', (errno, syscall, request, code, message) => {
    const raw = sysError(errno, syscall, request, 'feth10000');
    const error = darwinError(raw, 'do it');
    expect(error).toBeInstanceOf(TapError);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(/^do it/);
    expect(error.message).toMatch(message);
    expect(error).toMatchObject({ osCode: errno, errno: raw.errno, syscall, backend: 'darwin-feth' });
    expect(error.cause).toBe(raw);
  });

  it('passes TapErrors through, and maps errors without an errno to ERR_TAP_SYSTEM', () => {
    const tap = new TapError(TapErrorCode.CLOSED, 'closed');
    expect(darwinError(tap, 'x')).toBe(tap);
    expect(darwinError(new Error('odd'), 'x').code).toBe(TapErrorCode.SYSTEM);
    expect(darwinError('odd', 'x').code).toBe(TapErrorCode.SYSTEM);
  });
});
