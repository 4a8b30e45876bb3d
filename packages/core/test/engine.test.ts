import { describe, expect, it } from 'vitest';
import { createTapDevice } from '../src/engine.js';
import { TapError, TapErrorCode } from '../src/errors.js';
import type { Frame } from '../src/types.js';
import { FakePort, capabilities, code, frame, open, thrownCode } from './fake-port.js';

describe('engine: receiving', () => {
  it('serves a waiting read straight from the batch and queues the rest in order', async () => {
    const { port, device } = open();
    const first = device.read();
    port.sink.receive([frame(1), frame(2), frame(3)]);
    expect((await first)[14]).toBe(1);
    expect((await device.read())[14]).toBe(2);
    expect((await device.readBatch())[0]![14]).toBe(3);
  });

  it('bounds the queue: keeps a batch the port already read, pauses, resumes at half', async () => {
    const { port, device } = open(4);
    port.sink.receive([frame(1), frame(2), frame(3), frame(4), frame(5), frame(6)]);
    expect(port.paused).toBe(true);
    expect(device.stats().drops).toEqual({});
    expect(device.stats().rxFrames).toBe(6);
    port.sink.receive([frame(7), frame(8), frame(9)]); // a batch in flight past the pause
    expect(device.stats().drops).toEqual({});
    // Hard bound: the queue plus 256 frames in flight.
    port.sink.receive(Array.from({ length: 255 }, (_, i) => frame(10 + i)));
    expect(device.stats().drops).toEqual({ rxQueueFull: 4 });
    expect((await device.readBatch(5)).map((f) => f[14])).toEqual([1, 2, 3, 4, 5]);
    await device.readBatch(252);
    expect(port.paused).toBe(true); // 3 of 4 still queued
    expect((await device.read())[14]).toBe(258 & 0xff); // frames 1…260 kept, in order
    expect(port.paused).toBe(false); // resumed at half
    expect(port.resumes).toBe(1);
    expect((await device.readBatch(10)).map((f) => f[14])).toEqual([259 & 0xff, 260 & 0xff]);
  });

  it('drops what does not fit when the port cannot pause, counting it', async () => {
    const port = new FakePort();
    (port as { pause?: unknown }).pause = undefined;
    const device = createTapDevice(port, { backend: 'fake', rxQueueFrames: 2 });
    port.sink.receive([frame(1), frame(2), frame(3)]);
    expect(device.stats()).toMatchObject({ rxFrames: 2, drops: { rxQueueFull: 1 } });
    expect((await device.readBatch()).map((f) => f[14])).toEqual([1, 2]);
  });

  it('readBatch honours max and refuses a bad max', async () => {
    const { port, device } = open();
    port.sink.receive([frame(1), frame(2), frame(3)]);
    expect((await device.readBatch(2)).length).toBe(2);
    expect(await code(device.readBatch(0))).toBe(TapErrorCode.INVALID_ARGUMENT);
    expect(await code(device.readBatch(1.5))).toBe(TapErrorCode.INVALID_ARGUMENT);
  });

  it('switches to flowing mode while a frame listener is attached, handing over what was queued', async () => {
    const { port, device } = open();
    port.sink.receive([frame(1)]);
    const seen: number[] = [];
    const listener = (f: Frame) => seen.push(f[14]!);
    device.on('frame', listener);
    await Promise.resolve();
    port.sink.receive([frame(2), frame(3)]);
    expect(seen).toEqual([1, 2, 3]);
    device.off('frame', listener);
    port.sink.receive([frame(4)]);
    expect((await device.read())[14]).toBe(4);
  });

  it('keeps the rest of a batch when a frame listener removes itself mid-batch (pausing for backpressure)', async () => {
    const { port, device } = open();
    const seen: number[] = [];
    const listener = (f: Frame) => {
      seen.push(f[14]!);
      if (seen.length === 2) device.off('frame', listener);
    };
    device.on('frame', listener);
    port.sink.receive([frame(1), frame(2), frame(3), frame(4)]);
    expect(seen).toEqual([1, 2]);
    expect(device.stats().rxFrames).toBe(4);
    expect(device.stats().drops).toEqual({});
    expect((await device.readBatch(1)).map((f) => f[14])).toEqual([3]);
    // Attached again: the queued frame first, one at a time; removed again after one frame.
    port.sink.receive([frame(5), frame(6)]);
    seen.length = 1;
    device.on('frame', listener);
    await Promise.resolve();
    expect(seen).toEqual([1, 4]);
    expect((await device.readBatch()).map((f) => f[14])).toEqual([5, 6]);
    expect(device.stats().rxFrames).toBe(6);
  });

  it('removes an aborted reader so it consumes no frame', async () => {
    const { port, device } = open();
    const controller = new AbortController();
    const aborted = device.read({ signal: controller.signal });
    controller.abort();
    expect(await code(aborted)).toBe(TapErrorCode.ABORTED);
    port.sink.receive([frame(9)]);
    // An already-aborted signal is refused even when a frame is waiting, and takes none.
    expect(await code(device.read({ signal: AbortSignal.abort() }))).toBe(TapErrorCode.ABORTED);
    expect((await device.read())[14]).toBe(9);
  });

  it("keeps the signal's reason as the abort error's cause: a timeout is told from a user abort", async () => {
    const { device } = open();
    const timedOut = await device.read({ signal: AbortSignal.timeout(1) }).catch((e: unknown) => e);
    expect(timedOut).toMatchObject({ code: TapErrorCode.ABORTED, cause: { name: 'TimeoutError' } });
    expect((timedOut as Error).message).toBe('read() was aborted (TimeoutError)');
    const controller = new AbortController();
    const pending = device.readBatch(4, { signal: controller.signal });
    controller.abort('stop');
    expect(await pending.catch((e: unknown) => e)).toMatchObject({
      code: TapErrorCode.ABORTED,
      cause: 'stop',
    });
    const user = await device.read({ signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect((user as Error).cause).toMatchObject({ name: 'AbortError' });
  });

  it('iterates frames and batches, and ends iteration on close', async () => {
    const { port, device } = open();
    port.sink.receive([frame(1), frame(2)]);
    const seen: number[] = [];
    for await (const f of device) {
      seen.push(f[14]!);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual([1, 2]);
    port.sink.receive([frame(3), frame(4)]);
    const batches = device.batches();
    expect((await batches.next()).value?.length).toBe(2);
    const pending = batches.next();
    await device.close();
    expect(await pending).toEqual({ value: undefined, done: true });
  });
});

describe('engine: writing', () => {
  it('checks frame sizes against the MTU, allowing 4 more bytes for an 802.1Q tag', () => {
    const { port, device } = open();
    expect(device.write(frame(1, 1514))).toBe(true);
    expect(thrownCode(() => device.write(frame(1, 1515)))).toBe(TapErrorCode.FRAME_TOO_LARGE);
    expect(device.write(frame(1, 1518, 0x8100))).toBe(true);
    expect(thrownCode(() => device.write(frame(1, 1519, 0x8100)))).toBe(TapErrorCode.FRAME_TOO_LARGE);
    expect(thrownCode(() => device.write(new Uint8Array(13)))).toBe(TapErrorCode.FRAME_TOO_SHORT);
    expect(thrownCode(() => device.write(null as unknown as Frame))).toBe(TapErrorCode.INVALID_ARGUMENT);
    expect(thrownCode(() => device.writeBatch('x' as unknown as Frame[]))).toBe(
      TapErrorCode.INVALID_ARGUMENT,
    );
    expect(port.written.length).toBe(0); // gathered until this turn ends, or until stats()
    expect(device.stats()).toMatchObject({ txFrames: 2, txBytes: 1514 + 1518 });
    expect(port.written.length).toBe(2);
  });

  it("checks against the port's maxFrameLength instead when it sets one", () => {
    const port = Object.assign(new FakePort(), { maxFrameLength: 65_000 });
    const device = createTapDevice(port, { backend: 'fake' });
    expect(device.write(frame(1, 65_000))).toBe(true);
    expect(device.writeBatch([frame(2, 9000), frame(3, 65_000, 0x8100)])).toBe(true);
    expect(thrownCode(() => device.write(frame(4, 65_001)))).toBe(TapErrorCode.FRAME_TOO_LARGE);
    expect(thrownCode(() => device.write(frame(5, 65_001, 0x8100)))).toBe(TapErrorCode.FRAME_TOO_LARGE);
    expect(thrownCode(() => device.write(new Uint8Array(13)))).toBe(TapErrorCode.FRAME_TOO_SHORT);
    expect(port.written.map((f) => f.length)).toEqual([65_000, 9000, 65_000]);
  });

  it('validates a whole batch before sending any of it', () => {
    const { port, device } = open();
    expect(thrownCode(() => device.writeBatch([frame(1), frame(2, 9000)]))).toBe(
      TapErrorCode.FRAME_TOO_LARGE,
    );
    expect(port.written.length).toBe(0);
    expect(device.writeBatch([frame(1), frame(2)])).toBe(true);
    expect(port.written.length).toBe(2);
  });

  it('returns false when the port is over its high-water mark, and drain resolves on writable', async () => {
    const { port, device } = open();
    port.accept = false;
    expect(device.write(frame(1))).toBe(true); // gathered: the port answers when it gets it
    await new Promise((resolve) => process.nextTick(resolve));
    expect(device.write(frame(1))).toBe(false);
    expect(device.writeBatch([frame(1)])).toBe(false);
    let drained = false;
    let drainEvents = 0;
    device.on('drain', () => drainEvents++);
    const waiting = device.drain().then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false);
    port.accept = true;
    expect(device.write(frame(2))).toBe(false); // still blocked until the port says so
    port.sink.writable();
    await waiting;
    expect(drainEvents).toBe(1);
    expect(device.write(frame(3))).toBe(true);
    await device.drain();
  });

  it('counts a write the port fails (not one it refuses for the frame) and throws its error from writeBatch(); the device keeps working', () => {
    const { port, device } = open();
    port.write = () => {
      throw new TapError(TapErrorCode.SYSTEM, 'refused');
    };
    expect(thrownCode(() => device.writeBatch([frame(1)]))).toBe(TapErrorCode.SYSTEM);
    expect(device.stats()).toMatchObject({ txFrames: 0, drops: { txError: 1 } });
    // Refused for the frame itself (a port's own checks, as offload mode's): thrown, not counted.
    for (const refusal of [
      TapErrorCode.FRAME_TOO_SHORT,
      TapErrorCode.FRAME_TOO_LARGE,
      TapErrorCode.INVALID_ARGUMENT,
    ]) {
      port.write = () => {
        throw new TapError(refusal, 'bad frame');
      };
      expect(thrownCode(() => device.writeBatch([frame(1)]))).toBe(refusal);
    }
    expect(device.stats()).toMatchObject({ txFrames: 0, drops: { txError: 1 } });
    port.write = FakePort.prototype.write.bind(port);
    expect(device.writeBatch([frame(2)])).toBe(true);
  });

  it('counts each frame write() accepted that the port then refuses, emits its error, and sends the rest', async () => {
    const { port, device } = open();
    const errors: string[] = [];
    device.on('error', (error) => errors.push(error.code));
    const write = port.write.bind(port);
    port.write = (f: Frame) => {
      if (f[14] === 2) throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'the kernel refused it');
      if (f[14] === 4) throw Object.assign(new Error('no buffer space'), { code: 'ENOBUFS', errno: -105, syscall: 'write' });
      return write(f);
    };
    for (const seq of [1, 2, 3, 4, 5]) expect(device.write(frame(seq))).toBe(true);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(port.written.map((f) => f[14])).toEqual([1, 3, 5]);
    expect(errors).toEqual([TapErrorCode.INVALID_ARGUMENT, TapErrorCode.SYSTEM]);
    expect(device.stats()).toMatchObject({ txFrames: 3, drops: { txError: 2 } });
  });

  it('sends the frames of a batch after the one the port refused, going by the native error\'s index', () => {
    const { port, device } = open();
    const errors: unknown[] = [];
    device.on('error', (error) => errors.push(error));
    let calls = 0;
    port.writeBatch = (frames) => {
      calls++;
      const bad = frames.findIndex((f) => f[14] === 3);
      for (const f of bad < 0 ? frames : frames.slice(0, bad)) port.written.push(Buffer.from(f));
      if (bad >= 0) {
        const cause = Object.assign(new Error('invalid argument'), { code: 'EINVAL', errno: -22, syscall: 'write', index: bad });
        throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'refused', { cause });
      }
      return true;
    };
    for (const seq of [1, 2, 3, 4, 5]) device.write(frame(seq));
    const stats = device.stats(); // sends what was gathered first
    expect(calls).toBe(2);
    expect(port.written.map((f) => f[14])).toEqual([1, 2, 4, 5]);
    expect(errors).toHaveLength(1);
    expect(stats).toMatchObject({ txFrames: 4, txBytes: 4 * 60, drops: { txError: 1 } });
  });

  it('hands a port with writeSpans() the gathered frames as (offset, length) pairs, going on after a refused one', () => {
    const { port, device } = open();
    const calls: number[] = [];
    port.writeSpans = (buffer, spans, count) => {
      calls.push(count);
      for (let i = 0; i < count; i++) {
        const f = new Uint8Array(buffer, spans[2 * i], spans[2 * i + 1]);
        if (f[14] === 3) {
          const cause = Object.assign(new Error('invalid argument'), { code: 'EINVAL', errno: -22, syscall: 'write', index: i });
          throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'refused', { cause });
        }
        port.written.push(Buffer.from(f));
      }
      return true;
    };
    const scratch = frame(0, 80);
    for (const seq of [1, 2, 3, 4]) {
      scratch[14] = seq;
      device.write(scratch);
    }
    expect(device.stats()).toMatchObject({ txFrames: 3, txBytes: 3 * 80, drops: { txError: 1 } });
    expect(calls).toEqual([4, 1]);
    expect(port.written.map((f) => [f[14], f.length])).toEqual([
      [1, 80],
      [2, 80],
      [4, 80],
    ]);
  });

  it('keeps the frames being sent intact when an error listener writes more meanwhile', () => {
    const { port, device } = open();
    let failed = false;
    const write = port.write.bind(port);
    port.write = (f: Frame) => {
      if (f[14] === 1 && !failed) {
        failed = true;
        throw new TapError(TapErrorCode.SYSTEM, 'refused');
      }
      return write(f);
    };
    device.on('error', () => device.write(frame(9, 200)));
    for (const seq of [1, 2, 3]) device.write(frame(seq, 100));
    device.stats();
    expect(port.written.map((f) => [f[14], f.length])).toEqual([
      [2, 100],
      [3, 100],
    ]);
    device.stats();
    expect(port.written.map((f) => f[14])).toEqual([2, 3, 9]);
  });

  it('copies what write() takes: the caller may reuse its buffer at once', () => {
    const { port, device } = open();
    const scratch = frame(1);
    device.write(scratch);
    scratch[14] = 2;
    device.write(scratch);
    device.stats();
    expect(port.written.map((f) => f[14])).toEqual([1, 2]);
  });

  it('sends gathered frames before a writeBatch(), at close() and when they fill the gather buffer', async () => {
    const { port, device } = open();
    device.write(frame(1));
    device.writeBatch([frame(2)]);
    expect(port.written.map((f) => f[14])).toEqual([1, 2]);
    const before = port.written.length;
    for (let seq = 0; seq < 60; seq++) device.write(frame(seq, 1514)); // 60 × 1514 > 64 KiB
    expect(port.written.length).toBeGreaterThan(before); // some went without waiting for the turn's end
    device.write(frame(99));
    await device.close();
    expect(port.written.length).toBe(before + 61);
    expect(port.written.at(-1)![14]).toBe(99);
  });
});

