// Relay benchmark (issue 5): the C reference relay (relay.c) against the same relay on tapkit
// (relay-tapkit.mjs), each device in a network namespace of its own, iperf3 and ping across.
//
// Per relay session (one relay process, default or offload mode) it runs iperf3 TCP, UDP with 64-
// and 1400-byte payloads (-b 0: as fast as the sender can), and ping at 100 Hz and 1 kHz. Relay CPU
// is the sum of the relay's threads' run time (/proc/<pid>/task/*/schedstat) over each test; frames
// are the devices' rx counters (the frames the relay wrote) over the same window; peak RSS is the
// relay's VmHWM. Sessions alternate C, tapkit, C, tapkit… for PAIRS pairs; the table shows medians.
//
// Env: TAPKIT_BENCH_PAIRS (3), TAPKIT_BENCH_SECONDS per iperf3 test (5), TAPKIT_BENCH_MODES
//      (default,offload), TAPKIT_BENCH_RELAYS (c,tapkit,tapkit-loop; also tapkit-frames, tapkit-event, raw), TAPKIT_BENCH_PIN (0),
//      TAPKIT_BENCH_TESTS (tcp,udp64,udp1400,ping,ping1k: a subset, to look at one figure),
//      TAPKIT_BENCH_SOAK=1 for the 5-minute RSS soak (TAPKIT_BENCH_SOAK_SECONDS, 300) of each
//      TAPKIT_BENCH_SOAK_RELAYS (tapkit,tapkit-loop). TAPKIT_BENCH_ADDONS and TAPKIT_BENCH_NODE_FLAGS:
//      see below.
import {
  PAIRS,
  SECONDS,
  PIN,
  OUT,
  ADDR,
  createHarness,
  fmt,
  here,
  median,
  labelled,
  memoryMiB,
  nodeFlagsByLabel,
  pinned,
  skipReason,
  sleep,
  table,
} from './harness.mjs';

const MODES = (process.env.TAPKIT_BENCH_MODES ?? 'default,offload').split(',');
// TAPKIT_BENCH_ADDONS=label=/path/tapkit_linux.node,…: also the tapkit relay on those addon builds
// (kind `tapkit+label`), to A/B a change to linux-tap's native side against the current build.
const ADDONS = Object.fromEntries(labelled('TAPKIT_BENCH_ADDONS'));
// TAPKIT_BENCH_NODE_FLAGS=label=--flag --flag: also the JS loop relay under node with those flags
// (kind `tapkit-loop@label`), to A/B a V8 setting (the young generation's size) in one invocation.
const NODE_FLAGS = nodeFlagsByLabel('TAPKIT_BENCH_NODE_FLAGS');
// `raw` (relay-raw.mjs: the addon without the engine) can be added to tell their costs apart.
const KINDS = [
  ...(process.env.TAPKIT_BENCH_RELAYS ?? 'c,tapkit,tapkit-loop').split(','),
  ...Object.keys(ADDONS).map((label) => `tapkit+${label}`),
  ...Object.keys(NODE_FLAGS).map((label) => `tapkit-loop@${label}`),
];
const SOAK_SECONDS = Number(process.env.TAPKIT_BENCH_SOAK_SECONDS ?? 300);
const SOAK_KINDS = (process.env.TAPKIT_BENCH_SOAK_RELAYS ?? 'tapkit,tapkit-loop').split(',');
const RELAY_C = `${OUT}relay`;
const h = createHarness('bench');

// ---- One relay session ----

/** relay-tapkit.mjs's flag for each way of relaying on tapkit (relay-profile.mjs runs them too). */
export const TAPKIT_RELAY_FLAGS = {
  tapkit: [],
  'tapkit-loop': ['--loop'],
  'tapkit-frames': ['--frames'],
  'tapkit-event': ['--event'],
};
const flags = (mode) => (mode === 'offload' ? ['--vnet-hdr'] : []);
const onNode =
  (script, ...extra) =>
  (mode, nodeFlags = []) => [
    process.execPath,
    [...nodeFlags, `${here}${script}`, ...extra, ...flags(mode), ...h.dev],
  ];
