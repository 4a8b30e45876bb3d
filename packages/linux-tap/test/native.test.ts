/**
 * The addon's data path, unprivileged: TapHandles over a SOCK_SEQPACKET pair, which keeps frame
 * boundaries as a tap fd does. Batching, slabs, the write queue, pause, close and errors.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadAddon, type RawHandleOptions, type RawSystemError, type RawTapHandle } from '../src/addon.js';
import { FIXTURES, PACKAGE_ROOT, fdCount, waitFor } from './helpers.js';

const addon = loadAddon();

interface Endpoint {
  handle: RawTapHandle;
  frames: Uint8Array[];
  batches: number[];
  drains: number;
  errors: RawSystemError[];
}

function endpoint(
  fd: number,
  options: Partial<RawHandleOptions> = {},
  onBatch?: (e: Endpoint) => void,
): Endpoint {
  const batchFrames = options.batchFrames ?? 64;
  const offsets = new Uint32Array(batchFrames + 1);
  const e: Endpoint = {
    handle: undefined as unknown as RawTapHandle,
    frames: [],
    batches: [],
    drains: 0,
    errors: [],
  };
  e.handle = new addon.TapHandle({
    fd,
    batchFrames,
    offsets,
    frameReserve: 1518,
    slabBytes: 128 * 1024,
    onRead(slab, count) {
      for (let i = 0; i < count; i++) {
        const start = offsets[i]!;
        e.frames.push(new Uint8Array(slab, start, offsets[i + 1]! - start));
      }
      e.batches.push(count);
      onBatch?.(e);
    },
    onDrain() {
      e.drains++;
    },
    onError(error) {
      e.errors.push(error);
    },
    ...options,
  });
  return e;
}

function pair(
  a: Partial<RawHandleOptions> = {},
  b: Partial<RawHandleOptions> = {},
  onBatch?: (e: Endpoint) => void,
) {
  const [fa, fb] = addon.seqpacketPair();
  return [endpoint(fa, a), endpoint(fb, b, onBatch)] as const;
}

/** A frame whose bytes say its sequence number and length. */
function frame(seq: number, length: number): Uint8Array {
  const f = new Uint8Array(length);
  new DataView(f.buffer).setUint32(0, seq);
  for (let i = 4; i < length; i++) f[i] = (seq * 7 + i) & 0xff;
  return f;
}

function checkFrame(f: Uint8Array, seq: number, length: number): void {
  expect(f.length).toBe(length);
  expect(new DataView(f.buffer, f.byteOffset, 4).getUint32(0)).toBe(seq);
  for (let i = 4; i < length; i++)
    if (f[i] !== ((seq * 7 + i) & 0xff)) throw new Error(`frame ${seq} byte ${i} differs`);
}

const sizeOf = (seq: number): number => 14 + ((seq * 37) % 1500);

