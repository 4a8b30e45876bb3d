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
import { execFile } from 'node:child_process';
import { isTapError, TapErrorCode, type TapErrorCodeValue } from '../errors.js';
import { ArpOp } from '../codec/arp.js';
import { buildArpRequestFrame, buildIcmpEchoFrame, buildUdpFrame, decodeFrame } from '../codec/frames.js';
import { formatMac, isMulticastMac, macEquals, randomMac } from '../codec/mac.js';
import type { Frame, LinkChange, ReceivedFrame, TapDevice, TapOpenOptions } from '../types.js';

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
  /**
   * The pair is joined through the OS's IP layer rather than by a wire (darwin-utun: each OS
   * side takes the packet and hands it to the other): a frame crosses only when it is addressed
   * to the writer's `mac`, and arrives with the Ethernet header of the receiver's OS side.
   * Default false: the suite's frames go from one program MAC to another, unchanged.
   */
  readonly routedPair?: boolean;
  /**
   * What the OS side of a device opened with `addresses` answers there, from `device.mac`:
   * ARP requests, and ICMP echo requests. Default both. A backend whose test kernel has no IP
   * stack (darwin-feth's simulated one) gives `[]`: its real-Mac tests check this.
   */
  readonly answers?: readonly ('arp' | 'ping')[];
  /**
   * The backend can change an open device's MTU (`setMtu`). Default true; false: the suite
   * checks that `setMtu` rejects with `ERR_TAP_UNSUPPORTED_OPERATION` naming the backend.
   */
  readonly setMtu?: boolean;
  /** Open/close cycles in the leak test. Default 200. */
  readonly cycles?: number;
  /** How long to wait for a frame. Default 5000 ms. */
  readonly receiveTimeoutMs?: number;
  /** Per-test timeout passed to `it`. Default 60000 ms. */
  readonly testTimeoutMs?: number;
  /**
   * An ES module (a `file:` URL or a package specifier) whose `open()` export opens one device
   * of this backend in a fresh Node.js process, where the suite checks that an open device
   * holds the event loop and an unref'd one does not. Without it that test is not defined.
   */
  readonly openModule?: string;
}

/**
 * Runs a fresh Node.js process that opens a device with `openModule`'s `open()`, applies
 * `calls` (`unref`, `ref`) and then waits for a frame with a 200 ms timeout (whose timer does not
 * hold the event loop). Returns what it printed: the read's error code when the process lived
 * to see the timeout, nothing when it exited first.
 */
function readWithTimeoutInChild(openModule: string, calls: readonly ('unref' | 'ref')[]): Promise<string> {
  const code = [
    `const { open } = await import(${JSON.stringify(openModule)});`,
    'const device = await open();',
    ...calls.map((call) => `device.${call}();`),
    'device.read({ signal: AbortSignal.timeout(200) }).then(',
    "  () => console.log('frame'),",
    '  (error) => { console.log(error.code); return device.close(); },',
    ');',
  ].join('\n');
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', code],
      { timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`the child process failed: ${error.message}\n${stderr}`));
        else resolve(stdout.trim());
      },
    );
  });
}

const MARKER = new TextEncoder().encode('TAPKITCF');
const HEADERS = 14 + 20 + 8; // Ethernet + IPv4 + UDP around the suite's payloads
const SRC_IP = Uint8Array.of(198, 18, 0, 1);
const DST_IP = Uint8Array.of(198, 18, 0, 2);
const BROADCAST_MAC = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
const BROADCAST_IP = Uint8Array.of(255, 255, 255, 255);

/**
 * The MAC the suite's program uses on a device's link: one of its own, as a program must
 * (`device.mac` is the OS's station on every backend).
 */
const programMacs = new WeakMap<TapDevice, Uint8Array>();
function programMac(device: TapDevice): Uint8Array {
  let mac = programMacs.get(device);
  if (mac === undefined) programMacs.set(device, (mac = randomMac()));
  return mac;
}

