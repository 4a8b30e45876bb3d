import { describe, expect, it, vi } from 'vitest';
import {
  ArpOp,
  buildArpRequestFrame,
  buildIcmpEchoFrame,
  buildNeighborSolicitationFrame,
  buildUdpFrame,
  decodeFrame,
  formatIPv6Address,
  formatMac,
  Icmpv6Type,
  parseIPv4Address,
  parseIPv6Address,
  verifyIcmpChecksum,
  verifyIcmpv6Checksum,
  verifyIPv4Checksum,
  type DecodedLayers,
  type Frame,
} from '@tapkit/core';
import { createMockNetwork } from '../src/index.js';
import { me, received } from './helpers.js';

const ME4 = parseIPv4Address('10.0.0.1');
const HOST4 = parseIPv4Address('10.0.0.2');
const ME6 = parseIPv6Address('fd00::1');
const HOST6 = parseIPv6Address('fd00::2');
const UNSPECIFIED = new Uint8Array(16);
const PAYLOAD = new TextEncoder().encode('tapkit ping payload');

function decode(frame: Frame): DecodedLayers {
  const d = decodeFrame(frame);
  if (d.eth === undefined || d.error) throw d.error ?? new Error('undecodable frame');
  return d;
}

async function setup() {
  const net = createMockNetwork();
  const host = net.addHost({ ipv4: '10.0.0.2/24', ipv6: 'fd00::2/64', name: 'h1' });
  const dev = await net.open({ mac: '02:00:00:00:00:01' });
  return { net, host, dev };
}