describe('TapHandle data path (socketpair)', () => {
  it('delivers frames in batches, in order, intact, in memory never reused', async () => {
    const [a, b] = pair();
    try {
      b.handle.resume();
      const sent = 1000;
      for (let s = 0; s < sent; s += 50) {
        const batch = [];
        for (let k = s; k < s + 50; k++) batch.push(frame(k, sizeOf(k)));
        expect(a.handle.writeBatch(batch)).toBe(0);
        await new Promise((r) => setImmediate(r));
      }
      await waitFor(() => b.frames.length === sent, 5000, 'all frames');
      b.frames.forEach((f, i) => checkFrame(f, i, sizeOf(i)));
      expect(Math.max(...b.batches)).toBeLessThanOrEqual(64);
      expect(b.batches.length).toBeLessThan(sent); // batched, not one call per frame
      // Frames sharing a slab never overlap: no region was handed out twice.
      const bySlab = new Map<ArrayBufferLike, [number, number][]>();
      for (const f of b.frames) {
        const ranges = bySlab.get(f.buffer) ?? [];
        ranges.push([f.byteOffset, f.byteOffset + f.length]);
        bySlab.set(f.buffer, ranges);
      }
      for (const ranges of bySlab.values()) {
        ranges.sort((x, y) => x[0] - y[0]);
        for (let i = 1; i < ranges.length; i++)
          expect(ranges[i]![0]).toBeGreaterThanOrEqual(ranges[i - 1]![1]);
      }
      expect(bySlab.size).toBeLessThan(sent / 10); // slabs are shared by many frames
    } finally {
      a.handle.close();
      b.handle.close();
    }
  });

  it('reads a frame larger than the reserve whole (the spill path)', async () => {
    const [a, b] = pair({}, { frameReserve: 100, slabBytes: 300 });
    try {
      b.handle.resume();
      const sizes = [20, 1000, 50, 299, 300, 301, 9000, 14, 60000, 70];
      sizes.forEach((n, i) => a.handle.write(frame(i, n)));
      await waitFor(() => b.frames.length === sizes.length, 5000, 'all frames');
      b.frames.forEach((f, i) => checkFrame(f, i, sizes[i]!));
    } finally {
      a.handle.close();
      b.handle.close();
    }
  });

  it('queues writes on EAGAIN, keeps their order, and reports the drain', async () => {
    const [a, b] = pair();
    try {
      const total = 3000;
      let maxQueued = 0;
      for (let i = 0; i < total; i++) maxQueued = Math.max(maxQueued, a.handle.write(frame(i, 1000)));
      expect(maxQueued).toBeGreaterThan(0); // the peer reads nothing yet: the socket filled up
      expect(a.drains).toBe(0);
      b.handle.resume();
      await waitFor(() => b.frames.length === total, 10_000, 'all frames');
      await waitFor(() => a.drains === 1, 2000, 'drain');
      b.frames.forEach((f, i) => checkFrame(f, i, 1000));
      expect(a.handle.write(frame(0, 100))).toBe(0);
    } finally {
      a.handle.close();
      b.handle.close();
    }
  });

  it('close() drops what is still queued and says how many: every frame is accounted for', async () => {
    const [a, b] = pair();
    try {
      const total = 3000;
      for (let i = 0; i < total; i++) a.handle.write(frame(i, 1000));
      const unsent = a.handle.close();
      expect(unsent).toBeGreaterThan(0); // the peer read nothing: the socket filled up
      expect(a.handle.close()).toBe(0);
      b.handle.resume();
      await waitFor(() => b.errors.length > 0, 10_000, 'the end of the socket');
      expect(b.frames.length).toBe(total - unsent);
      expect(b.errors.map((e) => [e.code, e.syscall])).toEqual([['EPIPE', 'read']]);
      b.frames.forEach((f, i) => checkFrame(f, i, 1000));
    } finally {
      b.handle.close();
    }
  });

  it('pause stops delivery and resume restarts it', async () => {
    const [a, b] = pair();
    try {
      b.handle.resume();
      a.handle.write(frame(0, 100));
      await waitFor(() => b.frames.length === 1, 2000, 'first frame');
      b.handle.pause();
      a.handle.write(frame(1, 100));
      await new Promise((r) => setTimeout(r, 100));
      expect(b.frames.length).toBe(1);
      b.handle.resume();
      await waitFor(() => b.frames.length === 2, 2000, 'second frame');
    } finally {
      a.handle.close();
      b.handle.close();
    }
  });

  it('can be closed inside its own callback, twice, and refuses writes after', async () => {
    const [a, b] = pair({}, {}, (e) => {
      e.handle.close();
      e.handle.close();
    });
    try {
      b.handle.resume();
      a.handle.writeBatch([frame(0, 100), frame(1, 100), frame(2, 100)]);
      await waitFor(() => b.batches.length === 1, 2000, 'a batch');
      await new Promise((r) => setTimeout(r, 100));
      expect(b.batches.length).toBe(1);
      let error: RawSystemError | undefined;
      try {
        b.handle.write(frame(0, 100));
      } catch (e) {
        error = e as RawSystemError;
      }
      expect(error).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'write' });
      b.handle.pause();
      b.handle.resume();
      b.handle.ref();
      b.handle.unref();
    } finally {
      a.handle.close();
      b.handle.close();
    }
  });

  it('keeps writing safely into fresh memory after JS transfers a slab away', async () => {
    let kept: ArrayBuffer | undefined;
    let keptCopy: Uint8Array | undefined;
    const [a, b] = pair({}, {}, (e) => {
      if (kept !== undefined) return;
      const slab = e.frames[0]!.buffer as ArrayBuffer;
      keptCopy = new Uint8Array(slab).slice();
      kept = structuredClone(slab, { transfer: [slab] }); // detaches the addon's slab
    });
    try {
      b.handle.resume();
      a.handle.write(frame(0, 500));
      await waitFor(() => kept !== undefined, 2000, 'first batch');
      for (let i = 1; i < 200; i++) a.handle.write(frame(i, 500));
      await waitFor(() => b.frames.length === 200, 5000, 'all frames');
      b.frames.slice(1).forEach((f, i) => checkFrame(f, i + 1, 500));
      // Nothing was written into the transferred memory.
      expect(Buffer.from(kept!).equals(Buffer.from(keptCopy!.buffer))).toBe(true);
    } finally {
      a.handle.close();
      b.handle.close();
    }
  });

  it('reports an fd error while frames are queued through onError, shaped as a system error', async () => {
    const [a, b] = pair();
    try {
      for (let i = 0; i < 1000; i++) a.handle.write(frame(i, 1000));
      b.handle.close(); // the peer goes: the socket reports an error (ECONNRESET/EPIPE)
      await waitFor(() => a.errors.length > 0, 2000, 'an error');
      expect(['read', 'write']).toContain(a.errors[0]!.syscall);
      expect(typeof a.errors[0]!.code).toBe('string');
      expect(a.errors[0]!.errno).toBeLessThan(0);
    } finally {
      a.handle.close();
    }
  });

  it('checks its options and arguments', () => {
    const [fa, fb] = addon.seqpacketPair();
    const base: RawHandleOptions = {
      fd: fa,
      batchFrames: 4,
      offsets: new Uint32Array(5),
      frameReserve: 1518,
      slabBytes: 4096,
      onRead() {},
      onDrain() {},
      onError() {},
    };
    expect(() => new addon.TapHandle({ ...base, offsets: new Uint32Array(4) })).toThrow(TypeError);
    expect(() => new addon.TapHandle({ ...base, batchFrames: 0 })).toThrow(RangeError);
    expect(() => new addon.TapHandle({ ...base, slabBytes: 100 })).toThrow(RangeError);
    const h = new addon.TapHandle(base);
    expect(() => h.write('x' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => h.writeBatch([new Uint16Array(8) as unknown as Uint8Array])).toThrow(TypeError);
    h.close();
    new addon.TapHandle({ ...base, fd: fb }).close();
  });

  it('closes its fds at exit of a worker thread that never closed them', async () => {
    const before = fdCount();
    const worker = new Worker(`${FIXTURES}worker-handle.mjs`, {
      workerData: { root: PACKAGE_ROOT, tap: false },
    });
    const message = await new Promise<unknown>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(message).toMatchObject({ opened: true });
    await worker.terminate();
    await waitFor(() => fdCount() <= before, 2000, 'fds closed');
  });

  // A worker ending with handles open and busy used to take the whole process down: libuv ran
  // a handle's close callback after the worker's environment was gone and the addon unloaded
  // (SIGSEGV); a terminate() during a callback aborted in node-addon-api. Each case runs 20
  // workers in a child process of its own, so a crash fails the test instead of the runner.
  for (const how of ['exit', 'terminate'] as const) {
    const ending = how === 'exit' ? 'process.exit() in the worker' : 'worker.terminate()';
    it(`survives workers ended by ${ending} with handles open, and leaks no fd`, () => {
      const before = fdCount();
      const result = spawnSync(process.execPath, [`${FIXTURES}worker-exit.mjs`, PACKAGE_ROOT, how, '20'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(result.signal, result.stderr).toBeNull();
      expect(result.status, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout) as { codes: number[]; fdsBefore: number; fdsAfter: number };
      expect(report.codes).toEqual(new Array(20).fill(how === 'exit' ? 0 : 1));
      // The process the workers ran in has every fd of theirs closed, and so has this one.
      expect(report.fdsAfter).toBe(report.fdsBefore);
      expect(fdCount()).toBe(before);
    });
  }

  it('lets the process exit when unref()ed, and reports a throwing callback as uncaught', () => {
    const result = spawnSync(process.execPath, [`${FIXTURES}unref-and-throw.mjs`, PACKAGE_ROOT], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(result.stderr).toBe('');
    expect(result.stdout.trim().split('\n')).toEqual(['uncaught: boom from onRead', 'exited']);
    expect(result.status).toBe(0);
  });
});

/** Threads of this process. */
const threadCount = (): number => readdirSync('/proc/self/task').length;

describe('TapHandle pipe (socketpair)', () => {
  // outside ─ x ══pipe══▶ y ─ inside: frames written on `outside` are read by x's pipe thread
  // and written to y, so `inside` reads them; x's own onRead sees nothing while piped.
  function piped() {
    const [outside, x] = pair();
    const [y, inside] = pair();
    x.handle.resume();
    y.handle.resume();
    inside.handle.resume();
    outside.handle.resume();
    const all = [outside, x, y, inside];
    return { outside, x, y, inside, close: () => all.forEach((e) => e.handle.close()) };
  }

  it('forwards frames on a thread of its own, in order and intact, and counts them', async () => {
    const threads = threadCount();
    const { outside, x, y, inside, close } = piped();
    try {
      x.handle.pipeTo!(y.handle);
      expect(threadCount()).toBe(threads + 1);
      const sent = 2000;
      let bytes = 0;
      for (let i = 0; i < sent; i++) {
        bytes += sizeOf(i);
        outside.handle.write(frame(i, sizeOf(i)));
      }
      await waitFor(() => inside.frames.length === sent, 5000, 'all frames through the pipe');
      inside.frames.forEach((f, i) => checkFrame(f, i, sizeOf(i)));
      expect(x.frames).toHaveLength(0);
      expect(x.handle.pipeCounts!()).toEqual([sent, bytes, 0, 0]);

      // Stopped: the thread is gone, the counts stay, and x reads for JS again.
      x.handle.pipeTo!(null);
      expect(threadCount()).toBe(threads);
      expect(x.handle.pipeCounts!()).toEqual([sent, bytes, 0, 0]);
      outside.handle.write(frame(7, 100));
      await waitFor(() => x.frames.length === 1, 2000, 'a frame for JS');
      checkFrame(x.frames[0]!, 7, 100);
    } finally {
      close();
    }
  });

  it('serves both directions of a relay on one thread; one direction stopped, the other goes on', async () => {
    const threads = threadCount();
    const { outside, x, y, inside, close } = piped();
    try {
      x.handle.pipeTo!(y.handle);
      y.handle.pipeTo!(x.handle);
      expect(threadCount()).toBe(threads + 1);
      outside.handle.write(frame(1, 60));
      inside.handle.write(frame(2, 70));
      await waitFor(() => inside.frames.length === 1 && outside.frames.length === 1, 2000, 'both ways');
      checkFrame(inside.frames[0]!, 1, 60);
      checkFrame(outside.frames[0]!, 2, 70);

      x.handle.pipeTo!(null);
      expect(threadCount()).toBe(threads + 1); // y's direction got a thread of its own
      inside.handle.write(frame(3, 80));
      outside.handle.write(frame(4, 90));
      await waitFor(() => outside.frames.length === 2 && x.frames.length === 1, 2000, 'after the stop');
      checkFrame(outside.frames[1]!, 3, 80);
      checkFrame(x.frames[0]!, 4, 90);
      expect(y.handle.pipeCounts!()[0]).toBe(2);
    } finally {
      close();
    }
    expect(threadCount()).toBe(threads);
  });

  it('holds a frame while the target says EAGAIN and goes on when it drains: none is lost', async () => {
    const { outside, x, y, inside, close } = piped();
    try {
      inside.handle.pause(); // nobody reads inside: y's socket fills up and says EAGAIN
      x.handle.pipeTo!(y.handle);
      const sent = 3000;
      for (let i = 0; i < sent; i++) outside.handle.write(frame(i, 1000));
      await waitFor(() => x.handle.pipeCounts!()[0] > 0, 2000, 'the pipe started');
      await new Promise((r) => setTimeout(r, 100));
      expect(x.handle.pipeCounts!()[0]).toBeLessThan(sent); // held back, not dropped
      inside.handle.resume();
      await waitFor(() => inside.frames.length === sent, 10_000, 'every frame');
      inside.frames.forEach((f, i) => checkFrame(f, i, 1000));
      expect(x.handle.pipeCounts!()).toEqual([sent, sent * 1000, 0, 0]);
    } finally {
      close();
    }
  });

  it('counts frames the target refuses, and goes on', async () => {
    const { outside, x, y, inside, close } = piped();
    try {
      x.handle.pipeTo!(y.handle);
      inside.handle.close(); // y's peer is gone: every write to y fails (EPIPE)
      for (let i = 0; i < 5; i++) outside.handle.write(frame(i, 100));
      await waitFor(() => x.handle.pipeCounts!()[3] === 5, 2000, 'refusals counted');
      expect(x.handle.pipeCounts!().slice(0, 3)).toEqual([0, 0, 0]);
    } finally {
      close();
    }
  });

  it('refuses and counts frames outside the target’s limit (its MTU), as the JS pipe does; a VLAN tag gets 4 bytes more', async () => {
    const { outside, x, y, inside, close } = piped();
    try {
      y.handle.setFrameLimit!(14, 114, 4); // MTU 100: 114 bytes, 118 with a VLAN tag
      x.handle.pipeTo!(y.handle);
      const tagged = (seq: number, length: number) => {
        const f = frame(seq, length);
        f[12] = 0x81; // 802.1Q
        f[13] = 0x00;
        return f;
      };
      const sent = [frame(1, 114), frame(2, 115), frame(3, 13), tagged(4, 118), tagged(5, 119), frame(6, 14)];
      for (const f of sent) outside.handle.write(f);
      await waitFor(
        () => x.handle.pipeCounts!()[0] + x.handle.pipeCounts!()[3] === 6,
        2000,
        'all six handled',
      );
      expect(x.handle.pipeCounts!()).toEqual([3, 114 + 118 + 14, 0, 3]);
      await waitFor(() => inside.frames.length === 3, 2000, 'the three that fit');
      expect(inside.frames.map((f) => f.length)).toEqual([114, 118, 14]);
      // The limit follows the MTU while the pipe runs.
      y.handle.setFrameLimit!(14, 1514, 4);
      outside.handle.write(frame(7, 1000));
      await waitFor(() => inside.frames.length === 4, 2000, 'a frame under the raised limit');
      expect(() => y.handle.setFrameLimit!(-1, 0, 0)).toThrow(RangeError);
    } finally {
      close();
    }
  });

  it('closing the target stops the pipe before its fd closes; the source reads for JS again', async () => {
    const fds = fdCount();
    const threads = threadCount();
    const { outside, x, y, close } = piped();
    try {
      x.handle.pipeTo!(y.handle);
      y.handle.pipeTo!(x.handle);
      y.handle.close();
      expect(threadCount()).toBe(threads);
      outside.handle.write(frame(5, 64));
      await waitFor(() => x.frames.length === 1, 2000, 'a frame for JS');
      checkFrame(x.frames[0]!, 5, 64);
    } finally {
      close();
    }
    expect(fdCount()).toBe(fds);
  });

  it('holds the event loop while piping, as reading would; unref() lets the process exit', () => {
    const run = (how: string) =>
      spawnSync(process.execPath, [`${FIXTURES}pipe-loop.mjs`, PACKAGE_ROOT, how], {
        encoding: 'utf8',
        timeout: 1500,
      });
    const held = run('ref');
    expect(held.stdout.trim()).toBe('piping'); // still running when the timeout killed it
    expect(held.signal).toBe('SIGTERM');
    const unref = run('unref');
    expect(unref.stdout.trim().split('\n')).toEqual(['piping', 'exited']);
    expect(unref.status).toBe(0);
  });

  it('refuses a target that is not an open TapHandle, or itself', () => {
    const { x, y, close } = piped();
    try {
      expect(() => x.handle.pipeTo!({} as RawTapHandle)).toThrow(TypeError);
      expect(() => x.handle.pipeTo!(new Uint8Array(4) as unknown as RawTapHandle)).toThrow(TypeError);
      expect(() => x.handle.pipeTo!(x.handle)).toThrow(RangeError);
      y.handle.close();
      expect(() => x.handle.pipeTo!(y.handle)).toThrow(expect.objectContaining({ code: 'EBADF' }));
      x.handle.pipeTo!(null); // no pipe: a no-op
    } finally {
      close();
    }
  });
});
