/**
 * UDP links (openUdpLink): a TapDevice whose wire is one UDP peer. The socket tests need no
 * privileges; the overlay tests join two tap devices in two namespaces through two links on the
 * loopback, as an overlay's two ends would, against the real kernel.
 */
import { createSocket } from 'node:dgram';
import { TapErrorCode, type TapDevice } from '@tapkit/core';
import { describe, expect, it } from 'vitest';
import { linuxTap, openUdpLink, UDP_LINK_BACKEND, type UdpLink, type UdpLinkOptions } from '../src/index.js';
import {
  expectTapError,
  fdCount,
  forwarded,
  itPrivileged,
  onCleanup,
  pingAndFetchAcross,
  run,
  uniqueName,
  useCleanup,
  waitFor,
} from './helpers.js';
import { JOINS } from './responder.js';

useCleanup();

const LOOPBACK = '127.0.0.1';

async function link(options: UdpLinkOptions): Promise<UdpLink> {
  const opened = await openUdpLink(options);
  onCleanup(() => opened.close());
  return opened;
}

/** A port nobody is bound to (bound once, then let go). */
async function freePort(address = LOOPBACK): Promise<number> {
  const socket = createSocket(address.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/** Two links to each other on the loopback. */
async function linkPair(address = LOOPBACK): Promise<[UdpLink, UdpLink]> {
  const [portA, portB] = [await freePort(address), await freePort(address)];
  return [
    await link({ local: { address, port: portA }, remote: { address, port: portB } }),
    await link({ local: { address, port: portB }, remote: { address, port: portA } }),
  ];
}

function frame(length: number, fill: number): Buffer {
  const bytes = Buffer.alloc(length, fill);
  bytes.writeUInt16BE(0x88b5, 12); // the local experimental EtherType
  return bytes;
}

describe('UDP link', () => {
  for (const address of [LOOPBACK, '::1']) {
    it(`carries frames both ways, one datagram each, whole and in order (${address})`, async () => {
      const [a, b] = await linkPair(address);
      expect(a.backend).toBe(UDP_LINK_BACKEND);
      expect(a.name).toBe(address === '::1' ? `udp:[::1]:${a.local.port}` : `udp:${address}:${a.local.port}`);
      expect(a.remote).toEqual({ address, port: b.local.port });
      expect(a.capabilities).toMatchObject({ layer: 2, osInterface: false, offload: false });
      expect(a.mac.length).toBe(0);

      const sent = [frame(14, 1), frame(60, 2), frame(1514, 3), frame(1518, 4)];
      sent[3]!.writeUInt16BE(0x8100, 12); // a VLAN-tagged frame may be 4 bytes longer
      expect(a.writeBatch(sent)).toBe(true);
      const received: Buffer[] = [];
      for await (const batch of b.batches({ signal: AbortSignal.timeout(5000) })) {
        received.push(...batch);
        if (received.length === sent.length) break;
      }
      expect(received.map((f) => Buffer.from(f).toString('hex'))).toEqual(sent.map((f) => f.toString('hex')));

      b.write(frame(100, 9));
      expect(Buffer.from(await a.read({ signal: AbortSignal.timeout(5000) })).equals(frame(100, 9))).toBe(
        true,
      );
      expect(a.stats()).toMatchObject({
        txFrames: 4,
        txBytes: 14 + 60 + 1514 + 1518,
        rxFrames: 1,
        rxBytes: 100,
      });
      expect(b.stats()).toMatchObject({ rxFrames: 4, txFrames: 1 });
    });
  }

  it('binds a free port for port 0 and reports it', async () => {
    const peer = await freePort();
    const a = await link({ local: { address: LOOPBACK }, remote: { address: LOOPBACK, port: peer } });
    expect(a.local.port).toBeGreaterThan(0);
    const b = await link({ local: { address: LOOPBACK, port: peer }, remote: a.local });
    b.write(frame(64, 5));
    expect((await a.read({ signal: AbortSignal.timeout(5000) })).length).toBe(64);
  });

  it('goes on when the peer refuses datagrams (nobody listening yet), and takes its first one after', async () => {
    const peerPort = await freePort();
    const a = await link({ local: { address: LOOPBACK }, remote: { address: LOOPBACK, port: peerPort } });
    // Each refused datagram comes back as ICMP port unreachable: the socket's pending error,
    // reported on the next call and as POLLERR to the poll reading it.
    for (let i = 0; i < 5; i++) {
      expect(a.write(frame(64, i))).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(a.closed).toBe(false);
    const b = await link({ local: { address: LOOPBACK, port: peerPort }, remote: a.local });
    b.write(frame(80, 7));
    expect((await a.read({ signal: AbortSignal.timeout(5000) })).length).toBe(80);
    a.write(frame(90, 8));
    expect((await b.read({ signal: AbortSignal.timeout(5000) })).length).toBe(90);
    expect(a.stats().drops).toEqual({});
  });

  // ICMP destination unreachable, code 13 (communication administratively prohibited: a
  // firewall's REJECT) about a datagram from 127.0.0.1:argv[1] to 127.0.0.1:argv[2], sent on a
  // raw socket: the kernel reports it to that connected socket as EHOSTUNREACH, once.
  const ICMP_PROHIBITED = `
import socket, struct, sys
def checksum(b):
    total = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    total = (total >> 16) + (total & 0xffff)
    return ~(total + (total >> 16)) & 0xffff
lo = socket.inet_aton('127.0.0.1')
inner = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 28, 0, 0, 64, 17, 0, lo, lo)
inner += struct.pack('!HHHH', int(sys.argv[1]), int(sys.argv[2]), 8, 0)
icmp = struct.pack('!BBHI', 3, 13, 0, 0) + inner
icmp = icmp[:2] + struct.pack('!H', checksum(icmp)) + icmp[4:]
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).sendto(icmp, ('127.0.0.1', 0))
`;

  itPrivileged('goes on when ICMP says the way to the peer is prohibited (EHOSTUNREACH)', async () => {
    const [a, b] = await linkPair();
    for (let i = 0; i < 3; i++) {
      await run('python3', ['-c', ICMP_PROHIBITED, String(a.local.port), String(b.local.port)]);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(a.closed).toBe(false);
    b.write(frame(70, 3));
    expect((await a.read({ signal: AbortSignal.timeout(5000) })).length).toBe(70);
    a.write(frame(72, 4));
    expect((await b.read({ signal: AbortSignal.timeout(5000) })).length).toBe(72);
  });

  it('does not receive datagrams from anyone but its peer', async () => {
    const [a, b] = await linkPair();
    const stranger = createSocket('udp4');
    onCleanup(() => {
      stranger.close();
    });
    await new Promise<void>((resolve) => stranger.bind(0, LOOPBACK, resolve));
    await new Promise<void>((resolve, reject) =>
      stranger.send(frame(70, 1), a.local.port, LOOPBACK, (error) => (error ? reject(error) : resolve())),
    );
    b.write(frame(71, 2));
    expect((await a.read({ signal: AbortSignal.timeout(5000) })).length).toBe(71);
    expect(a.stats().rxFrames).toBe(1);
  });

  it('refuses bad options with coded errors, before taking a socket', async () => {
    const fds = fdCount();
    const remote = { address: LOOPBACK, port: 9 };
    const local = { address: LOOPBACK };
    const bad: [unknown, string][] = [
      [undefined, TapErrorCode.INVALID_OPTION],
      [{ remote }, TapErrorCode.INVALID_OPTION],
      [{ local }, TapErrorCode.INVALID_OPTION],
      [{ local: { address: 'localhost' }, remote }, TapErrorCode.INVALID_OPTION],
      [{ local, remote: { address: LOOPBACK, port: 0 } }, TapErrorCode.INVALID_OPTION],
      [{ local: { address: LOOPBACK, port: 70_000 }, remote }, TapErrorCode.INVALID_OPTION],
      [{ local: { address: '::1' }, remote }, TapErrorCode.INVALID_OPTION],
      [{ local, remote, mtu: 65_490 }, TapErrorCode.MTU_UNSUPPORTED],
      [{ local, remote, name: 'x' }, TapErrorCode.UNSUPPORTED_OPTION],
      [{ local, remote, signal: AbortSignal.abort() }, TapErrorCode.ABORTED],
    ];
    for (const [options, code] of bad) {
      const error = await expectTapError(() => openUdpLink(options as UdpLinkOptions), code);
      expect(error.message, code).not.toBe('');
    }
    expect(fdCount()).toBe(fds);
  });

  it('says BUSY for a local port in use and INVALID_OPTION for an address not of this host', async () => {
    const [a] = await linkPair();
    const remote = { address: LOOPBACK, port: 9 };
    await expectTapError(() => openUdpLink({ local: a.local, remote }), TapErrorCode.BUSY);
    await expectTapError(
      () => openUdpLink({ local: { address: '192.0.2.1' }, remote }),
      TapErrorCode.INVALID_OPTION,
    );
  });

  it('refuses interface changes and frames it cannot carry with coded errors, and goes on', async () => {
    const [a, b] = await linkPair();
    await expectTapError(() => a.setMtu(1400), TapErrorCode.UNSUPPORTED_OPERATION);
    await expectTapError(() => a.setUp(false), TapErrorCode.UNSUPPORTED_OPERATION);
    await expectTapError(() => a.addAddress('10.0.0.1/24'), TapErrorCode.UNSUPPORTED_OPERATION);
    await expectTapError(() => a.write(frame(1515, 1)), TapErrorCode.FRAME_TOO_LARGE);
    await expectTapError(() => a.write(Buffer.alloc(13)), TapErrorCode.FRAME_TOO_SHORT);
    a.write(frame(64, 2));
    expect((await b.read({ signal: AbortSignal.timeout(5000) })).length).toBe(64);
  });

  it('carries frames of a larger MTU whole', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const mtu = 9000;
    const a = await link({
      local: { address: LOOPBACK, port: portA },
      remote: { address: LOOPBACK, port: portB },
      mtu,
    });
    const b = await link({
      local: { address: LOOPBACK, port: portB },
      remote: { address: LOOPBACK, port: portA },
      mtu,
    });
    a.write(frame(9014, 6));
    expect(Buffer.from(await b.read({ signal: AbortSignal.timeout(5000) })).equals(frame(9014, 6))).toBe(
      true,
    );
  });

  it('pipes link to link in native code, and closing frees every fd', async () => {
    const fds = fdCount();
    for (let round = 0; round < 20; round++) {
      const [a, b] = await linkPair();
      const [c, d] = await linkPair();
      const piping = b.pipeTo(c); // a → b ⇒ c → d
      a.writeBatch([frame(100, round), frame(200, round)]);
      const got = await d.readBatch(2, { signal: AbortSignal.timeout(5000) });
      const rest = got.length < 2 ? await d.readBatch(1, { signal: AbortSignal.timeout(5000) }) : [];
      expect([...got, ...rest].map((f) => f.length)).toEqual([100, 200]);
      await Promise.all([a.close(), b.close(), c.close(), d.close()]);
      await piping;
    }
    expect(fdCount()).toBe(fds);
  });
});

describe('UDP link overlay (root)', () => {
  async function tap(): Promise<TapDevice> {
    const device = await linuxTap.open({ name: uniqueName() });
    onCleanup(() => device.close());
    return device;
  }

  // An overlay end: a tap device and a UDP link joined both ways.
  for (const [how, join] of Object.entries(JOINS)) {
    itPrivileged(
      `joins two namespaces' tap devices over UDP: ping and TCP cross, every frame counted (${how})`,
      async () => {
        const [tapA, tapB] = [await tap(), await tap()];
        const [linkA, linkB] = await linkPair();
        join(tapA, linkA);
        join(tapB, linkB);
        const bytes = await pingAndFetchAcross(tapA, tapB, '10.200.12', 5002, `overlay (${how})`);
        // Each frame an end read went out of the other side of it (what the loopback itself may
        // lose under load is UDP's, counted by the kernel: not asserted here).
        await waitFor(
          () =>
            forwarded(tapA, linkA) &&
            forwarded(linkA, tapA) &&
            forwarded(tapB, linkB) &&
            forwarded(linkB, tapB),
          5000,
          () => JSON.stringify([tapA.stats(), linkA.stats(), linkB.stats(), tapB.stats()]),
        );
        expect(tapA.stats().rxBytes + tapB.stats().rxBytes).toBeGreaterThan(bytes);
      },
      60_000,
    );
  }
});
