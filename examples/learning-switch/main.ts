/**
 * The learning switch (see switch.ts) on real devices. As root:
 *
 *   node --import tsx examples/learning-switch/main.ts --port sw0 --port sw1 --port sw2
 *
 * opens one TAP device per --port (no addresses: a switch port is not a host) and switches
 * frames between them. Attach each device to something — a VM's network, a container or a
 * network namespace (`ip link set sw0 netns ns0`: the device keeps working there) — and they
 * share one Ethernet segment. Prints `ready <names>` once the ports are open; on SIGINT/SIGTERM
 * it closes them and prints its counters and forwarding table.
 */
import { parseArgs } from 'node:util';
import { openTap, type TapDevice } from 'tapkit';
import { LearningSwitch } from './switch.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', multiple: true, default: [] },
    mtu: { type: 'string' },
    backend: { type: 'string' },
  },
});
if (values.port.length < 2) {
  console.error('usage: main.ts --port <name> --port <name> [--port <name>]… [--mtu <n>] [--backend <name>]');
  process.exit(2);
}

const ports: TapDevice[] = [];
try {
  for (const name of values.port) {
    ports.push(
      await openTap({
        name,
        up: true,
        ...(values.mtu !== undefined && { mtu: Number(values.mtu) }),
        ...(values.backend !== undefined && { backend: values.backend }),
      }),
    );
  }
} catch (error) {
  await Promise.all(ports.map((port) => port.close())); // the ones opened before the failure
  throw error;
}
const bridge = new LearningSwitch(ports);
console.log(`ready ${ports.map((port) => port.name).join(' ')}`);

let stopped = false;
async function stop(): Promise<void> {
  if (stopped) return;
  stopped = true;
  await bridge.close();
  console.log(`stats ${JSON.stringify(bridge.stats())}`);
  console.log(`fdb ${JSON.stringify(Object.fromEntries(bridge.fdb()))}`);
}
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
// A port that goes away (its interface deleted) ends the switch.
bridge.done.catch(async (error: unknown) => {
  console.error(`switch: ${(error as Error).message}`);
  await stop();
  process.exitCode = 1;
});
