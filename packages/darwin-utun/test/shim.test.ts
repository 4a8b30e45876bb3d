/**
 * The shim against a packet port the test drives: every rule of the issue, one by one.
 */
import {
  ArpOp,
  EtherType,
  TapErrorCode,
  buildArpReplyFrame,
  buildArpRequestFrame,
  buildEthernet,
  buildIPv4,
  buildIPv6,
  buildIcmpEchoFrame,
  buildNeighborAdvertisementFrame,
  buildNeighborSolicitationFrame,
  buildUdpFrame,
  createTapDevice,
  decodeFrame,
  formatMac,
  parseMac,
  solicitedNodeMulticast,
  verifyIcmpv6Checksum,
  type Frame,
} from '@tapkit/core';
import { describe, expect, it } from 'vitest';
import {
  MAX_LEARNED_ADDRESSES,
  MAX_PENDING_REPLIES,
  ShimDrop,
  MAX_NEIGHBORS,
  createL2Shim,
  type L2ShimOptions,
} from '../src/index.js';
import { FakePacketPort, RecordingSink, hex, ip4, ip6, settle } from './helpers.js';

/** The user's program's MAC; the OS side (the shim, `device.mac`) is at OS_MAC. */
const MAC = parseMac('02:00:00:00:00:02');
const OS_MAC = parseMac('02:00:00:00:00:01');
const ADDRESSES = ['10.1.0.1/24', 'fd00:1::1/64'];
const USER4 = ip4('10.1.0.2');
const OS4 = ip4('10.1.0.1');
const USER6 = ip6('fd00:1::2');
const OS6 = ip6('fd00:1::1');

function setup(options: Partial<L2ShimOptions> & { headroom?: number; mtu?: number } = {}) {
  const { headroom, mtu, ...shimOptions } = options;
  const port = new FakePacketPort({ headroom, mtu });
  const shim = createL2Shim(port, { mac: OS_MAC, addresses: ADDRESSES, ...shimOptions });
  const sink = new RecordingSink();
  shim.start(sink);
  return { port, shim, sink, peer: shim.mac };
}

function arpRequest(senderIp: Uint8Array, targetIp: Uint8Array, dst?: Uint8Array): Frame {
  const frame = buildArpRequestFrame({ srcMac: MAC, srcIp: senderIp, targetIp });
  if (dst) frame.set(dst, 0);
  return frame;
}

function ipv4Frame(dstMac: Uint8Array, dst = OS4, src = USER4): Frame {
  return buildUdpFrame({
    srcMac: MAC,
    dstMac,
    src,
    dst,
    srcPort: 1,
    dstPort: 2,
    payload: Uint8Array.of(1, 2, 3),
  });
}

function ipv4Packet(dst: Uint8Array, src = OS4): Uint8Array {
  return buildIPv4({ src, dst, protocol: 17, payload: new Uint8Array(12) });
}

function ipv6Packet(dst: Uint8Array, src = OS6): Uint8Array {
  return buildIPv6({ src, dst, nextHeader: 17, payload: new Uint8Array(12) });
}

