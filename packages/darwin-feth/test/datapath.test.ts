import { afterEach, describe, expect, it } from 'vitest';
import { isTapError, TapErrorCode, type TapDevice, type TapError } from '@tapkit/core';
import type { BpfReaderOptions } from '../src/index.js';
import { sysError } from './kernel.js';
import { rawFrame, seqOf, settle, simulated } from './helpers.js';

type Sim = ReturnType<typeof simulated>;
const sims: Sim[] = [];
const devices: TapDevice[] = [];
const BROADCAST = new Uint8Array(6).fill(0xff);
const OTHER = Uint8Array.of(2, 0, 0, 0, 0, 0x99);

async function setup(options?: Parameters<typeof simulated>[0]): Promise<{ s: Sim; device: TapDevice }> {
  const s = simulated(options);
  sims.push(s);
  const device = await s.open();
  devices.push(device);
  return { s, device };
}

/** Everything the device has queued now, after letting delivery run. */
async function drainReads(device: TapDevice): Promise<Uint8Array[]> {
  await settle();
  const out: Uint8Array[] = [];
  for (;;) {
    const controller = new AbortController();
    const pending = device.readBatch(undefined, { signal: controller.signal });
    controller.abort();
    try {
      out.push(...(await pending));
    } catch {
      return out;
    }
  }
}

/** Records how the simulated BPF device hands batches to the port. */
function spyBatches(s: Sim): number[][] {
  const batches: number[][] = [];
  const openBpf = s.kernel.openBpf.bind(s.kernel);
  s.kernel.openBpf = (name: string, options: BpfReaderOptions) =>
    openBpf(name, {
      ...options,
      onRead: (buffer, ends) => {
        batches.push([...ends]);
        options.onRead(buffer, ends);
      },
    });
  return batches;
}

afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.close().catch(() => undefined)));
  for (const s of sims.splice(0)) s.runtime.remove();
});

