/**
 * The conformance suite every backend runs against itself: the contract of {@link TapDevice},
 * checked once, for all backends. It takes the test runner's functions as arguments, so it works
 * with vitest, node:test or mocha, and asserts with `node:assert`.
 *
 * @example
 * ```ts
 * import { describe, it } from 'vitest';
 * import { conformanceSuite } from '@tapkit/core/testing';
 * conformanceSuite({ describe, it }, { name: 'my-backend', backend: 'my-backend', open, openPair });
 * ```
 * @module
 */
import * as assert from 'node:assert/strict';
import { isTapError, TapErrorCode, type TapErrorCodeValue } from '../errors.js';
import { buildUdpFrame } from '../codec/frames.js';
import { isMulticastMac } from '../codec/mac.js';
import type { Frame, TapDevice, TapOpenOptions } from '../types.js';

/** The runner functions the suite needs (vitest's and node:test's fit). */
export interface TestApi {
  describe(name: string, body: () => void): unknown;
  it(name: string, body: () => Promise<void> | void, timeout?: number): unknown;
}

/** What a backend gives the suite. */
export interface ConformanceTarget {
  /** Suite title. */
  readonly name: string;
  /** The backend name devices must report. */
  readonly backend: string;
  /** Opens one device with the given options (merged over the target's own). */
  open(options?: TapOpenOptions): Promise<TapDevice>;
  /** Opens two devices joined by a link: a frame written on one is read on the other. */
  openPair(): Promise<readonly [TapDevice, TapDevice]>;
  /** Open/close cycles in the leak test. Default 200. */
  readonly cycles?: number;
  /** How long to wait for a frame. Default 5000 ms. */
  readonly receiveTimeoutMs?: number;
  /** Per-test timeout passed to `it`. Default 60000 ms. */
  readonly testTimeoutMs?: number;
}

const MARKER = new TextEncoder().encode('TAPKITCF');
const HEADERS = 14 + 20 + 8; // Ethernet + IPv4 + UDP around the suite's payloads
const SRC_IP = Uint8Array.of(198, 18, 0, 1);
const DST_IP = Uint8Array.of(198, 18, 0, 2);

/** A suite frame: IPv4/UDP from one device to the other, `size` bytes long, tagged with `seq`. */
export function conformanceFrame(from: TapDevice, to: TapDevice, seq: number, size = 60): Frame {
  const payload = new Uint8Array(Math.max(size - HEADERS, MARKER.length + 4));
  payload.set(MARKER, 0);
  new DataView(payload.buffer).setUint32(MARKER.length, seq);
  for (let i = MARKER.length + 4; i < payload.length; i++) payload[i] = (seq + i) & 0xff;
  return buildUdpFrame({
    srcMac: from.mac,
    dstMac: to.mac,
    src: SRC_IP,
    dst: DST_IP,
    srcPort: 40000,
    dstPort: 40001,
    payload,
  });
}

/** The sequence number of a suite frame, or -1 for anything else (OS chatter on real links). */
export function conformanceSeq(frame: Frame): number {
  const at = HEADERS;
  if (frame.length < at + MARKER.length + 4) return -1;
  for (let i = 0; i < MARKER.length; i++) if (frame[at + i] !== MARKER[i]) return -1;
  return new DataView(frame.buffer, frame.byteOffset + at + MARKER.length, 4).getUint32(0);
}

/** Reads until a suite frame arrives (skipping OS chatter) or the timeout passes. */
export async function receiveMarked(device: TapDevice, timeoutMs: number): Promise<Frame> {
  const signal = AbortSignal.timeout(timeoutMs);
  for (;;) {
    const frame = await device.read({ signal });
    if (conformanceSeq(frame) >= 0) return frame;
  }
}

async function expectCode(action: () => unknown, code: TapErrorCodeValue): Promise<void> {
  await assert.rejects(
    async () => {
      await action();
    },
    (error: unknown) => {
      if (!isTapError(error)) assert.fail(`expected a TapError with code ${code}, got ${String(error)}`);
      assert.equal(error.code, code);
      return true;
    },
  );
}

