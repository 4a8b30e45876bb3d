// Mock switch throughput: frames/s from one mock device to another through the virtual switch,
// written the way a user would (write until false, await drain; read in batches), against a
// baseline in the same run: a plain JS loop that copies the same buffers (Buffer.from, pooled) into a queue and hands
// them to a consumer a batch per tick — the least any in-memory hand-over costs.
import { createMockNetwork } from '@tapkit/mock';

const FRAMES = Number(process.env.TAPKIT_BENCH_FRAMES ?? 200_000);

const A = [2, 0, 0, 0, 0, 1];
const B = [2, 0, 0, 0, 0, 2];

/** An IPv4-typed frame of `size` bytes from `src` to `dst` (MACs as byte arrays). */
function frameOf(size, dst = B, src = A) {
  const f = new Uint8Array(size);
  f.set([...dst, ...src, 0x08, 0x00]);
  return f;
}

/** Plain JS: copy each buffer into a queue; a consumer drains it once per macrotask. */
async function baseline(size) {
  const frame = frameOf(size);
  let queue = [];
  let received = 0;
  const started = process.hrtime.bigint();
  await new Promise((resolve) => {
    const consume = () => {
      const batch = queue;
      queue = [];
      for (const f of batch) received += f.length > 0 ? 1 : 0;
      if (received >= FRAMES) resolve();
      else setImmediate(consume);
    };
    let sent = 0;
    const produce = () => {
      for (let i = 0; i < 256 && sent < FRAMES; i++, sent++) queue.push(Buffer.from(frame));
      if (sent < FRAMES) setImmediate(produce);
    };
    produce();
    setImmediate(consume);
  });
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** tapkit: two mock devices on one switch. */
async function mock(size) {
  const network = createMockNetwork({ seed: 1 });
  const a = await network.open({ name: 'a', mac: '02:00:00:00:00:01', rxQueueFrames: 4096 });
  const b = await network.open({ name: 'b', mac: '02:00:00:00:00:02', rxQueueFrames: 4096 });
  // Teach the switch where b is, so frames are forwarded, not flooded.
  b.write(frameOf(60, A, B));
  await a.read();
  const frame = frameOf(size);
  const started = process.hrtime.bigint();
  const receiving = (async () => {
    let received = 0;
    for await (const batch of b.batches()) {
      received += batch.length;
      if (received >= FRAMES) break;
    }
  })();
  for (let sent = 0; sent < FRAMES; sent++) {
    if (!a.write(frame)) await a.drain();
  }
  await receiving;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await network.close();
  return seconds;
}

const median = (xs) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

/** Runs baseline and mock in alternation and returns a Markdown table. */
export async function benchMockSwitch({ pairs = 3 } = {}) {
  const rows = [];
  for (const size of [64, 1500]) {
    const base = [];
    const tap = [];
    await mock(size); // warm up the JIT on both paths
    await baseline(size);
    for (let i = 0; i < pairs; i++) {
      base.push(FRAMES / (await baseline(size)));
      tap.push(FRAMES / (await mock(size)));
    }
    const spread = (xs) => `${(Math.min(...xs) / 1e3).toFixed(0)}–${(Math.max(...xs) / 1e3).toFixed(0)}k`;
    rows.push(
      `| ${size} B | ${(median(base) / 1e3).toFixed(0)}k (${spread(base)}) | ${(median(tap) / 1e3).toFixed(0)}k (${spread(tap)}) | ${(median(tap) / median(base)).toFixed(2)} |`,
    );
  }
  return [
    `Mock switch, ${FRAMES} frames a run, ${pairs} alternating pairs (median, range):`,
    '',
    '| frame | baseline frames/s | mock switch frames/s | mock / baseline |',
    '|---|---|---|---|',
    ...rows,
  ].join('\n');
}
