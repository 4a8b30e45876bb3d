import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, itPrivileged, onCleanup, useCleanup, waitFor } from '@tapkit/test-support';
import {
  ArpOp,
  IcmpType,
  buildArpRequestFrame,
  buildIcmpEchoFrame,
  createMockNetwork,
  formatMac,
  parseIPv4Address,
} from 'tapkit';
import { describe, expect, it } from 'vitest';
import { readUntil, startExample, statsOf } from '../support.js';
import { innerMtu, startTunnel, type TunnelStats } from './tunnel.js';

/** The probe program's own MAC (probe.mac is its device's OS station). */
const ME = '02:70:72:6f:62:65';

useCleanup();

async function udpSocket(): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  onCleanup(() => {
    socket.close();
  });
  return socket;
}

describe('UDP tunnel (example)', () => {
  it('joins two mock LANs over real UDP: ARP and ping cross it, strangers do not', async () => {
    await using lanA = createMockNetwork({ seed: 1 });
    await using lanB = createMockNetwork({ seed: 2 });
    const host = lanB.addHost({ ipv4: '10.0.0.2/24' });
    await using probe = await lanA.open({ name: 'probe' });
    await using endA = await lanA.open({ name: 'endA' });
    await using endB = await lanB.open({ name: 'endB' });
    const [socketA, socketB, stranger] = [await udpSocket(), await udpSocket(), await udpSocket()];
    const a = startTunnel({
      device: endA,
      socket: socketA,
      peer: { address: '127.0.0.1', port: socketB.address().port },
    });
    const b = startTunnel({
      device: endB,
      socket: socketB,
      peer: { address: '127.0.0.1', port: socketA.address().port },
    });

    const self = parseIPv4Address('10.0.0.1');
    const target = parseIPv4Address('10.0.0.2');
    probe.write(buildArpRequestFrame({ srcMac: ME, srcIp: self, targetIp: target }));
    const reply = await readUntil(probe, (d) => d.arp?.op === ArpOp.Reply);
    expect(formatMac(reply.arp!.senderMac)).toBe(formatMac(host.mac));

    probe.write(
      buildIcmpEchoFrame({
        srcMac: ME,
        dstMac: host.mac,
        src: self,
        dst: target,
        type: 'request',
        identifier: 7,
        sequence: 1,
        data: new Uint8Array(32),
      }),
    );
    const echo = await readUntil(probe, (d) => d.icmpEcho?.type === IcmpType.EchoReply);
    expect(echo.icmpEcho).toMatchObject({ identifier: 7, sequence: 1 });

    // A datagram from anyone but the peer is ignored; one that is no frame is counted.
    stranger.send(Buffer.alloc(60), socketA.address().port, '127.0.0.1');
    socketB.send(Buffer.alloc(5), socketA.address().port, '127.0.0.1');
    await waitFor(() => a.stats.foreign === 1 && a.stats.malformed === 1, 2000, 'the stray datagrams');
    expect(a.stats).toMatchObject({ framesOut: 2, framesIn: 2, congested: 0, sendErrors: 0 });
    expect(b.stats).toMatchObject({ framesOut: 2, framesIn: 2, foreign: 0, malformed: 0 });

    await endA.close();
    await expect(a.done).resolves.toBeUndefined(); // closing the device ends the tunnel
    expect(innerMtu(1500)).toBe(1458);
  });

  for (const transport of ['link', 'dgram']) {
    itPrivileged(
      `joins two network namespaces: ping and TCP (HTTP, 2 MiB) across the tunnel (${transport})`,
      async () => {
        const a = await createNetns();
        const b = await createNetns();
        // The underlay: one veth link between the namespaces. The overlay (10.99.0.0/24) exists
        // only on the two taps, so its traffic can only have crossed the tunnel.
        await a.ip('link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1', 'netns', b.name);
        await a.ip('addr', 'add', '192.168.77.1/24', 'dev', 'u0');
        await b.ip('addr', 'add', '192.168.77.2/24', 'dev', 'u1');
        await a.ip('link', 'set', 'u0', 'up');
        await b.ip('link', 'set', 'u1', 'up');
        const endA = await startExample(a, 'udp-tunnel/main.ts', [
          ...['--listen', '192.168.77.1:4789', '--peer', '192.168.77.2:4789', '--address', '10.99.0.1/24'],
          ...['--name', 'tka0', '--transport', transport],
        ]);
        const endB = await startExample(b, 'udp-tunnel/main.ts', [
          ...['--listen', '192.168.77.2:4789', '--peer', '192.168.77.1:4789', '--address', '10.99.0.2/24'],
          ...['--name', 'tkb0', '--transport', transport],
        ]);
        expect(endA.output()).toMatch(new RegExp(`^ready tka0 \\(linux-tap, MTU 1458, ${transport}\\)`, 'm'));

        expect(await a.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.99.0.2'])).toContain(
          '3 packets transmitted, 3 received',
        );

        const dir = await mkdtemp(join(tmpdir(), 'tapkit-tunnel-'));
        onCleanup(() => rm(dir, { recursive: true, force: true }));
        const blob = Buffer.alloc(2 << 20);
        for (let i = 0; i < blob.length; i++) blob[i] = (i * 2654435761) >>> 24; // not all zeros
        await writeFile(join(dir, 'blob'), blob);
        b.spawn('python3', ['-m', 'http.server', '8099', '--bind', '10.99.0.2', '--directory', dir]);
        const url = 'http://10.99.0.2:8099/blob';
        await waitFor(
          () =>
            a.exec('curl', ['-sS', '-o', '/dev/null', '--max-time', '2', url]).then(
              () => true,
              () => false,
            ),
          10_000,
          'the HTTP server across the tunnel',
        );
        await a.exec('curl', ['-sS', '--max-time', '20', '-o', join(dir, 'copy'), url], 30_000);
        const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
        expect(sha(await readFile(join(dir, 'copy')))).toBe(sha(blob));

        const statsA = statsOf<TunnelStats>(await endA.stop());
        const statsB = statsOf<TunnelStats>(await endB.stop());
        expect(statsA.framesIn).toBeGreaterThan(1000); // the 2 MiB came this way
        expect(statsB.framesOut).toBeGreaterThan(1000);
        expect(statsA).toMatchObject({ foreign: 0, malformed: 0, sendErrors: 0 });
      },
      60_000,
    );
  }
});
