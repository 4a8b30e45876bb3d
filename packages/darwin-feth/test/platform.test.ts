import { describe, expect, it } from 'vitest';
import { isTapError, TapErrorCode } from '@tapkit/core';
import * as pkg from '../src/index.js';
import { ADDON_PATH_VARIABLE, loadNativeSystem } from '../src/native.js';
import { SimulatedDarwinKernel } from './kernel.js';

const onMac = process.platform === 'darwin';

describe('the package', () => {
  it('exports the backend under the names core’s loader and users look for', () => {
    expect(pkg.backend).toBe(pkg.darwinFeth);
    expect(pkg.backend.name).toBe('darwin-feth');
    expect(Object.isFrozen(pkg.backend)).toBe(true);
    expect(typeof pkg.cleanupStalePairs).toBe('function');
    expect(typeof pkg.listTapkitInterfaces).toBe('function');
  });
});

describe.skipIf(onMac)('off macOS', () => {
  it('probe() says unavailable: ERR_TAP_UNSUPPORTED_PLATFORM', async () => {
    const probe = await pkg.darwinFeth.probe();
    expect(probe.available).toBe(false);
    if (probe.available) return;
    expect(probe.error.code).toBe(TapErrorCode.UNSUPPORTED_PLATFORM);
    expect(probe.error.backend).toBe('darwin-feth');
    expect(probe.reason).toMatch(/only on macOS/);
  });

  it('open() fails with ERR_TAP_UNSUPPORTED_PLATFORM, and so do cleanup and list', async () => {
    for (const action of [
      () => pkg.darwinFeth.open(),
      () => pkg.cleanupStalePairs({ dryRun: true }),
      () => pkg.listTapkitInterfaces(),
    ]) {
      const error: unknown = await action().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTapError(error, TapErrorCode.UNSUPPORTED_PLATFORM)).toBe(true);
    }
  });
});

describe('probe()', () => {
  it('is available on a Darwin 17+ kernel as root', async () => {
    const backend = pkg.createDarwinFethBackend({ system: new SimulatedDarwinKernel() });
    expect(await backend.probe()).toEqual({ available: true });
  });

  it('says root is needed when not root', async () => {
    const backend = pkg.createDarwinFethBackend({ system: new SimulatedDarwinKernel({ root: false }) });
    const probe = await backend.probe();
    expect(probe).toMatchObject({ available: false, error: { code: TapErrorCode.PERMISSION_DENIED } });
  });

  it('says macOS 10.13 is needed on older kernels', async () => {
    const backend = pkg.createDarwinFethBackend({
      system: new SimulatedDarwinKernel({ kernelRelease: '16.7.0' }),
    });
    const probe = await backend.probe();
    expect(probe).toMatchObject({ available: false, error: { code: TapErrorCode.UNSUPPORTED_PLATFORM } });
    if (!probe.available) expect(probe.reason).toMatch(/10\.13/);
  });

  it('reports a system that cannot be loaded as not installed', async () => {
    const backend = pkg.createDarwinFethBackend({
      system: () => {
        throw new Error('dlopen failed');
      },
    });
    expect(await backend.probe()).toMatchObject({
      available: false,
      error: { code: TapErrorCode.BACKEND_NOT_INSTALLED },
    });
  });
});

describe('the native loader', () => {
  it('refuses other platforms before looking for the addon', () => {
    expect(() => loadNativeSystem({}, 'linux')).toThrow(
      expect.objectContaining({ code: TapErrorCode.UNSUPPORTED_PLATFORM }),
    );
  });

  it('on macOS, names what it tried when the addon is missing', () => {
    let error: unknown;
    try {
      loadNativeSystem({ [ADDON_PATH_VARIABLE]: '/nonexistent/tapkit_darwin_feth.node' }, 'darwin');
    } catch (e) {
      error = e;
    }
    expect(isTapError(error, TapErrorCode.BACKEND_NOT_INSTALLED)).toBe(true);
    expect((error as Error).message).toMatch(/TAPKIT_DARWIN_FETH_ADDON=\/nonexistent/);
  });
});
