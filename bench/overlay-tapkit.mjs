// One end of the L2-over-UDP tunnel on tapkit: the example's own code (examples/udp-tunnel/
// tunnel.ts, loaded through tsx), so the bench measures what a user of the example gets. Same
// design as tunnel.c: one frame per datagram, the socket on 127.0.0.1, the peer on another port.
//
//   node --import tsx bench/overlay-tapkit.mjs [--mtu N] <tap> <local port> <peer port>
//
// Prints "ready" once the device is up and the socket bound, then on SIGTERM/SIGINT one JSON line
// (the tunnel's counters, the device's drops, CPU time).
import { createSocket } from 'node:dgram';
import { openTap } from 'tapkit';
import { startTunnel } from '../examples/udp-tunnel/tunnel.ts';

const args = process.argv.slice(2);
const mtu = args[0] === '--mtu' ? (args.shift(), Number(args.shift())) : 1500;
const [name, localPort, peerPort] = args;

const socket = createSocket('udp4');
socket.on('error', (error) => console.error(`udp: ${error.message}`));
await new Promise((resolve) => socket.bind(Number(localPort), '127.0.0.1', resolve));
const device = await openTap({ backend: 'linux-tap', name, mtu, up: true });
const tunnel = startTunnel({ device, socket, peer: { address: '127.0.0.1', port: Number(peerPort) } });

async function stop() {
  const cpu = process.cpuUsage();
  console.log(
    JSON.stringify({
      tunnel: 'tapkit',
      ...tunnel.stats,
      drops: device.stats().drops,
      cpuUserSec: cpu.user / 1e6,
      cpuSysSec: cpu.system / 1e6,
    }),
  );
  await device.close();
  socket.close();
}
process.once('SIGTERM', stop).once('SIGINT', stop);
console.log('ready');
await tunnel.done;