/**
 * A suite frame: IPv4/UDP from the program on `from`'s link to the program on `to`'s, `size`
 * bytes long, tagged with `seq`. Over a routed pair (see {@link ConformanceTarget.routedPair})
 * it is addressed to `from`'s OS side, which passes it on.
 */
export function conformanceFrame(
  from: TapDevice,
  to: TapDevice,
  seq: number,
  size = 60,
  routed = false,
): Frame {
  return suiteFrame(programMac(from), routed ? from.mac : programMac(to), DST_IP, seq, size);
}

/**
 * A suite frame broadcast (MAC and IPv4) from `from`. Pipe tests send these: a frame piped on
 * from one link to another keeps the first link's MACs, and only a broadcast is carried by
 * every backend whatever they are (darwin-utun's shim takes unicast only to its peer's MAC).
 */
function broadcastFrame(from: TapDevice, seq: number, size = 60): Frame {
  return suiteFrame(programMac(from), BROADCAST_MAC, BROADCAST_IP, seq, size);
}

function suiteFrame(
  srcMac: Uint8Array,
  dstMac: Uint8Array,
  dstIp: Uint8Array,
  seq: number,
  size: number,
): Frame {
  const payload = new Uint8Array(Math.max(size - HEADERS, MARKER.length + 4));
  payload.set(MARKER, 0);
  new DataView(payload.buffer).setUint32(MARKER.length, seq);
  for (let i = MARKER.length + 4; i < payload.length; i++) payload[i] = (seq + i) & 0xff;
  return buildUdpFrame({
    srcMac,
    dstMac,
    src: SRC_IP,
    dst: dstIp,
    srcPort: 40000,
    dstPort: 40001,
    payload,
  });
}

/**
 * The sequence number of a suite frame (or, from a layer-3 device, packet), or -1 for anything
 * else (OS chatter on real links).
 */
export function conformanceSeq(frame: Frame): number {
  for (const at of [HEADERS, HEADERS - 14]) {
    if (frame.length < at + MARKER.length + 4) continue;
    let i = 0;
    while (i < MARKER.length && frame[at + i] === MARKER[i]) i++;
    if (i === MARKER.length)
      return new DataView(frame.buffer, frame.byteOffset + at + MARKER.length, 4).getUint32(0);
  }
  return -1;
}

/** The link-layer header a device's frames carry: 14 (Ethernet), or 0 on a layer-3 device. */
function linkHeader(device: TapDevice): number {
  return device.capabilities.layer === 3 ? 0 : 14;
}

/** A suite frame as `device` takes it: the IP packet alone on a layer-3 device. */
function forLayer(device: TapDevice, frame: Frame): Frame {
  return linkHeader(device) === 0 ? Buffer.from(frame.subarray(14)) : frame;
}

/** Reads until a suite frame arrives (skipping OS chatter) or the timeout passes. */
export async function receiveMarked(device: TapDevice, timeoutMs: number): Promise<Frame> {
  const signal = AbortSignal.timeout(timeoutMs);
  for (;;) {
    const frame = await device.read({ signal });
    if (conformanceSeq(frame) >= 0) return frame;
  }
}