describe('device MAC and learning', () => {
  it('is the OS side: its frames come from it, and it is what the user addresses', async () => {
    const { shim, sink, port } = setup();
    expect(hex(shim.mac)).toBe(hex(OS_MAC));
    shim.write(ipv4Frame(OS_MAC));
    expect(port.written).toHaveLength(1);
    shim.write(ipv4Frame(MAC)); // the user's own MAC is not the OS's
    expect(port.written).toHaveLength(1);
    port.deliver(ipv4Packet(USER4));
    await settle();
    const [frame] = sink.take();
    expect(formatMac(frame!, 6)).toBe(formatMac(OS_MAC));
    expect(formatMac(frame!, 0)).toBe(formatMac(MAC));
  });

  it('sends to the MAC learned for each destination, else the last one written from, else broadcast', () => {
    const { shim, sink, port } = setup();
    port.deliver(ipv4Packet(USER4));
    const other = parseMac('02:00:00:00:00:77');
    const otherIp = ip4('10.1.0.77');
    shim.write(arpRequest(USER4, OS4)); // learns USER4 at MAC from the request
    const fromOther = ipv4Frame(OS_MAC, OS4, otherIp);
    fromOther.set(other, 6);
    shim.write(fromOther); // and 10.1.0.77 at `other`
    port.deliver(ipv4Packet(USER4), ipv4Packet(otherIp), ipv4Packet(ip4('10.1.0.99')), ipv6Packet(USER6));
    expect(sink.take().map((f) => formatMac(f, 0))).toEqual([
      'ff:ff:ff:ff:ff:ff', // nothing learned yet
      formatMac(MAC),
      formatMac(other),
      formatMac(other), // not learned: the last MAC written from
      formatMac(other),
    ]);
    expect(formatMac(shim.neighborMac('10.1.0.2')!)).toBe(formatMac(MAC));
    expect(formatMac(shim.neighborMac(otherIp)!)).toBe(formatMac(other));
    expect(shim.neighborMac('10.1.0.99')).toBeUndefined();
  });

  it('learns from neighbour solicitations, not from probes, and forgets the oldest beyond its bound', () => {
    const { shim } = setup();
    shim.write(buildNeighborSolicitationFrame({ srcMac: MAC, src: USER6, target: OS6 }));
    expect(formatMac(shim.neighborMac(USER6)!)).toBe(formatMac(MAC));
    shim.write(arpRequest(ip4('0.0.0.0'), ip4('10.1.0.5'))); // an ARP probe teaches nothing
    expect(shim.neighborMac('0.0.0.0')).toBeUndefined();
    for (let i = 0; i <= MAX_NEIGHBORS; i++) {
      shim.write(ipv4Frame(OS_MAC, OS4, ip4(`10.2.${i >> 8}.${i & 0xff}`)));
    }
    expect(shim.neighborMac(USER6)).toBeUndefined();
    expect(shim.neighborMac('10.2.0.0')).toBeUndefined();
    expect(shim.neighborMac('10.2.1.0')).toBeDefined();
  });

  it('refuses bad options before anything is started', () => {
    const port = new FakePacketPort();
    for (const options of [
      { mac: '01:00:00:00:00:01' },
      { mac: MAC, addresses: ['10.0.0.1'] },
      { mac: MAC, addresses: 'x' as unknown as string[] },
      { mac: MAC, addresses: [{ family: 4, address: new Uint8Array(16), prefixLength: 8 }] },
      { mac: MAC, onLink: 'some' as 'any' },
    ]) {
      expect(() => createL2Shim(port, options as L2ShimOptions)).toThrow(
        expect.objectContaining({ code: TapErrorCode.INVALID_OPTION }) as Error,
      );
    }
  });
});

