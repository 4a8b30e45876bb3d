/**
 * No leak: devices opened and closed, disconnected, or piped on one long-lived mock network are
 * all freed (measured in a child process after GC; see expectNoLeak for the bounds).
 */
import { fileURLToPath } from 'node:url';
import { expectNoLeak, runCycleFixture } from '@tapkit/test-support';
import { expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('./fixtures/cycles.ts', import.meta.url));

it.each(['close', 'gone', 'traffic'])(
  '2,000 devices (%s) leave no memory or fds behind',
  async (mode) => {
    const figures = await runCycleFixture(FIXTURE, ['2000', mode]);
    expect(figures.cycles).toBe(2000);
    expectNoLeak(figures);
  },
  120_000,
);