describe('data path', () => {
  it('reads what the OS sends out of the user-facing member, several records per read', async () => {
    const s = simulated();
    sims.push(s);
    const batches = spyBatches(s);
    const device = await s.open();
    devices.push(device);
    for (let i = 0; i < 50; i++) s.kernel.sendFromStack(device.name, rawFrame(BROADCAST, OTHER, i, 60 + i));
    const frames = await drainReads(device);
    expect(frames.map(seqOf)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(frames.map((f) => f.length)).toEqual(Array.from({ length: 50 }, (_, i) => 60 + i));
    expect(batches).toHaveLength(1); // one read held all 50 records
    expect(batches[0]).toHaveLength(1);
  });

  it('delivers a batch of several reads when the store buffer rotated, and loses what fits nowhere', async () => {
    const s = simulated({ bpfMaxBuffer: 4096 });
    sims.push(s);
    const batches = spyBatches(s);
    const device = await s.open();
    devices.push(device);
    // 1000-byte frames take 1020 bytes of BPF buffer: 4 fit in the store, 4 more in the hold.
    for (let i = 0; i < 20; i++) s.kernel.sendFromStack(device.name, rawFrame(BROADCAST, OTHER, i, 1000));
    const frames = await drainReads(device);
    expect(frames.map(seqOf)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(batches[0]).toHaveLength(2);
  });

  it('writes frames that the OS receives on the user-facing member', async () => {
    const { s, device } = await setup();
    expect(device.write(rawFrame(device.mac, OTHER, 1))).toBe(true);
    expect(device.writeBatch([rawFrame(device.mac, OTHER, 2), rawFrame(BROADCAST, OTHER, 3)])).toBe(true);
    const received = s.kernel.interfaces.get(device.name)!.received;
    expect(received.map(seqOf)).toEqual([1, 2, 3]);
    expect(device.stats()).toMatchObject({ txFrames: 3, txBytes: 192 });
  });

  it('does not read back its own writes (BIOCSSEESENT 0), which a see-sent reader would', async () => {
    const { s, device } = await setup();
    const seen: number[] = [];
    const seeSent = s.kernel.openBpfWith(
      device.name.replace('feth1', 'feth2'),
      { bufferSize: 4096, onRead: (_, ends) => seen.push(ends.length), onError: () => undefined },
      { seeSent: true },
    );
    seeSent.resume();
    device.write(rawFrame(BROADCAST, device.mac, 1));
    expect(await drainReads(device)).toEqual([]);
    expect(seen).toEqual([1]);
    seeSent.close();
  });

  it('drops and counts records BPF truncated, delivering the rest', async () => {
    const { s, device } = await setup({ bpfSnapLength: 100 });
    s.kernel.sendFromStack(device.name, rawFrame(BROADCAST, OTHER, 1, 100));
    s.kernel.sendFromStack(device.name, rawFrame(BROADCAST, OTHER, 2, 101));
    s.kernel.sendFromStack(device.name, rawFrame(BROADCAST, OTHER, 3, 60));
    expect((await drainReads(device)).map(seqOf)).toEqual([1, 3]);
    expect(device.stats().drops).toEqual({ rxTruncated: 1 });
  });

  it('counts frames the kernel had no buffer for as dropped, not as errors', async () => {
    const { s, device } = await setup();
    s.kernel.failNdrvWrites(3, 'ENOBUFS');
    device.write(rawFrame(device.mac, OTHER, 1));
    device.writeBatch([1, 2, 3].map((i) => rawFrame(device.mac, OTHER, 10 + i)));
    expect(s.kernel.interfaces.get(device.name)!.received.map(seqOf)).toEqual([13]);
    expect(device.stats()).toMatchObject({ txFrames: 4, drops: { txNoBuffers: 3 } });
  });

  it('throws other write failures with their errno, and keeps working', async () => {
    const { s, device } = await setup();
    s.kernel.failNdrvWrites(1, 'EINVAL');
    let error: TapError | undefined;
    try {
      device.writeBatch([rawFrame(device.mac, OTHER, 1)]);
    } catch (e) {
      error = e as TapError;
    }
    expect(isTapError(error, TapErrorCode.SYSTEM)).toBe(true);
    expect(error).toMatchObject({ osCode: 'EINVAL', errno: -22, syscall: 'write' });
    device.write(rawFrame(device.mac, OTHER, 2));
    // write() accepts at once and sends at the end of the turn: a refusal then is an error event.
    const errors: TapError[] = [];
    device.on('error', (e) => errors.push(e));
    s.kernel.failNdrvWrites(1, 'EINVAL');
    await new Promise((resolve) => process.nextTick(resolve));
    expect(errors).toEqual([expect.objectContaining({ code: TapErrorCode.SYSTEM, osCode: 'EINVAL' })]);
    device.write(rawFrame(device.mac, OTHER, 3));
    expect(s.kernel.interfaces.get(device.name)!.received.map(seqOf)).toEqual([]);
    expect(device.stats().drops).toEqual({ txError: 2 });
    expect(s.kernel.interfaces.get(device.name)!.received.map(seqOf)).toEqual([3]);
  });

  it('pauses reading when the receive queue is full and resumes when it drains', async () => {
    const s = simulated();
    sims.push(s);
    const device = await s.open({ rxQueueFrames: 4 });
    devices.push(device);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 4; i++)
        s.kernel.sendFromStack(device.name, rawFrame(BROADCAST, OTHER, round * 4 + i));
      await settle();
    }
    // The engine paused the port after the first batches; the kernel kept the rest.
    const seen: number[] = [];
    while (seen.length < 20)
      seen.push(...(await device.readBatch(undefined, { signal: AbortSignal.timeout(2000) })).map(seqOf));
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(device.stats().drops).toEqual({});
  });

  it('reports the multicast groups of its own interface only', async () => {
    const s = simulated();
    sims.push(s);
    const device = await s.open({ addresses: ['10.9.0.1/24', 'fd00::1:2:3/64'] });
    devices.push(device);
    s.kernel.createInterface('feth1000'); // a name that is a prefix of feth10000
    s.kernel.joinMulticast('feth1000', '01:00:5e:7f:00:01');
    s.kernel.joinMulticast(device.name, '01:00:5e:00:00:fb');
    expect(await device.multicastGroups()).toEqual([
      '01:00:5e:00:00:01',
      '01:00:5e:00:00:fb',
      '33:33:00:00:00:01',
      '33:33:ff:02:00:03',
    ]);
  });

  it('goes away when its I/O member is destroyed underneath: pending reads fail, everything is removed', async () => {
    const { s, device } = await setup();
    const closed = new Promise<TapError | undefined>((resolve) => device.once('close', resolve));
    const pending = device.read();
    s.kernel.destroyInterface(device.name.replace('feth1', 'feth2'));
    await expect(pending).rejects.toMatchObject({ code: TapErrorCode.DEVICE_GONE });
    const error = await closed;
    expect(error?.message).toMatch(/read from feth20000: the interface is gone \(ENXIO from read\)/);
    expect(device.closed).toBe(true);
    expect(s.kernel.feths()).toEqual([]);
    expect(s.runtime.stateFiles()).toEqual([]);
    expect(s.kernel.bpfOpen).toBe(0);
    await device.close();
  });

  it('closes cleanly when it goes away and the teardown then fails (no uncaught error)', async () => {
    const { s, device } = await setup();
    const destroy = s.kernel.destroyInterface.bind(s.kernel);
    s.kernel.destroyInterface = (name: string) => {
      if (name === device.name) throw sysError('EBUSY', 'ioctl', 'SIOCIFDESTROY', name);
      destroy(name);
    };
    const closed = new Promise<TapError | undefined>((resolve) => device.once('close', resolve));
    destroy(device.name.replace('feth1', 'feth2'));
    expect((await closed)?.code).toBe(TapErrorCode.DEVICE_GONE);
    expect(s.runtime.stateFiles()).toEqual([`${device.name}.json`]); // kept, for cleanup to retry
  });

  it('fails a write to a destroyed pair with ERR_TAP_DEVICE_GONE', async () => {
    const { s, device } = await setup();
    s.kernel.destroyInterface(device.name.replace('feth1', 'feth2'));
    expect(() => device.writeBatch([rawFrame(device.mac, OTHER, 1)])).toThrow(
      expect.objectContaining({ code: TapErrorCode.DEVICE_GONE }),
    );
    await settle();
    expect(device.closed).toBe(true);
  });

  it('lets frames through both members when two devices are bridged, as in the conformance pair', async () => {
    const s = simulated();
    sims.push(s);
    const a = await s.open();
    const b = await s.open();
    devices.push(a, b);
    s.kernel.bridge(a.name, b.name);
    a.write(rawFrame(b.mac, a.mac, 5));
    expect((await drainReads(b)).map(seqOf)).toEqual([5]);
    expect(await drainReads(a)).toEqual([]);
  });
});