/** Defines the conformance tests for one backend. */
export function conformanceSuite(api: TestApi, target: ConformanceTarget): void {
  const timeout = target.receiveTimeoutMs ?? 5000;
  const testTimeout = target.testTimeoutMs ?? 60_000;
  const it = (name: string, body: () => Promise<void>) => api.it(name, body, testTimeout);

  async function withPair(body: (a: TapDevice, b: TapDevice) => Promise<void>): Promise<void> {
    const [a, b] = await target.openPair();
    try {
      await body(a, b);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }

  api.describe(`tapkit conformance: ${target.name}`, () => {
    it('reports its name, backend, MAC, MTU and capabilities', async () => {
      await withPair(async (a) => {
        assert.equal(typeof a.name, 'string');
        assert.ok(a.name.length > 0);
        assert.equal(a.backend, target.backend);
        assert.equal(a.mac.length, 6);
        assert.ok(!isMulticastMac(a.mac), 'device MAC must be unicast');
        assert.ok(Number.isInteger(a.mtu) && a.mtu >= 68);
        assert.equal(a.capabilities.layer, 2);
        assert.ok(a.mtu >= a.capabilities.minMtu && a.mtu <= a.capabilities.maxMtu);
        assert.equal(a.closed, false);
        a.mac[0] = 0xff; // the MAC is a copy: changing it does nothing
        assert.notEqual(a.mac[0], 0xff);
      });
    });

    it('round-trips frames both ways, from the smallest to the largest the MTU allows', async () => {
      await withPair(async (a, b) => {
        const sizes = [60, 61, 512, 1000, a.mtu + 14];
        let seq = 0;
        for (const [from, to] of [
          [a, b],
          [b, a],
        ] as const) {
          for (const size of sizes) {
            const sent = conformanceFrame(from, to, ++seq, Math.min(size, from.mtu + 14, to.mtu + 14));
            from.write(sent);
            const got = await receiveMarked(to, timeout);
            assert.equal(conformanceSeq(got), seq);
            assert.deepEqual(Buffer.from(got), Buffer.from(sent));
          }
        }
      });
    });

    it('yields frames in order through async iteration', async () => {
      await withPair(async (a, b) => {
        const count = 64;
        for (let i = 0; i < count; i++) a.write(conformanceFrame(a, b, i));
        const seen: number[] = [];
        const timer = setTimeout(() => void b.close(), timeout);
        for await (const frame of b) {
          const seq = conformanceSeq(frame);
          if (seq >= 0) seen.push(seq);
          if (seen.length === count) break;
        }
        clearTimeout(timer);
        assert.deepEqual(
          seen,
          Array.from({ length: count }, (_, i) => i),
        );
        assert.equal(b.closed, false, 'breaking out of the loop does not close the device');
      });
    });

    it('delivers a batch write whole and reads it back in batches', async () => {
      await withPair(async (a, b) => {
        const batch = Array.from({ length: 32 }, (_, i) => conformanceFrame(a, b, 1000 + i, 100 + i));
        await a.drain();
        a.writeBatch(batch);
        const seen = new Set<number>();
        const signal = AbortSignal.timeout(timeout);
        while (seen.size < batch.length) {
          const frames = await b.readBatch(16, { signal });
          assert.ok(frames.length >= 1 && frames.length <= 16);
          for (const f of frames) if (conformanceSeq(f) >= 0) seen.add(conformanceSeq(f));
        }
        assert.deepEqual(
          [...seen].sort((x, y) => x - y),
          batch.map((f) => conformanceSeq(f)),
        );
      });
    });

    it('emits frame events while a listener is attached', async () => {
      await withPair(async (a, b) => {
        const got = new Promise<Frame>((resolve) => {
          const listener = (frame: Frame) => {
            if (conformanceSeq(frame) === 77) {
              b.off('frame', listener);
              resolve(frame);
            }
          };
          b.on('frame', listener);
        });
        a.write(conformanceFrame(a, b, 77));
        const frame = await Promise.race([
          got,
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no frame event')), timeout)),
        ]);
        assert.equal(conformanceSeq(frame), 77);
      });
    });

    it('refuses oversize, runt and non-buffer frames with clear codes and keeps working', async () => {
      await withPair(async (a, b) => {
        const big = new Uint8Array(a.mtu + 15);
        big.set(conformanceFrame(a, b, 1), 0);
        await expectCode(() => a.write(big), TapErrorCode.FRAME_TOO_LARGE);
        await expectCode(() => a.write(new Uint8Array(13)), TapErrorCode.FRAME_TOO_SHORT);
        await expectCode(() => a.write('frame' as unknown as Uint8Array), TapErrorCode.INVALID_ARGUMENT);
        await expectCode(() => a.writeBatch([conformanceFrame(a, b, 2), big]), TapErrorCode.FRAME_TOO_LARGE);
        const after = conformanceFrame(a, b, 3);
        a.write(after);
        const got = await receiveMarked(b, timeout);
        assert.equal(conformanceSeq(got), 3, 'the device still works and the refused batch sent nothing');
      });
    });

    it('rejects writes after close with ERR_TAP_CLOSED; closing twice is a no-op', async () => {
      const [a, b] = await target.openPair();
      const frame = conformanceFrame(a, b, 1);
      await a.close();
      await b.close();
      assert.equal(a.closed, true);
      await expectCode(() => a.write(frame), TapErrorCode.CLOSED);
      await expectCode(() => a.writeBatch([frame]), TapErrorCode.CLOSED);
      await expectCode(() => a.read(), TapErrorCode.CLOSED);
      await a.close();
      await a.close();
    });

    it('ends pending reads and iterators when closed', async () => {
      const [a, b] = await target.openPair();
      try {
        const pending = a.read();
        const iterating = (async () => {
          let n = 0;
          for await (const _ of b.frames()) n++;
          return n;
        })();
        await new Promise((resolve) => setTimeout(resolve, 20));
        const closing = Promise.all([a.close(), b.close()]);
        await expectCode(() => pending, TapErrorCode.CLOSED);
        assert.ok((await iterating) >= 0, 'the iterator ended without throwing');
        await closing;
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it('counts frames and bytes in stats', async () => {
      await withPair(async (a, b) => {
        const before = a.stats();
        const sizes = [60, 100, 300];
        for (let i = 0; i < sizes.length; i++) a.write(conformanceFrame(a, b, i, sizes[i]));
        for (let i = 0; i < sizes.length; i++) await receiveMarked(b, timeout);
        const sent = a.stats();
        assert.equal(sent.txFrames - before.txFrames, 3);
        assert.equal(sent.txBytes - before.txBytes, 460);
        const got = b.stats();
        assert.ok(got.rxFrames >= 3 && got.rxBytes >= 460);
        assert.equal(typeof got.drops, 'object');
      });
    });

    it('honours AbortSignal on read and on open', async () => {
      await withPair(async (a, b) => {
        const controller = new AbortController();
        const pending = b.read({ signal: controller.signal });
        controller.abort();
        await expectCode(() => pending, TapErrorCode.ABORTED);
        await expectCode(() => b.read({ signal: AbortSignal.abort() }), TapErrorCode.ABORTED);
        a.write(conformanceFrame(a, b, 9));
        assert.equal(conformanceSeq(await receiveMarked(b, timeout)), 9, 'an aborted read consumes no frame');
      });
      await expectCode(() => target.open({ signal: AbortSignal.abort() }), TapErrorCode.ABORTED);
    });

    it('refuses invalid options before opening anything', async () => {
      await expectCode(() => target.open({ mtu: 10 }), TapErrorCode.INVALID_OPTION);
      await expectCode(() => target.open({ name: 'bad name!' }), TapErrorCode.INVALID_OPTION);
      await expectCode(() => target.open({ mac: '01:00:5e:00:00:01' }), TapErrorCode.INVALID_OPTION);
      await expectCode(() => target.open({ addresses: ['10.0.0.1'] }), TapErrorCode.INVALID_OPTION);
    });

    it('closes through Symbol.asyncDispose', async () => {
      let kept: TapDevice | undefined;
      {
        const device = await target.open();
        kept = device;
        await device[Symbol.asyncDispose]();
      }
      assert.equal(kept.closed, true);
      await expectCode(() => kept.read(), TapErrorCode.CLOSED);
    });

    it('survives many open/close cycles', async () => {
      const cycles = target.cycles ?? 200;
      for (let i = 0; i < cycles; i++) {
        const device = await target.open();
        assert.equal(device.closed, false);
        await device.close();
      }
    });
  });
}
