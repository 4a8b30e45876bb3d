import { describe, expect, it } from 'vitest';
import {
  buildArpReplyFrame,
  buildArpReplyFrameFor,
  buildArpRequestFrame,
  buildEthernet,
  buildIPv4,
  buildIPv6,
  buildUdp,
  buildIcmpEchoFrame,
  buildNeighborAdvertisementFrame,
  buildNeighborSolicitationFrame,
  buildUdpFrame,
  decodeFrame,
  formatIPv6Address,
  formatMac,
  macEquals,
  parseIPv4Address,
  parseIPv6Address,
  verifyIcmpChecksum,
  verifyIcmpv6Checksum,
  verifyIPv4Checksum,
  verifyUdpChecksum,
  type DecodedLayers,
} from '../../src/codec/index.js';
import { isTapError, TapErrorCode } from '../../src/errors.js';
import { expectTapError, inSlab, INVALID, KERNEL, toHex } from './helpers.js';

const macA = '02:fc:00:00:00:01';
const macB = '02:00:00:00:00:4e';
const ip4 = { src: parseIPv4Address('192.0.2.2'), dst: parseIPv4Address('192.0.2.78') };
const ip6 = { src: parseIPv6Address('fd00::2'), dst: parseIPv6Address('fd00::78') };
const payload = new TextEncoder().encode('hello tapkit');

/** decodeFrame, asserting the Ethernet layer decoded. */
function decode(frame: Uint8Array): DecodedLayers {
  const d = decodeFrame(frame);
  if (d.eth === undefined) throw new Error(`not decoded: ${d.error.message}`);
  return d;
}

describe('ARP frames', () => {
  it('buildArpRequestFrame reproduces the kernel request byte for byte', () => {
    expect(toHex(buildArpRequestFrame({ srcMac: macA, srcIp: ip4.src, targetIp: ip4.dst }))).toBe(
      toHex(KERNEL.arpRequest),
    );
  });

  it('buildArpReplyFrameFor answers a decoded request, unicast', () => {
    const d = decode(KERNEL.arpRequest);
    const reply = decode(buildArpReplyFrameFor(d.arp!, macB));
    expect(formatMac(reply.eth.dst)).toBe(macA);
    expect(formatMac(reply.eth.src)).toBe(macB);
    expect(reply.arp).toMatchObject({ op: 2 });
    expect([...reply.arp!.senderIp]).toEqual([...ip4.dst]);
    expect([...reply.arp!.targetIp]).toEqual([...ip4.src]);
    expect(buildArpReplyFrameFor(d.arp!, macB)).toEqual(
      buildArpReplyFrame({ srcMac: macB, srcIp: ip4.dst, dstMac: macA, dstIp: ip4.src }),
    );
  });

  it('pads and tags on request', () => {
    const frame = buildArpRequestFrame({
      srcMac: macA,
      srcIp: ip4.src,
      targetIp: ip4.dst,
      padTo60: true,
      vlan: { pcp: 0, dei: false, vid: 7 },
    });
    expect(frame.length).toBe(60);
    const d = decode(frame);
    expect(d.eth.vlan?.vid).toBe(7);
    expect([...d.arp!.targetIp]).toEqual([...ip4.dst]);
  });
});

