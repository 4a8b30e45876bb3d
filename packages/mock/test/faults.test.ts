import { afterEach, describe, expect, it, vi } from 'vitest';
import { TapError, TapErrorCode, type TapDevice } from '@tapkit/core';
import { createMockNetwork, type MockFaults } from '../src/index.js';
import { BROADCAST, me, rawFrame, received, seqOf } from './helpers.js';

/**
 * Opens a sender and a receiver (with room for a whole run in its queue), teaches the switch
 * where the receiver is, and sets faults.
 */
async function link(faults: MockFaults | null, seed = 1) {
  const net = createMockNetwork({ seed });
  const [a, b] = [await net.open(), await net.open({ rxQueueFrames: 4096 })];
  b.write(rawFrame(BROADCAST, me(b), 0));
  await received(a);
  net.setFaults(faults);
  return { net, a, b };
}

/** Sends frames 1..count from a to b (a burst, or one per tick) and returns the sequence numbers b got. */
async function run(a: TapDevice, b: TapDevice, count: number): Promise<number[]> {
  for (let i = 1; i <= count; i++) if (!a.write(rawFrame(me(b), me(a), i))) await a.drain();
  return (await received(b, 8)).map(seqOf);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('fault injection', () => {
  it('loses about p of the frames, and counts them', async () => {
    const { net, a, b } = await link({ loss: 0.3 });
    const got = await run(a, b, 2000);
    // 2000 × 0.3 = 600 expected; σ ≈ 20.5, so ±90 is over 4σ.
    expect(2000 - got.length).toBeGreaterThan(510);
    expect(2000 - got.length).toBeLessThan(690);
    expect(net.stats().drops).toEqual({ loss: 2000 - got.length });
    expect(got).toEqual([...got].sort((x, y) => x - y)); // loss alone keeps order
    await net.close();
  });

  it('is reproducible: the same seed gives the same run, another seed another', async () => {
    const faults = { loss: 0.2, duplicate: 0.1, reorder: 0.2 };
    const once = async (seed: number) => {
      const { net, a, b } = await link(faults, seed);
      const got = await run(a, b, 300);
      const stats = net.stats();
      await net.close();
      return { got, stats };
    };
    const [first, second, other] = [await once(42), await once(42), await once(43)];
    expect(second).toEqual(first);
    expect(other.got).not.toEqual(first.got);
    expect(first.stats.duplicated).toBeGreaterThan(0);
    expect(first.stats.reordered).toBeGreaterThan(0);
  });

  it('duplicates frames, each copy its own', async () => {
    const { net, a, b } = await link({ duplicate: 1 });
    a.write(rawFrame(me(b), me(a), 1));
    a.write(rawFrame(me(b), me(a), 2));
    const frames = await received(b);
    expect(frames.map(seqOf)).toEqual([1, 1, 2, 2]);
    frames[0]!.fill(0);
    expect(seqOf(frames[1]!)).toBe(1);
    // link()'s broadcast reached a and both OS stations.
    expect(net.stats()).toMatchObject({ duplicated: 2, delivered: 4 + 3 });
    await net.close();
  });

  it('reorders: a held frame is overtaken by the next one, and nothing is lost', async () => {
    const { net, a, b } = await link({ reorder: 0.3 });
    const got = await run(a, b, 500);
    expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(got).not.toEqual([...got].sort((x, y) => x - y));
    // Each held frame moves back by exactly one place.
    const moved = got.filter((seq, i) => seq !== i + 1);
    expect(moved.length).toBe(2 * net.stats().reordered);
    got.forEach((seq, i) => expect(Math.abs(seq - (i + 1))).toBeLessThanOrEqual(1));

    // A held frame that nothing overtakes goes out on the next tick anyway.
    net.setFaults({ reorder: 1 });
    a.write(rawFrame(me(b), me(a), 9999));
    expect((await received(b)).map(seqOf)).toEqual([9999]);
    await net.close();
  });

  it('delays frames by delayMs (fake timers)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { net, a, b } = await link({ delayMs: 100 });
    a.write(rawFrame(me(b), me(a), 1));
    a.write(rawFrame(me(b), me(a), 2));
    expect(await received(b)).toEqual([]);
    expect(vi.getTimerCount()).toBe(1); // one timer for the tick's frames, not one per frame
    await vi.advanceTimersByTimeAsync(99);
    expect(await received(b)).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect((await received(b)).map(seqOf)).toEqual([1, 2]);
    await net.close();
  });

  it('spreads delays by ±jitterMs, which can reorder frames as netem does', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { net, a, b } = await link({ delayMs: 50, jitterMs: 40 });
    for (let i = 1; i <= 200; i++) a.write(rawFrame(me(b), me(a), i));
    await received(b);
    await vi.advanceTimersByTimeAsync(9);
    expect(await received(b)).toEqual([]);
    const got: number[] = [];
    for (let t = 10; t <= 90; t += 10) {
      await vi.advanceTimersByTimeAsync(10);
      got.push(...(await received(b)).map(seqOf));
    }
    expect(got).toHaveLength(200);
    expect(got).not.toEqual([...got].sort((x, y) => x - y));
    expect(net.stats().delayed).toBe(200);
    await net.close();
  });

  it('applies per-port faults over the network default, and null restores the default', async () => {
    const net = createMockNetwork();
    const [a, b, c] = [await net.open(), await net.open(), await net.open()];
    net.setFaults({ loss: 1 });
    net.setFaults({}, c.name); // c: no faults
    a.write(rawFrame(BROADCAST, me(a), 1));
    expect(await received(b)).toEqual([]);
    expect((await received(c)).map(seqOf)).toEqual([1]);
    net.setFaults(null, c.name);
    net.setFaults({ loss: 1 }, b.name);
    net.setFaults(null);
    a.write(rawFrame(BROADCAST, me(a), 2));
    expect(await received(b)).toEqual([]);
    expect((await received(c)).map(seqOf)).toEqual([2]);
    await net.close();
  });

  it('clears its timers when a port or the network closes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const net = createMockNetwork();
    const [a, b, c] = [await net.open(), await net.open(), await net.open()];
    net.setFaults({ delayMs: 1000, jitterMs: 500 });
    for (let i = 0; i < 20; i++) a.write(rawFrame(BROADCAST, me(a), i));
    await received(b);
    expect(vi.getTimerCount()).toBeGreaterThan(1);
    const forB = vi.getTimerCount();
    await b.close();
    expect(vi.getTimerCount()).toBeLessThan(forB);
    await net.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(c.closed).toBe(true);
  });

  it('disconnect() fails pending reads with ERR_TAP_DEVICE_GONE and removes the port', async () => {
    const net = createMockNetwork();
    const [a, b] = [await net.open(), await net.open()];
    const pending = a.read();
    const iterating = (async () => {
      for await (const _ of a.frames());
    })();
    const closed = new Promise<TapError | undefined>((resolve) => a.once('close', resolve));
    net.disconnect(a.name);
    await expect(pending).rejects.toMatchObject({ code: TapErrorCode.DEVICE_GONE });
    await expect(iterating).rejects.toMatchObject({ code: TapErrorCode.DEVICE_GONE });
    expect((await closed)?.code).toBe(TapErrorCode.DEVICE_GONE);
    expect(a.closed).toBe(true);
    expect(() => a.write(rawFrame(BROADCAST, me(a)))).toThrow(
      expect.objectContaining({ code: TapErrorCode.DEVICE_GONE }),
    );
    expect(net.ports().map((p) => p.name)).toEqual([b.name, `${b.name}:os`]);
    await a.close();
    // A disconnected host is detached.
    const host = net.addHost();
    net.disconnect(host.name);
    expect(host.attached).toBe(false);
    await net.close();
  });

  it('failNextWrite() fails exactly one write, with ERR_TAP_SYSTEM by default', async () => {
    const net = createMockNetwork();
    const [a, b] = [await net.open(), await net.open()];
    net.failNextWrite(a.name);
    expect(() => a.writeBatch([rawFrame(me(b), me(a), 1)])).toThrow(
      expect.objectContaining({ code: TapErrorCode.SYSTEM, osCode: 'EIO', syscall: 'write' }),
    );
    expect(a.write(rawFrame(me(b), me(a), 2))).toBe(true);
    await new Promise((resolve) => process.nextTick(resolve)); // write() sends at the end of the turn
    const custom = new TapError(TapErrorCode.PERMISSION_DENIED, 'nope');
    net.failNextWrite(a.name, custom);
    expect(() => a.writeBatch([rawFrame(me(b), me(a), 3), rawFrame(me(b), me(a), 4)])).toThrow(custom);
    a.writeBatch([rawFrame(me(b), me(a), 5)]);
    expect((await received(b)).map(seqOf)).toEqual([2, 5]); // the failed batch sent nothing
    expect(a.stats()).toMatchObject({ txFrames: 2, drops: { txError: 2 } });
    // write() accepts at once and sends at the end of the turn: the failure is an error event.
    const errors: unknown[] = [];
    a.on('error', (error) => errors.push(error));
    net.failNextWrite(a.name);
    expect(a.write(rawFrame(me(b), me(a), 7))).toBe(true);
    expect(a.write(rawFrame(me(b), me(a), 8))).toBe(true);
    expect((await received(b)).map(seqOf)).toEqual([8]);
    expect(errors).toEqual([expect.objectContaining({ code: TapErrorCode.SYSTEM, osCode: 'EIO' })]);
    expect(a.stats()).toMatchObject({ txFrames: 3, drops: { txError: 3 } });
    const host = net.addHost();
    net.failNextWrite(host.name, new Error('plain'));
    expect(() => host.send(rawFrame(BROADCAST, host.mac))).toThrow(
      expect.objectContaining({ code: TapErrorCode.SYSTEM }),
    );
    host.send(rawFrame(BROADCAST, host.mac, 6));
    expect((await received(b)).map(seqOf)).toEqual([6]);
    await net.close();
  });
});
