// One end of the L2-over-UDP tunnel on tapkit. Same design as tunnel.c: one frame per datagram,
// the socket on 127.0.0.1, the peer on another port. Three ways a user writes it:
//   dgram  the udp-tunnel example's own code (examples/udp-tunnel/tunnel.ts, loaded through tsx):
//          node:dgram, one callback per datagram;
//   link   the example's startLinkTunnel(): a UDP link (openUdpLink) and pipeTo() both ways,
//          native pipes, no JS per frame (what the example does on linux-tap);
//   loop   a UDP link with frames through JS both ways (where an overlay would encrypt or route):
//          `for await (const frames of a.batches()) if (!b.writeBatch(frames)) await b.drain()`.
//
//   node --import tsx bench/overlay-tapkit.mjs [--mtu N] dgram|link|loop <tap> <local port> <peer port>
//
// Prints "ready" once the device is up and the socket bound, then on SIGTERM/SIGINT one JSON line
// (the frames written into the device, the device's drops, CPU time).
import { createSocket } from 'node:dgram';
import { openUdpLink } from '@tapkit/linux-tap';
import { openTap } from 'tapkit';
import { startLinkTunnel, startTunnel } from '../examples/udp-tunnel/tunnel.ts';

const args = process.argv.slice(2);
const mtu = args[0] === '--mtu' ? (args.shift(), Number(args.shift())) : 1500;
const [mode, name, localPort, peerPort] = args;
const peer = { address: '127.0.0.1', port: Number(peerPort) };

const device = await openTap({ backend: 'linux-tap', name, mtu, up: true });
let done;
let close = async () => undefined;
if (mode === 'dgram') {
  const socket = createSocket('udp4');
  socket.on('error', (error) => console.error(`udp: ${error.message}`));
  await new Promise((resolve) => socket.bind(Number(localPort), '127.0.0.1', resolve));
  done = startTunnel({ device, socket, peer }).done;
  close = async () => socket.close();
} else {
  const link = await openUdpLink({
    local: { address: '127.0.0.1', port: Number(localPort) },
    remote: peer,
    mtu,
  });
  const relay = async (from, to) => {
    for await (const frames of from.batches()) if (!to.writeBatch(frames)) await to.drain();
  };
  done =
    mode === 'link'
      ? startLinkTunnel({ device, link }).done
      : Promise.all([relay(device, link), relay(link, device)]);
  close = () => link.close();
}

async function stop() {
  const cpu = process.cpuUsage();
  const stats = device.stats();
  console.log(
    JSON.stringify({
      tunnel: `tapkit-${mode}`,
      framesIn: stats.txFrames,
      drops: stats.drops,
      cpuUserSec: cpu.user / 1e6,
      cpuSysSec: cpu.system / 1e6,
    }),
  );
  await device.close();
  await close();
}
process.once('SIGTERM', stop).once('SIGINT', stop);
console.log('ready');
await done;