const RELAYS = {
  c: (mode) => [RELAY_C, [...flags(mode), ...h.dev]],
  ...Object.fromEntries(
    Object.entries(TAPKIT_RELAY_FLAGS).map(([kind, flag]) => [kind, onNode('relay-tapkit.mjs', ...flag)]),
  ),
  raw: onNode('relay-raw.mjs'),
};
export const RELAY_LABELS = {
  c: 'C relay',
  tapkit: 'tapkit relay (pipeTo)',
  'tapkit-loop': 'tapkit relay (JS loop)',
  'tapkit-frames': "tapkit relay (README's per-frame loop)",
  'tapkit-event': "tapkit relay ('frame' event)",
  raw: 'raw addon relay',
};
for (const label of Object.keys(ADDONS)) {
  RELAYS[`tapkit+${label}`] = RELAYS.tapkit;
  RELAY_LABELS[`tapkit+${label}`] = `tapkit relay, addon ${label}`;
}
for (const [label, nodeFlags] of Object.entries(NODE_FLAGS)) {
  RELAYS[`tapkit-loop@${label}`] = (mode) => RELAYS['tapkit-loop'](mode, nodeFlags);
  RELAY_LABELS[`tapkit-loop@${label}`] = `tapkit relay (JS loop), node ${nodeFlags.join(' ')}`;
}
const relayEnv = (kind) =>
  kind.startsWith('tapkit+') ? { ...process.env, TAPKIT_LINUX_ADDON: ADDONS[kind.slice(7)] } : process.env;

/** Starts a relay, waits for "ready"; resolves { child, lines } or { unavailable }. */
function startRelay(kind, mode) {
  h.sessions++;
  h.dev = [`tkb${process.pid}a${h.sessions}`, `tkb${process.pid}b${h.sessions}`];
  return h.startReady(`${kind} relay`, ...pinned(1, ...RELAYS[kind](mode)), relayEnv(kind));
}

/** One relay session: every selected test through one relay process. */
async function session(kind, mode) {
  const relay = await startRelay(kind, mode);
  if (relay.unavailable) return { unavailable: relay.unavailable };
  let results = {};
  try {
    await h.placeDevices();
    results = await h.runTests([relay.child.pid]);
  } catch (error) {
    throw new Error(
      `${kind} relay, ${mode} mode: ${error.message}\nrelay stderr: ${relay.child.stderrText()}`,
    );
  } finally {
    // VmHWM, not the relay's own getrusage: ru_maxrss survives exec, so a child of this Node
    // process would report this process's RSS at fork.
    results.rssMiB = memoryMiB(relay.child.pid, 'VmHWM');
    await h.stopReady(relay);
  }
  return results;
}

// ---- Report ----

/** The relay's targets (issue 5): TCP ≥ 0.9× C; default mode: UDP 64 B CPU/frame ≤ 1.25×, ping p50 ≤ C + 30 µs. */
const relayChecks = (mode) => (m, kind, check) => {
  const tcp = m(kind, 'tcp', 'gbps') / m('c', 'tcp', 'gbps');
  check(tcp, tcp >= 0.9, `TCP tapkit/C ${fmt(tcp, 2)} (target ≥ 0.90)`);
  if (mode === 'default') {
    const cost = m(kind, 'udp64', 'cpuPerFrameUs') / m('c', 'udp64', 'cpuPerFrameUs');
    check(cost, cost <= 1.25, `UDP 64 B CPU per frame tapkit/C ${fmt(cost, 2)} (target ≤ 1.25)`);
    const dp50 = m(kind, 'ping', 'p50') - m('c', 'ping', 'p50');
    check(dp50, dp50 <= 30, `ping p50 tapkit − C ${fmt(dp50, 0)} µs (target ≤ 30 µs)`);
  }
};

