/**
 * The fault matrix against the real kernel (docs/reliability.md): a worker terminated while its
 * devices carry traffic, the namespace of a piped device deleted, and a thousand opens with
 * random aborts. Each must leave fds, interfaces and threads as they were. (kill -9 of a
 * process holding devices is in linux.test.ts, with the leak test.)
 */
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { TapErrorCode, buildUdpFrame, isTapError, type TapDevice } from '@tapkit/core';
import { describe, expect } from 'vitest';
import { linuxTap } from '../src/index.js';
import {
  createNetns,
  fdCount,
  interfaces,
  itPrivileged,
  onCleanup,
  run,
  seededRandom,
  uniqueName,
  useCleanup,
  waitFor,
  type Netns,
} from './helpers.js';

useCleanup();

const threadCount = () => readdirSync('/proc/self/task').length;

/**
 * fds and threads now, once the process has what it keeps for good: the first worker of a
 * process leaves an fd or two open, and libuv starts its thread pool on first use.
 */
async function baseline(): Promise<{ fds: number; threads: number }> {
  await new Promise((resolve) => new Worker('', { eval: true }).once('exit', resolve));
  await readFile('/proc/self/stat');
  return { fds: fdCount(), threads: threadCount() };
}

async function expectBaseline(before: { fds: number; threads: number }): Promise<void> {
  await waitFor(
    () => fdCount() <= before.fds,
    5000,
    () => `fds back to ${before.fds} (now ${fdCount()})`,
  );
  await waitFor(
    () => threadCount() <= before.threads,
    5000,
    () => `threads back to ${before.threads} (now ${threadCount()})`,
  );
}

/** Joins two devices in `ns` by a wire: what one's kernel side receives goes out of the other. */
async function wire(ns: Netns, x: string, y: string): Promise<void> {
  for (const [from, to] of [
    [x, y],
    [y, x],
  ] as const) {
    await ns.exec('tc', ['qdisc', 'add', 'dev', from, 'handle', 'ffff:', 'ingress']);
    await ns.exec('tc', [
      ...['filter', 'add', 'dev', from, 'parent', 'ffff:', 'u32', 'match', 'u32', '0', '0'],
      ...['action', 'mirred', 'egress', 'redirect', 'dev', to],
    ]);
  }
}

async function quietNamespace(): Promise<Netns> {
  const ns = await createNetns();
  await ns.exec('sysctl', [
    '-qw',
    'net.ipv6.conf.all.disable_ipv6=1',
    'net.ipv6.conf.default.disable_ipv6=1',
  ]);
  return ns;
}

/** A broadcast frame that a wire carries round and round through a relay. */
const seedFrame = buildUdpFrame({
  srcMac: '02:00:00:00:00:01',
  dstMac: 'ff:ff:ff:ff:ff:ff',
  src: '198.18.0.1',
  dst: '255.255.255.255',
  srcPort: 9,
  dstPort: 9,
  payload: new Uint8Array(200),
});

const nsInterfaces = async (ns: Netns) =>
  (await ns.exec('ls', ['/sys/class/net'])).split(/\s+/).filter(Boolean);