describe('buildUdpFrame', () => {
  it.each([
    ['IPv4', ip4],
    ['IPv6', ip6],
  ])('builds a valid %s frame that decodes back', (_name, addrs) => {
    const frame = buildUdpFrame({
      srcMac: macA,
      dstMac: macB,
      ...addrs,
      srcPort: 40000,
      dstPort: 40001,
      payload,
      ttl: 9,
    });
    const d = decode(inSlab(frame));
    const ip = d.ipv4 ?? d.ipv6!;
    expect(ip.src).toEqual(addrs.src);
    expect(d.ipv4?.ttl ?? d.ipv6?.hopLimit).toBe(9);
    expect(d.udp).toMatchObject({ srcPort: 40000, dstPort: 40001, payload });
    expect(verifyUdpChecksum(ip.payload, addrs.src, addrs.dst)).toBe(true);
    if (d.ipv4) expect(verifyIPv4Checksum(frame.subarray(14))).toBe(true);
    expect(d.error).toBeUndefined();
  });

  it('keeps the UDP payload exact under Ethernet padding', () => {
    const frame = buildUdpFrame({
      srcMac: macA,
      dstMac: macB,
      ...ip4,
      srcPort: 1,
      dstPort: 2,
      payload: Uint8Array.of(1),
      padTo60: true,
    });
    expect(frame.length).toBe(60);
    expect([...decode(frame).udp!.payload]).toEqual([1]);
  });

  it('equals the layer builders composed by hand', () => {
    const vlan = { pcp: 1, dei: true, vid: 4000 };
    const frame = buildUdpFrame({
      srcMac: macA,
      dstMac: macB,
      ...ip6,
      srcPort: 7,
      dstPort: 8,
      payload,
      vlan,
    });
    const udp = buildUdp({ ...ip6, srcPort: 7, dstPort: 8, payload });
    const ip = buildIPv6({ ...ip6, nextHeader: 17, payload: udp });
    expect(frame).toEqual(buildEthernet({ dst: macB, src: macA, etherType: 0x86dd, vlan, payload: ip }));
    const v4 = buildUdpFrame({ srcMac: macA, dstMac: macB, ...ip4, srcPort: 7, dstPort: 8, payload });
    const ip4Packet = buildIPv4({
      ...ip4,
      protocol: 17,
      payload: buildUdp({ ...ip4, srcPort: 7, dstPort: 8, payload }),
    });
    expect(v4).toEqual(buildEthernet({ dst: macB, src: macA, etherType: 0x0800, payload: ip4Packet }));
  });

  it('refuses mixed or bad address lengths with INVALID_ARGUMENT', () => {
    const ok = { srcMac: macA, dstMac: macB, srcPort: 1, dstPort: 2, payload };
    expectTapError(() => buildUdpFrame({ ...ok, src: ip4.src, dst: ip6.dst }), INVALID);
    expectTapError(() => buildUdpFrame({ ...ok, src: new Uint8Array(6), dst: new Uint8Array(6) }), INVALID);
    expectTapError(() => buildUdpFrame({ ...ok, ...ip4, dstMac: 'broadcast' }), INVALID);
  });
});

describe('buildIcmpEchoFrame', () => {
  const data = Uint8Array.of(1, 2, 3, 4, 5);

  it('builds ICMPv4 echo by name and by number', () => {
    for (const type of ['request', 8] as const) {
      const d = decode(
        buildIcmpEchoFrame({ srcMac: macA, dstMac: macB, ...ip4, type, identifier: 3, sequence: 4, data }),
      );
      expect({ ...d.icmpEcho, data: [...d.icmpEcho!.data] }).toMatchObject({
        type: 8,
        identifier: 3,
        sequence: 4,
        data: [...data],
      });
      expect(d.icmp?.type).toBe(8);
      expect(verifyIcmpChecksum(d.ipv4!.payload)).toBe(true);
    }
    expect(
      decode(
        buildIcmpEchoFrame({
          srcMac: macA,
          dstMac: macB,
          ...ip4,
          type: 'reply',
          identifier: 3,
          sequence: 4,
          data,
        }),
      ).icmpEcho?.type,
    ).toBe(0);
  });

  it('builds ICMPv6 echo by name and by number', () => {
    for (const [type, expected] of [
      ['request', 128],
      ['reply', 129],
      [129, 129],
    ] as const) {
      const d = decode(
        buildIcmpEchoFrame({ srcMac: macA, dstMac: macB, ...ip6, type, identifier: 3, sequence: 4, data }),
      );
      expect({ ...d.icmpv6Echo, data: [...d.icmpv6Echo!.data] }).toMatchObject({
        type: expected,
        identifier: 3,
        sequence: 4,
        data: [...data],
      });
      expect(verifyIcmpv6Checksum(d.ipv6!.payload, ip6.src, ip6.dst)).toBe(true);
    }
  });

  it("refuses the other family's numeric types", () => {
    const ok = { srcMac: macA, dstMac: macB, identifier: 1, sequence: 1, data };
    expectTapError(() => buildIcmpEchoFrame({ ...ok, ...ip4, type: 128 }), INVALID);
    expectTapError(() => buildIcmpEchoFrame({ ...ok, ...ip6, type: 8 }), INVALID);
  });
});

