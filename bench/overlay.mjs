// Overlay benchmark (issue 14): an L2-over-UDP tunnel, the C reference end (tunnel.c) against
// tapkit ends (overlay-tapkit.mjs: the udp-tunnel example's dgram code, a UDP link with native
// pipes, a UDP link with frames through a JS loop). Two ends per session, each a
// process with one TAP device and one UDP socket; both run in a namespace of their own (U) and
// talk over its loopback (127.0.0.1, two ports). Their devices are then moved into namespaces A
// and B (198.18.0.1 and .2), so iperf3 and ping from A to B cross: tap → end 1 → UDP → end 2 → tap.
//
// Tests and figures as the relay benchmark (harness.mjs): iperf3 TCP, UDP 64 B and 1400 B, ping at
// 100 Hz and 1 kHz; CPU is both ends' processes, frames those they wrote into the devices.
// Sessions alternate C, tapkit for TAPKIT_BENCH_PAIRS rounds. Targets: TCP ≥ 0.9× C, UDP 64 B CPU
// per frame ≤ 1.25× C, ping p50 ≤ C + 50 µs.
//
// Env: as harness.mjs; TAPKIT_BENCH_OVERLAYS (c,tapkit,tapkit-link,tapkit-loop).
import {
  PAIRS,
  SECONDS,
  PIN,
  OUT,
  createHarness,
  fmt,
  here,
  memoryMiB,
  skipReason,
  table,
} from './harness.mjs';

const KINDS = (process.env.TAPKIT_BENCH_OVERLAYS ?? 'c,tapkit,tapkit-link,tapkit-loop').split(',');
const h = createHarness('overlay', { extra: ['u'] });
const U = h.ns[2];
const PORTS = [47001, 47002]; // on U's own loopback: no one else's
// The tapkit end runs the example's TypeScript through tsx (a dev dependency of the examples).
let tsx;
try {
  tsx = import.meta.resolve('tsx');
} catch {
  tsx = undefined;
}

// [cmd, args] of end i (device h.dev[i], on PORTS[i], its peer on the other port).
const tapkitEnd = (mode) => (i) => [
  process.execPath,
  ['--import', tsx, `${here}overlay-tapkit.mjs`, mode, h.dev[i], String(PORTS[i]), String(PORTS[1 - i])],
];
const END = {
  c: (i) => [`${OUT}tunnel`, [h.dev[i], String(PORTS[i]), String(PORTS[1 - i])]],
  tapkit: tapkitEnd('dgram'),
  'tapkit-link': tapkitEnd('link'),
  'tapkit-loop': tapkitEnd('loop'),
};
const LABELS = {
  c: 'C tunnel',
  tapkit: 'tapkit tunnel (example on node:dgram)',
  'tapkit-link': 'tapkit tunnel (UDP link, pipeTo)',
  'tapkit-loop': 'tapkit tunnel (UDP link, JS batch loop)',
};

/** One session: both ends of `kind`, every selected test across them. */
async function session(kind) {
  h.sessions++;
  h.dev = [`tko${process.pid}a${h.sessions}`, `tko${process.pid}b${h.sessions}`];
  const ends = [];
  let results = {};
  try {
    for (const i of [0, 1]) {
      // End i on CPU i when pinned: each end has a core, as on two hosts.
      const [cmd, args] = END[kind](i);
      const inU = ['netns', 'exec', U, ...(PIN ? ['taskset', '-c', String(i)] : []), cmd, ...args];
      const end = await h.startReady(`${kind} tunnel end ${i}`, 'ip', inU);
      if (end.unavailable) return { unavailable: end.unavailable };
      ends.push(end);
    }
    await h.placeDevices(U);
    results = await h.runTests(ends.map((end) => end.child.pid));
  } catch (error) {
    const stderr = ends.map((end) => end.child.stderrText()).join('\n');
    throw new Error(`${kind} tunnel: ${error.message}\nstderr: ${stderr}`);
  } finally {
    results.rssMiB = Math.max(...ends.map((end) => memoryMiB(end.child.pid, 'VmHWM')));
    for (const end of ends) await h.stopReady(end);
  }
  return results;
}

const checks = (m, kind, check) => {
  const tcp = m(kind, 'tcp', 'gbps') / m('c', 'tcp', 'gbps');
  check(tcp, tcp >= 0.9, `TCP tapkit/C ${fmt(tcp, 2)} (target ≥ 0.90)`);
  const cost = m(kind, 'udp64', 'cpuPerFrameUs') / m('c', 'udp64', 'cpuPerFrameUs');
  check(cost, cost <= 1.25, `UDP 64 B CPU per frame tapkit/C ${fmt(cost, 2)} (target ≤ 1.25)`);
  const tcpCost = m(kind, 'tcp', 'cpuPerFrameUs') / m('c', 'tcp', 'cpuPerFrameUs');
  check(tcpCost, tcpCost <= 1.25, `TCP CPU per frame tapkit/C ${fmt(tcpCost, 2)} (target ≤ 1.25)`);
  const dp50 = m(kind, 'ping', 'p50') - m('c', 'ping', 'p50');
  check(dp50, dp50 <= 50, `ping p50 tapkit − C ${fmt(dp50, 0)} µs (target ≤ 50 µs)`);
};

/** Runs the paired overlay benchmark and returns a Markdown section. */
export async function benchOverlay({ pairs = PAIRS, kinds = KINDS } = {}) {
  const why = tsx ? await skipReason(['tunnel']) : 'no tsx (npm ci installs it for the examples)';
  if (why) return `Overlay benchmark skipped: ${why}.`;
  const section = await h.withNamespaces(async () => {
    const runs = { unavailable: {}, failed: [], ...Object.fromEntries(['c', ...kinds].map((k) => [k, []])) };
    for (let pair = 0; pair < pairs; pair++) {
      for (const kind of kinds) {
        if (runs.unavailable[kind]) continue;
        process.stderr.write(`overlay bench: pair ${pair + 1}/${pairs}, ${kind}\n`);
        try {
          const result = await session(kind);
          if (result.unavailable) runs.unavailable[kind] = result.unavailable;
          else runs[kind].push(result);
        } catch (error) {
          runs.failed.push(`${LABELS[kind]}, pair ${pair + 1}: ${error.message.split('\n')[0]}`);
          process.stderr.write(`overlay bench: ${error.stack}\n`);
        }
      }
    }
    return table({ title: 'L2 over UDP', what: 'tunnel ends', runs, kinds, labels: LABELS, checks });
  });
  return [
    `Overlay: an L2-over-UDP tunnel, two ends on one loopback, each end's TAP device in a namespace`,
    `of its own; iperf3 ${SECONDS} s a test, ${pairs} alternating rounds (${kinds.join(', ')}, …); median`,
    `(min–max). ${PIN ? 'End 1 pinned to CPU 0, end 2 to CPU 1 (iperf3 unpinned). ' : ''}CPU is both ends'`,
    'processes; frames are those they wrote into their devices (each crossed the UDP socket once).',
    '',
    section,
  ].join('\n');
}
