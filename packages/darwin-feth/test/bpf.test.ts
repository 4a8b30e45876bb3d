import { describe, expect, it } from 'vitest';
import { seededRandom } from '@tapkit/test-support';
import { isTapError, TapErrorCode } from '@tapkit/core';
import { walkBpfBatch, walkBpfBuffer } from '../src/bpf.js';

interface Rec {
  frame: Uint8Array;
  /** Bytes captured (default: all). */
  caplen?: number;
  hdrlen?: number;
}

/** Packs records as darwin's catchpacket does: bpf_hdr, padding to hdrlen, data, 4-byte alignment. */
function pack(records: Rec[], { padLast = false } = {}): Uint8Array {
  const parts: number[] = [];
  let size = 0;
  for (const r of records) {
    size = (size + 3) & ~3;
    parts.push(size);
    size += (r.hdrlen ?? 18) + (r.caplen ?? r.frame.length);
  }
  if (padLast) size = (size + 3) & ~3;
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  records.forEach((r, i) => {
    const at = parts[i]!;
    const hdrlen = r.hdrlen ?? 18;
    const caplen = r.caplen ?? r.frame.length;
    view.setInt32(at, 1_700_000_000, true);
    view.setInt32(at + 4, 123_456, true);
    view.setUint32(at + 8, caplen, true);
    view.setUint32(at + 12, r.frame.length, true);
    view.setUint16(at + 16, hdrlen, true);
    buf.set(r.frame.subarray(0, caplen), at + hdrlen);
  });
  return buf;
}

function frame(size: number, fill: number): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

describe('walkBpfBuffer', () => {
  it('returns every frame of a read, at hdrlen 18 and 4-byte aligned record starts', () => {
    const frames = [frame(60, 1), frame(61, 2), frame(63, 3), frame(1514, 4), frame(14, 5)];
    const walk = walkBpfBuffer(pack(frames.map((f) => ({ frame: f }))));
    expect(walk.error).toBeUndefined();
    expect(walk.frames.map((f) => [f.length, f[0]])).toEqual(frames.map((f) => [f.length, f[0]]));
    expect(walk.truncated).toBe(0);
  });

  it('honours each record’s own hdrlen (not sizeof(struct bpf_hdr))', () => {
    const walk = walkBpfBuffer(
      pack([
        { frame: frame(60, 7), hdrlen: 20 },
        { frame: frame(64, 8), hdrlen: 26 },
      ]),
    );
    expect(walk.error).toBeUndefined();
    expect(walk.frames.map((f) => [f.length, f[0], f[59]])).toEqual([
      [60, 7, 7],
      [64, 8, 8],
    ]);
  });

  it('gives views into the buffer, not copies', () => {
    const buf = pack([{ frame: frame(60, 9) }]);
    const [f] = walkBpfBuffer(buf).frames;
    expect(f!.buffer).toBe(buf.buffer);
    expect(f!.byteOffset).toBe(18);
  });

  it('walks a buffer whose last record is padded too, and an empty one', () => {
    expect(walkBpfBuffer(pack([{ frame: frame(61, 1) }], { padLast: true })).frames).toHaveLength(1);
    expect(walkBpfBuffer(new Uint8Array(0))).toMatchObject({ frames: [], error: undefined });
  });

  it('drops and counts truncated records (caplen < datalen) and runts, and keeps walking', () => {
    const walk = walkBpfBuffer(
      pack([
        { frame: frame(60, 1) },
        { frame: frame(3000, 2), caplen: 2048 },
        { frame: frame(10, 3) },
        { frame: frame(0, 0) },
        { frame: frame(70, 4) },
      ]),
    );
    expect(walk.error).toBeUndefined();
    expect(walk.frames.map((f) => f[0])).toEqual([1, 4]);
    expect(walk.truncated).toBe(1);
    expect(walk.runts).toBe(2);
  });

  it('stops with ERR_TAP_MALFORMED at a record that does not fit, keeping the frames before it', () => {
    const good = pack([{ frame: frame(60, 1) }, { frame: frame(60, 2) }]);
    const cut = good.subarray(0, good.length - 1); // the second frame lost its last byte
    const walk = walkBpfBuffer(cut);
    expect(walk.frames.map((f) => f[0])).toEqual([1]);
    expect(isTapError(walk.error, TapErrorCode.MALFORMED)).toBe(true);
    expect(walk.error!.message).toMatch(/offset 80/);
  });

  it.each([
    ['a header cut short', (b: Uint8Array) => b.subarray(0, 10)],
    ['hdrlen 0 (would never advance)', (b: Uint8Array) => (new DataView(b.buffer).setUint16(16, 0, true), b)],
    ['hdrlen 17', (b: Uint8Array) => (new DataView(b.buffer).setUint16(16, 17, true), b)],
    ['hdrlen 65535', (b: Uint8Array) => (new DataView(b.buffer).setUint16(16, 0xffff, true), b)],
    ['caplen 0xffffffff', (b: Uint8Array) => (new DataView(b.buffer).setUint32(8, 0xffffffff, true), b)],
    ['caplen > datalen', (b: Uint8Array) => (new DataView(b.buffer).setUint32(12, 10, true), b)],
  ])('refuses %s', (_, corrupt) => {
    const walk = walkBpfBuffer(corrupt(pack([{ frame: frame(60, 1) }])));
    expect(walk.frames).toEqual([]);
    expect(isTapError(walk.error, TapErrorCode.MALFORMED)).toBe(true);
  });
});

