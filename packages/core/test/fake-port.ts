/** A port the engine tests drive by hand, and the small helpers they share. */
import { createTapDevice } from '../src/engine.js';
import { isTapError } from '../src/errors.js';
import type { Frame, PipeCounts, PortPipe, PortSink, TapCapabilities, TapPort } from '../src/types.js';

export const capabilities: TapCapabilities = {
  layer: 2,
  minMtu: 68,
  maxMtu: 9000,
  multiQueue: false,
  offload: false,
  multicastGroups: false,
  osInterface: false,
};

/** A port the test drives by hand: it records what the engine asks of it. */
export class FakePort implements TapPort {
  readonly name: string;
  readonly mac = Uint8Array.of(2, 0, 0, 0, 0, 1);
  readonly mtu: number;
  readonly capabilities = capabilities;
  sink!: PortSink;
  written: Frame[] = [];
  accept = true;
  paused = false;
  pauses = 0;
  resumes = 0;
  closes = 0;
  /** Shared between ports to see the order of calls across devices (close, pipe stop). */
  log: string[] = [];
  /** Absent unless a test sets them. */
  writeBatch?: (frames: readonly Frame[]) => boolean;
  writeSpans?: (buffer: ArrayBuffer, spans: Uint32Array, count: number) => boolean;
  pipeTo?: (destination: TapPort) => PortPipe | undefined;
  constructor(name = 'fake0', mtu = 1500) {
    this.name = name;
    this.mtu = mtu;
  }
  start(sink: PortSink): void {
    this.sink = sink;
  }
  write(frame: Frame): boolean {
    this.written.push(Buffer.from(frame)); // a port copies what it keeps: the engine reuses its memory
    return this.accept;
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
    this.resumes++;
  }
  close(): void {
    this.closes++;
    this.log.push(`close ${this.name}`);
  }
}

/** A native pipe the test feeds by hand. */
export class FakePipe implements PortPipe {
  frames = 0;
  bytes = 0;
  refused = 0;
  drops: Record<string, number> = {};
  sourceDrops: Record<string, number> | undefined;
  stops = 0;
  constructor(
    readonly destination: TapPort,
    readonly log: string[],
  ) {}
  /** The port forwarded `count` frames of `length` bytes. */
  forward(count: number, length = 60): void {
    this.frames += count;
    this.bytes += count * length;
  }
  counts(): PipeCounts {
    return {
      frames: this.frames,
      bytes: this.bytes,
      refused: this.refused,
      drops: { ...this.drops },
      ...(this.sourceDrops && { sourceDrops: { ...this.sourceDrops } }),
    };
  }
  stop(): void {
    this.stops++;
    this.log.push('stop pipe');
  }
}

/** A frame of `length` bytes whose byte 14 is `seq`. */
export function frame(seq: number, length = 60, etherType = 0x0800): Buffer {
  const f = Buffer.alloc(length);
  f[12] = etherType >> 8;
  f[13] = etherType & 0xff;
  f[14] = seq;
  return f;
}

export function open(rxQueueFrames = 8, port = new FakePort()) {
  const device = createTapDevice(port, { backend: 'fake', rxQueueFrames });
  return { port, device };
}

/** The TapError code a promise rejects with, or undefined when it resolves. */
export async function code(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return isTapError(error) ? error.code : `not a TapError: ${String(error)}`;
  }
}

/** The TapError code an action throws, or undefined when it does not throw. */
export function thrownCode(action: () => unknown): string | undefined {
  try {
    action();
    return undefined;
  } catch (error) {
    return isTapError(error) ? error.code : `not a TapError: ${String(error)}`;
  }
}