describe('virtual hosts', () => {
  it('answer ARP, then ICMP echo, like a real IPv4 stack', async () => {
    const { net, host, dev } = await setup();
    expect([host.name, host.ipv4, host.ipv6]).toEqual(['h1', '10.0.0.2', 'fd00::2']);

    dev.write(buildArpRequestFrame({ srcMac: me(dev), srcIp: ME4, targetIp: HOST4 }));
    const [arpFrame, ...more] = await received(dev);
    expect(more).toEqual([]);
    const arp = decode(arpFrame!);
    expect(formatMac(arp.eth.dst)).toBe(formatMac(me(dev))); // unicast to the asker
    expect(formatMac(arp.eth.src)).toBe(formatMac(host.mac));
    expect(arp.arp).toMatchObject({ op: ArpOp.Reply });
    expect(formatMac(arp.arp!.senderMac)).toBe(formatMac(host.mac));
    expect([...arp.arp!.senderIp]).toEqual([...HOST4]);
    expect(formatMac(arp.arp!.targetMac)).toBe(formatMac(me(dev)));
    expect([...arp.arp!.targetIp]).toEqual([...ME4]);

    const ping = (sequence: number) =>
      buildIcmpEchoFrame({
        srcMac: me(dev),
        dstMac: arp.arp!.senderMac,
        src: ME4,
        dst: HOST4,
        ttl: 7,
        type: 'request',
        identifier: 0x1234,
        sequence,
        data: PAYLOAD,
      });
    dev.write(ping(1));
    dev.write(ping(2));
    const replies = (await received(dev)).map(decode);
    expect(replies).toHaveLength(2);
    replies.forEach((r, i) => {
      expect(r.ipv4).toMatchObject({ ttl: 64, protocol: 1 });
      expect([...r.ipv4!.src, ...r.ipv4!.dst]).toEqual([...HOST4, ...ME4]);
      expect(verifyIPv4Checksum(r.eth.payload)).toBe(true);
      expect(verifyIcmpChecksum(r.ipv4!.payload)).toBe(true);
      expect(r.icmpEcho).toMatchObject({ type: 0, code: 0, identifier: 0x1234, sequence: i + 1 });
      expect(Buffer.from(r.icmpEcho!.data).toString()).toBe('tapkit ping payload');
    });
    expect(host.stats()).toEqual({
      received: 3,
      arpReplies: 1,
      ndpAdvertisements: 0,
      echoReplies: 2,
      ignored: 0,
    });
    await net.close();
  });

  it('answer neighbour solicitations and ICMPv6 echo, for their address and their link-local one', async () => {
    const { net, host, dev } = await setup();
    dev.write(buildNeighborSolicitationFrame({ srcMac: me(dev), src: ME6, target: HOST6 }));
    const [naFrame] = await received(dev);
    const na = decode(naFrame!);
    expect(formatMac(na.eth.dst)).toBe(formatMac(me(dev)));
    expect(na.ipv6).toMatchObject({ hopLimit: 255 });
    expect(formatIPv6Address(na.ipv6!.src)).toBe('fd00::2');
    expect(formatIPv6Address(na.ipv6!.dst)).toBe('fd00::1');
    expect(verifyIcmpv6Checksum(na.ipv6!.payload, na.ipv6!.src, na.ipv6!.dst)).toBe(true);
    expect(na.neighborAdvertisement).toMatchObject({ solicited: true, override: true, router: false });
    expect(formatIPv6Address(na.neighborAdvertisement!.target)).toBe('fd00::2');
    expect(formatMac(na.neighborAdvertisement!.targetLinkLayer!)).toBe(formatMac(host.mac));

    // The link-local address comes from the MAC (modified EUI-64).
    const mac = formatMac(host.mac).split(':');
    const flipped = (parseInt(mac[0]!, 16) ^ 2).toString(16);
    expect(host.linkLocal).toBe(
      formatIPv6Address(
        parseIPv6Address(`fe80::${flipped}${mac[1]}:${mac[2]}ff:fe${mac[3]}:${mac[4]}${mac[5]}`),
      ),
    );
    const linkLocal = parseIPv6Address(host.linkLocal);
    const myLinkLocal = parseIPv6Address('fe80::1');
    dev.write(buildNeighborSolicitationFrame({ srcMac: me(dev), src: myLinkLocal, target: linkLocal }));
    const [llFrame] = await received(dev);
    expect(formatIPv6Address(decode(llFrame!).neighborAdvertisement!.target)).toBe(host.linkLocal);

    for (const [src, dst] of [
      [ME6, HOST6],
      [myLinkLocal, linkLocal],
    ] as const) {
      dev.write(
        buildIcmpEchoFrame({
          srcMac: me(dev),
          dstMac: naFrame!.subarray(6, 12),
          src,
          dst,
          type: 'request',
          identifier: 9,
          sequence: 3,
          data: PAYLOAD,
        }),
      );
      const [replyFrame] = await received(dev);
      const reply = decode(replyFrame!);
      expect(reply.ipv6).toMatchObject({ hopLimit: 64 });
      expect([...reply.ipv6!.src]).toEqual([...dst]);
      expect([...reply.ipv6!.dst]).toEqual([...src]);
      expect(verifyIcmpv6Checksum(reply.ipv6!.payload, reply.ipv6!.src, reply.ipv6!.dst)).toBe(true);
      expect(reply.icmpv6Echo).toMatchObject({ type: Icmpv6Type.EchoReply, identifier: 9, sequence: 3 });
      expect(Buffer.from(reply.icmpv6Echo!.data).toString()).toBe('tapkit ping payload');
    }
    expect(host.stats()).toMatchObject({ ndpAdvertisements: 2, echoReplies: 2, ignored: 0 });
    await net.close();
  });

  it('answer duplicate address detection to all nodes, unsolicited (RFC 4861 §7.2.4)', async () => {
    const { net, host, dev } = await setup();
    dev.write(buildNeighborSolicitationFrame({ srcMac: me(dev), src: UNSPECIFIED, target: HOST6 }));
    const [frame] = await received(dev);
    const na = decode(frame!);
    expect(formatMac(na.eth.dst)).toBe('33:33:00:00:00:01');
    expect(formatIPv6Address(na.ipv6!.dst)).toBe('ff02::1');
    expect(formatIPv6Address(na.ipv6!.src)).toBe('fd00::2');
    expect(na.neighborAdvertisement).toMatchObject({ solicited: false, override: true });
    expect(formatMac(na.neighborAdvertisement!.targetLinkLayer!)).toBe(formatMac(host.mac));
    await net.close();
  });

  it('ignore what is not for them: other MACs and IPs, ARP probes and announcements, bad checksums', async () => {
    const { net, host, dev } = await setup();
    const other4 = parseIPv4Address('10.0.0.3');
    const hostMac = host.mac;
    const ignored: Frame[] = [
      // ARP for another address, an RFC 5227 probe (sender 0.0.0.0), a gratuitous request.
      buildArpRequestFrame({ srcMac: me(dev), srcIp: ME4, targetIp: other4 }),
      buildArpRequestFrame({ srcMac: me(dev), srcIp: new Uint8Array(4), targetIp: HOST4 }),
      buildArpRequestFrame({ srcMac: me(dev), srcIp: HOST4, targetIp: HOST4 }),
      // A ping to the host's IP but another MAC, one to another IP, a UDP datagram.
      buildIcmpEchoFrame({
        srcMac: me(dev),
        dstMac: '02:00:00:00:00:77',
        src: ME4,
        dst: HOST4,
        type: 'request',
        identifier: 1,
        sequence: 1,
        data: PAYLOAD,
      }),
      buildIcmpEchoFrame({
        srcMac: me(dev),
        dstMac: hostMac,
        src: ME4,
        dst: other4,
        type: 'request',
        identifier: 1,
        sequence: 1,
        data: PAYLOAD,
      }),
      buildUdpFrame({
        srcMac: me(dev),
        dstMac: hostMac,
        src: ME4,
        dst: HOST4,
        srcPort: 1,
        dstPort: 2,
        payload: PAYLOAD,
      }),
      // NS for another target, NS with a forwarded hop limit, DAD NS sent to the wrong group.
      buildNeighborSolicitationFrame({ srcMac: me(dev), src: ME6, target: parseIPv6Address('fd00::3') }),
      withHopLimit(buildNeighborSolicitationFrame({ srcMac: me(dev), src: ME6, target: HOST6 }), 254),
      buildNeighborSolicitationFrame({
        srcMac: me(dev),
        src: UNSPECIFIED,
        target: HOST6,
        dst: parseIPv6Address('ff02::1'),
      }),
      // A tagged ARP request (the host sits on an untagged port).
      buildArpRequestFrame({
        srcMac: me(dev),
        srcIp: ME4,
        targetIp: HOST4,
        vlan: { pcp: 0, dei: false, vid: 5 },
      }),
    ];
    const badChecksum = buildIcmpEchoFrame({
      srcMac: me(dev),
      dstMac: hostMac,
      src: ME4,
      dst: HOST4,
      type: 'request',
      identifier: 1,
      sequence: 1,
      data: PAYLOAD,
    });
    badChecksum[badChecksum.length - 1]! ^= 0xff;
    const truncated = buildArpRequestFrame({ srcMac: me(dev), srcIp: ME4, targetIp: HOST4 }).subarray(0, 30);
    for (const frame of [...ignored, badChecksum, truncated]) dev.write(frame);
    expect(await received(dev)).toEqual([]);
    expect(host.stats()).toEqual({
      received: 12,
      arpReplies: 0,
      ndpAdvertisements: 0,
      echoReplies: 0,
      ignored: 12,
    });
    // (The frame to 02:00:00:00:00:77 was flooded, so the host saw it; the tagged one too.)
    await net.close();
  });

  it('originate frames with send() and leave with detach()', async () => {
    const { net, host, dev } = await setup();
    const frame = buildUdpFrame({
      srcMac: host.mac,
      dstMac: me(dev),
      src: HOST4,
      dst: ME4,
      srcPort: 7,
      dstPort: 7,
      payload: PAYLOAD,
    });
    host.send(frame);
    frame.fill(0);
    const [got] = await received(dev);
    expect(decode(got!).udp).toMatchObject({ srcPort: 7, dstPort: 7 });
    expect(net.fdb()).toContainEqual({ mac: formatMac(host.mac), port: 'h1' });
    host.detach();
    host.detach();
    expect(host.attached).toBe(false);
    expect(net.fdb()).toEqual([]);
    expect(net.ports().map((p) => p.name)).toEqual([dev.name, `${dev.name}:os`]);
    dev.write(buildArpRequestFrame({ srcMac: me(dev), srcIp: ME4, targetIp: HOST4 }));
    expect(await received(dev)).toEqual([]);
    await net.close();
  });

  it('answer after responseDelayMs, and drop pending answers when detached', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const net = createMockNetwork();
      const slow = net.addHost({ ipv4: '10.0.0.2', responseDelayMs: 50 });
      const dev = await net.open();
      dev.write(buildArpRequestFrame({ srcMac: me(dev), srcIp: ME4, targetIp: HOST4 }));
      expect(await received(dev)).toEqual([]);
      await vi.advanceTimersByTimeAsync(49);
      expect(await received(dev)).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect((await received(dev)).map((f) => decode(f).arp?.op)).toEqual([ArpOp.Reply]);

      dev.write(buildArpRequestFrame({ srcMac: me(dev), srcIp: ME4, targetIp: HOST4 }));
      await received(dev);
      expect(vi.getTimerCount()).toBe(1);
      slow.detach();
      expect(vi.getTimerCount()).toBe(0);
      await net.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it("reach a device's OS station at device.mac, which holds the device's addresses and leaves with it", async () => {
    const net = createMockNetwork();
    const host = net.addHost({ ipv4: '10.0.0.2/24', ipv6: 'fd00::2/64' });
    const dev = await net.open({ name: 'tap0', addresses: ['10.0.0.1/24', 'fd00::1/64', '10.0.1.1/24'] });
    for (const address of ['10.0.0.1', 'fd00::1', '10.0.1.1']) {
      const reply = await host.ping(address);
      expect(reply).toMatchObject({ from: address, mac: Buffer.from(dev.mac), ttl: 64 });
    }
    expect(net.ports().find((p) => p.name === 'tap0:os')).toMatchObject({
      kind: 'station',
      mac: formatMac(dev.mac),
    });
    await dev.close();
    expect(net.ports().map((p) => p.name)).toEqual([host.name]);
    await expect(host.ping('10.0.0.1', { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ERR_TAP_ABORTED' });
    await net.close();
  });

  it('draw reproducible MACs from the seed, unique on the network', () => {
    const macs = (seed: number) => {
      const net = createMockNetwork({ seed });
      return Array.from({ length: 5 }, () => formatMac(net.addHost().mac));
    };
    expect(macs(7)).toEqual(macs(7));
    expect(macs(7)).not.toEqual(macs(8));
    expect(new Set(macs(7)).size).toBe(5);
    for (const mac of macs(7)) expect(parseInt(mac.slice(0, 2), 16) & 0x03).toBe(0x02); // local, unicast
  });
});

/** Changes an IPv6 frame's hop limit (no checksum covers it). */
function withHopLimit(frame: Uint8Array, hopLimit: number): Uint8Array {
  frame[14 + 7] = hopLimit;
  return frame;
}
