/**
 * The shim fuzzed in both directions with seeded random and mutated frames and packets.
 *
 * For every input, an oracle written independently of the shim (on core's decodeFrame) says
 * what must happen — forwarded, answered, or dropped — and the shim must agree exactly: it
 * answers nothing that is not its own and forwards nothing it should not. Nothing but a
 * TapError may be thrown, and what the shim learns stays bounded.
 *
 * FUZZ_SEED and FUZZ_ITERATIONS (environment) replay or lengthen a run.
 */
import {
  ArpOp,
  EtherType,
  Icmpv6Type,
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
  isTapError,
  parseMac,
  randomMac,
  solicitedNodeMulticast,
  verifyIPv4Checksum,
  verifyIcmpv6Checksum,
  type Frame,
} from '@tapkit/core';
import { describe, expect, it } from 'vitest';
import { MAX_LEARNED_ADDRESSES, createL2Shim } from '../src/index.js';
import { FakePacketPort, RecordingSink, hex, ip4, ip6, seeded, settle } from './helpers.js';

const ITERATIONS = Number(process.env['FUZZ_ITERATIONS'] ?? 4000);
const SEEDS = process.env['FUZZ_SEED'] ? [Number(process.env['FUZZ_SEED'])] : [1, 2, 3];

/** The program's MAC; the shim (the OS side, device.mac) is at OS_MAC. */
const MAC = parseMac('02:00:00:00:00:02');
const OS_MAC = parseMac('02:00:00:00:00:01');
const OS4 = ip4('10.1.0.1');
const USER4 = ip4('10.1.0.2');
const OS6 = ip6('fd00:1::1');
const USER6 = ip6('fd00:1::2');
const ZERO6 = new Uint8Array(16);

type Random = () => number;
const pick = <T>(rand: Random, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
const randomBytes = (rand: Random, n: number): Uint8Array =>
  Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));

function setup() {
  const port = new FakePacketPort({ headroom: 14 });
  const shim = createL2Shim(port, { mac: OS_MAC, addresses: ['10.1.0.1/24', 'fd00:1::1/64'] });
  const sink = new RecordingSink();
  shim.start(sink);
  return { port, shim, sink, peer: shim.mac };
}

// ---- the oracle ----

const isZero = (b: Uint8Array) => b.every((x) => x === 0);
const same = (a: Uint8Array, b: Uint8Array) => hex(a) === hex(b);

/** In 10.1.0.0/24 and neither .0 nor .255. */
function onLink4(ip: Uint8Array): boolean {
  return ip[0] === 10 && ip[1] === 1 && ip[2] === 0 && ip[3] !== 0 && ip[3] !== 255;
}

/** In fd00:1::/64 or fe80::/10, and not ::, ::1 or multicast. */
function onLink6(ip: Uint8Array): boolean {
  if (ip[0] === 0xff) return false;
  if (ip[0] === 0xfe && (ip[1]! & 0xc0) === 0x80) return true;
  return hex(ip.subarray(0, 8)) === hex(OS6.subarray(0, 8));
}

type Expected = 'forward' | 'answer' | 'drop';

/** What the shim must do with `frame`, decided without the shim's code. */
function expected(frame: Frame, peer: Uint8Array, learned: Set<string>): Expected {
  const d = decodeFrame(frame);
  if (d.eth === undefined || d.eth.vlan !== undefined) return 'drop';
  const dstOk = same(d.eth.dst, peer) || (d.eth.dst[0]! & 1) === 1;
  if (!dstOk || (d.eth.src[0]! & 1) === 1) return 'drop';
  // decodeFrame's `error` may be about a layer the shim does not look at (UDP, ICMP): the
  // layers it needs are checked one by one below.
  switch (d.eth.etherType) {
    case EtherType.IPv4: {
      const ip = d.ipv4;
      return ip && verifyIPv4Checksum(d.eth.payload) ? 'forward' : 'drop';
    }
    case EtherType.ARP: {
      const arp = d.arp;
      if (!arp || arp.op !== ArpOp.Request) return 'drop';
      if (!same(d.eth.dst, peer) && formatMac(d.eth.dst) !== 'ff:ff:ff:ff:ff:ff') return 'drop';
      if ((arp.senderMac[0]! & 1) === 1 || isZero(arp.senderMac)) return 'drop';
      if (isZero(arp.senderIp)) return same(arp.targetIp, OS4) ? 'answer' : 'drop';
      return !same(arp.senderIp, arp.targetIp) && onLink4(arp.targetIp) ? 'answer' : 'drop';
    }
    case EtherType.IPv6: {
      const ip = d.ipv6;
      if (!ip) return 'drop';
      const type = ip.nextHeader === 58 && ip.payload.length > 0 ? ip.payload[0] : undefined;
      if (type !== Icmpv6Type.NeighborSolicitation && type !== Icmpv6Type.NeighborAdvertisement)
        return 'forward';
      if (ip.hopLimit !== 255 || !verifyIcmpv6Checksum(ip.payload, ip.src, ip.dst)) return 'drop';
      const ns = d.neighborSolicitation;
      if (!ns || d.error !== undefined) return 'drop';
      if (ns.target[0] === 0xff) return 'drop';
      if (isZero(ip.src)) {
        if (ns.sourceLinkLayer !== undefined || !same(ip.dst, solicitedNodeMulticast(ns.target)))
          return 'drop';
        return same(ns.target, OS6) || learned.has(hex(ns.target)) ? 'answer' : 'drop';
      }
      if (same(ip.src, ns.target)) return 'drop';
      return onLink6(ns.target) || learned.has(hex(ns.target)) ? 'answer' : 'drop';
    }
    default:
      return 'drop';
  }
}

