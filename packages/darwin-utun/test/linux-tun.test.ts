/**
 * The shim against the real Linux kernel, over TUN devices (IFF_TUN|IFF_NO_PI, from linux-tap)
 * in network namespaces made for the test: what a utun is to macOS, a TUN is to Linux — an
 * interface that hands the program bare IP packets.
 *
 * - The kernel pings an address behind the shim; the program behind it speaks only Ethernet
 *   (ARP, neighbour discovery, ICMP echo, built with core's codecs) and answers.
 * - The same over IPv6, and to a link-local address.
 * - TCP crosses two shims: two TUNs in two namespaces, Ethernet frames relayed between the
 *   two TapDevices by the test, curl in one namespace against an HTTP server in the other.
 *
 * Needs root; see privileged.ts.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTapDevice, formatIPv6Address, randomMac, type TapDevice } from '@tapkit/core';
import { openLinuxTunPort } from '@tapkit/linux-tap';
import { beforeAll, describe, expect } from 'vitest';
import { createL2Shim, type L2Shim } from '../src/index.js';
import { hex, ip4, ip6 } from './helpers.js';
import { EthernetHost } from './host.js';
import {
  PRIVILEGE_PROBLEM,
  PrivilegedContext,
  itPrivileged,
  run,
  sweepStaleNamespaces,
  waitFor,
  type Netns,
} from './privileged.js';

const context = new PrivilegedContext();

beforeAll(async () => {
  if (PRIVILEGE_PROBLEM === undefined) await sweepStaleNamespaces();
});

/**
 * A TUN in `ns` with the kernel's `addresses`, the shim on it, and the shim as a TapDevice.
 * The TUN is created here and moved in: its fd stays ours.
 */
async function shimInNamespace(
  ns: Netns,
  addresses: string[],
): Promise<{ dev: TapDevice; shim: L2Shim; tun: string }> {
  const tun = await openLinuxTunPort({ name: context.interfaceName(), up: false });
  context.onCleanup(() => tun.close());
  const shim = createL2Shim(tun, { mac: randomMac(), addresses });
  const dev = createTapDevice(shim, { backend: 'l2-shim-test' });
  context.onCleanup(() => dev.close());
  await run('ip', ['link', 'set', 'dev', tun.name, 'netns', ns.name]);
  for (const cidr of addresses) {
    await ns.ip('addr', 'add', cidr, 'dev', tun.name, ...(cidr.includes(':') ? ['nodad'] : []));
  }
  await ns.ip('link', 'set', 'dev', tun.name, 'up');
  return { dev, shim, tun: tun.name };
}

describe('the kernel pings a host behind the shim', () => {
  itPrivileged('over IPv4: the host resolves the kernel with ARP, the shim answers', async () => {
    const ns = await context.netns();
    const { dev } = await shimInNamespace(ns, ['10.201.0.1/24']);
    const host = new EthernetHost(dev, { ipv4: ip4('10.201.0.2') });
    const out = await ns.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.201.0.2']);
    expect(out).toMatch(/3 received/);
    expect(host.stats.echoRequestsAnswered).toBe(3);
    expect(host.stats).toMatchObject({ arpRequestsSent: 1, arpRepliesSeen: 1 });
    expect([...host.stats.answeredBy]).toEqual([hex(dev.mac)]);
    // And the other way: the host pings the kernel.
    await host.ping(ip4('10.201.0.1'), ip4('10.201.0.2'), 1);
    expect(dev.stats().drops).toEqual({});
    host.stop();
  });

  itPrivileged('over IPv6: neighbour discovery, DAD, and a link-local address', async () => {
    const ns = await context.netns();
    const { dev, shim, tun } = await shimInNamespace(ns, ['fd00:201::1/64']);
    const user = ip6('fd00:201::2');
    const host = new EthernetHost(dev, { ipv6: [user] });
    // The host's duplicate address detection goes unanswered: its addresses are its own.
    expect(await host.detectDuplicate(user)).toBe(true);
    expect(await host.detectDuplicate(host.linkLocal)).toBe(true);
    // The kernel's own address is defended.
    expect(await host.detectDuplicate(ip6('fd00:201::1'))).toBe(false);
    const out = await ns.exec('ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', 'fd00:201::2']);
    expect(out).toMatch(/3 received/);
    expect(host.stats.solicitationsSent).toBe(1);
    expect([...host.stats.answeredBy]).toEqual([hex(dev.mac)]);
    // Link-local: the kernel pings the host's fe80:: address through the TUN; the host finds
    // the kernel's own link-local address (learned by the shim) with neighbour discovery.
    const linkLocal = `${formatIPv6Address(host.linkLocal)}%${tun}`;
    const ll = await ns.exec('ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', linkLocal]);
    expect(ll).toMatch(/2 received/);
    const kernelLinkLocal = shim.learnedAddresses();
    expect(kernelLinkLocal).toHaveLength(1);
    expect(await host.detectDuplicate(ip6(kernelLinkLocal[0]!))).toBe(false); // defended, as its own
    await host.ping(ip6(kernelLinkLocal[0]!), host.linkLocal, 7);
    host.stop();
  });

  itPrivileged('drops what the kernel cannot be given, and counts it', async () => {
    const ns = await context.netns();
    const { dev } = await shimInNamespace(ns, ['10.201.1.1/24']);
    const frame = new Uint8Array(60);
    frame.set(dev.mac, 0);
    frame.set(randomMac(), 6);
    frame[12] = 0x88; // local experimental EtherType
    frame[13] = 0xb5;
    dev.write(frame);
    frame.set(randomMac(), 0);
    dev.write(frame);
    expect(dev.stats().drops).toEqual({ nonIp: 1, unknownMac: 1 });
  });
});

