// Diagnostic, not a user's program: the relay on linux-tap's raw addon (TapHandle), without the
// engine (no promises, no per-frame checks), so the bench can tell the engine's cost from the
// addon's. Same arguments, policy and report as relay-tapkit.mjs; default mode only.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const require = createRequire(import.meta.url);
const addon = require(
  process.env.TAPKIT_LINUX_ADDON ||
    require('node-gyp-build').resolve(dirname(require.resolve('@tapkit/linux-tap/package.json'))),
);
const args = process.argv.slice(2);
if (args[0] === '--vnet-hdr') {
  console.log(JSON.stringify({ relay: 'raw', unavailable: 'the raw addon has no offload mode' }));
  process.exit(3);
}
const mtu = args[0] === '--mtu' ? (args.shift(), Number(args.shift())) : 1500;
const HIGH_WATER = 1024 * 1024;
let frames = 0;
let bytes = 0;
let writeErrors = 0;

function open(name) {
  const offsets = new Uint32Array(65);
  const side = { peer: undefined };
  side.handle = new addon.TapHandle({
    name,
    mode: 'tap',
    exclusive: true,
    batchFrames: 64,
    offsets,
    frameReserve: mtu + 18,
    slabBytes: 128 * 1024,
    onRead(slab, count) {
      const batch = [];
      for (let i = 0, start = offsets[0]; i < count; i++) {
        batch.push(new Uint8Array(slab, start, offsets[i + 1] - start));
        bytes += offsets[i + 1] - start;
        start = offsets[i + 1];
      }
      frames += count;
      try {
        if (side.peer.handle.writeBatch(batch) >= HIGH_WATER) side.handle.pause(); // until the peer drains
      } catch {
        writeErrors++; // EIO while the peer is down: those frames are lost, as in relay.c
      }
    },
    onDrain: () => side.peer.handle.resume(),
    onError: (error) => console.error(`relay-raw: ${name}: ${error.message}`),
  });
  execFileSync('ip', ['link', 'set', 'dev', name, 'mtu', String(mtu), 'up']);
  return side;
}

const a = open(args[0]);
const b = open(args[1]);
[a.peer, b.peer] = [b, a];
a.handle.resume();
b.handle.resume();

function stop() {
  const cpu = process.cpuUsage();
  console.log(
    JSON.stringify({
      relay: 'raw',
      vnetHdr: false,
      frames,
      bytes,
      writeErrors,
      cpuUserSec: cpu.user / 1e6,
      cpuSysSec: cpu.system / 1e6,
      maxRssKiB: process.resourceUsage().maxRSS,
    }),
  );
  a.handle.close();
  b.handle.close();
}
process.once('SIGTERM', stop).once('SIGINT', stop);
console.log('ready');
