/**
 * One end of the UDP tunnel (see tunnel.ts). Run one on each host, as root:
 *
 *   host A: node --import tsx examples/udp-tunnel/main.ts --listen 192.168.1.10:4789 \
 *             --peer 192.168.1.20:4789 --address 10.99.0.1/24
 *   host B: node --import tsx examples/udp-tunnel/main.ts --listen 192.168.1.20:4789 \
 *             --peer 192.168.1.10:4789 --address 10.99.0.2/24
 *
 * then `ping 10.99.0.2` on A. The backend is the platform's (linux-tap; darwin-feth on macOS),
 * or --backend. On linux-tap frames cross through a UDP link in native code (--transport link,
 * the default there); --transport dgram passes them through JavaScript (node:dgram), as on other
 * platforms. Prints `ready <device>` once the device is up; on SIGINT/SIGTERM it closes the
 * device and prints its counters.
 */
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { parseArgs } from 'node:util';
import { openTap, type TapDevice } from 'tapkit';
import { innerMtu, startLinkTunnel, startTunnel, type Tunnel } from './tunnel.js';

/** `192.0.2.1:4789` or `[2001:db8::1]:4789`. */
function endpoint(text: string, what: string): { address: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || !(port > 0 && port < 65536)) throw new Error(`${what} must be address:port, not ${text}`);
  return { address: match[1]!, port };
}

const { values } = parseArgs({
  options: {
    listen: { type: 'string' },
    peer: { type: 'string' },
    address: { type: 'string', multiple: true, default: [] },
    name: { type: 'string' },
    mtu: { type: 'string' },
    backend: { type: 'string' },
    transport: { type: 'string' },
  },
});
if (values.listen === undefined || values.peer === undefined) {
  console.error(
    'usage: main.ts --listen <addr:port> --peer <addr:port> [--address <cidr>]… [--name] [--mtu] [--backend] [--transport link|dgram]',
  );
  process.exit(2);
}
const local = endpoint(values.listen, '--listen');
const peer = endpoint(values.peer, '--peer');

const device = await openTap({
  ...(values.backend !== undefined && { backend: values.backend }),
  ...(values.name !== undefined && { name: values.name }),
  // Without --mtu: whole frames fit a 1500-byte underlay without IP fragmentation.
  mtu: values.mtu === undefined ? innerMtu(1500) : Number(values.mtu),
  addresses: values.address,
  up: true,
});
const transport = values.transport ?? (device.backend === 'linux-tap' ? 'link' : 'dgram');
if (transport !== 'link' && transport !== 'dgram') {
  await device.close();
  console.error(`--transport must be link or dgram, not ${transport}`);
  process.exit(2);
}
let tunnel: Tunnel;
let closeTransport: () => unknown;
if (transport === 'link') {
  // A UDP link: Linux's, so loaded only here.
  const { openUdpLink } = await import('@tapkit/linux-tap');
  const link: TapDevice = await openUdpLink({ local, remote: peer, mtu: device.mtu });
  tunnel = startLinkTunnel({ device, link });
  closeTransport = () => link.close();
} else {
  const socket = createSocket(isIPv6(local.address) ? 'udp6' : 'udp4');
  socket.on('error', (error) => console.error(`udp: ${error.message}`));
  await new Promise<void>((resolve) => socket.bind(local.port, local.address, resolve));
  tunnel = startTunnel({ device, socket, peer });
  closeTransport = () => socket.close();
}
console.log(
  `ready ${device.name} (${device.backend}, MTU ${device.mtu}, ${transport}): ${values.listen} <-> ${values.peer}`,
);

let stopped = false;
async function stop(): Promise<void> {
  if (stopped) return;
  stopped = true;
  await device.close();
  await closeTransport();
  console.log(`stats ${JSON.stringify(tunnel.stats)}`);
}
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
tunnel.done.catch(async (error: unknown) => {
  console.error(`tunnel: ${(error as Error).message}`);
  await stop();
  process.exitCode = 1;
});