/** Checks an answer the shim gave to `request`: it must be the right one, from the peer. */
function checkAnswer(answer: Frame, request: Frame, peer: Uint8Array): void {
  const a = decodeFrame(answer);
  const q = decodeFrame(request);
  expect(a.error).toBeUndefined();
  expect(formatMac(a.eth!.src)).toBe(formatMac(peer));
  if (q.arp) {
    expect(a.arp).toMatchObject({ op: ArpOp.Reply });
    expect(hex(a.arp!.senderMac)).toBe(hex(peer));
    expect(hex(a.arp!.senderIp)).toBe(hex(q.arp.targetIp));
    expect(hex(a.arp!.targetIp)).toBe(hex(q.arp.senderIp));
    expect(hex(a.eth!.dst)).toBe(hex(q.arp.senderMac));
  } else {
    const na = a.neighborAdvertisement!;
    expect(na).toMatchObject({ router: false, override: true, solicited: !isZero(q.ipv6!.src) });
    expect(hex(na.target)).toBe(hex(q.neighborSolicitation!.target));
    expect(hex(na.targetLinkLayer!)).toBe(hex(peer));
    expect(a.ipv6!.hopLimit).toBe(255);
    expect(verifyIcmpv6Checksum(a.ipv6!.payload, a.ipv6!.src, a.ipv6!.dst)).toBe(true);
    expect(hex(a.ipv6!.dst)).toBe(isZero(q.ipv6!.src) ? hex(ip6('ff02::1')) : hex(q.ipv6!.src));
  }
}

// ---- inputs ----

function validFrames(peer: Uint8Array): Frame[] {
  const any = randomMac();
  return [
    buildArpRequestFrame({ srcMac: MAC, srcIp: USER4, targetIp: OS4 }),
    buildArpRequestFrame({ srcMac: MAC, srcIp: USER4, targetIp: ip4('10.1.0.200') }),
    buildArpRequestFrame({ srcMac: MAC, srcIp: USER4, targetIp: ip4('10.9.0.1') }),
    buildArpRequestFrame({ srcMac: MAC, srcIp: ip4('0.0.0.0'), targetIp: USER4 }),
    buildArpRequestFrame({ srcMac: MAC, srcIp: ip4('0.0.0.0'), targetIp: OS4 }),
    buildArpReplyFrame({ srcMac: MAC, srcIp: USER4, dstMac: peer, dstIp: OS4 }),
    buildNeighborSolicitationFrame({ srcMac: MAC, src: USER6, target: OS6 }),
    buildNeighborSolicitationFrame({ srcMac: MAC, src: ip6('fe80::2'), target: ip6('fe80::1') }),
    buildNeighborSolicitationFrame({ srcMac: MAC, src: USER6, target: ip6('fd00:2::1') }),
    buildNeighborSolicitationFrame({ srcMac: MAC, src: ZERO6, target: USER6 }),
    buildNeighborSolicitationFrame({ srcMac: MAC, src: ZERO6, target: OS6 }),
    buildNeighborSolicitationFrame({ srcMac: MAC, src: ZERO6, target: ip6('fe80::cafe') }),
    buildNeighborAdvertisementFrame({
      srcMac: MAC,
      src: USER6,
      target: USER6,
      solicited: false,
      override: true,
    }),
    buildUdpFrame({
      srcMac: MAC,
      dstMac: peer,
      src: USER4,
      dst: OS4,
      srcPort: 1,
      dstPort: 2,
      payload: new Uint8Array(9),
    }),
    buildUdpFrame({
      srcMac: MAC,
      dstMac: any,
      src: USER4,
      dst: OS4,
      srcPort: 1,
      dstPort: 2,
      payload: new Uint8Array(9),
    }),
    buildIcmpEchoFrame({
      ...{ srcMac: MAC, dstMac: peer, src: USER6, dst: OS6, type: 'request' as const },
      ...{ identifier: 1, sequence: 2, data: new Uint8Array(16) },
    }),
    buildEthernet({ dst: 'ff:ff:ff:ff:ff:ff', src: MAC, etherType: 0x88b5, payload: new Uint8Array(46) }),
  ];
}

