/**
 * No leak: darwin-utun devices opened and closed, gone, or piped are all freed, over the
 * simulated utun system and as the L2 shim over real Linux TUN devices (measured in child
 * processes after GC; see expectNoLeak for the bounds).
 */
import { fileURLToPath } from 'node:url';
import { expectNoLeak, itLeaksNothing, runCycleFixture } from '@tapkit/test-support';
import { expect } from 'vitest';
import { PrivilegedContext, itPrivileged } from './privileged.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/cycles.ts', import.meta.url));
const context = new PrivilegedContext();

itLeaksNothing(FIXTURE, 'simulated utun devices', 2000, ['close', 'gone', 'traffic'], ['sim']);

itPrivileged(
  '1,500 shims over Linux TUNs (closed, deleted by `ip link del`, piped) leave no memory, fds or interfaces behind',
  async () => {
    const ns = await context.netns();
    const list = async (): Promise<string> => ns.exec('ls', ['/sys/class/net']);
    const before = await list();
    const results = await Promise.all(
      ['close', 'gone', 'traffic'].map((mode, i) =>
        runCycleFixture(FIXTURE, ['tun', '500', mode, `tku${i}x`, String(i)], ns),
      ),
    );
    for (const figures of results) expectNoLeak(figures);
    expect(await list()).toBe(before);
  },
  300_000,
);
