// `npm run bench`: every benchmark, each against a baseline measured in the same invocation.
// Results print as Markdown and are saved, with the date and machine, under bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { benchMockSwitch } from './mock-switch.mjs';

const sections = [await benchMockSwitch()];

const stamp = new Date().toISOString();
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${process.platform}`;
const report = [
  `# tapkit benchmarks`,
  '',
  `${stamp} on ${hostname()} (${machine})`,
  '',
  ...sections,
  '',
].join('\n');
console.log(report);

const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL(`${stamp.slice(0, 10)}-mock.md`, dir), report);