/** A frame from a valid one: bytes flipped, cut, extended, addresses and types swapped. */
function mutate(rand: Random, frame: Frame, peer: Uint8Array): Frame {
  let out = Uint8Array.from(frame);
  const steps = 1 + Math.floor(rand() * 3);
  for (let s = 0; s < steps; s++) {
    switch (Math.floor(rand() * 7)) {
      case 0: // flip bytes, anywhere
        for (let i = 0, n = 1 + Math.floor(rand() * 4); i < n; i++) {
          out[Math.floor(rand() * out.length)] = Math.floor(rand() * 256);
        }
        break;
      case 1: // flip a byte in the first 60 (the headers)
        out[Math.floor(rand() * Math.min(60, out.length))] = Math.floor(rand() * 256);
        break;
      case 2: // cut
        out = out.slice(0, Math.max(14, Math.floor(rand() * out.length)));
        break;
      case 3: {
        // extend with padding or garbage
        const longer = new Uint8Array(out.length + Math.floor(rand() * 40));
        longer.set(out);
        if (rand() < 0.5) longer.set(randomBytes(rand, longer.length - out.length), out.length);
        out = longer;
        break;
      }
      case 4: // another destination
        out.set(
          pick(rand, [peer, parseMac('ff:ff:ff:ff:ff:ff'), parseMac('33:33:ff:00:00:01'), randomMac()]),
          0,
        );
        break;
      case 5: // another EtherType
        [out[12], out[13]] = pick(rand, [
          [0x08, 0x00],
          [0x86, 0xdd],
          [0x08, 0x06],
          [0x81, 0x00],
          [Math.floor(rand() * 256), Math.floor(rand() * 256)],
        ]);
        break;
      default: // a multicast source now and then
        if (rand() < 0.3) out[6] = out[6]! | 1;
    }
  }
  return out;
}