describe('neighbour discovery frames', () => {
  it('buildNeighborSolicitationFrame reproduces the kernel solicitation byte for byte', () => {
    const frame = buildNeighborSolicitationFrame({ srcMac: macA, src: ip6.src, target: ip6.dst });
    expect(toHex(frame)).toBe(toHex(KERNEL.neighborSolicitation));
  });

  it('tags solicitations and advertisements with a VLAN', () => {
    const vlan = { pcp: 6, dei: false, vid: 300 };
    const ns = decode(buildNeighborSolicitationFrame({ srcMac: macA, src: ip6.src, target: ip6.dst, vlan }));
    expect(ns.eth.vlan).toEqual(vlan);
    expect([...ns.neighborSolicitation!.target]).toEqual([...ip6.dst]);
    expect(verifyIcmpv6Checksum(ns.ipv6!.payload, ns.ipv6!.src, ns.ipv6!.dst)).toBe(true);
    const na = decode(
      buildNeighborAdvertisementFrame({
        srcMac: macB,
        src: ip6.dst,
        target: ip6.dst,
        solicited: false,
        override: true,
        vlan,
      }),
    );
    expect(na.eth.vlan).toEqual(vlan);
    expect(formatMac(na.neighborAdvertisement!.targetLinkLayer!)).toBe(macB);
    expect(verifyIcmpv6Checksum(na.ipv6!.payload, na.ipv6!.src, na.ipv6!.dst)).toBe(true);
  });

  it('leaves out the link-layer option for duplicate address detection', () => {
    const d = decode(
      buildNeighborSolicitationFrame({ srcMac: macA, src: new Uint8Array(16), target: ip6.dst }),
    );
    expect(d.neighborSolicitation!.sourceLinkLayer).toBeUndefined();
    expect([...d.neighborSolicitation!.target]).toEqual([...ip6.dst]);
    expect(formatIPv6Address(d.ipv6!.dst)).toBe('ff02::1:ff00:78');
  });

  it('builds an advertisement answering the solicitation', () => {
    const ns = decode(KERNEL.neighborSolicitation);
    const frame = buildNeighborAdvertisementFrame({
      srcMac: macB,
      dstMac: ns.eth.src,
      src: ns.neighborSolicitation!.target,
      dst: ns.ipv6!.src,
      target: ns.neighborSolicitation!.target,
      solicited: true,
      override: true,
    });
    const d = decode(frame);
    expect(formatMac(d.eth.dst)).toBe(macA);
    expect(d.ipv6!.hopLimit).toBe(255);
    expect(d.neighborAdvertisement).toMatchObject({ router: false, solicited: true, override: true });
    expect(formatMac(d.neighborAdvertisement!.targetLinkLayer!)).toBe(macB);
    expect(verifyIcmpv6Checksum(d.ipv6!.payload, d.ipv6!.src, d.ipv6!.dst)).toBe(true);
  });

  it('sends unsolicited advertisements to all nodes, optionally without the option', () => {
    const d = decode(
      buildNeighborAdvertisementFrame({
        srcMac: macB,
        src: ip6.dst,
        target: ip6.dst,
        solicited: false,
        override: true,
        targetLinkLayer: null,
      }),
    );
    expect(formatIPv6Address(d.ipv6!.dst)).toBe('ff02::1');
    expect(formatMac(d.eth.dst)).toBe('33:33:00:00:00:01');
    expect(d.neighborAdvertisement!.targetLinkLayer).toBeUndefined();
  });
});

