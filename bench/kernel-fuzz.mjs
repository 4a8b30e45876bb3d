// The kernel-side fuzz at scale (the tests run a short one): TAPKIT_BENCH_FUZZ_FRAMES frames
// per read API (default 200,000: a million in all) sent out of a tap by the kernel and read
// through tapkit's five read APIs. See packages/linux-tap/test/fixtures/kernel-fuzz.mjs.
import { READ_APIS, runKernelFuzz } from '../packages/linux-tap/test/fixtures/kernel-fuzz.mjs';

export async function benchKernelFuzz() {
  const title = 'Kernel-side fuzz (linux-tap read path)';
  if (process.getuid?.() !== 0) return `${title} skipped: needs root (a tap device and a packet socket)`;
  const count = Number(process.env.TAPKIT_BENCH_FUZZ_FRAMES ?? 200_000);
  const started = performance.now();
  const { figures, problems } = await runKernelFuzz({ count, seed: 1 });
  const seconds = (performance.now() - started) / 1000;
  const rows = READ_APIS.map((api) => {
    const r = figures.perApi[api];
    return `| ${api} | ${r.sent} | ${r.read} | ${r.dropped} | ${r.sent - r.read - r.dropped} |`;
  });
  return [
    `${title}: ${figures.sent.toLocaleString('en')} frames in ${seconds.toFixed(0)} s, ` +
      `${problems.length === 0 ? '✅ no problems' : `❌ ${problems.length} problems`}`,
    '',
    '| read API | sent | read | dropped (queue full) | unaccounted |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `- Kinds sent: ${Object.entries(figures.kinds)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
    `- decodeFrame: ${figures.decoded} decoded whole; stopped at a malformed layer: ${JSON.stringify(figures.failedLayers)}`,
    `- Refused by the kernel before sending (not counted as sent): ${JSON.stringify(figures.refused)}`,
    ...problems.map((p) => `- ❌ ${p}`),
  ].join('\n');
}
