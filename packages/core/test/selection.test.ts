import { describe, expect, it } from 'vitest';
import { backendCandidates, definePortBackend, openTap, unavailable } from '../src/backend.js';
import { TapErrorCode, isTapError, TapError } from '../src/errors.js';
import type { ProbeResult, TapBackend, TapOpenOptions, TapPort } from '../src/types.js';
import { capabilities } from './fake-port.js';

/** A backend whose probe and open the test controls, recording what was opened. */
function fakeBackend(name: string, probe: ProbeResult, opened: string[]): TapBackend {
  return definePortBackend({
    name,
    limits: { minMtu: 68, maxMtu: 9000 },
    probe: () => Promise.resolve(probe),
    openPort(options): Promise<TapPort> {
      opened.push(name);
      return Promise.resolve({
        name: options.name ?? `${name}0`,
        mac: options.mac,
        mtu: options.mtu,
        capabilities,
        start() {},
        write: () => true,
        close: () => {
          opened.push(`${name}:closed`);
        },
      });
    },
  });
}

const ok: ProbeResult = { available: true };
const no = (name: string) => unavailable(name, TapErrorCode.PERMISSION_DENIED, 'not root');

async function failure(promise: Promise<unknown>): Promise<TapError> {
  try {
    await promise;
  } catch (error) {
    if (isTapError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('backend selection', () => {
  it('an explicit backend wins over TAPKIT_BACKEND and the platform list', async () => {
    const opened: string[] = [];
    const explicit = fakeBackend('explicit', ok, opened);
    const load = (n: string) => Promise.resolve(fakeBackend(n, ok, opened));
    const device = await openTap(
      { backend: explicit, env: { TAPKIT_BACKEND: 'env' } },
      { platform: 'linux', load },
    );
    expect(device.backend).toBe('explicit');
    expect(opened).toEqual(['explicit']);
    await device.close();
  });

  it('uses TAPKIT_BACKEND before the platform list', async () => {
    const opened: string[] = [];
    const load = (n: string) => Promise.resolve(fakeBackend(n, ok, opened));
    const device = await openTap({ env: { TAPKIT_BACKEND: ' mock ' } }, { platform: 'linux', load });
    expect(device.backend).toBe('mock');
    expect(backendCandidates({ env: { TAPKIT_BACKEND: '' } }, { platform: 'darwin' })).toEqual({
      source: 'platform',
      names: ['darwin-feth', 'darwin-utun'],
    });
    await device.close();
  });

  it('opens an explicitly chosen backend without probing it, and never falls back from it', async () => {
    const opened: string[] = [];
    const refusing: TapBackend = {
      name: 'darwin-feth',
      probe: () => Promise.reject(new Error('probe must not be called')),
      open: () => Promise.reject(new TapError(TapErrorCode.PERMISSION_DENIED, 'not root')),
    };
    const load = (n: string) => Promise.resolve(n === 'darwin-feth' ? refusing : fakeBackend(n, ok, opened));
    const error = await failure(openTap({ backend: 'darwin-feth' }, { platform: 'darwin', load }));
    expect(error.code).toBe(TapErrorCode.PERMISSION_DENIED);
    expect(error.backend).toBe('darwin-feth');
    expect(opened).toEqual([]);
    const fromEnv = await failure(
      openTap({ env: { TAPKIT_BACKEND: 'darwin-feth' } }, { platform: 'darwin', load }),
    );
    expect(fromEnv.code).toBe(TapErrorCode.PERMISSION_DENIED);
    const usable = fakeBackend('injected', no('injected'), opened); // its probe says no, its open works
    const device = await openTap({ backend: usable });
    expect(device.backend).toBe('injected');
    await device.close();
  });

  it('walks the platform list in order and opens the first available backend', async () => {
    const opened: string[] = [];
    const load = (n: string) => Promise.resolve(fakeBackend(n, n === 'darwin-feth' ? no(n) : ok, opened));
    const device = await openTap({}, { platform: 'darwin', load });
    expect(device.backend).toBe('darwin-utun');
    await device.close();
  });

  it('lists every backend tried and why when none can open', async () => {
    const load = (n: string) =>
      n === 'darwin-utun'
        ? Promise.reject(new TapError(TapErrorCode.BACKEND_NOT_INSTALLED, 'package missing'))
        : Promise.resolve(fakeBackend(n, no(n), []));
    const error = await failure(openTap({}, { platform: 'darwin', load }));
    expect(error.code).toBe(TapErrorCode.NO_BACKEND);
    expect(error.errors?.map((e) => [e.backend, e.code])).toEqual([
      ['darwin-feth', TapErrorCode.PERMISSION_DENIED],
      ['darwin-utun', TapErrorCode.BACKEND_NOT_INSTALLED],
    ]);
    expect(error.message).toContain('darwin-feth');
    expect(error.message).toContain('package missing');
  });

  it('says so for a platform with no backend, and for an unknown backend name', async () => {
    expect((await failure(openTap({}, { platform: 'aix' }))).code).toBe(TapErrorCode.UNSUPPORTED_PLATFORM);
    expect((await failure(openTap({ backend: 'nope' }))).code).toBe(TapErrorCode.UNKNOWN_BACKEND);
  });

  it('an available backend whose open fails is reported, not replaced by the next', async () => {
    const broken: TapBackend = {
      name: 'darwin-feth',
      probe: () => Promise.resolve(ok),
      open: () => Promise.reject(new TapError(TapErrorCode.MTU_UNSUPPORTED, 'too big')),
    };
    const load = (n: string) => Promise.resolve(n === 'darwin-feth' ? broken : fakeBackend(n, ok, []));
    expect((await failure(openTap({}, { platform: 'darwin', load }))).code).toBe(
      TapErrorCode.MTU_UNSUPPORTED,
    );
  });

  it('aborts before opening, and closes a port that finished opening after an abort', async () => {
    const opened: string[] = [];
    const backend = fakeBackend('fake', ok, opened);
    expect((await failure(openTap({ backend, signal: AbortSignal.abort() }))).code).toBe(
      TapErrorCode.ABORTED,
    );
    expect(opened).toEqual([]);
    const controller = new AbortController();
    const slow = definePortBackend({
      name: 'slow',
      limits: { minMtu: 68, maxMtu: 9000 },
      probe: () => Promise.resolve(ok),
      openPort(options) {
        controller.abort(); // the user gives up while the OS call is under way
        return Promise.resolve({
          name: 'slow0',
          mac: options.mac,
          mtu: options.mtu,
          capabilities,
          start() {},
          write: () => true,
          close: () => {
            opened.push('slow:closed');
          },
        });
      },
    });
    expect((await failure(slow.open({ signal: controller.signal }))).code).toBe(TapErrorCode.ABORTED);
    expect(opened).toContain('slow:closed');
  });

  it('validates options before the backend is asked to open anything', async () => {
    const opened: string[] = [];
    const backend = fakeBackend('fake', ok, opened);
    expect((await failure(backend.open({ mtu: 67 }))).code).toBe(TapErrorCode.MTU_UNSUPPORTED);
    expect((await failure(backend.open({ mtu: '1500' as never }))).code).toBe(TapErrorCode.INVALID_OPTION);
    expect((await failure(backend.open({ mtu: 9001 }))).code).toBe(TapErrorCode.MTU_UNSUPPORTED);
    expect(opened).toEqual([]);
  });
});

describe('options a backend does not take', () => {
  const load = (n: string) => Promise.resolve(fakeBackend(n, ok, []));

  it('are refused with ERR_TAP_UNSUPPORTED_OPTION naming the backend and the option, before opening', async () => {
    const opened: string[] = [];
    const backend = fakeBackend('plain', ok, opened);
    // @ts-expect-error -- a typo: openTap's options are checked for excess properties
    const typo = await failure(openTap({ backend, adresses: ['10.0.0.1/24'] }));
    expect(typo.code).toBe(TapErrorCode.UNSUPPORTED_OPTION);
    expect(typo.backend).toBe('plain');
    expect(typo.message).toContain('"adresses"');
    expect(typo.message).toContain('addresses'); // the list of what it takes
    const foreign = await failure(openTap({ backend: 'plain', offload: true }, { platform: 'linux', load }));
    expect(foreign.code).toBe(TapErrorCode.UNSUPPORTED_OPTION);
    expect(foreign.message).toContain('the plain backend does not support the option "offload"');
    expect(opened).toEqual([]);
  });

  it('are fine when undefined, and a backend takes its own', async () => {
    const own = definePortBackend<TapOpenOptions & { queues?: number }>({
      name: 'own',
      limits: { minMtu: 68, maxMtu: 9000 },
      options: ['queues'],
      probe: () => Promise.resolve(ok),
      openPort: (options) =>
        Promise.resolve({
          name: 'own0',
          mac: options.mac,
          mtu: options.mtu,
          capabilities,
          start() {},
          write: () => true,
          close() {},
        }),
    });
    const device = await openTap({ backend: own, queues: 2, offload: undefined } as TapOpenOptions);
    await device.close();
    const plain = await openTap({ backend: 'plain', name: undefined }, { platform: 'linux', load });
    await plain.close();
  });

  it('type-check where the backend is named, and only there', () => {
    // Compiles: a named backend's own options.
    const named = (): Promise<unknown> => openTap({ backend: 'linux-tap', queues: 4 });
    // @ts-expect-error -- no backend named: only TapOpenOptions
    const unnamed = (): Promise<unknown> => openTap({ queues: 4 });
    expect([typeof named, typeof unnamed]).toEqual(['function', 'function']);
  });
});
