import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

/** Runs fixtures/worker.mjs (which uses the built @tapkit/mock) and returns what it reports. */
function inWorker(seed: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./fixtures/worker.mjs', import.meta.url), { workerData: { seed } });
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before reporting`)));
  });
}

describe('worker threads', () => {
  it('runs networks in parallel workers, independently and reproducibly', async () => {
    const [a, b, c] = await Promise.all([inWorker(5), inWorker(5), inWorker(6)]);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).toMatchObject({ ops: [2], stats: { received: 100 } });
    const { stats, replies } = a as { stats: { arpReplies: number }; replies: number };
    expect(stats.arpReplies).toBe(100);
    expect(replies).toBeGreaterThan(20); // loss 0.5 on the way back from the host
    expect(replies).toBeLessThan(80);
  });
});