describe('walkBpfBatch', () => {
  it('walks each read of a batch on its own', () => {
    const a = pack([{ frame: frame(60, 1) }, { frame: frame(61, 2) }]);
    const b = pack([{ frame: frame(62, 3) }]); // starts at an offset that is not a multiple of 4
    const batch = new Uint8Array(a.length + b.length);
    batch.set(a);
    batch.set(b, a.length);
    const walk = walkBpfBatch(batch.buffer, Uint32Array.of(a.length, a.length + b.length));
    expect(walk.error).toBeUndefined();
    expect(walk.frames.map((f) => [f[0], f.length])).toEqual([
      [1, 60],
      [2, 61],
      [3, 62],
    ]);
  });

  it('keeps walking the next read after a malformed one', () => {
    const a = pack([{ frame: frame(60, 1) }]).subarray(0, 40);
    const b = pack([{ frame: frame(62, 3) }]);
    const batch = new Uint8Array(a.length + b.length);
    batch.set(a);
    batch.set(b, a.length);
    const walk = walkBpfBatch(batch.buffer, [a.length, a.length + b.length]);
    expect(walk.frames.map((f) => f[0])).toEqual([3]);
    expect(isTapError(walk.error, TapErrorCode.MALFORMED)).toBe(true);
  });

  it('refuses read boundaries outside the buffer or going backwards', () => {
    const buf = pack([{ frame: frame(60, 1) }]).buffer as ArrayBuffer;
    for (const ends of [[buf.byteLength + 1], [40, 20], [NaN], [-1]]) {
      const walk = walkBpfBatch(buf, ends);
      expect(isTapError(walk.error, TapErrorCode.MALFORMED)).toBe(true);
    }
  });
});

describe('walker fuzzing (seeded)', () => {
  /** Checks the walk's invariants: no throw, frames inside the buffer, no more frames than room for. */
  function check(bytes: Uint8Array): void {
    const walk = walkBpfBuffer(bytes);
    expect(walk.frames.length + walk.truncated + walk.runts).toBeLessThanOrEqual(
      Math.ceil(bytes.length / 20),
    );
    for (const f of walk.frames) {
      expect(f.buffer).toBe(bytes.buffer);
      expect(f.byteOffset).toBeGreaterThanOrEqual(bytes.byteOffset + 18);
      expect(f.byteOffset + f.byteLength).toBeLessThanOrEqual(bytes.byteOffset + bytes.byteLength);
      expect(f.byteLength).toBeGreaterThanOrEqual(14);
    }
    if (walk.error) expect(isTapError(walk.error, TapErrorCode.MALFORMED)).toBe(true);
  }

  it('survives random bytes', () => {
    const random = seededRandom(1);
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256));
      check(bytes);
    }
  });

  it('survives random bytes shaped like headers with hostile lengths', () => {
    const random = seededRandom(2);
    const hostile = [0, 1, 13, 17, 18, 19, 20, 0xffff, 0xfffe, 0x7fffffff, 0xffffffff, 0x80000000];
    const pick = () =>
      random() < 0.5 ? hostile[Math.floor(random() * hostile.length)]! : Math.floor(random() * 400);
    for (let i = 0; i < 2000; i++) {
      const bytes = new Uint8Array(Math.floor(random() * 512));
      const view = new DataView(bytes.buffer);
      for (let at = 0; at + 18 <= bytes.length; at += 4 * (1 + Math.floor(random() * 30))) {
        view.setUint32(at + 8, pick() >>> 0, true);
        view.setUint32(at + 12, pick() >>> 0, true);
        view.setUint16(at + 16, pick() & 0xffff, true);
      }
      check(bytes);
    }
  });

  it('on valid buffers cut or corrupted anywhere, returns frames and at most an error', () => {
    const random = seededRandom(3);
    for (let i = 0; i < 1000; i++) {
      const records = Array.from({ length: 1 + Math.floor(random() * 8) }, (_, k) => {
        const size = Math.floor(random() * 200);
        const r: Rec = { frame: frame(size, k + 1) };
        if (random() < 0.2) r.caplen = Math.floor(random() * size);
        return r;
      });
      const buf = pack(records);
      const whole = walkBpfBuffer(buf);
      expect(whole.error).toBeUndefined();
      expect(whole.frames.length + whole.truncated + whole.runts).toBe(records.length);
      // Cut at a random point: the frames before the cut survive, nothing reads past the end.
      check(buf.subarray(0, Math.floor(random() * buf.length)));
      // Corrupt random bytes.
      const bad = Uint8Array.from(buf);
      for (let k = 0; k < 4; k++) bad[Math.floor(random() * bad.length)] = Math.floor(random() * 256);
      check(bad);
    }
  });

  it('walks 64 KiB of minimal records, 20 bytes each, in one pass', () => {
    const bytes = new Uint8Array(20 * 3276);
    const view = new DataView(bytes.buffer);
    for (let at = 0; at + 20 <= bytes.length; at += 20) view.setUint16(at + 16, 18, true); // caplen 0
    const walk = walkBpfBuffer(bytes);
    expect(walk.error).toBeUndefined();
    expect(walk.runts).toBe(3276);
    // And zeros (hdrlen 0 at offset 0) are refused at once rather than looped over.
    expect(isTapError(walkBpfBuffer(new Uint8Array(64 * 1024)).error, TapErrorCode.MALFORMED)).toBe(true);
  });
});
