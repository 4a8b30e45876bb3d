// Fuzzing every parser with random, truncated and mutated inputs (seeded, so reproducible).
// Each call must return or throw a MALFORMED TapError, nothing else. Every input is parsed three
// times, and the results must be identical: as a standalone copy; as a view inside a slab of
// garbage (catches ignored byteOffsets, e.g. a DataView over the whole buffer); and behind a
// Proxy that throws on any index read outside the view (indexing past a view yields undefined
// silently, so only a trap can catch it). Returned views must lie inside the input.
import { describe, expect, it } from 'vitest';
import {
  buildNeighborAdvertisement,
  buildUdpFrame,
  decodeFrame,
  parseArp,
  parseEthernet,
  parseIcmp,
  parseIcmpEcho,
  parseIcmpv6,
  parseIcmpv6Echo,
  parseIPv4,
  parseIPv4Address,
  parseIPv6,
  parseIPv6Address,
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
  parseUdp,
  verifyIcmpChecksum,
  verifyIcmpv6Checksum,
  verifyIPv4Checksum,
  verifyUdpChecksum,
} from '../../src/codec/index.js';
import { isTapError, TapErrorCode } from '../../src/errors.js';
import { fromHex, inSlab, KERNEL, prng, randomBytes, toHex } from './helpers.js';

const v6a = parseIPv6Address('fd00::2');
const v6b = parseIPv6Address('fd00::78');
const udp4Frame = buildUdpFrame({
  srcMac: '02:00:00:00:00:01',
  dstMac: '02:00:00:00:00:02',
  src: parseIPv4Address('10.0.0.1'),
  dst: parseIPv4Address('10.0.0.2'),
  srcPort: 1,
  dstPort: 2,
  payload: Uint8Array.of(1, 2, 3),
});
const udp6Frame = buildUdpFrame({
  srcMac: '02:00:00:00:00:01',
  dstMac: '02:00:00:00:00:02',
  src: v6a,
  dst: v6b,
  srcPort: 1,
  dstPort: 2,
  payload: Uint8Array.of(4),
});
const vlanFrame = fromHex('ffffffffffff 020000000001 8100 b064 0806' + toHex(KERNEL.arpRequest.subarray(14)));
const ipWithOptions = fromHex('4600001e 00000000 4002 0000 0a000001 e0000016 94040000 aabbccdddead');
const ns = KERNEL.neighborSolicitation.subarray(54);
const na = buildNeighborAdvertisement({
  src: v6b,
  dst: v6a,
  target: v6b,
  targetLinkLayer: '02:00:00:00:00:78',
  solicited: true,
  override: false,
});
const nsWithNonce = fromHex('87000000 00000000' + toHex(v6b) + '0e01aabbccddeeff 010102000000000a');

const FRAMES = [...Object.values(KERNEL), udp4Frame, udp6Frame, vlanFrame];

interface Target {
  name: string;
  parse: (bytes: Uint8Array) => unknown;
  seeds: Uint8Array[];
  /** First-byte values that steer random input into the interesting code paths. */
  hints: number[];
  /** verify* functions and decodeFrame must never throw at all. */
  total?: boolean;
}

const verifyAddrs4 = { src: parseIPv4Address('10.0.0.1'), dst: parseIPv4Address('10.0.0.2') };

const TARGETS: Target[] = [
  { name: 'parseEthernet', parse: parseEthernet, seeds: FRAMES, hints: [0xff] },
  {
    name: 'parseIPv4',
    parse: parseIPv4,
    seeds: [KERNEL.icmpEchoRequest.subarray(14), udp4Frame.subarray(14), ipWithOptions],
    hints: [0x45, 0x46, 0x4f],
  },
  {
    name: 'parseIPv6',
    parse: parseIPv6,
    seeds: [KERNEL.icmpv6EchoRequest.subarray(14), KERNEL.neighborSolicitation.subarray(14)],
    hints: [0x60],
  },
  { name: 'parseUdp', parse: parseUdp, seeds: [udp4Frame.subarray(34), udp6Frame.subarray(54)], hints: [0] },
  { name: 'parseArp', parse: parseArp, seeds: [KERNEL.arpRequest.subarray(14)], hints: [0] },
  { name: 'parseIcmp', parse: parseIcmp, seeds: [KERNEL.icmpEchoRequest.subarray(34)], hints: [0, 3, 8] },
  {
    name: 'parseIcmpEcho',
    parse: parseIcmpEcho,
    seeds: [KERNEL.icmpEchoRequest.subarray(34), KERNEL.icmpEchoReply.subarray(34)],
    hints: [0, 8],
  },
  { name: 'parseIcmpv6', parse: parseIcmpv6, seeds: [ns], hints: [128, 135] },
  {
    name: 'parseIcmpv6Echo',
    parse: parseIcmpv6Echo,
    seeds: [KERNEL.icmpv6EchoRequest.subarray(54)],
    hints: [128, 129],
  },
  {
    name: 'parseNeighborSolicitation',
    parse: parseNeighborSolicitation,
    seeds: [ns, nsWithNonce],
    hints: [135],
  },
  { name: 'parseNeighborAdvertisement', parse: parseNeighborAdvertisement, seeds: [na], hints: [136] },
  { name: 'decodeFrame', parse: decodeFrame, seeds: FRAMES, hints: [0xff, 0x33], total: true },
  {
    name: 'verifyIPv4Checksum',
    parse: verifyIPv4Checksum,
    seeds: [udp4Frame.subarray(14)],
    hints: [0x45],
    total: true,
  },
  {
    name: 'verifyUdpChecksum',
    parse: (b) => verifyUdpChecksum(b, verifyAddrs4.src, verifyAddrs4.dst),
    seeds: [udp4Frame.subarray(34)],
    hints: [0],
    total: true,
  },
  {
    name: 'verifyIcmpChecksum',
    parse: verifyIcmpChecksum,
    seeds: [KERNEL.icmpEchoRequest.subarray(34)],
    hints: [8],
    total: true,
  },
  {
    name: 'verifyIcmpv6Checksum',
    parse: (b) => verifyIcmpv6Checksum(b, v6a, v6b),
    seeds: [ns],
    hints: [135],
    total: true,
  },
];