describe.each(SEEDS)('fuzz, seed %i', (seed) => {
  it(`outbound: ${ITERATIONS} frames; forwards, answers and drops exactly what it should`, async () => {
    const rand = seeded(seed);
    const { shim, sink, port, peer } = setup();
    // The OS's link-local address, learned from a packet it sent: defended against DAD.
    port.deliver(
      buildIPv6({ src: ip6('fe80::cafe'), dst: USER6, nextHeader: 59, payload: new Uint8Array(0) }),
    );
    sink.take();
    const learned = new Set(shim.learnedAddresses().map((a) => hex(ip6(a))));
    const seeds = validFrames(peer);
    const tally = { forward: 0, answer: 0, drop: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const frame =
        rand() < 0.1
          ? randomBytes(rand, 14 + Math.floor(rand() * 120))
          : mutate(rand, pick(rand, seeds), peer);
      const want = expected(frame, peer, learned);
      const writtenBefore = port.written.length;
      try {
        shim.write(frame);
      } catch (error) {
        expect(isTapError(error), String(error)).toBe(true);
      }
      await Promise.resolve(); // the answer's microtask
      const answers = sink.take();
      const forwarded = port.written.slice(writtenBefore);
      const got: Expected = answers.length > 0 ? 'answer' : forwarded.length > 0 ? 'forward' : 'drop';
      expect(got, `seed ${seed}, input ${i}: ${hex(frame)}`).toBe(want);
      expect(answers.length + forwarded.length).toBeLessThanOrEqual(1);
      tally[got]++;
      if (got === 'answer') checkAnswer(answers[0]!, frame, peer);
      if (got === 'forward') expect(hex(frame.subarray(14)).startsWith(hex(forwarded[0]!))).toBe(true);
    }
    const drops = [...sink.drops.values()].reduce((a, b) => a + b, 0);
    expect(drops).toBe(tally.drop); // every input that was neither sent nor answered is counted once
    expect(tally.answer).toBeGreaterThan(ITERATIONS / 50); // the corpus reaches every branch
    expect(tally.forward).toBeGreaterThan(ITERATIONS / 50);
  });

  it(`inbound: ${ITERATIONS} packets; frames are exact, drops counted, tables bounded`, () => {
    const rand = seeded(seed + 1000);
    const { shim, sink, port, peer } = setup();
    // The program says who it is (USER4 at MAC): unicast from the OS goes to MAC from now on.
    shim.write(buildArpRequestFrame({ srcMac: MAC, srcIp: USER4, targetIp: OS4 }));
    sink.take();
    const packets = [
      buildIPv4({ src: OS4, dst: USER4, protocol: 17, payload: new Uint8Array(20) }),
      buildIPv4({ src: OS4, dst: ip4('224.0.0.251'), protocol: 17, payload: new Uint8Array(20) }),
      buildIPv4({ src: OS4, dst: ip4('10.1.0.255'), protocol: 17, payload: new Uint8Array(20) }),
      buildIPv6({ src: OS6, dst: USER6, nextHeader: 17, payload: new Uint8Array(20) }),
      buildIPv6({ src: ip6('fe80::1'), dst: ip6('ff02::1'), nextHeader: 58, payload: new Uint8Array(8) }),
    ];
    let frames = 0;
    let drops = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      let packet: Uint8Array;
      if (rand() < 0.2) {
        packet = randomBytes(rand, Math.floor(rand() * 100));
      } else {
        packet = Uint8Array.from(pick(rand, packets));
        if (rand() < 0.5) packet[Math.floor(rand() * Math.min(48, packet.length))] = Math.floor(rand() * 256);
        if (rand() < 0.2) packet = packet.slice(0, Math.floor(rand() * packet.length));
        if (rand() < 0.5 && packet.length >= 24 && packet[0]! >> 4 === 6) {
          packet.set(Uint8Array.of(0xfe, 0x80), 8); // a link-local source: learned
          packet.set(randomBytes(rand, 8), 16);
        }
      }
      const before = sink.frames.length;
      expect(() => port.deliver(packet)).not.toThrow();
      const got = sink.frames.slice(before);
      const dropped = [...sink.drops.values()].reduce((a, b) => a + b, 0);
      expect(got.length + (dropped - drops)).toBe(1);
      drops = dropped;
      if (got.length === 0) continue;
      frames++;
      const frame = got[0]!;
      const version = packet[0]! >> 4;
      expect(formatMac(frame, 6)).toBe(formatMac(peer));
      expect((frame[12]! << 8) | frame[13]!).toBe(version === 4 ? 0x0800 : 0x86dd);
      expect(hex(packet).startsWith(hex(frame.subarray(14)))).toBe(true);
      const dst = version === 4 ? frame.subarray(30, 34) : frame.subarray(38, 54);
      const expectedMac =
        version === 6
          ? dst[0] === 0xff
            ? `33:33:${formatMac(Uint8Array.of(0, 0, ...dst.subarray(12))).slice(6)}`
            : formatMac(MAC)
          : dst[0]! >= 224 && dst[0]! < 240
            ? formatMac(Uint8Array.of(1, 0, 0x5e, dst[1]! & 0x7f, dst[2]!, dst[3]!))
            : hex(dst) === hex(ip4('255.255.255.255')) || hex(dst) === hex(ip4('10.1.0.255'))
              ? 'ff:ff:ff:ff:ff:ff'
              : formatMac(MAC);
      expect(formatMac(frame, 0)).toBe(expectedMac);
      expect(shim.learnedAddresses().length).toBeLessThanOrEqual(MAX_LEARNED_ADDRESSES);
    }
    expect(frames).toBeGreaterThan(ITERATIONS / 4);
    expect(shim.learnedAddresses()).toHaveLength(MAX_LEARNED_ADDRESSES);
  });

  it('through the engine: any bytes in, only TapErrors out, and the device keeps working', async () => {
    const rand = seeded(seed + 2000);
    const port = new FakePacketPort();
    const shim = createL2Shim(port, { mac: OS_MAC, addresses: ['10.1.0.1/24'] });
    const dev = createTapDevice(shim, { backend: 'fuzz' });
    const seeds = validFrames(shim.mac);
    for (let i = 0; i < ITERATIONS; i++) {
      const frame =
        rand() < 0.3
          ? randomBytes(rand, Math.floor(rand() * 1600))
          : mutate(rand, pick(rand, seeds), shim.mac);
      try {
        if (rand() < 0.2) dev.writeBatch([frame, frame]);
        else dev.write(frame);
      } catch (error) {
        expect(isTapError(error), String(error)).toBe(true);
      }
    }
    await settle();
    dev.write(buildArpRequestFrame({ srcMac: MAC, srcIp: USER4, targetIp: OS4 }));
    const reply = await dev.read({ signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    expect(reply).toBeDefined();
    await dev.close();
  });
});