describe('decodeFrame', () => {
  it('decodes every kernel capture without error', () => {
    expect(decode(KERNEL.icmpEchoRequest).icmpEcho?.identifier).toBe(0x16a3);
    expect(decode(KERNEL.icmpEchoReply).icmpEcho?.type).toBe(0);
    expect(decode(KERNEL.icmpv6EchoRequest).icmpv6Echo?.identifier).toBe(0x16a4);
    expect(formatIPv6Address(decode(KERNEL.neighborSolicitation).neighborSolicitation!.target)).toBe(
      'fd00::78',
    );
    for (const frame of Object.values(KERNEL)) expect(decodeFrame(frame).error).toBeUndefined();
  });

  it('reports a short frame as { eth: undefined, error } without throwing', () => {
    const d = decodeFrame(new Uint8Array(13));
    expect(d.eth).toBeUndefined();
    expect(isTapError(d.error, TapErrorCode.MALFORMED)).toBe(true);
    const notBytes = decodeFrame('nope' as unknown as Uint8Array);
    expect(isTapError(notBytes.error, TapErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect(d.failedLayer).toBe('ethernet');
    expect(d.error!.message).toMatch(/^decodeFrame: the Ethernet layer does not decode: /);
  });

  it('keeps the outer layers when an inner one is malformed', () => {
    const truncatedIp = decode(KERNEL.icmpEchoRequest.subarray(0, 40));
    expect(truncatedIp.ipv4).toBeUndefined();
    expect(isTapError(truncatedIp.error, TapErrorCode.MALFORMED)).toBe(true);
    expect(truncatedIp.failedLayer).toBe('ipv4');
    expect(truncatedIp.error!.message).toMatch(/^decodeFrame: the IPv4 layer does not decode: /);

    const badUdp = buildUdpFrame({ srcMac: macA, dstMac: macB, ...ip4, srcPort: 1, dstPort: 2, payload });
    badUdp[14 + 20 + 5] = 200; // UDP length beyond the IP payload
    const d = decode(badUdp);
    expect(d.ipv4).toBeDefined();
    expect(d.udp).toBeUndefined();
    expect(d.error?.code).toBe(TapErrorCode.MALFORMED);
    expect(d.failedLayer).toBe('udp');
    expect(d.error!.message).toContain('the UDP layer does not decode');
  });

  it('does not look inside IPv4 fragments', () => {
    const frame = buildUdpFrame({ srcMac: macA, dstMac: macB, ...ip4, srcPort: 1, dstPort: 2, payload });
    frame[14 + 6] = 0x20; // More Fragments (checksum now stale: not decodeFrame's business)
    const d = decode(frame);
    expect(d.ipv4?.flags).toBe(1);
    expect(d.udp).toBeUndefined();
    expect(d.error).toBeUndefined();
  });

  it('stops at unknown EtherTypes and protocols', () => {
    const frame = KERNEL.arpRequest.slice();
    frame[12] = 0x88;
    frame[13] = 0xcc; // LLDP
    expect(Object.keys(decode(frame))).toEqual(['eth']);
    const tcp = KERNEL.icmpEchoRequest.slice();
    tcp[14 + 9] = 6;
    const d = decode(tcp);
    expect(d.ipv4?.protocol).toBe(6);
    expect(d.icmp).toBeUndefined();
  });
});

describe('bytes and strings', () => {
  it('builders take IP addresses as text or bytes, and build the same Buffer', () => {
    const text = buildUdpFrame({
      srcMac: '02:00:00:00:00:01',
      dstMac: '02:00:00:00:00:02',
      src: '10.0.0.1',
      dst: '10.0.0.2',
      srcPort: 1,
      dstPort: 2,
      payload: Buffer.from('x'),
    });
    const bytes = buildUdpFrame({
      srcMac: Uint8Array.of(2, 0, 0, 0, 0, 1),
      dstMac: Uint8Array.of(2, 0, 0, 0, 0, 2),
      src: Uint8Array.of(10, 0, 0, 1),
      dst: Uint8Array.of(10, 0, 0, 2),
      srcPort: 1,
      dstPort: 2,
      payload: Buffer.from('x'),
    });
    expect(Buffer.isBuffer(text)).toBe(true);
    expect(text.equals(bytes)).toBe(true);
    expect(text.toString('hex').slice(0, 12)).toBe('020000000002');
    const arp = buildArpRequestFrame({
      srcMac: '02:00:00:00:00:01',
      srcIp: '10.0.0.1',
      targetIp: '10.0.0.2',
    });
    expect([...decode(arp).arp!.targetIp]).toEqual([10, 0, 0, 2]);
    const ns = buildNeighborSolicitationFrame({
      srcMac: '02:00:00:00:00:01',
      src: 'fe80::1',
      target: 'fd00::2',
    });
    expect(formatIPv6Address(decode(ns).neighborSolicitation!.target)).toBe('fd00::2');
    const echo = buildIcmpEchoFrame({
      srcMac: '02:00:00:00:00:01',
      dstMac: '02:00:00:00:00:02',
      src: 'fd00::1',
      dst: 'fd00::2',
      type: 'request',
      identifier: 1,
      sequence: 1,
      data: new Uint8Array(4),
    });
    expect(decode(echo).icmpv6Echo?.type).toBe(128);
  });

  it('refuses a malformed address with a coded error', () => {
    const build = () =>
      buildArpRequestFrame({ srcMac: '02:00:00:00:00:01', srcIp: '10.0.0', targetIp: '10.0.0.2' });
    expect(build).toThrow(expect.objectContaining({ code: TapErrorCode.INVALID_ARGUMENT }) as Error);
  });

  it('macEquals compares a MAC given as text with one given as bytes', () => {
    const mac = Uint8Array.of(0x02, 0xaa, 0, 0, 0, 1);
    expect(macEquals('02:AA:00:00:00:01', mac)).toBe(true);
    expect(macEquals(mac, '02:aa:00:00:00:01')).toBe(true);
    expect(macEquals('02:aa:00:00:00:02', mac)).toBe(false);
    expect(macEquals('not a mac', mac)).toBe(false);
  });
});