describe('ARP', () => {
  it('answers a request for an on-link address with the peer MAC, asynchronously', async () => {
    const { shim, sink, port, peer } = setup();
    expect(shim.write(arpRequest(USER4, OS4))).toBe(true);
    expect(sink.frames).toHaveLength(0); // never inside write()
    await settle();
    const [reply] = sink.take();
    const d = decodeFrame(reply!);
    expect(formatMac(d.eth!.dst)).toBe(formatMac(MAC));
    expect(formatMac(d.eth!.src)).toBe(formatMac(peer));
    expect(d.arp).toMatchObject({ op: ArpOp.Reply });
    expect(hex(d.arp!.senderMac)).toBe(hex(peer));
    expect(hex(d.arp!.senderIp)).toBe(hex(OS4));
    expect(hex(d.arp!.targetMac)).toBe(hex(MAC));
    expect(hex(d.arp!.targetIp)).toBe(hex(USER4));
    expect(port.written).toHaveLength(0); // ARP never reaches the OS
  });

  it('answers for every on-link address but not off-link, network, broadcast or special ones', async () => {
    const { shim, sink } = setup();
    shim.write(arpRequest(USER4, ip4('10.1.0.77')));
    await settle();
    expect(sink.take()).toHaveLength(1);
    for (const target of ['10.2.0.1', '10.1.0.0', '10.1.0.255', '0.0.0.0', '224.0.0.1', '255.255.255.255']) {
      shim.write(arpRequest(USER4, ip4(target)));
    }
    await settle();
    expect(sink.take()).toHaveLength(0);
    expect(sink.drop(ShimDrop.ArpIgnored)).toBe(6);
  });

  it('ignores probes for the user’s own address and announcements; defends the OS’s address', async () => {
    const { shim, sink, peer } = setup();
    shim.write(arpRequest(ip4('0.0.0.0'), USER4)); // probe for a tentative address
    shim.write(arpRequest(USER4, USER4)); // announcement
    await settle();
    expect(sink.take()).toHaveLength(0);
    expect(sink.drop(ShimDrop.ArpIgnored)).toBe(2);
    shim.write(arpRequest(ip4('0.0.0.0'), OS4)); // probe for the OS's own: a conflict, say so
    await settle();
    const d = decodeFrame(sink.take()[0]!);
    expect(hex(d.arp!.senderMac)).toBe(hex(peer));
    expect(hex(d.arp!.targetIp)).toBe(hex(ip4('0.0.0.0')));
  });

  it('answers unicast requests to the peer, ignores replies and requests to other MACs', async () => {
    const { shim, sink, peer } = setup();
    shim.write(arpRequest(USER4, OS4, peer));
    await settle();
    expect(sink.take()).toHaveLength(1);
    shim.write(arpRequest(USER4, OS4, parseMac('02:99:99:99:99:99')));
    shim.write(buildArpReplyFrame({ srcMac: MAC, srcIp: USER4, dstMac: peer, dstIp: OS4 }));
    await settle();
    expect(sink.take()).toHaveLength(0);
    expect(sink.drop(ShimDrop.UnknownMac)).toBe(1);
    expect(sink.drop(ShimDrop.ArpIgnored)).toBe(1);
  });

  it("answers everything with onLink: 'any', and nothing without addresses", async () => {
    const any = setup({ onLink: 'any', addresses: [] });
    any.shim.write(arpRequest(USER4, ip4('192.0.2.9')));
    const none = setup({ addresses: [] });
    none.shim.write(arpRequest(USER4, ip4('192.0.2.9')));
    await settle();
    expect(any.sink.take()).toHaveLength(1);
    expect(none.sink.take()).toHaveLength(0);
  });

  it('counts malformed ARP', async () => {
    const { shim, sink } = setup();
    const truncated = arpRequest(USER4, OS4).subarray(0, 30);
    const ipv6Arp = arpRequest(USER4, OS4);
    ipv6Arp[16] = 0x86; // protocol type
    const multicastSender = arpRequest(USER4, OS4);
    multicastSender[22] = 0x01; // ARP sender MAC
    for (const frame of [truncated, ipv6Arp, multicastSender]) shim.write(frame);
    await settle();
    expect(sink.take()).toHaveLength(0);
    expect(sink.drop(ShimDrop.Malformed)).toBe(3);
  });
});