/** A device's `drain` and `close` listeners, where it can count them (EventEmitter), else zeros. */
function pipeListeners(device: TapDevice): number[] {
  const count = (device as { listenerCount?: (event: string) => number }).listenerCount;
  return ['drain', 'close'].map((event) => (typeof count === 'function' ? count.call(device, event) : 0));
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

/** Expects an `ERR_TAP_ABORTED` whose cause is `cause`. */
async function expectCause(action: () => unknown, cause: unknown): Promise<void> {
  await assert.rejects(
    async () => {
      await action();
    },
    (error: unknown) => {
      assert.ok(isTapError(error, TapErrorCode.ABORTED), `expected ERR_TAP_ABORTED, got ${String(error)}`);
      assert.equal((error as Error).cause, cause);
      return true;
    },
  );
}

/** Defines the conformance tests for one backend. */
export function conformanceSuite(api: TestApi, target: ConformanceTarget): void {
  const timeout = target.receiveTimeoutMs ?? 5000;
  const testTimeout = target.testTimeoutMs ?? 60_000;
  const it = (name: string, body: () => Promise<void>) => api.it(name, body, testTimeout);
  const routed = target.routedPair === true;
  const frameFor = (from: TapDevice, to: TapDevice, seq: number, size?: number) =>
    forLayer(
      from,
      conformanceFrame(from, to, seq, size === undefined ? undefined : size + 14 - linkHeader(from), routed),
    );
  const broadcastFor = (from: TapDevice, seq: number, size?: number) =>
    forLayer(from, broadcastFrame(from, seq, size === undefined ? undefined : size + 14 - linkHeader(from)));
  const answers = target.answers ?? ['arp', 'ping'];

  async function withPair(body: (a: TapDevice, b: TapDevice) => Promise<void>): Promise<void> {
    const [a, b] = await target.openPair();
    try {
      await body(a, b);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }

  /**
   * Two pairs, x1–y1 and x2–y2: what x1 writes y1 reads, and what y1 pipes to x2, y2 reads.
   */
  async function withTwoPairs(
    body: (x1: TapDevice, y1: TapDevice, x2: TapDevice, y2: TapDevice) => Promise<void>,
  ): Promise<void> {
    await withPair((x1, y1) => withPair((x2, y2) => body(x1, y1, x2, y2)));
  }

  api.describe(`tapkit conformance: ${target.name}`, () => {
    it('reports its name, backend, MAC, MTU and capabilities', async () => {
      await withPair(async (a) => {
        assert.equal(typeof a.name, 'string');
        assert.ok(a.name.length > 0);
        assert.equal(a.backend, target.backend);
        assert.ok(Number.isInteger(a.mtu) && a.mtu >= 68);
        assert.ok(a.mtu >= a.capabilities.minMtu && a.mtu <= a.capabilities.maxMtu);
        assert.equal(a.closed, false);
        if (a.capabilities.layer === 3) {
          assert.equal(a.mac.length, 0, 'a layer-3 device has no MAC');
          return;
        }
        assert.equal(a.capabilities.layer, 2);
        assert.equal(a.mac.length, 6);
        assert.ok(!isMulticastMac(a.mac), 'device MAC must be unicast');
        a.mac[0] = 0xff; // the MAC is a copy: changing it does nothing
        assert.notEqual(a.mac[0], 0xff);
      });
    });

    if (answers.length > 0) {
      it("is the OS's station on the link: it answers for its addresses from device.mac", async () => {
        // A /30 of its own in 198.18.0.0/15 (RFC 2544 benchmarking space), so that devices of
        // parallel runs on one kernel do not share a subnet.
        const n = Math.floor(Math.random() * 2 ** 15);
        const net = Uint8Array.of(198, 18 + (n >> 14), (n >> 6) & 0xff, (n & 0x3f) << 2);
        const os = Uint8Array.of(net[0]!, net[1]!, net[2]!, net[3]! + 1);
        const me = Uint8Array.of(net[0]!, net[1]!, net[2]!, net[3]! + 2);
        const dev = await target.open({ addresses: [`${os.join('.')}/30`] });
        try {
          const mac = programMac(dev);
          const signal = AbortSignal.timeout(timeout);
          /** Reads until `match` accepts a frame from the OS side to the program's MAC. */
          const answer = async (what: string, match: (d: ReturnType<typeof decodeFrame>) => boolean) => {
            for (;;) {
              const d = decodeFrame(await dev.read({ signal }));
              if (d.eth === undefined || !match(d)) continue;
              assert.equal(formatMac(d.eth.src), formatMac(dev.mac), `${what} comes from device.mac`);
              assert.equal(formatMac(d.eth.dst), formatMac(mac), `${what} goes to the program's MAC`);
              return d;
            }
          };
          const request = buildArpRequestFrame({ srcMac: mac, srcIp: me, targetIp: os });
          // A kernel may still be bringing the link up: ask again until the answer comes.
          const asking = setInterval(() => dev.write(request), 250);
          dev.write(request);
          try {
            const d = await answer('the ARP reply', (d) => d.arp?.op === ArpOp.Reply);
            assert.ok(macEquals(d.arp!.senderMac, dev.mac), 'the reply says the address is at device.mac');
            assert.deepEqual([...d.arp!.senderIp], [...os]);
          } finally {
            clearInterval(asking);
          }
          if (answers.includes('ping')) {
            const echo = { src: me, dst: os, identifier: 0x7463, sequence: 1, data: Uint8Array.of(1, 2, 3) };
            dev.write(buildIcmpEchoFrame({ srcMac: mac, dstMac: dev.mac, type: 'request', ...echo }));
            const d = await answer(
              'the echo reply',
              (d) => d.icmpEcho?.type === 0 && d.icmpEcho.identifier === 0x7463,
            );
            assert.deepEqual([...d.ipv4!.src], [...os]);
          }
        } finally {
          await dev.close();
        }
      });
    }

    it('round-trips frames both ways, from the smallest to the largest the MTU allows', async () => {
      await withPair(async (a, b) => {
        const sizes = [60, 61, 512, 1000, a.mtu + 14].map((size) => size - 14 + linkHeader(a));
        let seq = 0;
        for (const [from, to] of [
          [a, b],
          [b, a],
        ] as const) {
          for (const size of sizes) {
            const largest = Math.min(from.mtu, to.mtu) + linkHeader(from);
            const sent = frameFor(from, to, ++seq, Math.min(size, largest));
            from.write(sent);
            const got = await receiveMarked(to, timeout);
            assert.ok(Buffer.isBuffer(got), 'a received frame is a Buffer');
            assert.equal(conformanceSeq(got), seq);
            if (routed) {
              // Rebuilt by the receiver's OS side: from its MAC, to the program's (or broadcast).
              assert.equal(formatMac(got.subarray(6, 12)), formatMac(to.mac));
              assert.deepEqual(Buffer.from(got.subarray(12)), Buffer.from(sent.subarray(12)));
            } else {
              assert.deepEqual(Buffer.from(got), Buffer.from(sent));
            }
          }
        }
      });
    });

    it('yields frames in order through async iteration', async () => {
      await withPair(async (a, b) => {
        const count = 64;
        for (let i = 0; i < count; i++) a.write(frameFor(a, b, i));
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

    it('sends what write() was given, though the caller reuses its buffer at once; in order with writeBatch()', async () => {
      await withPair(async (a, b) => {
        // write() may hand frames to the OS later in the turn: it must have copied them.
        const scratch = frameFor(a, b, 2000);
        for (let seq = 2000; seq < 2008; seq++) {
          scratch.set(frameFor(a, b, seq));
          a.write(scratch);
        }
        a.writeBatch([frameFor(a, b, 2008)]);
        a.write(frameFor(a, b, 2009));
        const seen: number[] = [];
        const signal = AbortSignal.timeout(timeout);
        while (seen.length < 10) {
          for (const frame of await b.readBatch(undefined, { signal })) {
            if (conformanceSeq(frame) >= 2000) seen.push(conformanceSeq(frame));
          }
        }
        assert.deepEqual(
          seen,
          Array.from({ length: 10 }, (_, i) => 2000 + i),
        );
      });
    });

    it('delivers a batch write whole and reads it back in batches', async () => {
      await withPair(async (a, b) => {
        const batch = Array.from({ length: 32 }, (_, i) => frameFor(a, b, 1000 + i, 100 + i));
        await a.drain();
        a.writeBatch(batch);
        const seen = new Set<number>();
        const signal = AbortSignal.timeout(timeout);
        while (seen.size < batch.length) {
          const frames = await b.readBatch(16, { signal });
          assert.ok(frames.length >= 1 && frames.length <= 16);
          assert.ok(
            frames.every((f) => Buffer.isBuffer(f)),
            'received frames are Buffers',
          );
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
        const got = new Promise<ReceivedFrame>((resolve) => {
          const listener = (frame: ReceivedFrame) => {
            if (conformanceSeq(frame) === 77) {
              b.off('frame', listener);
              resolve(frame);
            }
          };
          b.on('frame', listener);
        });
        a.write(frameFor(a, b, 77));
        const frame = await Promise.race([
          got,
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no frame event')), timeout)),
        ]);
        assert.equal(conformanceSeq(frame), 77);
        const ipAt = linkHeader(b);
        assert.equal(frame.toString('hex', ipAt, ipAt + 1)[0], '4', 'a Buffer, holding an IPv4 packet');
      });
    });

    it('refuses oversize, runt and non-buffer frames with clear codes and keeps working', async () => {
      await withPair(async (a, b) => {
        const big = new Uint8Array(a.mtu + linkHeader(a) + 1);
        big.set(frameFor(a, b, 1), 0);
        await expectCode(() => a.write(big), TapErrorCode.FRAME_TOO_LARGE);
        // Shorter than an Ethernet header; on a layer-3 device, than an IPv4 header.
        const runt = new Uint8Array(linkHeader(a) === 0 ? 19 : 13);
        await expectCode(() => a.write(runt), TapErrorCode.FRAME_TOO_SHORT);
        await expectCode(() => a.write('frame' as unknown as Uint8Array), TapErrorCode.INVALID_ARGUMENT);
        await expectCode(() => a.writeBatch([frameFor(a, b, 2), big]), TapErrorCode.FRAME_TOO_LARGE);
        const after = frameFor(a, b, 3);
        a.write(after);
        const got = await receiveMarked(b, timeout);
        assert.equal(conformanceSeq(got), 3, 'the device still works and the refused batch sent nothing');
      });
    });

    it('checks setter arguments before the backend sees them', async () => {
      await withPair(async (a) => {
        await expectCode(() => a.setMtu('1500' as unknown as number), TapErrorCode.INVALID_OPTION);
        await expectCode(() => a.setMtu(a.capabilities.maxMtu + 1), TapErrorCode.MTU_UNSUPPORTED);
        await expectCode(() => a.setUp('yes' as unknown as boolean), TapErrorCode.INVALID_ARGUMENT);
        await expectCode(() => a.addAddress('10.0.0.1'), TapErrorCode.INVALID_OPTION);
        await expectCode(() => a.removeAddress('nonsense/8'), TapErrorCode.INVALID_OPTION);
        const closed = await target.open();
        await closed.close();
        await expectCode(() => closed.setMtu(1400), TapErrorCode.CLOSED);
      });
    });

    if (target.setMtu === false) {
      it('refuses setMtu with ERR_TAP_UNSUPPORTED_OPERATION naming the backend', async () => {
        await withPair(async (a) => {
          const mtu = a.mtu;
          await assert.rejects(a.setMtu(a.mtu - 100), (error: unknown) => {
            assert.ok(isTapError(error, TapErrorCode.UNSUPPORTED_OPERATION), String(error));
            assert.equal(error.backend, target.backend);
            return true;
          });
          assert.equal(a.mtu, mtu);
        });
      });
    } else {
      // On one device from open(): a pair may live where the opener cannot change it (linux-tap
      // moves its pair into a namespace). Its frames go to the program's MAC, which the OS side
      // ignores.
      it('follows setMtu: a link event, and writes checked against the new MTU', async () => {
        const a = await target.open();
        try {
          const changes: LinkChange[] = [];
          a.on('link', (change) => changes.push(change));
          const before = a.mtu;
          const smaller = before - 200;
          await a.setMtu(smaller);
          assert.equal(a.mtu, smaller);
          assert.deepEqual(
            changes.find((change) => change.mtu !== undefined)?.mtu,
            { from: before, to: smaller },
            'a link event says the MTU changed',
          );
          const largest = smaller + linkHeader(a);
          const tooLarge = new Uint8Array(largest + 1);
          tooLarge.set(frameFor(a, a, 1), 0);
          await expectCode(() => a.write(tooLarge), TapErrorCode.FRAME_TOO_LARGE);
          await expectCode(() => a.writeBatch([tooLarge]), TapErrorCode.FRAME_TOO_LARGE);
          a.write(frameFor(a, a, 2, largest)); // at the new MTU: accepted
          await a.setMtu(before);
          assert.equal(a.mtu, before);
          a.write(frameFor(a, a, 3, before + linkHeader(a))); // and at the old one again
          await a.setMtu(before); // no change: no event
          assert.equal(changes.filter((change) => change.mtu !== undefined).length, 2);
        } finally {
          await a.close();
        }
      });
    }

    it('rejects writes after close with ERR_TAP_CLOSED; closing twice is a no-op', async () => {
      const [a, b] = await target.openPair();
      const frame = frameFor(a, b, 1);
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
        for (let i = 0; i < sizes.length; i++) a.write(frameFor(a, b, i, sizes[i]));
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
        // The signal's reason is the error's cause: a timeout can be told from a user's abort.
        const reason = new Error('user abort');
        await expectCause(() => b.read({ signal: AbortSignal.abort(reason) }), reason);
        a.write(frameFor(a, b, 9));
        assert.equal(conformanceSeq(await receiveMarked(b, timeout)), 9, 'an aborted read consumes no frame');
      });
      await expectCode(() => target.open({ signal: AbortSignal.abort() }), TapErrorCode.ABORTED);
      const reason = new Error('user abort');
      await expectCause(() => target.open({ signal: AbortSignal.abort(reason) }), reason);
    });

    it('pipes what it receives to another device, in order, counting it on both sides', async () => {
      await withTwoPairs(async (x1, y1, x2, y2) => {
        const [rxBefore, txBefore] = [y1.stats(), x2.stats()];
        const piping = y1.pipeTo(x2);
        const sent = Array.from({ length: 17 }, (_, i) => broadcastFor(x1, i + 1, 60 + 8 * i));
        x1.write(sent[0]!);
        x1.writeBatch(sent.slice(1));
        const got: Frame[] = [];
        while (got.length < sent.length) got.push(await receiveMarked(y2, timeout));
        assert.deepEqual(got.map(conformanceSeq), sent.map(conformanceSeq));
        for (let i = 0; i < sent.length; i++) {
          // From the IPv4 header on: a backend may rewrite the MACs (darwin-utun's shim does).
          const [gotIp, sentIp] = [got[i]!.subarray(linkHeader(y2)), sent[i]!.subarray(linkHeader(x1))];
          assert.deepEqual(Buffer.from(gotIp), Buffer.from(sentIp));
        }
        const bytes = sent.reduce((sum, frame) => sum + frame.length, 0);
        const [rx, tx] = [y1.stats(), x2.stats()];
        assert.ok(rx.rxFrames - rxBefore.rxFrames >= sent.length, 'piped frames count in the source rx');
        assert.ok(rx.rxBytes - rxBefore.rxBytes >= bytes);
        assert.ok(tx.txFrames - txBefore.txFrames >= sent.length, 'piped frames count in the destination tx');
        assert.ok(tx.txBytes - txBefore.txBytes >= bytes);
        await y1.close();
        await piping;
      });
    });

    it('stops piping when aborted: the source reads again, nothing is left on the destination', async () => {
      await withTwoPairs(async (x1, y1, x2, y2) => {
        const listenersBefore = pipeListeners(x2);
        const controller = new AbortController();
        const piping = y1.pipeTo(x2, { signal: controller.signal });
        const reading = receiveMarked(y1, 3 * timeout); // waits while the pipe runs
        x1.write(broadcastFor(x1, 1));
        assert.equal(conformanceSeq(await receiveMarked(y2, timeout)), 1);
        const reason = new Error('stop piping');
        controller.abort(reason);
        await expectCause(() => piping, reason);
        assert.deepEqual(pipeListeners(x2), listenersBefore);
        x1.write(broadcastFor(x1, 2));
        assert.equal(
          conformanceSeq(await reading),
          2,
          'the waiting read gets the first frame after the pipe',
        );
        y1.write(frameFor(y1, x1, 3));
        assert.equal(conformanceSeq(await receiveMarked(x1, timeout)), 3);
      });
    });

    it('ends a pipe when either device is closed; the other keeps working', async () => {
      await withTwoPairs(async (x1, y1, x2, y2) => {
        const toClosed = y1.pipeTo(x2);
        await x2.close();
        await toClosed;
        x1.write(broadcastFor(x1, 1));
        assert.equal(conformanceSeq(await receiveMarked(y1, timeout)), 1, 'the source reads again');
        const fromClosed = y2.pipeTo(y1);
        await y2.close();
        await fromClosed;
        y1.write(frameFor(y1, x1, 2));
        assert.equal(conformanceSeq(await receiveMarked(x1, timeout)), 2, 'the destination writes on');
      });
    });

    it('refuses a second pipe, itself, a non-device, an aborted signal and closed devices', async () => {
      await withTwoPairs(async (x1, y1, x2, y2) => {
        const piping = y1.pipeTo(x2);
        await expectCode(() => y1.pipeTo(y2), TapErrorCode.BUSY);
        await expectCode(() => x1.pipeTo(x1), TapErrorCode.INVALID_ARGUMENT);
        await expectCode(() => x1.pipeTo({} as TapDevice), TapErrorCode.INVALID_ARGUMENT);
        await expectCode(() => x1.pipeTo(x2, { signal: AbortSignal.abort() }), TapErrorCode.ABORTED);
        await y2.close();
        await expectCode(() => x1.pipeTo(y2), TapErrorCode.CLOSED);
        await x1.close();
        await expectCode(() => x1.pipeTo(x2), TapErrorCode.CLOSED);
        await y1.close();
        await piping;
      });
    });

    it('relays both ways: a.pipeTo(b) with b.pipeTo(a)', async () => {
      await withTwoPairs(async (x1, y1, x2, y2) => {
        const there = y1.pipeTo(x2);
        const back = x2.pipeTo(y1);
        x1.write(broadcastFor(x1, 1));
        assert.equal(conformanceSeq(await receiveMarked(y2, timeout)), 1, 'one way');
        y2.write(broadcastFor(y2, 2));
        assert.equal(conformanceSeq(await receiveMarked(x1, timeout)), 2, 'the other way');
        await y1.close();
        await Promise.all([there, back]);
      });
    });

    it('refuses invalid options before opening anything', async () => {
      await expectCode(() => target.open({ mtu: 10 }), TapErrorCode.MTU_UNSUPPORTED);
      await expectCode(() => target.open({ mtu: '1500' as unknown as number }), TapErrorCode.INVALID_OPTION);
      await expectCode(() => target.open({ name: 'bad name!' }), TapErrorCode.INVALID_OPTION);
      await expectCode(() => target.open({ mac: '01:00:5e:00:00:01' }), TapErrorCode.INVALID_OPTION);
      await expectCode(() => target.open({ addresses: ['10.0.0.1'] }), TapErrorCode.INVALID_OPTION);
      // A typo is not ignored: the device would open without what was asked for.
      const typo = { adresses: ['10.0.0.1/24'] } as TapOpenOptions;
      await expectCode(() => target.open(typo), TapErrorCode.UNSUPPORTED_OPTION);
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

    if (target.openModule !== undefined) {
      const openModule = target.openModule;
      it('holds the event loop while open, unless unref() was called', async () => {
        const [held, unreffed, refAgain] = await Promise.all([
          readWithTimeoutInChild(openModule, []),
          readWithTimeoutInChild(openModule, ['unref']),
          readWithTimeoutInChild(openModule, ['unref', 'ref']),
        ]);
        assert.equal(
          held,
          TapErrorCode.ABORTED,
          'an open device keeps the process alive until the read times out',
        );
        assert.equal(unreffed, '', 'an unref()ed device lets the process exit');
        assert.equal(refAgain, TapErrorCode.ABORTED, 'ref() undoes unref()');
      });
    }

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