describe('linux-tap: faults leave nothing behind', () => {
  itPrivileged('a worker terminated while a native pipe and a JS relay carry traffic', async () => {
    const before = await baseline();
    const ns = await quietNamespace();
    const names = ['a', 'b', 'c', 'd'].map((s) => uniqueName(`tw${s}`));
    const worker = new Worker(new URL('fixtures/worker-traffic.mjs', import.meta.url), {
      workerData: { names },
    });
    onCleanup(() => worker.terminate().then(() => undefined));
    let counts = { piped: 0, relayed: 0 };
    worker.on('message', (message: { opened?: boolean; piped?: number; relayed?: number }) => {
      if (message.piped !== undefined) counts = { piped: message.piped, relayed: message.relayed! };
    });
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    for (const name of names) await moveTo(ns, name);
    await wire(ns, names[0]!, names[1]!);
    await wire(ns, names[2]!, names[3]!);
    worker.postMessage('go');
    await waitFor(
      () => counts.piped > 1000 && counts.relayed > 1000,
      20_000,
      () => `traffic through both relays (${JSON.stringify(counts)})`,
    );
    await worker.terminate();
    await waitFor(
      async () => (await nsInterfaces(ns)).every((n) => !names.includes(n)),
      5000,
      'the devices to disappear',
    );
    await expectBaseline(before);
  });

  itPrivileged('close() ends a pipe whose source never runs dry (a loop through the wire)', async () => {
    // Before the pipe thread bounded its bursts it never looked up from a flood like this one,
    // so close() (and a worker's exit) waited for it forever.
    const before = await baseline();
    const ns = await quietNamespace();
    const a = await linuxTap.open({ name: uniqueName('tl'), up: false });
    const b = await linuxTap.open({ name: uniqueName('tl'), up: false });
    onCleanup(() => Promise.all([a.close(), b.close()]).then(() => undefined));
    await moveTo(ns, a.name);
    await moveTo(ns, b.name);
    await wire(ns, a.name, b.name);
    const piping = a.pipeTo(b);
    for (let i = 0; i < 8; i++) b.write(seedFrame);
    await waitFor(
      () => a.stats().rxFrames > 10_000,
      20_000,
      () => `the loop to run (${a.stats().rxFrames})`,
    );
    await a.close();
    await piping;
    expect(a.stats().rxFrames).toBeGreaterThan(10_000);
    await b.close();
    await expectBaseline(before);
  });

  itPrivileged('the namespace of a piped device deleted: it is gone, the other keeps working', async () => {
    const before = await baseline();
    const [home, doomed] = [await quietNamespace(), await quietNamespace()];
    const a = await linuxTap.open({ name: uniqueName('tn'), up: false });
    const b = await linuxTap.open({ name: uniqueName('tn'), up: false });
    onCleanup(() => Promise.all([a.close(), b.close()]).then(() => undefined));
    await moveTo(home, a.name);
    await moveTo(doomed, b.name);
    // a's kernel side sends back what it receives: a frame written on a is read on a.
    await home.exec('tc', ['qdisc', 'add', 'dev', a.name, 'handle', 'ffff:', 'ingress']);
    await home.exec('tc', [
      ...['filter', 'add', 'dev', a.name, 'parent', 'ffff:', 'u32', 'match', 'u32', '0', '0'],
      ...['action', 'mirred', 'egress', 'redirect', 'dev', a.name],
    ]);
    const pipes = Promise.allSettled([a.pipeTo(b), b.pipeTo(a)]);
    const gone = new Promise((resolve) => b.once('close', resolve));
    await run('ip', ['netns', 'del', doomed.name]);
    await gone;
    expect(b.closed).toBe(true);
    // Both pipes end with the reason: one lost its destination, the other its source.
    for (const result of await pipes) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toMatchObject({ code: TapErrorCode.DEVICE_GONE });
    }
    // a reads again what it writes: nothing of the pipe is left on it.
    const frame = buildUdpFrame({
      srcMac: '02:00:00:00:00:02',
      dstMac: 'ff:ff:ff:ff:ff:ff',
      src: '198.18.0.2',
      dst: '255.255.255.255',
      srcPort: 7,
      dstPort: 7,
      payload: new TextEncoder().encode('after the namespace went'),
    });
    a.write(frame);
    const got = await a.read({ signal: AbortSignal.timeout(5000) });
    expect(Buffer.compare(got, frame)).toBe(0);
    await a.close();
    await expectBaseline(before);
  });

  itPrivileged(
    '1,000 concurrent opens, aborted at random moments',
    async () => {
      const before = await baseline();
      const prefix = `ta${process.pid.toString(36)}`;
      const random = seededRandom(1000);
      const opens = Array.from({ length: 1000 }, (_, i) => {
        const controller = new AbortController();
        const r = random();
        // A third aborted before open, a third at a random moment within ~20 ms, a third never.
        if (r < 1 / 3) controller.abort(new Error('before'));
        else if (r < 2 / 3)
          setTimeout(() => controller.abort(new Error('during')), Math.floor(random() * 20));
        return linuxTap.open({ name: `${prefix}x${i.toString(36)}`, up: false, signal: controller.signal });
      });
      const results = await Promise.allSettled(opens);
      const opened = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      for (const error of refused) expect(isTapError(error, TapErrorCode.ABORTED), String(error)).toBe(true);
      expect(refused.length).toBeGreaterThanOrEqual(300); // at least the ones aborted before
      expect(opened.length).toBeGreaterThanOrEqual(300); // at least the ones never aborted
      await Promise.all(opened.map((d: TapDevice) => d.close()));
      await waitFor(() => !interfaces().some((n) => n.startsWith(prefix)), 30_000, 'every device to be gone');
      await expectBaseline(before);
    },
    180_000,
  );
});

async function moveTo(ns: Netns, name: string): Promise<void> {
  await run('ip', ['link', 'set', 'dev', name, 'netns', ns.name]);
  await ns.ip('link', 'set', 'dev', name, 'up');
}
