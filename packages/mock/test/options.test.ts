import { isTapError, openTap, TapErrorCode, type TapOpenOptions } from '@tapkit/core';
import { describe, expect, it } from 'vitest';
import { backend, createMockNetwork } from '../src/index.js';

describe('options the mock does not take', () => {
  it.each([{ offload: true }, { queues: 4 }, { attach: true }, { adresses: ['10.0.0.1/24'] }])(
    '%o is refused with ERR_TAP_UNSUPPORTED_OPTION naming the mock',
    async (extra) => {
      const options = { backend: 'mock', ...extra } as TapOpenOptions;
      const error: unknown = await openTap(options).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTapError(error, TapErrorCode.UNSUPPORTED_OPTION)).toBe(true);
      expect((error as Error).message).toContain(
        `mock backend does not support the option "${Object.keys(extra)[0]}"`,
      );
      expect((error as { backend?: string }).backend).toBe('mock');
    },
  );

  it('takes network, and opens on it', async () => {
    await using network = createMockNetwork();
    await using device = await backend.open({ network });
    expect(network.ports().map((p) => p.name)).toEqual([device.name, `${device.name}:os`]);
  });
});

describe('a name template', () => {
  it("'app%d' opens the lowest free appN, as the kernel names tap%d", async () => {
    await using network = createMockNetwork();
    const names: string[] = [];
    for (let i = 0; i < 3; i++) names.push((await network.open({ name: 'app%d' })).name);
    expect(names).toEqual(['app0', 'app1', 'app2']);
    await network.open({ name: 'x1' });
    expect((await network.open({ name: 'x%d' })).name).toBe('x0');
    expect((await network.open({ name: 'x%d' })).name).toBe('x2');
  });

  it('refuses a template with two %d or other % signs', async () => {
    for (const name of ['a%d%d', 'a%s', 'a%', '%d'.padEnd(16, 'x')]) {
      await expect(backend.open({ name })).rejects.toMatchObject({ code: TapErrorCode.INVALID_OPTION });
    }
  });
});
