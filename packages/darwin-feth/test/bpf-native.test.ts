/**
 * The native BPF record walker (native-common/tapkit/bpf_records.h: what a native pipe reading
 * the BPF fd runs) against the TypeScript one (src/bpf.ts, the spec), on crafted and random
 * buffers. The C++ runs on Linux, built with -fsanitize=address,undefined, from allocations of
 * exactly each buffer's size at aligned and unaligned addresses: a read past a record's end or
 * an unaligned load fails the run. Each frame is also asked for twice, as the pipe does when its
 * destination says EAGAIN: same frame, nothing counted twice.
 */
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '@tapkit/test-support';
import { SANITIZED_PROBLEM, buildSanitized } from '@tapkit/test-support/sanitized';
import { walkBpfBuffer } from '../src/bpf.js';

interface NativeWalk {
  frames: [number, number][];
  truncated: number;
  runts: number;
  malformedAt: number;
}

let driver = '';

/** Walks every buffer with the C++ walker (one process for all). */
function walkNative(buffers: readonly Uint8Array[]): NativeWalk[] {
  const parts: Uint8Array[] = [];
  for (const b of buffers) {
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, b.length, true);
    parts.push(length, b);
  }
  const out = execFileSync(driver, [], { input: Buffer.concat(parts), maxBuffer: 64 << 20 });
  return out
    .toString()
    .trim()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as NativeWalk);
}

/** What the TypeScript walker says, in the driver's terms. */
function walkTs(buffer: Uint8Array) {
  const walk = walkBpfBuffer(buffer);
  return {
    frames: walk.frames.map((f) => [f.byteOffset - buffer.byteOffset, f.length]),
    truncated: walk.truncated,
    runts: walk.runts,
    malformed: walk.error !== undefined,
  };
}

function expectAgreement(buffers: readonly Uint8Array[]): NativeWalk[] {
  const native = walkNative(buffers);
  expect(native).toHaveLength(buffers.length);
  buffers.forEach((buffer, i) => {
    const n = native[i]!;
    expect({
      frames: n.frames,
      truncated: n.truncated,
      runts: n.runts,
      malformed: n.malformedAt >= 0,
    }).toEqual(walkTs(buffer));
  });
  return native;
}

interface Rec {
  length: number;
  caplen?: number;
  datalen?: number;
  hdrlen?: number;
}

/** Packs records as catchpacket does (or as told: any field may lie). */
function pack(records: readonly Rec[], { padLast = false } = {}): Uint8Array {
  const starts: number[] = [];
  let size = 0;
  for (const r of records) {
    size = (size + 3) & ~3;
    starts.push(size);
    size += (r.hdrlen ?? 18) + Math.min(r.caplen ?? r.length, r.length);
  }
  if (padLast) size = (size + 3) & ~3;
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  records.forEach((r, i) => {
    const at = starts[i]!;
    const hdrlen = r.hdrlen ?? 18;
    view.setUint32(at + 8, r.caplen ?? r.length, true);
    view.setUint32(at + 12, r.datalen ?? r.length, true);
    view.setUint16(at + 16, hdrlen, true);
    buf.fill(i + 1, at + hdrlen, at + hdrlen + Math.min(r.caplen ?? r.length, r.length));
  });
  return buf;
}