/** A JSON-able picture of a result; every Uint8Array must be a view inside `input`. */
function normalize(value: unknown, input: Uint8Array): unknown {
  if (value instanceof Uint8Array) {
    const start = value.byteOffset - input.byteOffset;
    if (value.buffer !== input.buffer || start < 0 || start + value.length > input.length) {
      throw new Error(`view [${start}, ${start + value.length}) lies outside the ${input.length}-byte input`);
    }
    return { at: start, hex: toHex(value) };
  }
  if (isTapError(value)) {
    if (value.code !== TapErrorCode.MALFORMED) throw new Error(`decodeFrame reported ${value.code}`);
    return { error: value.code, message: value.message };
  }
  if (Array.isArray(value)) return value.map((v) => normalize(v, input));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v, input)]));
  }
  return value;
}

function outcome(target: Target, bytes: Uint8Array): string {
  let result: unknown;
  try {
    result = { value: target.parse(bytes) };
  } catch (err) {
    if (target.total || !isTapError(err, TapErrorCode.MALFORMED)) {
      throw new Error(`${target.name} threw ${String(err)} for ${toHex(bytes)}`, { cause: err });
    }
    return JSON.stringify({ thrown: err.code, message: err.message });
  }
  return JSON.stringify(normalize(result, bytes));
}

/** `bytes` behind a Proxy that throws on reads outside [0, length). */
function strict(bytes: Uint8Array): Uint8Array {
  return new Proxy(bytes, {
    get(target, prop): unknown {
      if (
        typeof prop === 'string' &&
        /^-?\d+$/.test(prop) &&
        !(Number(prop) >= 0 && Number(prop) < target.length)
      ) {
        throw new Error(`out-of-bounds read at index ${prop} of ${target.length}`);
      }
      const value: unknown = Reflect.get(target, prop); // `this` = the real array for getters
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function* inputs(target: Target, rand: () => number): Generator<Uint8Array> {
  for (let n = 0; n < 1500; n++) {
    const bytes = randomBytes(rand, Math.floor(rand() * 100));
    if (bytes.length > 0 && rand() < 0.6) bytes[0] = target.hints[Math.floor(rand() * target.hints.length)]!;
    yield bytes;
  }
  for (const seed of target.seeds) for (let n = 0; n <= seed.length; n++) yield seed.subarray(0, n);
  for (let n = 0; n < 1500; n++) {
    const seed = target.seeds[Math.floor(rand() * target.seeds.length)]!;
    const bytes = seed.slice();
    for (let flips = 1 + Math.floor(rand() * 4); flips > 0 && bytes.length > 0; flips--) {
      const r = rand();
      bytes[Math.floor(rand() * bytes.length)] = r < 0.2 ? 0 : r < 0.4 ? 0xff : Math.floor(rand() * 256);
    }
    const cut = rand();
    if (cut < 0.3) yield bytes.subarray(0, Math.floor(rand() * bytes.length));
    else if (cut < 0.4) yield Uint8Array.from([...bytes, ...randomBytes(rand, 1 + Math.floor(rand() * 16))]);
    else yield bytes;
  }
}

describe('fuzz: parsers return or throw MALFORMED, in bounds', () => {
  for (const [i, target] of TARGETS.entries()) {
    it(`${target.name}`, () => {
      const rand = prng(0x7a9 + i);
      let calls = 0;
      let thrown = 0;
      for (const bytes of inputs(target, rand)) {
        const copy = bytes.slice();
        const view = inSlab(bytes, rand, 1 + Math.floor(rand() * 7), 64);
        const expected = outcome(target, copy);
        for (const [how, input] of [
          ['in a slab', view],
          ['under bounds checks', strict(copy)],
        ] as const) {
          const actual = outcome(target, input);
          if (actual !== expected) {
            throw new Error(
              `${target.name} differs ${how} for ${toHex(copy)}:\n${actual}\nvs copy:\n${expected}`,
            );
          }
        }
        if (toHex(view) !== toHex(copy)) throw new Error(`${target.name} wrote into its input`);
        calls++;
        if (expected.startsWith('{"thrown"')) thrown++;
      }
      expect(calls).toBeGreaterThan(3000);
      // The corpus must reach both outcomes, or it tests nothing.
      if (!target.total) expect(thrown).toBeGreaterThan(0);
      if (!target.total) expect(thrown).toBeLessThan(calls);
    });
  }
});