// An HTTP server: GET / sends `size` deterministic bytes, POST answers the SHA-256 of the body.
const SERVER = `
const http = require('node:http');
const crypto = require('node:crypto');
const size = Number(process.argv.at(-1)); // node -e: argv is [node, ...args]
const body = Buffer.alloc(size);
for (let i = 0; i < size; i++) body[i] = (i * 7 + (i >> 8)) & 0xff;
const server = http.createServer((req, res) => {
  if (req.method === 'POST') {
    const hash = crypto.createHash('sha256');
    req.on('data', (chunk) => hash.update(chunk));
    req.on('end', () => res.end(hash.digest('hex')));
  } else {
    res.end(body);
  }
});
server.listen(8080, '::', () => console.log('listening'));
`;

describe('TCP across two shims', () => {
  itPrivileged(
    'curl in one namespace fetches and uploads through Ethernet frames the test relays',
    async () => {
      const [nsA, nsB] = [await context.netns(), await context.netns()];
      // Relayed unchanged: each shim learns that the other side's addresses are at the other's
      // device MAC (its OS side) from the frames it is given, as kernels on a wire would.
      const a = await shimInNamespace(nsA, ['10.202.0.1/24', 'fd00:202::1/64']);
      const b = await shimInNamespace(nsB, ['10.202.0.2/24', 'fd00:202::2/64']);
      relay(a.dev, b.dev);
      relay(b.dev, a.dev);

      const size = 2 * 1024 * 1024;
      const server = nsB.spawn(process.execPath, ['-e', SERVER, String(size)]);
      let output = '';
      server.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      server.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await waitFor(
        () => output.includes('listening'),
        10_000,
        () => `the server (${output})`,
      );

      const dir = mkdtempSync(join(tmpdir(), 'tapkit-utun-'));
      context.onCleanup(() => rmSync(dir, { recursive: true, force: true }));
      const expected = Buffer.alloc(size);
      for (let i = 0; i < size; i++) expected[i] = (i * 7 + (i >> 8)) & 0xff;
      const sha = createHash('sha256').update(expected).digest('hex');
      for (const url of ['http://10.202.0.2:8080/', 'http://[fd00:202::2]:8080/']) {
        const file = join(dir, 'download');
        await nsA.exec('curl', ['-sS', '-g', '--max-time', '30', '-o', file, url], 40_000);
        expect(createHash('sha256').update(readFileSync(file)).digest('hex'), url).toBe(sha);
      }
      const upload = join(dir, 'upload');
      writeFileSync(upload, expected.subarray(0, size / 2));
      const uploaded = createHash('sha256')
        .update(expected.subarray(0, size / 2))
        .digest('hex');
      const answer = await nsA.exec(
        'curl',
        ['-sS', '--max-time', '30', '--data-binary', `@${upload}`, 'http://10.202.0.2:8080/'],
        40_000,
      );
      expect(answer.trim()).toBe(uploaded);
      for (const dev of [a.dev, b.dev]) expect(dev.stats().drops).toEqual({});
    },
    90_000,
  );
});

/** Relays every frame `from` reads into `to`, minding backpressure, until either closes. */
function relay(from: TapDevice, to: TapDevice): void {
  void (async () => {
    try {
      for await (const batch of from.batches()) {
        if (to.closed) return;
        if (!to.writeBatch(batch)) await to.drain();
      }
    } catch {
      // a device closed under the relay: the test is over
    }
  })();
}
