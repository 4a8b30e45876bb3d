import { createNetns, itPrivileged, useCleanup, type Netns } from '@tapkit/test-support';
import {
  ArpOp,
  IcmpType,
  buildArpRequestFrame,
  buildIcmpEchoFrame,
  createMockNetwork,
  formatMac,
  parseIPv4Address,
  type TapDevice,
} from 'tapkit';
import { describe, expect, it } from 'vitest';
import { readUntil, startExample, statsOf } from '../support.js';
import { LearningSwitch, type SwitchStats } from './switch.js';

/** The probe program's own MAC (probe.mac is its device's OS station). */
const ME = '02:70:72:6f:62:65';

useCleanup();

const self = parseIPv4Address('10.0.0.1');

function ping(probe: TapDevice, dstMac: Uint8Array, dst: string, sequence: number): void {
  probe.write(
    buildIcmpEchoFrame({
      srcMac: ME,
      dstMac,
      src: self,
      dst: parseIPv4Address(dst),
      type: 'request',
      identifier: 1,
      sequence,
      data: new Uint8Array(16),
    }),
  );
}

describe('learning switch (example)', () => {
  it('joins three mock LANs: floods what it does not know, forwards what it learned', async () => {
    await using lanA = createMockNetwork({ seed: 1 });
    await using lanB = createMockNetwork({ seed: 2 });
    await using lanC = createMockNetwork({ seed: 3 });
    const hostB = lanB.addHost({ ipv4: '10.0.0.2/24' });
    const hostC = lanC.addHost({ ipv4: '10.0.0.3/24' });
    await using probe = await lanA.open({ name: 'probe' });
    let now = 0;
    const bridge = new LearningSwitch([await lanA.open(), await lanB.open(), await lanC.open()], {
      agingMs: 1000,
      now: () => now,
    });

    // ARP is broadcast: flooded to B and C; B's answer goes to the probe's port only.
    probe.write(buildArpRequestFrame({ srcMac: ME, srcIp: self, targetIp: parseIPv4Address('10.0.0.2') }));
    await readUntil(probe, (d) => d.arp?.op === ArpOp.Reply);
    ping(probe, hostB.mac, '10.0.0.2', 1);
    await readUntil(probe, (d) => d.icmpEcho?.type === IcmpType.EchoReply);
    expect(bridge.stats()).toMatchObject({ received: 4, flooded: 1, forwarded: 3, filtered: 0 });
    expect(hostC.stats().received).toBe(1); // the broadcast, and nothing meant for B

    probe.write(buildArpRequestFrame({ srcMac: ME, srcIp: self, targetIp: parseIPv4Address('10.0.0.3') }));
    await readUntil(probe, (d) => d.arp?.op === ArpOp.Reply && d.arp.senderIp[3] === 3);
    expect(hostB.stats().received).toBe(3); // ARP for B, the ping, and the broadcast for C
    const fdb = bridge.fdb();
    expect(fdb.get(formatMac(hostB.mac))).toBe(1);
    expect(fdb.get(formatMac(hostC.mac))).toBe(2);
    expect(fdb.size).toBe(3);

    // Entries age out: then a frame for B is flooded again, and B's reply relearns it.
    now += 1001;
    expect(bridge.fdb().size).toBe(0);
    const before = bridge.stats().flooded;
    ping(probe, hostB.mac, '10.0.0.2', 2);
    await readUntil(probe, (d) => d.icmpEcho?.type === IcmpType.EchoReply && d.icmpEcho.sequence === 2);
    expect(bridge.stats().flooded).toBe(before + 1);
    expect(bridge.fdb().get(formatMac(hostB.mac))).toBe(1);

    await bridge.close();
    await expect(bridge.done).resolves.toBeUndefined();
  });

  itPrivileged(
    'joins three network namespaces through linux-tap devices; they ping each other',
    async () => {
      const switchNs = await createNetns();
      const hosts: Netns[] = [await createNetns(), await createNetns(), await createNetns()];
      const names = ['tks0', 'tks1', 'tks2'];
      const running = await startExample(
        switchNs,
        'learning-switch/main.ts',
        names.flatMap((name) => ['--port', name]),
      );
      expect(running.output()).toMatch(/^ready tks0 tks1 tks2$/m);
      // Each port goes to its own namespace (its fd stays with the switch) and gets an address.
      const macs: string[] = [];
      for (const [i, ns] of hosts.entries()) {
        await switchNs.ip('link', 'set', names[i]!, 'netns', ns.name);
        await ns.ip('addr', 'add', `10.98.0.${i + 1}/24`, 'dev', names[i]!);
        await ns.ip('link', 'set', names[i]!, 'up');
        macs.push((await ns.exec('cat', [`/sys/class/net/${names[i]}/address`])).trim());
      }
      for (const [from, to] of [
        [0, 2],
        [0, 3],
        [1, 3],
      ] as const) {
        const out = await hosts[from]!.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', `10.98.0.${to}`]);
        expect(out).toContain('2 packets transmitted, 2 received');
      }
      const output = await running.stop();
      const stats = statsOf<SwitchStats>(output);
      expect(stats.flooded).toBeGreaterThan(0); // ARP requests, IPv6 multicast
      expect(stats.forwarded).toBeGreaterThanOrEqual(12); // 3 × 2 echo requests and replies
      expect(stats).toMatchObject({ congested: 0, tooLarge: 0 });
      const fdb = JSON.parse(/^fdb (.*)$/m.exec(output)![1]!) as Record<string, number>;
      macs.forEach((mac, port) => expect(fdb[mac]).toBe(port));
    },
    60_000,
  );
});