describe('neighbour discovery', () => {
  it('answers a solicitation for an on-link address: solicited, override, not a router', async () => {
    const { shim, sink, peer, port } = setup();
    shim.write(buildNeighborSolicitationFrame({ srcMac: MAC, src: USER6, target: OS6 }));
    await settle();
    const [frame] = sink.take();
    const d = decodeFrame(frame!);
    expect(formatMac(d.eth!.dst)).toBe(formatMac(MAC));
    expect(formatMac(d.eth!.src)).toBe(formatMac(peer));
    expect(hex(d.ipv6!.src)).toBe(hex(OS6));
    expect(hex(d.ipv6!.dst)).toBe(hex(USER6));
    expect(d.ipv6!.hopLimit).toBe(255);
    expect(verifyIcmpv6Checksum(d.ipv6!.payload, d.ipv6!.src, d.ipv6!.dst)).toBe(true);
    expect(d.neighborAdvertisement).toMatchObject({ router: false, solicited: true, override: true });
    expect(hex(d.neighborAdvertisement!.target)).toBe(hex(OS6));
    expect(hex(d.neighborAdvertisement!.targetLinkLayer!)).toBe(hex(peer));
    expect(port.written).toHaveLength(0);
  });

  it('answers for link-local addresses and unicast solicitations, not off-link ones', async () => {
    const { shim, sink, peer } = setup();
    const userLl = ip6('fe80::2');
    shim.write(buildNeighborSolicitationFrame({ srcMac: MAC, src: userLl, target: ip6('fe80::1') }));
    shim.write(
      buildNeighborSolicitationFrame({ srcMac: MAC, src: USER6, target: OS6, dst: OS6, dstMac: peer }),
    );
    shim.write(buildNeighborSolicitationFrame({ srcMac: MAC, src: USER6, target: ip6('fd00:2::1') }));
    shim.write(buildNeighborSolicitationFrame({ srcMac: MAC, src: USER6, target: USER6 })); // itself
    await settle();
    expect(sink.take()).toHaveLength(2);
    expect(sink.drop(ShimDrop.NdIgnored)).toBe(2);
  });

  it('leaves duplicate address detection for the user’s addresses unanswered', async () => {
    const { shim, sink } = setup();
    for (const target of [USER6, ip6('fe80::2'), ip6('fd00:1::99')]) {
      shim.write(buildNeighborSolicitationFrame({ srcMac: MAC, src: new Uint8Array(16), target }));
    }
    await settle();
    expect(sink.take()).toHaveLength(0);
    expect(sink.drop(ShimDrop.NdIgnored)).toBe(3);
  });

  it('defends the OS side’s own addresses against duplicate address detection', async () => {
    const { shim, sink, peer, port } = setup();
    shim.write(buildNeighborSolicitationFrame({ srcMac: MAC, src: new Uint8Array(16), target: OS6 }));
    // A link-local address the OS was seen using counts as its own too.
    const osLinkLocal = ip6('fe80::cafe');
    port.deliver(ipv6Packet(USER6, osLinkLocal));
    shim.write(buildNeighborSolicitationFrame({ srcMac: MAC, src: new Uint8Array(16), target: osLinkLocal }));
    await settle();
    const answers = sink.take().filter((f) => decodeFrame(f).neighborAdvertisement);
    expect(answers).toHaveLength(2);
    for (const frame of answers) {
      const d = decodeFrame(frame);
      expect(formatMac(d.eth!.dst)).toBe('33:33:00:00:00:01');
      expect(hex(d.ipv6!.dst)).toBe(hex(ip6('ff02::1')));
      expect(d.neighborAdvertisement).toMatchObject({ solicited: false, override: true, router: false });
      expect(hex(d.neighborAdvertisement!.targetLinkLayer!)).toBe(hex(peer));
    }
    expect(shim.learnedAddresses()).toEqual(['fe80::cafe']);
  });

  it('drops invalid solicitations (hop limit, checksum, DAD with a link-layer option, multicast target)', async () => {
    const { shim, sink } = setup();
    const hop = buildNeighborSolicitationFrame({ srcMac: MAC, src: USER6, target: OS6 });
    hop[14 + 7] = 64;
    const checksum = buildNeighborSolicitationFrame({ srcMac: MAC, src: USER6, target: OS6 });
    checksum[14 + 40 + 2] = checksum[14 + 40 + 2]! ^ 0xff;
    const dadWithOption = buildNeighborSolicitationFrame({ srcMac: MAC, src: USER6, target: OS6 });
    dadWithOption.fill(0, 14 + 8, 14 + 24); // src ::, but still carrying the option (checksum redone below)
    const multicast = buildNeighborSolicitationFrame({
      srcMac: MAC,
      src: USER6,
      target: ip6('ff02::1'),
      dst: solicitedNodeMulticast(ip6('ff02::1')),
    });
    for (const frame of [hop, checksum, fixChecksum(dadWithOption), multicast]) shim.write(frame);
    await settle();
    expect(sink.take()).toHaveLength(0);
    expect(sink.drop(ShimDrop.Malformed)).toBe(4);
  });

  it('absorbs advertisements and forwards other ICMPv6', async () => {
    const { shim, sink, port, peer } = setup();
    shim.write(
      buildNeighborAdvertisementFrame({
        srcMac: MAC,
        src: USER6,
        target: USER6,
        solicited: false,
        override: true,
      }),
    );
    const echo = buildIcmpEchoFrame({
      srcMac: MAC,
      dstMac: peer,
      src: USER6,
      dst: OS6,
      type: 'request',
      identifier: 1,
      sequence: 1,
      data: new Uint8Array(4),
    });
    shim.write(echo);
    await settle();
    expect(sink.drop(ShimDrop.NdIgnored)).toBe(1);
    expect(port.written.map(hex)).toEqual([hex(echo.subarray(14))]);
  });
});

/** Recomputes the ICMPv6 checksum of an ND frame after a test edited it. */
function fixChecksum(frame: Frame): Frame {
  const d = decodeFrame(frame);
  const icmp = d.ipv6!.payload;
  icmp[2] = 0;
  icmp[3] = 0;
  let sum = 0;
  const add = (b: Uint8Array) => {
    for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  };
  add(d.ipv6!.src);
  add(d.ipv6!.dst);
  sum += icmp.length + 58;
  add(icmp);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const value = ~sum & 0xffff;
  icmp[2] = value >> 8;
  icmp[3] = value & 0xff;
  return frame;
}

