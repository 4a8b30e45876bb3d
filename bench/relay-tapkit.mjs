// The relay of relay.c, written on tapkit the way a user would: `a.pipeTo(b)` and `b.pipeTo(a)`
// (frames move in linux-tap's native code); with --loop, the loop a program that looks at each
// frame runs instead (for await of batches(), writeBatch(), drain()); with --frames, the README's
// per-frame loop (for await (const frame of a), write(), drain()); with --event, the `frame` event
// (a.on('frame', f => b.write(f)); when a write returns false the listener is removed until the
// drain, as with a Node stream in flowing mode: the README's way to pause a listener).
//
//   node bench/relay-tapkit.mjs [--loop | --frames | --event] [--vnet-hdr] [--mtu N] <tapA> <tapB>
//
// Same policy as relay.c: no frame is dropped by the relay; when a write is held back, reading
// that direction waits for the drain. Prints "ready", then on SIGTERM/SIGINT one JSON line (and
// one on SIGUSR2: memory, fds, stats and link state so far, for the soaks). In
// offload mode (--vnet-hdr) the devices are opened with `offload: true`: every frame is a 12-byte
// virtio-net header and an Ethernet (super-)frame, passed through untouched. A linux-tap without
// that mode (capabilities.offload false) makes it print {"unavailable": …} and exit with code 3.
import { readdirSync, writeFileSync } from 'node:fs';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { GCProfiler, getHeapSpaceStatistics } from 'node:v8';
import { openTap } from 'tapkit';

const args = process.argv.slice(2);
const flag = (name) => (args[0] === name ? (args.shift(), true) : false);
const loop = flag('--loop');
const perFrame = flag('--frames');
const event = flag('--event');
const offload = flag('--vnet-hdr');
const mtu = flag('--mtu') ? Number(args.shift()) : 1500;
const [nameA, nameB] = args;

const open = (name) => openTap({ backend: 'linux-tap', name, mtu, ...(offload && { offload: true }) });
const a = await open(nameA);
const b = await open(nameB);
if (offload && !(a.capabilities.offload && b.capabilities.offload)) {
  console.log(
    JSON.stringify({ relay: 'tapkit', unavailable: 'this linux-tap has no offload (vnet-hdr) mode' }),
  );
  await Promise.all([a.close(), b.close()]);
  process.exit(3);
}

// Frames a refused write lost (as relay.c: the relay goes on). A batch is refused whole when one
// of its frames does not fit (the destination's MTU went down under it).
let lostFrames = 0;
async function pump(from, to) {
  for await (const batch of from.batches()) {
    try {
      if (!to.writeBatch(batch)) await to.drain();
    } catch {
      lostFrames += batch.length;
    }
  }
}

async function pumpFrames(from, to) {
  for await (const frame of from) {
    try {
      if (!to.write(frame)) await to.drain();
    } catch {
      lostFrames++;
    }
  }
}

// Backpressure the flowing-mode way: off('frame') when the destination is full, on again at its
// drain (frames meanwhile wait in the source's bounded queue, which pauses the OS side when full).
function pumpEvents(from, to) {
  const onFrame = (frame) => {
    try {
      if (!to.write(frame)) {
        from.off('frame', onFrame);
        to.drain().then(
          () => from.on('frame', onFrame),
          () => undefined, // closed
        );
      }
    } catch {
      lostFrames++;
    }
  };
  from.on('frame', onFrame);
  return new Promise((resolve) => from.once('close', resolve));
}

// The link events each device saw, by what changed: the soaks compare them with the changes made.
const linkEvents = [a, b].map((dev) => {
  const seen = { mtu: 0, up: 0, addresses: 0, name: 0 };
  dev.on('link', (change) => Object.keys(change).forEach((what) => seen[what]++));
  return seen;
});
const link = () =>
  [a, b].map((dev, i) => ({ name: dev.name, mtu: dev.mtu, up: dev.up, events: linkEvents[i] }));

async function stop() {
  const cpu = process.cpuUsage();
  const frames = a.stats().txFrames + b.stats().txFrames;
  const bytes = a.stats().txBytes + b.stats().txBytes;
  const drops = { a: a.stats().drops, b: b.stats().drops };
  console.log(
    JSON.stringify({
      relay: event ? 'tapkit-event' : perFrame ? 'tapkit-frames' : loop ? 'tapkit-loop' : 'tapkit',
      vnetHdr: offload,
      frames,
      bytes,
      lostFrames,
      cpuUserSec: cpu.user / 1e6,
      cpuSysSec: cpu.system / 1e6,
      maxRssKiB: process.resourceUsage().maxRSS,
      drops,
    }),
  );
  await Promise.all([a.close(), b.close()]);
}
process.once('SIGTERM', stop).once('SIGINT', stop);
// For the soaks: where the memory is (V8 heap, ArrayBuffers, the rest), how many full (mark-compact)
// collections V8 has made, fds, every frame so far.
let majorGCs = 0;
let minorGCs = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorGCs++;
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minorGCs++;
  }
}).observe({ entryTypes: ['gc'] });
// V8 grows its young generation (new space) as bytes survive scavenges and shrinks it when
// allocation slows; the old one grows between full collections: which of the two RSS follows.
const spaces = () => Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
process.on('SIGUSR2', () =>
  console.log(
    JSON.stringify({
      memory: process.memoryUsage(),
      majorGCs,
      minorGCs,
      spaces: spaces(),
      fds: readdirSync('/proc/self/fd').length,
      stats: [a.stats(), b.stats()],
      lostFrames,
      link: link(),
    }),
  ),
);

// TAPKIT_BENCH_GC_PROFILE=<file>: V8's record of every collection (heap spaces before and after)
// is written there when the relay is stopped, with a summary: per scavenge, what survived in the
// young generation and what was promoted to the old one, and the young generation's sizes.
if (process.env.TAPKIT_BENCH_GC_PROFILE) {
  const profiler = new GCProfiler();
  profiler.start();
  process.prependOnceListener('SIGTERM', () => {
    const profile = profiler.stop();
    const space = (heap, name) => heap.heapSpaceStatistics.find((s) => s.spaceName === name);
    const scavenges = profile.statistics.filter((s) => s.gcType === 'Scavenge');
    const mean = (f) => Math.round(scavenges.reduce((sum, s) => sum + f(s), 0) / (scavenges.length || 1));
    const collections = {};
    for (const { gcType } of profile.statistics) collections[gcType] = (collections[gcType] ?? 0) + 1;
    const summary = {
      seconds: (profile.endTime - profile.startTime) / 1000,
      collections,
      survivedBytes: mean((s) => space(s.afterGC, 'new_space').spaceUsedSize),
      promotedBytes: mean(
        (s) => space(s.afterGC, 'old_space').spaceUsedSize - space(s.beforeGC, 'old_space').spaceUsedSize,
      ),
      youngGenerationSizes: [...new Set(scavenges.map((s) => space(s.afterGC, 'new_space').spaceSize))],
    };
    writeFileSync(process.env.TAPKIT_BENCH_GC_PROFILE, JSON.stringify({ summary, profile }));
  });
}

console.log('ready');
await (event
  ? Promise.all([pumpEvents(a, b), pumpEvents(b, a)])
  : perFrame
    ? Promise.all([pumpFrames(a, b), pumpFrames(b, a)])
    : loop
      ? Promise.all([pump(a, b), pump(b, a)])
      : Promise.all([a.pipeTo(b), b.pipeTo(a)]));
