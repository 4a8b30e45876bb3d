/**
 * Test doubles for the shim: a packet port driven by the test, a sink that records, seeded
 * randomness, and address helpers.
 */
import type { LinkState, TapError } from '@tapkit/core';
import { parseIPv4Address, parseIPv6Address, type Frame, type PortSink } from '@tapkit/core';
import type { PacketPort, PacketSink } from '../src/index.js';

export const ip4 = parseIPv4Address;
export const ip6 = parseIPv6Address;

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Lets queued microtasks (the shim's answers) and one event-loop turn run. */
export async function settle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

/** A seeded generator, so that fuzz runs are reproducible. */
export { seededRandom as seeded } from '@tapkit/test-support';

/** A packet port the test drives: it records writes and delivers what the test gives it. */
export class FakePacketPort implements PacketPort {
  readonly name: string;
  readonly mtu: number;
  readonly headroom: number;
  readonly written: Uint8Array[] = [];
  writeResult = true;
  batchCalls = 0;
  paused = false;
  closed = false;
  sink: PacketSink | undefined;

  constructor(options: { name?: string; mtu?: number; headroom?: number } = {}) {
    this.name = options.name ?? 'fake0';
    this.mtu = options.mtu ?? 1500;
    this.headroom = options.headroom ?? 0;
  }

  start(sink: PacketSink): void {
    this.sink = sink;
  }

  write(packet: Uint8Array): boolean {
    this.written.push(Uint8Array.from(packet));
    return this.writeResult;
  }

  writeBatch(packets: readonly Uint8Array[]): boolean {
    this.batchCalls++;
    for (const packet of packets) this.written.push(Uint8Array.from(packet));
    return this.writeResult;
  }

  /** The OS sends packets: copied into buffers with `headroom` free bytes in front. Returns the copies. */
  deliver(...packets: Uint8Array[]): Uint8Array[] {
    const copies = packets.map((packet) => {
      const buffer = new Uint8Array(this.headroom + packet.length);
      buffer.set(packet, this.headroom);
      return buffer.subarray(this.headroom);
    });
    this.sink!.receive(copies.slice());
    return copies;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  close(): void {
    this.closed = true;
  }
}

/** A PortSink (what core's engine is to a port) that records everything. */
export class RecordingSink implements PortSink {
  readonly frames: Frame[] = [];
  readonly batches: Frame[][] = [];
  readonly drops = new Map<string, number>();
  readonly errors: TapError[] = [];
  writableCalls = 0;
  goneError: TapError | undefined;

  receive(frames: Frame[]): void {
    this.batches.push(frames);
    this.frames.push(...frames);
  }

  writable(): void {
    this.writableCalls++;
  }

  dropped(reason: string, count = 1): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + count);
  }

  notSent(reason: string, count: number): void {
    this.dropped(reason, count);
  }

  gone(error: TapError): void {
    this.goneError = error;
  }

  error(error: TapError): void {
    this.errors.push(error);
  }

  readonly links: Partial<LinkState>[] = [];

  link(state: Partial<LinkState>): void {
    this.links.push(state);
  }

  /** Takes the frames received so far. */
  take(): Frame[] {
    return this.frames.splice(0);
  }

  drop(reason: string): number {
    return this.drops.get(reason) ?? 0;
  }
}