describe('outbound: frames to packets', () => {
  it('strips IPv4 and IPv6 frames to the peer, broadcast or multicast, trimming padding', () => {
    const { shim, port, peer } = setup();
    const unicast = ipv4Frame(peer);
    const padded = new Uint8Array(unicast.length + 10);
    padded.set(unicast);
    shim.write(padded);
    shim.write(ipv4Frame(parseMac('ff:ff:ff:ff:ff:ff'), ip4('10.1.0.255')));
    shim.write(ipv4Frame(parseMac('01:00:5e:00:00:fb'), ip4('224.0.0.251')));
    const v6 = buildEthernet({
      dst: peer,
      src: MAC,
      etherType: EtherType.IPv6,
      payload: ipv6Packet(OS6, USER6),
    });
    shim.write(v6);
    expect(port.written.map(hex)).toEqual([
      hex(unicast.subarray(14)),
      hex(ipv4Frame(parseMac('ff:ff:ff:ff:ff:ff'), ip4('10.1.0.255')).subarray(14)),
      hex(ipv4Frame(parseMac('01:00:5e:00:00:fb'), ip4('224.0.0.251')).subarray(14)),
      hex(v6.subarray(14)),
    ]);
  });

  it('drops frames to unknown MACs, non-IP EtherTypes and unsound IP headers, by reason', () => {
    const { shim, port, sink, peer } = setup();
    shim.write(ipv4Frame(parseMac('02:12:34:56:78:9a')));
    shim.write(buildEthernet({ dst: peer, src: MAC, etherType: 0x88b5, payload: new Uint8Array(46) }));
    const tagged = buildEthernet({
      dst: peer,
      src: MAC,
      etherType: EtherType.IPv4,
      vlan: { pcp: 0, dei: false, vid: 5 },
      payload: ipv4Packet(OS4, USER4),
    });
    shim.write(tagged);
    const badChecksum = ipv4Frame(peer);
    badChecksum[14 + 10] = badChecksum[14 + 10]! ^ 0xff;
    const badVersion = ipv4Frame(peer);
    badVersion[14] = 0x65;
    const truncated = ipv4Frame(peer).subarray(0, 30);
    const badLength = ipv4Frame(peer);
    badLength[14 + 2] = 0xff;
    const ipv6Short = buildEthernet({
      dst: peer,
      src: MAC,
      etherType: EtherType.IPv6,
      payload: new Uint8Array(20),
    });
    const multicastSource = ipv4Frame(peer);
    multicastSource[6] = 0x03;
    for (const frame of [badChecksum, badVersion, truncated, badLength, ipv6Short, multicastSource]) {
      shim.write(frame);
    }
    expect(port.written).toHaveLength(0);
    expect(Object.fromEntries(sink.drops)).toEqual({ unknownMac: 1, nonIp: 2, malformed: 6 });
  });

  it('sends a batch in one call to the packet port, and answers within it', async () => {
    const { shim, port, sink, peer } = setup();
    expect(shim.writeBatch([ipv4Frame(peer), arpRequest(USER4, OS4), ipv4Frame(peer)])).toBe(true);
    expect(port.batchCalls).toBe(1);
    expect(port.written).toHaveLength(2);
    await settle();
    expect(sink.take()).toHaveLength(1);
  });

  it('passes backpressure through', () => {
    const { shim, port, sink, peer } = setup();
    port.writeResult = false;
    expect(shim.write(ipv4Frame(peer))).toBe(false);
    expect(shim.write(arpRequest(USER4, OS4))).toBe(true); // answered here: nothing queued
    port.sink!.writable();
    expect(sink.writableCalls).toBe(1);
  });

  it('bounds the answers pending in one turn', async () => {
    const { shim, sink } = setup();
    const request = arpRequest(USER4, OS4);
    for (let i = 0; i < MAX_PENDING_REPLIES + 10; i++) shim.write(request);
    await settle();
    expect(sink.batches).toHaveLength(1); // one batch per turn
    expect(sink.take()).toHaveLength(MAX_PENDING_REPLIES);
    expect(sink.drop(ShimDrop.ReplyOverflow)).toBe(10);
  });
});

