// `npm run bench`: every benchmark, each against a baseline measured in the same invocation.
// Results print as Markdown and are saved, with the date and machine, under bench/results/
// (<date>-<benchmarks>.md, and latest.md).
// TAPKIT_BENCH_ONLY=mock,relay,overlay,soak,fuzz picks benchmarks (default mock,relay,overlay;
// TAPKIT_BENCH_SOAK=1 adds soak). overlay is the L2-over-UDP tunnel against its C reference; fuzz is the kernel-side fuzz of the read path, a million frames; linksoak the
// 30-minute link soak (relays under link flaps and MTU changes); profile where each relay's time goes
// (Linux perf).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { benchKernelFuzz } from './kernel-fuzz.mjs';
import { benchLinkSoak } from './link-soak.mjs';
import { benchMockSwitch } from './mock-switch.mjs';
import { benchOverlay } from './overlay.mjs';
import { benchRelayProfile } from './relay-profile.mjs';
import { benchRelay, benchSoak } from './relay.mjs';

const BENCHES = {
  mock: benchMockSwitch,
  relay: benchRelay,
  overlay: benchOverlay,
  soak: benchSoak,
  fuzz: benchKernelFuzz,
  linksoak: benchLinkSoak,
  profile: benchRelayProfile,
};
const defaults = process.env.TAPKIT_BENCH_SOAK === '1' ? 'mock,relay,overlay,soak' : 'mock,relay,overlay';
const only = (process.env.TAPKIT_BENCH_ONLY ?? defaults).split(',').filter((name) => name in BENCHES);
const sections = [];
for (const name of only) sections.push(await BENCHES[name]());

const stamp = new Date().toISOString();
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${process.platform}`;
let report = [
  `# tapkit benchmarks`,
  '',
  `${stamp} on ${hostname()} (${machine})`,
  '',
  ...sections.flatMap((section) => [section, '']),
].join('\n');
const dir = new URL('./results/', import.meta.url);
try {
  // As `npm run lint` wants the saved results (and aligned tables read better here too).
  const prettier = await import('prettier');
  const filepath = new URL('latest.md', dir).pathname;
  report = await prettier.format(report, { ...(await prettier.resolveConfig(filepath)), filepath });
} catch {
  // prettier is a dev dependency: without it the report stays as it is
}
console.log(report);

// Only a run that measured something replaces saved results.
if (sections.some((section) => !/^\S[^\n]* skipped: /.test(section))) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL(`${stamp.slice(0, 10)}-${only.join('-')}.md`, dir), report);
  // latest.md holds the relay figures docs/benchmarks.md cites: only a run with them replaces it.
  if (only.includes('relay')) writeFileSync(new URL('latest.md', dir), report);
}