describe('engine: closing', () => {
  it('rejects pending reads and drains with ERR_TAP_CLOSED, closes the port once, emits close', async () => {
    const { port, device } = open();
    port.accept = false;
    device.write(frame(1));
    const reading = device.read();
    const draining = device.drain();
    let closeEvents = 0;
    device.on('close', (error) => {
      expect(error).toBeUndefined();
      closeEvents++;
    });
    await Promise.all([device.close(), device.close()]);
    await device.close();
    expect(await code(reading)).toBe(TapErrorCode.CLOSED);
    expect(await code(draining)).toBe(TapErrorCode.CLOSED);
    expect(port.closes).toBe(1);
    expect(closeEvents).toBe(1);
    expect(device.closed).toBe(true);
    expect(thrownCode(() => device.write(frame(2)))).toBe(TapErrorCode.CLOSED);
    port.sink.receive([frame(3)]); // a late batch is ignored
    expect(await code(device.read())).toBe(TapErrorCode.CLOSED);
  });

  it('when the device goes away: reads and iterators fail with the port error, the port is released', async () => {
    const { port, device } = open();
    const reading = device.read();
    const iterating = (async () => {
      for await (const _ of device.frames()) {
        /* nothing arrives */
      }
    })();
    const errors: TapError[] = [];
    device.on('error', (e) => errors.push(e));
    const closed = new Promise((resolve) => device.once('close', resolve));
    port.sink.gone(new TapError(TapErrorCode.DEVICE_GONE, 'interface deleted'));
    expect(await code(reading)).toBe(TapErrorCode.DEVICE_GONE);
    expect(await code(iterating)).toBe(TapErrorCode.DEVICE_GONE);
    expect(thrownCode(() => device.write(frame(1)))).toBe(TapErrorCode.DEVICE_GONE);
    expect((await closed) as TapError).toMatchObject({ code: TapErrorCode.DEVICE_GONE });
    expect(errors.map((e) => e.code)).toEqual([TapErrorCode.DEVICE_GONE]);
    await device.close();
    expect(port.closes).toBe(1);
  });

  it('survives a port whose close throws when the device goes away', async () => {
    const { port, device } = open();
    port.close = () => {
      throw new Error('close failed');
    };
    const closed = new Promise((resolve) => device.once('close', resolve));
    expect(() => port.sink.gone(new TapError(TapErrorCode.DEVICE_GONE, 'gone'))).not.toThrow();
    expect((await closed) as TapError).toMatchObject({ code: TapErrorCode.DEVICE_GONE });
    await device.close();
  });

  it('does not throw on device loss when nobody listens for errors', async () => {
    const { port, device } = open();
    port.sink.gone(new TapError(TapErrorCode.DEVICE_GONE, 'gone'));
    await device.close();
    expect(device.closed).toBe(true);
  });

  it('gives the port the flush timeout (2 s by default) and counts what it could not send', async () => {
    const { port, device } = open();
    const asked: unknown[] = [];
    port.close = (options?: { flushTimeout: number }) => {
      asked.push(options?.flushTimeout);
      port.sink.dropped('closeUnsent', 3); // frames the OS never took
    };
    expect(await code(device.close({ flushTimeout: -1 }))).toBe(TapErrorCode.INVALID_ARGUMENT);
    expect(await code(device.close({ flushTimeout: Infinity }))).toBe(TapErrorCode.INVALID_ARGUMENT);
    expect(device.closed).toBe(false); // a refused close() changes nothing
    await device.close({ flushTimeout: 50 });
    expect(asked).toEqual([50]);
    expect(device.stats().drops).toEqual({ closeUnsent: 3 });
    const other = open();
    other.port.close = (options?: { flushTimeout: number }) => void asked.push(options?.flushTimeout);
    await other.device.close();
    expect(asked).toEqual([50, 2000]);
  });

  it('reports drops from the port by reason', () => {
    const { port, device } = open();
    port.sink.dropped('nonIp', 3);
    port.sink.dropped('nonIp');
    expect(device.stats().drops).toEqual({ nonIp: 4 });
  });
});

