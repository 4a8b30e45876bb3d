import { TapError, TapErrorCode, unavailable, type TapBackend } from '@tapkit/core';
import { describe, expect, it } from 'vitest';
import { runDoctor } from '../src/doctor.js';
import { formatDoctor } from '../src/format.js';

function fake(name: string, probe: Awaited<ReturnType<TapBackend['probe']>>): TapBackend {
  return { name, probe: async () => probe, open: () => Promise.reject(new Error('not in this test')) };
}

const available = { available: true } as const;
const notInstalled = (name: string) =>
  new TapError(
    TapErrorCode.BACKEND_NOT_INSTALLED,
    `backend ${name} needs a package which could not be loaded`,
    {
      backend: name,
    },
  );
const versions = (pkg: string) => (pkg === '@tapkit/darwin-utun' ? undefined : '0.1.0');

describe('tapkit doctor', () => {
  it('reports each backend of the platform and which one openTap() would take', async () => {
    const report = await runDoctor({
      platform: 'darwin',
      env: {},
      versionOf: versions,
      load: async (name) => {
        if (name === 'darwin-feth')
          return fake(
            name,
            unavailable(name, TapErrorCode.PERMISSION_DENIED, 'creating feth interfaces needs root'),
          );
        if (name === 'darwin-utun') throw notInstalled(name);
        return fake(name, available);
      },
    });
    expect(report.backends.map((b) => [b.name, b.installed, b.available, b.code])).toEqual([
      ['darwin-feth', true, false, TapErrorCode.PERMISSION_DENIED],
      ['darwin-utun', false, false, TapErrorCode.BACKEND_NOT_INSTALLED],
      ['mock', true, true, undefined],
    ]);
    expect(report.backends[0]!.fix).toEqual([
      'Run as root (sudo): feth, BPF, NDRV and utun all need it on macOS.',
    ]);
    expect(report.selected).toBeUndefined();
    expect(report.problem).toMatch(
      /no backend for darwin can open a device here \(darwin-feth, darwin-utun\)/,
    );
    const text = formatDoctor(report);
    expect(text).toContain('unavailable  darwin-feth');
    expect(text).toContain('-> Run as root (sudo)');
    expect(text).toContain('openTap() cannot open a device here');
  });

  it('explains a missing package and a native addon that does not load, differently', async () => {
    const missing = await runDoctor({
      platform: 'linux',
      env: {},
      versionOf: () => undefined,
      load: async (name) => {
        if (name === 'linux-tap') throw notInstalled(name);
        return fake(name, available);
      },
    });
    expect(missing.backends[0]).toMatchObject({ name: 'linux-tap', installed: false, available: false });
    expect(missing.backends[0]!.fix!.join(' ')).toMatch(
      /npm install @tapkit\/linux-tap.*--omit=optional.*another/,
    );

    const noAddon = await runDoctor({
      platform: 'linux',
      env: {},
      versionOf: () => '0.1.0',
      load: async (name) =>
        fake(
          name,
          name === 'linux-tap'
            ? unavailable(name, TapErrorCode.BACKEND_NOT_INSTALLED, 'could not load the native addon')
            : available,
        ),
    });
    expect(noAddon.backends[0]!.fix!.join(' ')).toMatch(/native addon did not load.*node-gyp rebuild/);
  });

  it('follows TAPKIT_BACKEND, as openTap() does', async () => {
    const load = async (name: string) =>
      fake(
        name,
        name === 'linux-tap'
          ? unavailable(name, TapErrorCode.KERNEL_SUPPORT_MISSING, '/dev/net/tun is missing')
          : available,
      );
    const mock = await runDoctor({
      platform: 'linux',
      env: { TAPKIT_BACKEND: 'mock' },
      load,
      versionOf: versions,
    });
    expect(mock).toMatchObject({ forcedBackend: 'mock', selected: 'mock' });
    expect(mock.backends.find((b) => b.name === 'linux-tap')!.fix!.join(' ')).toMatch(/modprobe tun/);

    const unknown = await runDoctor({
      platform: 'linux',
      env: { TAPKIT_BACKEND: 'nope' },
      load,
      versionOf: versions,
    });
    expect(unknown.selected).toBeUndefined();
    expect(unknown.problem).toMatch(/TAPKIT_BACKEND=nope is not a backend tapkit knows/);

    const windows = await runDoctor({ platform: 'win32', env: {}, load, versionOf: versions });
    expect(windows.backends.map((b) => b.name)).toEqual(['mock']);
    expect(windows.problem).toMatch(/no backend for win32/);
  });
});