describe('inbound: packets to frames', () => {
  it("addresses unicast to the program's MAC, multicast and broadcast to their groups, from device.mac", () => {
    const { port, sink, peer, shim } = setup();
    shim.write(ipv4Frame(OS_MAC)); // the program, at MAC, says something: the shim learns it
    port.deliver(
      ipv4Packet(USER4),
      ipv4Packet(ip4('224.1.2.3')),
      ipv4Packet(ip4('239.129.2.3')),
      ipv4Packet(ip4('255.255.255.255')),
      ipv4Packet(ip4('10.1.0.255')), // the configured /24's broadcast
      ipv6Packet(USER6),
      ipv6Packet(ip6('ff02::1:ff00:2')),
    );
    const got = sink.take();
    expect(got.map((f) => formatMac(f, 0))).toEqual([
      formatMac(MAC),
      '01:00:5e:01:02:03',
      '01:00:5e:01:02:03',
      'ff:ff:ff:ff:ff:ff',
      'ff:ff:ff:ff:ff:ff',
      formatMac(MAC),
      '33:33:ff:00:00:02',
    ]);
    expect(sink.batches).toHaveLength(1);
    for (const frame of got) expect(formatMac(frame, 6)).toBe(formatMac(peer));
    expect(got.map((f) => (f[12]! << 8) | f[13]!)).toEqual([...Array(5).fill(0x0800), 0x86dd, 0x86dd]);
    expect(hex(got[0]!.subarray(14))).toBe(hex(ipv4Packet(USER4)));
  });

  it('builds frames in place when the port leaves headroom, and copies otherwise', () => {
    for (const headroom of [0, 13, 14, 32]) {
      const { port, sink } = setup({ headroom });
      const [packet] = port.deliver(ipv4Packet(USER4));
      const [frame] = sink.take();
      expect(frame!.buffer === packet!.buffer).toBe(headroom >= 14);
      expect(hex(frame!.subarray(14))).toBe(hex(ipv4Packet(USER4)));
    }
  });

  it('drops what is not an IP packet, trims what is longer than its header says, drops oversize', () => {
    const { port, sink } = setup({ mtu: 100 });
    const padded = new Uint8Array(ipv4Packet(USER4).length + 7);
    padded.set(ipv4Packet(USER4));
    const shortLength = ipv4Packet(USER4);
    shortLength[3] = 10;
    port.deliver(
      new Uint8Array(0),
      Uint8Array.of(0x50, 1, 2, 3),
      ipv4Packet(USER4).subarray(0, 19),
      shortLength,
      ipv6Packet(USER6).subarray(0, 50),
      padded,
      buildIPv4({ src: OS4, dst: USER4, protocol: 17, payload: new Uint8Array(200) }),
    );
    const got = sink.take();
    expect(got).toHaveLength(1);
    expect(got[0]!.length).toBe(14 + ipv4Packet(USER4).length);
    expect(Object.fromEntries(sink.drops)).toEqual({ malformed: 5, oversize: 1 });
  });

  it('remembers a bounded number of the OS side’s link-local addresses', () => {
    const { port, shim } = setup();
    for (let i = 0; i < 1000; i++) {
      port.deliver(ipv6Packet(USER6, ip6(`fe80::${(i + 1).toString(16)}`)));
    }
    expect(shim.learnedAddresses()).toHaveLength(MAX_LEARNED_ADDRESSES);
    expect(shim.learnedAddresses().at(-1)).toBe('fe80::3e8');
  });
});

describe('the shim as a device', () => {
  it('becomes a TapDevice through core’s engine; close, pause and gone reach the packet port', async () => {
    const fresh = new FakePacketPort();
    const dev = createTapDevice(createL2Shim(fresh, { mac: MAC, addresses: ADDRESSES }), {
      backend: 'test',
      rxQueueFrames: 2,
    });
    expect(dev.capabilities).toMatchObject({ layer: 2, minMtu: 1500, maxMtu: 1500, osInterface: false });
    dev.write(arpRequest(USER4, OS4));
    const reply = await dev.read();
    expect(decodeFrame(reply).arp?.op).toBe(ArpOp.Reply);
    fresh.deliver(ipv4Packet(USER4), ipv4Packet(USER4), ipv4Packet(USER4));
    expect(fresh.paused).toBe(true);
    await dev.readBatch();
    expect(fresh.paused).toBe(false);
    await dev.close();
    expect(fresh.closed).toBe(true);
    expect(dev.name).toBe(fresh.name);
  });

  it('does not deliver answers after close', async () => {
    const { shim, sink, port } = setup();
    shim.write(arpRequest(USER4, OS4));
    await shim.close();
    await settle();
    expect(sink.frames).toHaveLength(0);
    expect(port.closed).toBe(true);
  });
});