describe('engine: a layer-3 port', () => {
  /** A port of IP packets: 20 bytes to the MTU, no Ethernet header. */
  class PacketPort extends FakePort {
    override readonly capabilities = { ...capabilities, layer: 3 as const };
    readonly minFrameLength = 20;
    get maxFrameLength(): number {
      return this.mtu;
    }
  }

  it("checks writes against the port's own bounds, and pipes only into devices of its layer", async () => {
    const port = new PacketPort('tun0', 1400);
    const tun = createTapDevice(port, { backend: 'fake' });
    expect(tun.write(new Uint8Array(20))).toBe(true);
    expect(tun.write(new Uint8Array(1400))).toBe(true);
    expect(thrownCode(() => tun.write(new Uint8Array(19)))).toBe(TapErrorCode.FRAME_TOO_SHORT);
    expect(thrownCode(() => tun.write(new Uint8Array(1401)))).toBe(TapErrorCode.FRAME_TOO_LARGE);
    const { device: tap } = open();
    expect(await code(tun.pipeTo(tap))).toBe(TapErrorCode.INVALID_ARGUMENT);
    expect(await code(tap.pipeTo(tun))).toBe(TapErrorCode.INVALID_ARGUMENT);
    const other = createTapDevice(new PacketPort('tun1', 1400), { backend: 'fake' });
    const piping = tun.pipeTo(other);
    await other.close();
    await piping;
  });
});
