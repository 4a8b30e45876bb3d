// The relay of relay.c, written on tapkit the way a user would: `a.pipeTo(b)` and `b.pipeTo(a)`
// (frames move in linux-tap's native code); with --loop, the loop a program that looks at each
// frame runs instead (for await of batches(), writeBatch(), drain()); with --frames, the README's
// per-frame loop (for await (const frame of a), write(), drain()).
//
//   node bench/relay-tapkit.mjs [--loop | --frames] [--vnet-hdr] [--mtu N] <tapA> <tapB>
//
// Same policy as relay.c: no frame is dropped by the relay; when a write is held back, reading
// that direction waits for the drain. Prints "ready", then on SIGTERM/SIGINT one JSON line. In
// offload mode (--vnet-hdr) the devices are opened with `offload: true`: every frame is a 12-byte
// virtio-net header and an Ethernet (super-)frame, passed through untouched. A linux-tap without
// that mode (capabilities.offload false) makes it print {"unavailable": …} and exit with code 3.
import { openTap } from 'tapkit';

const args = process.argv.slice(2);
const flag = (name) => (args[0] === name ? (args.shift(), true) : false);
const loop = flag('--loop');
const perFrame = flag('--frames');
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

let writeErrors = 0;
async function pump(from, to) {
  for await (const batch of from.batches()) {
    try {
      if (!to.writeBatch(batch)) await to.drain();
    } catch {
      writeErrors++; // as relay.c: a refused write loses its frames, the relay goes on
    }
  }
}

async function pumpFrames(from, to) {
  for await (const frame of from) {
    try {
      if (!to.write(frame)) await to.drain();
    } catch {
      writeErrors++;
    }
  }
}

async function stop() {
  const cpu = process.cpuUsage();
  const frames = a.stats().txFrames + b.stats().txFrames;
  const bytes = a.stats().txBytes + b.stats().txBytes;
  const drops = { a: a.stats().drops, b: b.stats().drops };
  console.log(
    JSON.stringify({
      relay: perFrame ? 'tapkit-frames' : loop ? 'tapkit-loop' : 'tapkit',
      vnetHdr: offload,
      frames,
      bytes,
      writeErrors,
      cpuUserSec: cpu.user / 1e6,
      cpuSysSec: cpu.system / 1e6,
      maxRssKiB: process.resourceUsage().maxRSS,
      drops,
    }),
  );
  await Promise.all([a.close(), b.close()]);
}
process.once('SIGTERM', stop).once('SIGINT', stop);
// For the harness's RSS soak: where the memory is (V8 heap, ArrayBuffers, the rest).
process.on('SIGUSR2', () => console.log(JSON.stringify({ memory: process.memoryUsage() })));

console.log('ready');
await (perFrame
  ? Promise.all([pumpFrames(a, b), pumpFrames(b, a)])
  : loop
    ? Promise.all([pump(a, b), pump(b, a)])
    : Promise.all([a.pipeTo(b), b.pipeTo(a)]));
