/**
 * Loading the addon and turning system errors into TapErrors; no privileges needed.
 */
import { TapErrorCode, isTapError } from '@tapkit/core';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { loadAddon, type RawSystemError } from '../src/addon.js';
import { MTU_REQUEST, changeError, ioError, openError } from '../src/errors.js';
import { probeLinuxTap } from '../src/index.js';
import { PACKAGE_ROOT } from './helpers.js';

const addon = loadAddon();

function sysError(code: string, syscall: string, extra: Partial<RawSystemError> = {}): RawSystemError {
  return Object.assign(new Error(`${code}: test, ${syscall}`), { code, errno: -1, syscall, ...extra });
}

describe('linux-tap errors', () => {
  it('says the kernel support is missing when the clone device does not exist', () => {
    let raw: unknown;
    try {
      new addon.TapHandle({
        path: '/nonexistent/net/tun',
        batchFrames: 1,
        offsets: new Uint32Array(2),
        frameReserve: 1518,
        slabBytes: 4096,
        onRead() {},
        onDrain() {},
        onError() {},
      });
    } catch (error) {
      raw = error;
    }
    expect(raw).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: '/nonexistent/net/tun' });
    const error = openError(raw, 'open tap device');
    expect(error.code).toBe(TapErrorCode.KERNEL_SUPPORT_MISSING);
    expect(error.message).toContain('modprobe tun');
    expect(error).toMatchObject({ errno: -2, osCode: 'ENOENT', syscall: 'open', backend: 'linux-tap' });
  });

  it('maps what TUNSETIFF and the rtnetlink configuration say', () => {
    const cases: [RawSystemError, string][] = [
      [sysError('EPERM', 'ioctl', { request: 'TUNSETIFF' }), TapErrorCode.PERMISSION_DENIED],
      [sysError('EACCES', 'open', { path: '/dev/net/tun' }), TapErrorCode.PERMISSION_DENIED],
      [sysError('EBUSY', 'ioctl', { request: 'TUNSETIFF' }), TapErrorCode.NAME_IN_USE],
      [sysError('EINVAL', 'ioctl', { request: 'TUNSETIFF' }), TapErrorCode.INVALID_OPTION],
      [sysError('EINVAL', 'rtnetlink', { request: MTU_REQUEST }), TapErrorCode.MTU_UNSUPPORTED],
      [sysError('EEXIST', 'rtnetlink', { request: 'RTM_NEWADDR' }), TapErrorCode.INVALID_OPTION],
      [sysError('EAFNOSUPPORT', 'rtnetlink', { request: 'RTM_NEWADDR' }), TapErrorCode.INVALID_OPTION],
      [sysError('EMFILE', 'open'), TapErrorCode.SYSTEM],
    ];
    for (const [raw, code] of cases)
      expect(openError(raw, 'open').code, `${raw.code} ${raw.request}`).toBe(code);
    expect(openError(sysError('EPERM', 'ioctl'), 'open').message).toContain('CAP_NET_ADMIN');
  });

  it("maps what changing an open device's interface says", () => {
    const cases: [RawSystemError, string][] = [
      [sysError('EPERM', 'rtnetlink', { request: 'RTM_SETLINK' }), TapErrorCode.PERMISSION_DENIED],
      [sysError('EINVAL', 'rtnetlink', { request: MTU_REQUEST }), TapErrorCode.MTU_UNSUPPORTED],
      [sysError('EEXIST', 'rtnetlink', { request: 'RTM_NEWADDR' }), TapErrorCode.INVALID_ARGUMENT],
      [sysError('EADDRNOTAVAIL', 'rtnetlink', { request: 'RTM_DELADDR' }), TapErrorCode.INVALID_ARGUMENT],
      // Moved to another namespace: the device works on, its settings are out of reach.
      [sysError('ENODEV', 'rtnetlink', { request: 'RTM_SETLINK' }), TapErrorCode.SYSTEM],
      [sysError('EINVAL', 'rtnetlink', { request: 'RTM_SETLINK' }), TapErrorCode.SYSTEM],
    ];
    for (const [raw, code] of cases) {
      const error = changeError(raw, 'set MTU 9000 on tap0');
      expect(error.code, `${raw.code} ${raw.request}`).toBe(code);
      expect(error).toMatchObject({ backend: 'linux-tap', osCode: raw.code, syscall: 'rtnetlink' });
    }
    expect(changeError(sysError('EPERM', 'rtnetlink'), 'x').message).toContain('CAP_NET_ADMIN');
  });

  it('maps I/O errors: a deleted interface is DEVICE_GONE', () => {
    expect(ioError(sysError('EBADFD', 'read'), 'tap0').code).toBe(TapErrorCode.DEVICE_GONE);
    expect(ioError(sysError('ENOBUFS', 'write'), 'tap0').code).toBe(TapErrorCode.SYSTEM);
  });

  it('says which addon it tried when loading fails', () => {
    let error: unknown;
    try {
      loadAddon({ TAPKIT_LINUX_ADDON: '/nonexistent/tapkit_linux.node' });
    } catch (e) {
      error = e;
    }
    expect(isTapError(error, TapErrorCode.BACKEND_NOT_INSTALLED)).toBe(true);
    expect((error as Error).message).toContain('TAPKIT_LINUX_ADDON=/nonexistent/tapkit_linux.node');
    // Pointing it at the real addon (a build or a prebuild) works.
    const path = (
      createRequire(import.meta.url)('node-gyp-build') as { resolve(dir: string): string }
    ).resolve(PACKAGE_ROOT);
    expect(typeof loadAddon({ TAPKIT_LINUX_ADDON: path }).TapHandle).toBe('function');
  });

  it('probe() answers without throwing, and says why when unavailable', async () => {
    const result = await probeLinuxTap({ TAPKIT_LINUX_ADDON: '/nonexistent/tapkit_linux.node' });
    expect(result).toMatchObject({ available: false });
    if (!result.available) expect(result.error.code).toBe(TapErrorCode.BACKEND_NOT_INSTALLED);
    const here = await probeLinuxTap();
    if (!here.available) expect(here.reason.length).toBeGreaterThan(0);
  });
});
