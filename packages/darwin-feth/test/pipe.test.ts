/**
 * darwin-feth's native pipe, through its TypeScript path: FethPort.pipeTo() hands the BPF reader
 * of one device to the NDRV socket of another (the simulated kernel does what the addon's pipe
 * thread does: tapkit/pipe.h, tested on Linux in pipe-native.test.ts), and the engine counts
 * what it did as it counts the JS pipe: the source's rx, the destination's tx, refusals as the
 * destination's txError, truncated records as the source's rxTruncated.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TapDevice } from '@tapkit/core';
import { rawFrame, seqOf, settle, simulated } from './helpers.js';

type Sim = ReturnType<typeof simulated>;
const sims: Sim[] = [];
const devices: TapDevice[] = [];
const BROADCAST = new Uint8Array(6).fill(0xff);
const OTHER = Uint8Array.of(2, 0, 0, 0, 0, 0x99);

afterEach(async () => {
  await Promise.allSettled(devices.splice(0).map((d) => d.close()));
  sims.splice(0);
});

async function pair(options?: Parameters<typeof simulated>[0], mtus: [number, number] = [1500, 1500]) {
  const s = simulated(options);
  sims.push(s);
  const a = await s.open({ mtu: mtus[0] });
  const b = await s.open({ mtu: mtus[1] });
  devices.push(a, b);
  return { s, a, b };
}

describe('darwin-feth pipeTo (native path, simulated kernel)', () => {
  it('forwards what the OS sends out of a into b’s interface without JS reads, and counts as the JS pipe', async () => {
    const { s, a, b } = await pair({ bpfSnapLength: 1250 }, [1500, 1200]);
    await b.setMtu(1000); // (a feth's MTU can go back up to what it was opened with)
    const reads: Uint8Array[] = [];
    a.on('frame', (f) => reads.push(f));
    const piping = a.pipeTo(b);
    const sizes = [60, 1014, 1015, 1300, 1260, 64]; // 1015: over b's MTU; 1300, 1260: cut by the snap length
    sizes.forEach((size, i) => s.kernel.sendFromStack(a.name, rawFrame(BROADCAST, OTHER, i, size)));
    await settle();
    expect(s.kernel.interfaces.get(b.name)!.received.map(seqOf)).toEqual([0, 1, 5]);
    expect(reads).toEqual([]);
    const live = {
      a: { rxFrames: 4, rxBytes: 60 + 1014 + 64, drops: { rxTruncated: 2 } },
      b: { txFrames: 3, txBytes: 60 + 1014 + 64, drops: { txError: 1 } },
    };
    expect(a.stats()).toMatchObject(live.a);
    expect(b.stats()).toMatchObject(live.b);

    // b's MTU raised: the limit follows it.
    await b.setMtu(1200);
    s.kernel.sendFromStack(a.name, rawFrame(BROADCAST, OTHER, 6, 1100));
    await settle();
    expect(s.kernel.interfaces.get(b.name)!.received.map(seqOf)).toEqual([0, 1, 5, 6]);

    // b closed: the pipe ends (resolved), its counts folded in once; a reads for JS again.
    await b.close();
    await piping;
    expect(a.stats()).toMatchObject({ rxFrames: 5, drops: { rxTruncated: 2 } });
    s.kernel.sendFromStack(a.name, rawFrame(BROADCAST, OTHER, 7, 80));
    await settle();
    expect(reads.map(seqOf)).toEqual([7]);
  });

  it('counts frames the kernel had no buffer for as sent and dropped (txNoBuffers), as write() does', async () => {
    const { s, a, b } = await pair();
    void a.pipeTo(b);
    s.kernel.failNdrvWrites(2, 'ENOBUFS');
    for (let i = 0; i < 4; i++) s.kernel.sendFromStack(a.name, rawFrame(BROADCAST, OTHER, i));
    await settle();
    expect(s.kernel.interfaces.get(b.name)!.received.map(seqOf)).toEqual([2, 3]);
    expect(b.stats()).toMatchObject({ txFrames: 4, drops: { txNoBuffers: 2 } });
    expect(a.stats()).toMatchObject({ rxFrames: 4 });
  });

  it('serves a relay both ways; closing the source stops its pipe before its BPF fd closes', async () => {
    const { s, a, b } = await pair();
    const there = a.pipeTo(b);
    const back = b.pipeTo(a);
    s.kernel.sendFromStack(a.name, rawFrame(BROADCAST, OTHER, 1));
    s.kernel.sendFromStack(b.name, rawFrame(BROADCAST, OTHER, 2));
    await settle();
    expect(s.kernel.interfaces.get(b.name)!.received.map(seqOf)).toEqual([1]);
    expect(s.kernel.interfaces.get(a.name)!.received.map(seqOf)).toEqual([2]);
    await a.close();
    await Promise.all([there, back]);
    expect(b.stats()).toMatchObject({ rxFrames: 1, txFrames: 1 });
  });
});
