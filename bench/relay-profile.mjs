// Where each relay's time goes (issue 14's "profile-backed explanation"): the relays of
// relay.mjs, one session each, C first, under
//   1. iperf3 TCP, with `perf record -g -p <relay>` for SECONDS in the middle: CPU per frame
//      forwarded, split by where perf found it (kernel, libc's syscall wrappers, the relay's own
//      native code, V8 and the JIT'd JavaScript);
//   2. ping across at 100 Hz and 1 kHz (after the TCP run: warm, as in relay.mjs): p50 and the
//      relay's CPU per round trip (two frames relayed).
// Needs Linux `perf` (Debian: linux-perf); without it the section says so and is skipped. Not in
// the default `npm run bench`: TAPKIT_BENCH_ONLY=profile.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RELAY_LABELS, TAPKIT_RELAY_FLAGS } from './relay.mjs';
import { ADDR, OUT, SECONDS, cpuSeconds, createHarness, fmt, here, sleep, skipReason } from './harness.mjs';

const KINDS = (process.env.TAPKIT_BENCH_RELAYS ?? 'c,tapkit,tapkit-loop,tapkit-frames,tapkit-event').split(
  ',',
);
// perf's DSOs, grouped: the kernel, libc (mostly its read/write/readv/epoll wrappers), the
// relay's own native code, and V8 with the JavaScript it compiled.
const PARTS = {
  kernel: (dso) => dso === '[kernel.kallsyms]',
  libc: (dso) => dso.startsWith('libc.') || dso === '[vdso]',
  native: (dso) => dso === 'relay' || dso.startsWith('tapkit_') || dso.startsWith('libstdc++'),
  v8: (dso) => dso === 'node' || dso.startsWith('[JIT]'), // [JIT]: --perf-basic-prof's map
};
const h = createHarness('profile');

/** Shares of perf's samples by part, in [0, 1]. */
function shares(data) {
  const { stdout } = spawnSync(
    'perf',
    ['report', '-i', data, '--no-children', '--sort', 'dso', '-g', 'none', '--stdio'],
    {
      encoding: 'utf8',
      maxBuffer: 16 << 20,
    },
  );
  const out = Object.fromEntries(Object.keys(PARTS).map((part) => [part, 0]));
  for (const [, percent, dso] of stdout.matchAll(/^\s+([\d.]+)%\s+(\S.*?)\s*$/gm)) {
    const part = Object.keys(PARTS).find((name) => PARTS[name](dso));
    if (part) out[part] += Number(percent) / 100;
  }
  return out;
}

async function session(kind, dir) {
  h.sessions++;
  h.dev = [`tkf${process.pid}a${h.sessions}`, `tkf${process.pid}b${h.sessions}`];
  const [cmd, args] =
    kind === 'c'
      ? [`${OUT}relay`, h.dev]
      : [
          process.execPath,
          [
            '--perf-basic-prof-only-functions',
            `${here}relay-tapkit.mjs`,
            ...TAPKIT_RELAY_FLAGS[kind],
            ...h.dev,
          ],
        ];
  const relay = await h.startReady(`${kind} relay`, cmd, args);
  try {
    await h.placeDevices();
    const pid = relay.child.pid;
    const load = h.iperf3(['-c', ADDR[1], '-t', String(SECONDS + 4), '-J'], { maxBuffer: 64 << 20 });
    await sleep(2000);
    const [cpu0, frames0] = [cpuSeconds(pid), await h.framesForwarded()];
    const data = join(dir, `${kind}.data`);
    await h.run('perf', [
      'record',
      '-q',
      '-F',
      '1999',
      '-g',
      '-o',
      data,
      '-p',
      String(pid),
      '--',
      'sleep',
      String(SECONDS),
    ]);
    const [cpu, frames] = [cpuSeconds(pid) - cpu0, (await h.framesForwarded()) - frames0];
    const gbps = JSON.parse((await load).stdout).end.sum_received.bits_per_second / 1e9;
    const usPerFrame = (cpu / frames) * 1e6;
    const part = shares(data);
    const pings = {};
    for (const [name, interval, count] of [
      ['hz100', '0.01', 500],
      ['hz1k', '0.001', 3000],
    ]) {
      const before = cpuSeconds(pid);
      const { p50 } = await h.ping(interval, count);
      pings[name] = { p50, cpuUs: ((cpuSeconds(pid) - before) / count) * 1e6 };
    }
    return { gbps, usPerFrame, part, pings };
  } finally {
    await h.stopReady(relay);
  }
}

/** Runs each relay once and returns a Markdown section. */
export async function benchRelayProfile() {
  const title = 'Relay profile';
  const reason =
    (await skipReason(['relay'])) ??
    (spawnSync('perf', ['--version']).status === 0
      ? undefined
      : 'Linux perf is not installed (Debian: linux-perf)');
  if (reason) return `${title} skipped: ${reason}`;
  const dir = mkdtempSync(join(tmpdir(), 'tapkit-profile-'));
  const runs = {};
  try {
    await h.withNamespaces(async () => {
      for (const kind of KINDS) runs[kind] = await session(kind, dir);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const c = runs.c;
  const rows = KINDS.map((kind) => {
    const r = runs[kind];
    const us = (part) => fmt(r.usPerFrame * r.part[part], 2);
    return [
      RELAY_LABELS[kind],
      `${fmt(r.gbps, 2)} (${fmt(r.gbps / c.gbps, 2)})`,
      `${fmt(r.usPerFrame, 2)} (${fmt(r.usPerFrame / c.usPerFrame, 2)})`,
      us('kernel'),
      us('libc'),
      us('native'),
      us('v8'),
      `${fmt(r.pings.hz100.p50, 0)} / ${fmt(r.pings.hz100.cpuUs, 0)}`,
      `${fmt(r.pings.hz1k.p50, 0)} / ${fmt(r.pings.hz1k.cpuUs, 0)}`,
    ];
  });
  return [
    `${title}: each relay once (one session, C first), iperf3 TCP with \`perf record -g -p <relay>\` ` +
      `(cpu-clock, 1999 Hz) for ${SECONDS} s mid-run, then ping at 100 Hz (500) and 1 kHz (3000). ` +
      'CPU per frame: the relay’s threads’ run time over the frames it wrote, split by ' +
      'where perf found it (V8: node and the JIT’d JavaScript; native: relay.c or the addon). ' +
      'Ping: p50 and the relay’s CPU per round trip (two frames), µs.',
    '',
    '| relay | TCP Gbit/s (/C) | CPU µs/frame (/C) | kernel | libc | native | V8 + JS | ping 100 Hz p50 / CPU | ping 1 kHz p50 / CPU |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((cells) => `| ${cells.join(' | ')} |`),
  ].join('\n');
}
