import { EventEmitter, getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { TapError, TapErrorCode } from '../src/errors.js';
import type { Frame, TapDevice, TapPort } from '../src/types.js';
import { FakePipe, FakePort, capabilities, code, frame, open } from './fake-port.js';

/** A source and a destination device on fake ports that share one call log. */
function devices(options: { destinationMtu?: number; rxQueueFrames?: number } = {}) {
  const log: string[] = [];
  const source = open(options.rxQueueFrames, new FakePort('src'));
  const destination = open(8, new FakePort('dst', options.destinationMtu));
  source.port.log = destination.port.log = log;
  return { source, destination, log };
}

/** Listeners left on a device (engine devices are EventEmitters). */
function listeners(device: TapDevice, event: string): number {
  return (device as unknown as EventEmitter).listenerCount(event);
}

/** Whether a promise has settled by now (after pending microtasks). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

const seqs = (frames: Frame[]) => frames.map((f) => f[14]);

/** A TapDevice that is not an engine device: what pipeTo() uses of it, refusing frames over 100 bytes. */
class ForeignDevice extends EventEmitter {
  readonly name = 'foreign0';
  closed = false;
  written: Frame[] = [];
  accept = true;
  write(frame: Frame): boolean {
    if (frame.length > 100) throw new TapError(TapErrorCode.FRAME_TOO_LARGE, 'too large');
    this.written.push(frame);
    return this.accept;
  }
  writeBatch(frames: readonly Frame[]): boolean {
    if (frames.some((f) => f.length > 100)) throw new TapError(TapErrorCode.FRAME_TOO_LARGE, 'too large');
    this.written.push(...frames);
    return this.accept;
  }
  drain(): Promise<void> {
    return Promise.resolve();
  }
}

/** A port in offload mode: its frames are a 12-byte virtio-net header, then the Ethernet frame. */
class OffloadPort extends FakePort {
  override readonly capabilities = { ...capabilities, offload: true };
}

describe('engine: pipeTo between framings', () => {
  it('gives frames piped from a plain device into an offload one a zero virtio-net header, in JS', async () => {
    const plain = open(8, new FakePort('plain'));
    const offload = open(8, new OffloadPort('offload'));
    let asked = 0;
    plain.port.pipeTo = () => {
      asked++;
      return undefined;
    };
    const piping = plain.device.pipeTo(offload.device);
    const sent = frame(7, 60);
    plain.port.sink.receive([sent]);
    const [written] = offload.port.written;
    expect(written).toHaveLength(12 + 60);
    expect([...written!.subarray(0, 12)]).toEqual(new Array(12).fill(0));
    expect([...written!.subarray(12)]).toEqual([...sent]); // the same bytes (sent is a Buffer)
    expect(asked).toBe(0); // a native pipe would pass frames as they are
    expect(offload.device.stats()).toMatchObject({ txFrames: 1, txBytes: 72 });
    await plain.device.close();
    await piping;
  });

  it('refuses to pipe an offload device into a plain one (its header would go on the wire): ERR_TAP_INVALID_ARGUMENT', async () => {
    const offload = open(8, new OffloadPort('offload'));
    const plain = open(8, new FakePort('plain'));
    const foreign = new ForeignDevice() as unknown as TapDevice;
    for (const destination of [plain.device, foreign]) {
      const error = await offload.device.pipeTo(destination).catch((e: unknown) => e as TapError);
      expect(error).toMatchObject({ code: TapErrorCode.INVALID_ARGUMENT });
      expect((error as TapError).message).toMatch(/offload mode/);
    }
    // Nothing was started: the device reads as before, and can pipe into an offload device.
    offload.port.sink.receive([frame(1)]);
    expect((await offload.device.read())[14]).toBe(1);
    const other = open(8, new OffloadPort('offload2'));
    const piping = offload.device.pipeTo(other.device);
    offload.port.sink.receive([frame(2)]);
    expect(seqs(other.port.written)).toEqual([2]);
    await offload.device.close();
    await piping;
    await plain.device.close();
  });
});

describe('engine: pipeTo, forwarding in JavaScript', () => {
  it('forwards queued frames first, then each received batch whole; counts rx on the source, tx on the destination', async () => {
    const { source, destination } = devices();
    const batches: number[][] = [];
    destination.port.writeBatch = (frames) => {
      batches.push(seqs([...frames]) as number[]);
      return true;
    };
    source.port.sink.receive([frame(1), frame(2, 100)]);
    const piping = source.device.pipeTo(destination.device);
    source.port.sink.receive([frame(3), frame(4), frame(5)]);
    expect(batches).toEqual([
      [1, 2],
      [3, 4, 5],
    ]);
    expect(source.device.stats()).toMatchObject({ rxFrames: 5, rxBytes: 340, txFrames: 0 });
    expect(destination.device.stats()).toMatchObject({ rxFrames: 0, txFrames: 5, txBytes: 340, drops: {} });
    await destination.device.close();
    await piping;
  });

  it('holds back reads, iterators and frame listeners of the source until the pipe ends', async () => {
    const { source, destination } = devices();
    const piping = source.device.pipeTo(destination.device);
    const reading = source.device.read();
    const iterating = source.device.batches().next();
    const heard: Frame[] = [];
    const listener = (f: Frame) => heard.push(f);
    source.device.on('frame', listener);
    await Promise.resolve();
    source.port.sink.receive([frame(1)]);
    expect(await settled(reading)).toBe(false);
    expect(heard).toEqual([]);
    await destination.device.close();
    await piping;
    source.port.sink.receive([frame(2)]);
    expect(seqs(heard)).toEqual([2]); // while a listener is attached, it gets the frames
    source.device.off('frame', listener);
    source.port.sink.receive([frame(3), frame(4)]);
    expect((await reading)[14]).toBe(3);
    expect(seqs((await iterating).value as Frame[])).toEqual([4]);
  });

  it('pauses the source while the destination is over its high-water mark, resumes it on drain', async () => {
    const { source, destination } = devices();
    destination.port.accept = false;
    const controller = new AbortController();
    const piping = source.device.pipeTo(destination.device, { signal: controller.signal });
    source.port.sink.receive([frame(1)]);
    expect(source.port.paused).toBe(true);
    expect(listeners(destination.device, 'drain')).toBe(1);
    source.port.sink.receive([frame(2)]); // read before the pause took effect: still forwarded
    expect(seqs(destination.port.written)).toEqual([1, 2]);
    expect(source.port.pauses).toBe(1);
    expect(listeners(destination.device, 'drain')).toBe(1);
    destination.port.accept = true;
    destination.port.sink.writable();
    expect(source.port.paused).toBe(false);
    expect(listeners(destination.device, 'drain')).toBe(0);
    // Blocked again, then aborted: the pause ends with the pipe.
    destination.port.accept = false;
    source.port.sink.receive([frame(3)]);
    expect(source.port.paused).toBe(true);
    controller.abort();
    expect(await code(piping)).toBe(TapErrorCode.ABORTED);
    expect(source.port.paused).toBe(false);
    expect(listeners(destination.device, 'drain')).toBe(0);
  });

  it('takes over from the receive-queue pause without leaving the port paused', async () => {
    const { source, destination } = devices({ rxQueueFrames: 2 });
    source.port.sink.receive([frame(1), frame(2)]);
    expect(source.port.paused).toBe(true);
    const piping = source.device.pipeTo(destination.device);
    expect(seqs(destination.port.written)).toEqual([1, 2]);
    expect(source.port.paused).toBe(false);
    await source.device.close();
    await piping;
    expect(source.port.resumes).toBe(1);
  });

  it('drops what the destination refuses as its txError and sends the rest', async () => {
    const { source, destination } = devices({ destinationMtu: 100 });
    const piping = source.device.pipeTo(destination.device);
    source.port.sink.receive([frame(1), frame(2, 200), frame(3, 10), frame(4)]);
    expect(seqs(destination.port.written)).toEqual([1, 4]);
    expect(destination.device.stats()).toMatchObject({ txFrames: 2, txBytes: 120, drops: { txError: 2 } });
    expect(source.device.stats()).toMatchObject({ rxFrames: 4, drops: {} });
    destination.port.write = () => {
      throw new TapError(TapErrorCode.SYSTEM, 'refused');
    };
    source.port.sink.receive([frame(5), frame(6)]);
    expect(destination.device.stats()).toMatchObject({ txFrames: 2, drops: { txError: 4 } });
    await source.device.close();
    await piping;
  });

  it('sends to a TapDevice of another kind, counting what it refuses as the source pipeTxError', async () => {
    const { source } = devices();
    const foreign = new ForeignDevice();
    const destination = foreign as unknown as TapDevice;
    const piping = source.device.pipeTo(destination);
    source.port.sink.receive([frame(1), frame(2, 200), frame(3)]);
    expect(seqs(foreign.written)).toEqual([1, 3]);
    expect(source.device.stats().drops).toEqual({ pipeTxError: 1 });
    foreign.accept = false;
    source.port.sink.receive([frame(4)]);
    expect(source.port.paused).toBe(true);
    foreign.emit('drain');
    expect(source.port.paused).toBe(false);
    foreign.closed = true;
    foreign.emit('close');
    await piping;
    expect(foreign.eventNames()).toEqual([]);
    // Its close event with an error (gone) rejects with that error.
    foreign.closed = false;
    const gone = source.device.pipeTo(destination);
    foreign.emit('close', new TapError(TapErrorCode.DEVICE_GONE, 'gone'));
    expect(await code(gone)).toBe(TapErrorCode.DEVICE_GONE);
    expect(foreign.eventNames()).toEqual([]);
  });

  it('refuses bad destinations, a second pipe, an aborted signal and closed devices', async () => {
    const { source, destination } = devices();
    const other = open(8, new FakePort('other'));
    expect(await code(source.device.pipeTo(source.device))).toBe(TapErrorCode.INVALID_ARGUMENT);
    for (const bad of [{}, null, 'dev', { write: () => true }]) {
      expect(await code(source.device.pipeTo(bad as unknown as TapDevice))).toBe(
        TapErrorCode.INVALID_ARGUMENT,
      );
    }
    const signal = AbortSignal.abort();
    expect(await code(source.device.pipeTo(destination.device, { signal }))).toBe(TapErrorCode.ABORTED);
    const piping = source.device.pipeTo(destination.device);
    expect(await code(source.device.pipeTo(other.device))).toBe(TapErrorCode.BUSY);
    expect(await code(source.device.pipeTo(source.device))).toBe(TapErrorCode.INVALID_ARGUMENT);
    await other.device.close();
    expect(await code(destination.device.pipeTo(other.device))).toBe(TapErrorCode.CLOSED);
    await source.device.close();
    await piping;
    expect(await code(source.device.pipeTo(destination.device))).toBe(TapErrorCode.CLOSED);
    destination.port.sink.gone(new TapError(TapErrorCode.DEVICE_GONE, 'gone'));
    const third = open(8, new FakePort('third'));
    expect(await code(third.device.pipeTo(destination.device))).toBe(TapErrorCode.DEVICE_GONE);
    await third.device.close();
  });

  it('ends on abort; the source reads again; no abort listener is left', async () => {
    const { source, destination } = devices();
    const controller = new AbortController();
    const piping = source.device.pipeTo(destination.device, { signal: controller.signal });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    const reading = source.device.read();
    source.port.sink.receive([frame(1)]);
    controller.abort();
    expect(await code(piping)).toBe(TapErrorCode.ABORTED);
    source.port.sink.receive([frame(2)]);
    expect((await reading)[14]).toBe(2);
    expect(seqs(destination.port.written)).toEqual([1]);
    // Ended otherwise, the pipe takes its abort listener away too.
    const unused = new AbortController();
    const closing = source.device.pipeTo(destination.device, { signal: unused.signal });
    await destination.device.close();
    await closing;
    expect(getEventListeners(unused.signal, 'abort')).toHaveLength(0);
  });

  it('ends when either device goes away, rejecting with its error; the other keeps working', async () => {
    const first = devices();
    const piping = first.source.device.pipeTo(first.destination.device);
    first.destination.port.sink.gone(new TapError(TapErrorCode.DEVICE_GONE, 'destination deleted'));
    expect(await code(piping)).toBe(TapErrorCode.DEVICE_GONE);
    first.source.port.sink.receive([frame(7)]);
    expect((await first.source.device.read())[14]).toBe(7);

    const second = devices();
    const gone = second.source.device.pipeTo(second.destination.device);
    second.source.port.sink.gone(new TapError(TapErrorCode.DEVICE_GONE, 'source deleted'));
    expect(await code(gone)).toBe(TapErrorCode.DEVICE_GONE);
    expect(second.destination.device.write(frame(8))).toBe(true);
    expect(listeners(second.destination.device, 'drain')).toBe(0);
  });

  it('relays both ways at once, and takes several sources into one destination', async () => {
    const { source: a, destination: b } = devices();
    const ab = a.device.pipeTo(b.device);
    const ba = b.device.pipeTo(a.device);
    a.port.sink.receive([frame(1)]);
    b.port.sink.receive([frame(2)]);
    expect(seqs(b.port.written)).toEqual([1]);
    expect(seqs(a.port.written)).toEqual([2]);
    await a.device.close();
    await Promise.all([ab, ba]);
    b.port.sink.receive([frame(3)]);
    expect((await b.device.read())[14]).toBe(3);

    const sink = open(8, new FakePort('sink'));
    const sources = [open(8, new FakePort('s1')), open(8, new FakePort('s2'))];
    const pipes = sources.map((s) => s.device.pipeTo(sink.device));
    sources.forEach((s, i) => s.port.sink.receive([frame(10 + i)]));
    expect(seqs(sink.port.written)).toEqual([10, 11]);
    await sink.device.close();
    await Promise.all(pipes);
  });
});

describe('engine: pipeTo, forwarding in native code', () => {
  /** Devices whose source port pipes natively; `pipes` are the pipes it made. */
  function nativeDevices() {
    const setup = devices();
    const pipes: FakePipe[] = [];
    setup.source.port.pipeTo = (destination: TapPort) => {
      setup.log.push(`pipeTo ${destination.name}`);
      const pipe = new FakePipe(destination, setup.log);
      pipes.push(pipe);
      return pipe;
    };
    return { ...setup, pipes };
  }

  it('hands over to the port after the queued frames; counts live on both devices, folded in once at the end', async () => {
    const { source, destination, pipes, log } = nativeDevices();
    destination.port.write = (f) => {
      log.push(`write ${f[14]}`);
      return true;
    };
    source.port.sink.receive([frame(1), frame(2)]);
    const controller = new AbortController();
    const piping = source.device.pipeTo(destination.device, { signal: controller.signal });
    expect(log).toEqual(['write 1', 'write 2', 'pipeTo dst']);
    const pipe = pipes[0]!;
    expect(pipe.destination).toBe(destination.port);
    pipe.forward(10, 100);
    pipe.refused = 2;
    pipe.drops = { interfaceDown: 1, txError: 2 };
    // A batch the port read before the pipe took over still arrives here: forwarded in JS.
    source.port.sink.receive([frame(3)]);
    expect(log.at(-1)).toBe('write 3');
    // The source received what was forwarded and what the destination refused.
    const live = {
      source: { rxFrames: 15, rxBytes: 1180, txFrames: 0 },
      destination: { txFrames: 13, txBytes: 1180, drops: { interfaceDown: 1, txError: 2 } },
    };
    expect(source.device.stats()).toMatchObject(live.source);
    expect(destination.device.stats()).toMatchObject(live.destination);
    controller.abort();
    expect(await code(piping)).toBe(TapErrorCode.ABORTED);
    expect(pipe.stops).toBe(1);
    pipe.forward(5); // after stop() its counts are no longer read
    expect(source.device.stats()).toMatchObject(live.source);
    expect(destination.device.stats()).toMatchObject(live.destination);
    source.port.sink.receive([frame(4)]);
    expect((await source.device.read())[14]).toBe(4);
  });

  it('counts a native pipe’s source-side drops (records the source could not read whole) on the source, live and at the end', async () => {
    const { source, destination, pipes } = nativeDevices();
    const controller = new AbortController();
    const piping = source.device.pipeTo(destination.device, { signal: controller.signal });
    const pipe = pipes[0]!;
    pipe.forward(4);
    pipe.sourceDrops = { rxTruncated: 2, rxRunt: 1 };
    expect(source.device.stats()).toMatchObject({ rxFrames: 4, drops: { rxTruncated: 2, rxRunt: 1 } });
    expect(destination.device.stats().drops).toEqual({});
    controller.abort();
    await piping.catch(() => {});
    expect(source.device.stats()).toMatchObject({ rxFrames: 4, drops: { rxTruncated: 2, rxRunt: 1 } });
    expect(destination.device.stats()).toMatchObject({ txFrames: 4, drops: {} });
  });

  it.each([
    ['the source is closed', 'src', 'close', undefined],
    ['the destination is closed', 'dst', 'close', undefined],
    ['the source is gone', 'src', 'gone', TapErrorCode.DEVICE_GONE],
    ['the destination is gone', 'dst', 'gone', TapErrorCode.DEVICE_GONE],
  ] as const)('stops the native pipe before any port is closed when %s', async (_, which, how, expected) => {
    const { source, destination, pipes, log } = nativeDevices();
    const piping = source.device.pipeTo(destination.device);
    const ended = which === 'src' ? source : destination;
    if (how === 'close') void ended.device.close();
    else ended.port.sink.gone(new TapError(TapErrorCode.DEVICE_GONE, 'gone'));
    expect(await code(piping)).toBe(expected);
    await ended.device.close();
    expect(log).toEqual(['pipeTo dst', 'stop pipe', `close ${which}`]);
    expect(pipes[0]!.stops).toBe(1);
    expect(listeners(destination.device, 'drain') + listeners(destination.device, 'close')).toBe(0);
  });

  it('rejects with the error of a port that fails to start its pipe, leaving both devices as they were', async () => {
    const { source, destination } = devices();
    source.port.pipeTo = () => {
      throw new Error('no thread');
    };
    const failed = source.device.pipeTo(destination.device);
    expect(await code(failed)).toBe(TapErrorCode.SYSTEM);
    source.port.sink.receive([frame(1)]);
    expect((await source.device.read())[14]).toBe(1);
    source.port.pipeTo = undefined;
    const piping = source.device.pipeTo(destination.device); // not BUSY: the failed pipe is gone
    await destination.device.close();
    await piping;
  });

  it('forwards in JS when the port declines, and never asks it for a destination of another kind', async () => {
    const { source, destination, log } = devices();
    source.port.pipeTo = () => {
      log.push('asked');
      return undefined;
    };
    const piping = source.device.pipeTo(destination.device);
    source.port.sink.receive([frame(1)]);
    expect(seqs(destination.port.written)).toEqual([1]);
    expect(source.device.stats().rxFrames).toBe(1);
    await destination.device.close();
    await piping;
    const foreign = new ForeignDevice();
    const toForeign = source.device.pipeTo(foreign as unknown as TapDevice);
    foreign.emit('close');
    await toForeign;
    expect(log).toEqual(['asked', 'close dst']);
  });
});