/** Runs the paired relay benchmark and returns a Markdown section. */
export async function benchRelay({ pairs = PAIRS, modes = MODES, kinds = KINDS } = {}) {
  const why = await skipReason(['relay']);
  if (why) return `Relay benchmark skipped: ${why}.`;
  const sections = await h.withNamespaces(async () => {
    const runs = Object.fromEntries(
      modes.map((m) => [
        m,
        { unavailable: {}, failed: [], ...Object.fromEntries(['c', ...kinds].map((k) => [k, []])) },
      ]),
    );
    for (let pair = 0; pair < pairs; pair++) {
      for (const mode of modes) {
        for (const kind of kinds) {
          if (runs[mode].unavailable[kind]) continue;
          process.stderr.write(`relay bench: pair ${pair + 1}/${pairs}, ${mode}, ${kind}\n`);
          try {
            const result = await session(kind, mode);
            if (result.unavailable) runs[mode].unavailable[kind] = result.unavailable;
            else runs[mode][kind].push(result);
          } catch (error) {
            // One failed session (say, the addon rebuilt under the run) costs its row, not the run.
            runs[mode].failed.push(
              `${RELAY_LABELS[kind]}, pair ${pair + 1}: ${error.message.split('\n')[0]}`,
            );
            process.stderr.write(`relay bench: ${error.stack}\n`);
          }
        }
      }
    }
    return modes.map((mode) =>
      table({
        title: `${mode} mode`,
        what: 'relay',
        runs: runs[mode],
        kinds,
        labels: RELAY_LABELS,
        checks: relayChecks(mode),
      }),
    );
  });
  return [
    `Relay through two TAP devices in separate namespaces, iperf3 ${SECONDS} s a test, ${pairs} alternating`,
    `rounds (${kinds.join(', ')}, …); median (min–max). ${PIN ? 'Relay pinned to CPU 1, iperf3 to CPU 0. ' : ''}CPU is`,
    'the relay process only; frames are those it wrote (offload mode: a GSO super-frame counts once).',
    '',
    ...sections.flatMap((s) => [s, '']),
  ].join('\n');
}

/** RSS soak: each tapkit relay under iperf3 TCP load, RSS sampled every 10 s. */
export async function benchSoak({ seconds = SOAK_SECONDS, kinds = SOAK_KINDS } = {}) {
  const why = await skipReason(['relay']);
  if (why) return `RSS soak skipped: ${why}.`;
  const sections = [];
  for (const kind of kinds) sections.push(await soak(kind, seconds));
  return sections.join('\n\n');
}

async function soak(kind, seconds) {
  return h.withNamespaces(async () => {
    const relay = await startRelay(kind, 'default');
    const samples = [];
    try {
      await h.placeDevices();
      const load = h.iperf3(['-c', ADDR[1], '-t', String(seconds), '-J'], {
        timeout: (seconds + 30) * 1000,
        maxBuffer: 64 << 20,
      });
      load.catch(() => {}); // awaited below; this only keeps an early failure from being unhandled
      // RSS from /proc, and the relay's own view of it (process.memoryUsage(), on SIGUSR2).
      const sample = async () => {
        relay.child.kill('SIGUSR2');
        const { memory, majorGCs } = JSON.parse((await relay.lines.next()).value);
        const mib = (bytes) => bytes / 2 ** 20;
        return {
          rss: memoryMiB(relay.child.pid, 'VmRSS'),
          heap: mib(memory.heapUsed),
          heapTotal: mib(memory.heapTotal),
          buffers: mib(memory.arrayBuffers),
          majorGCs,
        };
      };
      const idle = await sample();
      for (let t = 10; t <= seconds; t += 10) {
        await sleep(10_000);
        samples.push(await sample());
      }
      const { stdout } = await load;
      const gbps = JSON.parse(stdout).end.sum_received.bits_per_second / 1e9;
      const rss = samples.map((x) => x.rss);
      const tail = rss.slice(Math.floor(rss.length / 2)); // the second half: is it flat?
      const spread = (Math.max(...tail) - Math.min(...tail)) / median(tail);
      const list = (key, digits = 1) => samples.map((x) => x[key].toFixed(digits)).join(' ');
      return [
        `RSS soak: ${RELAY_LABELS[kind]} (default mode) under iperf3 TCP for ${seconds} s (${fmt(gbps, 2)} Gbit/s), sampled every 10 s:`,
        '',
        `RSS before load ${fmt(idle.rss, 1)} MiB; under load first ${fmt(rss[0], 1)}, last ${fmt(rss.at(-1), 1)}, ` +
          `max ${fmt(Math.max(...rss), 1)} MiB; second half ${fmt(Math.min(...tail), 1)}–${fmt(Math.max(...tail), 1)} MiB`,
        '',
        // Flat: the second half's samples within 5% of their median (a GC'd heap breathes a little).
        `${spread <= 0.05 ? '✅' : '❌'} RSS flat: second-half spread ${fmt(spread * 100, 1)}% of its median (target ≤ 5%)`,
        '',
        `- RSS (MiB): ${list('rss')}`,
        `- V8 heap used (MiB): ${list('heap')}`,
        `- V8 heap total (MiB): ${list('heapTotal')}`,
        `- ArrayBuffers (MiB): ${list('buffers')}`,
        `- full GCs so far: ${list('majorGCs', 0)}`,
      ].join('\n');
    } finally {
      await h.stopReady(relay);
    }
  });
}