describe.skipIf(SANITIZED_PROBLEM !== undefined)('the native BPF record walker (ASan + UBSan)', () => {
  beforeAll(() => {
    driver = buildSanitized('bpf_walk.cc');
  }, 120_000);

  it('finds the frames the TypeScript walker finds in well-formed reads', () => {
    const native = expectAgreement([
      pack([{ length: 60 }, { length: 61 }, { length: 63 }, { length: 1514 }, { length: 14 }]),
      pack([
        { length: 60, hdrlen: 20 },
        { length: 64, hdrlen: 26 },
      ]),
      pack([{ length: 61 }], { padLast: true }),
      pack([{ length: 9000 }, { length: 16384 }]),
    ]);
    expect(native[0]!.frames).toEqual([
      [18, 60],
      [98, 61],
      [178, 63],
      [262, 1514],
      [1794, 14],
    ]);
  });

  it('reads records at odd offsets: odd bh_hdrlen puts frames and later headers off alignment', () => {
    const native = expectAgreement([
      pack([
        { length: 61, hdrlen: 19 },
        { length: 60, hdrlen: 21 },
        { length: 15, hdrlen: 23 },
      ]),
      pack([{ length: 14, hdrlen: 65535 - 14 }]),
    ]);
    expect(native[0]!.frames).toEqual([
      [19, 61],
      [101, 60],
      [187, 15],
    ]);
  });

  it('skips and counts truncated records (caplen < datalen) and runts, and walks on', () => {
    const native = expectAgreement([
      pack([
        { length: 60 },
        { length: 1514, caplen: 100 },
        { length: 13 },
        { length: 0 },
        { length: 70, caplen: 10 },
        { length: 62 },
      ]),
      pack([{ length: 1514, caplen: 0 }]),
    ]);
    expect(native[0]).toMatchObject({ truncated: 2, runts: 2, malformedAt: -1 });
    expect(native[0]!.frames.map(([, length]) => length)).toEqual([60, 62]);
    expect(native[1]).toMatchObject({ frames: [], truncated: 1, runts: 0 });
  });

  it('stops at a record that does not fit, keeping the frames before it', () => {
    const good = pack([{ length: 60 }, { length: 61 }]);
    const lies = [
      pack([{ length: 60 }, { length: 60, caplen: 61 }]), // caplen > datalen
      pack([{ length: 60 }, { length: 60, hdrlen: 17 }]), // hdrlen smaller than the fields
      pack([{ length: 60 }, { length: 60, hdrlen: 0 }]),
      pack([{ length: 60 }, { length: 60, caplen: 0xffffffff, datalen: 0xffffffff }]),
      pack([{ length: 60 }, { length: 60, hdrlen: 0xffff }]).subarray(0, 200),
    ];
    const native = expectAgreement([...lies, new Uint8Array(17), new Uint8Array(1), new Uint8Array(0)]);
    for (const walk of native.slice(0, lies.length)) {
      expect(walk.frames).toEqual([[18, 60]]);
      expect(walk.malformedAt).toBe(80);
    }
    expect(native.slice(lies.length).map((w) => w.malformedAt)).toEqual([0, 0, -1]);
    // Every prefix of a good read: a record cut short anywhere is malformed, never over-read.
    expectAgreement(Array.from({ length: good.length + 1 }, (_, n) => good.slice(0, n)));
  });

  it('agrees with the TypeScript walker on garbage and on mutated reads', () => {
    const random = seededRandom(13);
    const byte = () => Math.floor(random() * 256);
    const buffers: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) buffers.push(Uint8Array.from({ length: Math.floor(random() * 200) }, byte));
    for (let i = 0; i < 700; i++) {
      const records = Array.from({ length: 1 + Math.floor(random() * 6) }, () => ({
        length: Math.floor(random() * 200),
        hdrlen: 18 + Math.floor(random() * 8),
      }));
      const buffer = pack(records, { padLast: random() < 0.5 });
      // A few bytes of the headers (or anything) set to something else.
      for (let k = Math.floor(random() * 4); k > 0; k--) {
        buffer[Math.floor(random() * buffer.length)] = random() < 0.5 ? byte() : 0xff;
      }
      buffers.push(random() < 0.2 ? buffer.subarray(0, Math.floor(random() * buffer.length)) : buffer);
    }
    const native = expectAgreement(buffers);
    expect(native.some((w) => w.malformedAt >= 0)).toBe(true);
    expect(native.some((w) => w.truncated > 0)).toBe(true);
    expect(native.filter((w) => w.frames.length > 1).length).toBeGreaterThan(100);
  });
});
