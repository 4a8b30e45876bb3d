/**
 * A classic pcap writer (the libpcap file format Wireshark and tcpdump read): a 24-byte global
 * header, then a 16-byte record header per packet. Fields are little-endian; readers detect the
 * byte order from the magic number, which also selects the resolution (µs or ns).
 *
 * @module
 */
import { open, type FileHandle } from 'node:fs/promises';
import { writeSync } from 'node:fs';
import { fromSystemError, TapError, TapErrorCode } from './errors.js';

export const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
export const PCAP_GLOBAL_HEADER_LENGTH = 24;
export const PCAP_RECORD_HEADER_LENGTH = 16;
export const PCAP_DEFAULT_SNAP_LENGTH = 262144;
/** LINKTYPE_ETHERNET: frames begin with the destination MAC. */
export const LINKTYPE_ETHERNET = 1;

/** Where a {@link PcapWriter} puts bytes: anything with a `write` (a Writable stream will do). */
export interface PcapSink {
  write(chunk: Uint8Array): void;
}

export interface PcapOptions {
  /** Timestamp resolution: `'us'` (default, most compatible) or `'ns'`. */
  resolution?: 'us' | 'ns' | undefined;
  /** Packets are cut to this many bytes. Default 262144 (what tcpdump uses). */
  snapLength?: number | undefined;
  /** The link type of the file. Default 1 (Ethernet). */
  linkType?: number | undefined;
}

/** A packet for {@link encodePcap}. */
export interface PcapPacket {
  data: Uint8Array;
  /** Nanoseconds since the Unix epoch. */
  timestampNs: bigint;
  /** The length on the wire, when `data` was already cut. Default `data.length`. */
  originalLength?: number | undefined;
}

interface Resolved {
  nano: boolean;
  snapLength: number;
  linkType: number;
}

function invalid(message: string): TapError {
  return new TapError(TapErrorCode.INVALID_ARGUMENT, message);
}

function resolve(opts: PcapOptions): Resolved {
  const { resolution = 'us', snapLength = PCAP_DEFAULT_SNAP_LENGTH, linkType = LINKTYPE_ETHERNET } = opts;
  if (resolution !== 'us' && resolution !== 'ns') throw invalid(`pcap resolution must be 'us' or 'ns'`);
  if (!Number.isInteger(snapLength) || snapLength < 1 || snapLength > 0x7fffffff) {
    throw invalid(`pcap snapLength must be a positive integer, got ${String(snapLength)}`);
  }
  if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff)
    throw invalid('pcap linkType must be 0–65535');
  return { nano: resolution === 'ns', snapLength, linkType };
}

function put32le(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

function writeGlobalHeader(out: Uint8Array, r: Resolved): void {
  put32le(out, 0, r.nano ? PCAP_MAGIC_NANOSECONDS : PCAP_MAGIC_MICROSECONDS);
  out[4] = 2; // version 2.4
  out[6] = 4;
  // thiszone and sigfigs (8..15) stay 0, as every writer leaves them.
  put32le(out, 16, r.snapLength);
  put32le(out, 20, r.linkType);
}

/**
 * Nanoseconds since the epoch: the process's time origin (µs, exact in a double) plus the
 * monotonic clock since then — wall-clock dates with the monotonic clock's resolution.
 */
export function pcapNowNs(): bigint {
  return (
    BigInt(Math.round(performance.timeOrigin * 1000)) * 1000n + BigInt(Math.round(performance.now() * 1e6))
  );
}

/** Checks a record's inputs; returns [capturedLength, originalLength]. */
function recordLengths(data: Uint8Array, originalLength: number | undefined, r: Resolved): [number, number] {
  if (!(data instanceof Uint8Array)) throw invalid('pcap packet data must be a Uint8Array');
  const original = originalLength ?? data.length;
  if (!Number.isInteger(original) || original < data.length || original > 0xffffffff) {
    throw invalid(
      `pcap originalLength ${String(originalLength)} must be an integer >= the data length ${data.length}`,
    );
  }
  return [Math.min(data.length, r.snapLength), original];
}

/** Writes one record (header + the first `captured` bytes) at `offset`; returns its length. */
function writeRecord(
  out: Uint8Array,
  offset: number,
  data: Uint8Array,
  timestampNs: bigint,
  captured: number,
  original: number,
  r: Resolved,
): number {
  if (typeof timestampNs !== 'bigint' || timestampNs < 0n)
    throw invalid('pcap timestamp must be a bigint >= 0');
  const seconds = timestampNs / 1_000_000_000n;
  if (seconds > 0xffffffffn) throw invalid('pcap timestamp is past 2106, beyond the 32-bit seconds field');
  const fraction = timestampNs % 1_000_000_000n;
  put32le(out, offset, Number(seconds));
  put32le(out, offset + 4, Number(r.nano ? fraction : fraction / 1000n));
  put32le(out, offset + 8, captured);
  put32le(out, offset + 12, original);
  out.set(captured === data.length ? data : data.subarray(0, captured), offset + PCAP_RECORD_HEADER_LENGTH);
  return PCAP_RECORD_HEADER_LENGTH + captured;
}

/**
 * Writes packets to `sink` as a pcap stream. The global header is written by the constructor;
 * each {@link writePacket} makes one `write` of a fresh chunk (header + data copied), so the
 * sink may keep chunks and the caller may reuse its frame buffers.
 */
export class PcapWriter {
  readonly resolution: 'us' | 'ns';
  readonly snapLength: number;
  readonly linkType: number;
  readonly #sink: PcapSink;
  readonly #resolved: Resolved;
  #packets = 0;

  constructor(sink: PcapSink, opts: PcapOptions = {}) {
    this.#resolved = resolve(opts);
    if (typeof sink?.write !== 'function') throw invalid('pcap sink must have a write(chunk) method');
    this.#sink = sink;
    this.resolution = this.#resolved.nano ? 'ns' : 'us';
    this.snapLength = this.#resolved.snapLength;
    this.linkType = this.#resolved.linkType;
    const header = new Uint8Array(PCAP_GLOBAL_HEADER_LENGTH);
    writeGlobalHeader(header, this.#resolved);
    sink.write(header);
  }

  /** Packets written so far. */
  get packetCount(): number {
    return this.#packets;
  }

  /**
   * Appends `frame`, cut to the snap length. `timestamp` is in ns since the epoch (default:
   * now); `originalLength` is the length on the wire when `frame` is already cut.
   */
  writePacket(frame: Uint8Array, timestamp: bigint = pcapNowNs(), originalLength?: number): void {
    const [captured, original] = recordLengths(frame, originalLength, this.#resolved);
    const chunk = new Uint8Array(PCAP_RECORD_HEADER_LENGTH + captured);
    writeRecord(chunk, 0, frame, timestamp, captured, original, this.#resolved);
    this.#sink.write(chunk);
    this.#packets++;
  }

  /** Opens (creating or truncating) a pcap file at `path`. See {@link PcapFileWriter}. */
  static async toFile(path: string, opts: PcapOptions = {}): Promise<PcapFileWriter> {
    return createPcapFile(path, opts);
  }
}

/** Buffers chunks and writes them to a file descriptor synchronously (64 KiB at a time). */
class FileSink implements PcapSink {
  readonly #handle: FileHandle;
  readonly #buffer = new Uint8Array(64 * 1024);
  readonly #path: string;
  #used = 0;
  closed = false;

  constructor(handle: FileHandle, path: string) {
    this.#handle = handle;
    this.#path = path;
  }

  write(chunk: Uint8Array): void {
    if (this.closed) throw new TapError(TapErrorCode.CLOSED, `pcap file ${this.#path} is closed`);
    if (this.#used + chunk.length > this.#buffer.length) this.flush();
    if (chunk.length >= this.#buffer.length) this.#writeAll(chunk);
    else {
      this.#buffer.set(chunk, this.#used);
      this.#used += chunk.length;
    }
  }

  flush(): void {
    if (this.#used === 0) return;
    this.#writeAll(this.#buffer.subarray(0, this.#used));
    this.#used = 0;
  }

  #writeAll(data: Uint8Array): void {
    try {
      for (let done = 0; done < data.length;)
        done += writeSync(this.#handle.fd, data, done, data.length - done);
    } catch (err) {
      throw fromSystemError(err, `write pcap file ${this.#path}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
      await this.#handle.close();
    }
  }
}

/**
 * A {@link PcapWriter} on a file. Writes are buffered and synchronous (a capture must not
 * reorder or lose packets); {@link flush} pushes them to the OS (e.g. for a live `tail`), and
 * {@link close} flushes and closes. Writing after close throws CLOSED.
 */
export class PcapFileWriter extends PcapWriter {
  readonly path: string;
  readonly #file: FileSink;
  #closing: Promise<void> | undefined;

  /** @internal Use {@link createPcapFile} or {@link PcapWriter.toFile}. */
  constructor(handle: FileHandle, path: string, opts: PcapOptions) {
    const file = new FileSink(handle, path);
    super(file, opts);
    this.#file = file;
    this.path = path;
  }

  flush(): void {
    this.#file.flush();
  }

  /** Flushes and closes the file. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#file.close().catch((err: unknown) => {
      throw fromSystemError(err, `close pcap file ${this.path}`);
    });
    return this.#closing;
  }
}

/** Opens (creating or truncating) a pcap file and writes its global header. */
export async function createPcapFile(path: string, opts: PcapOptions = {}): Promise<PcapFileWriter> {
  resolve(opts); // refuse bad options before touching the file
  let handle: FileHandle;
  try {
    handle = await open(path, 'w');
  } catch (err) {
    throw fromSystemError(err, `open pcap file ${path}`, {
      permissionHint: 'Check the permissions of its directory.',
    });
  }
  try {
    return new PcapFileWriter(handle, path, opts);
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** A whole pcap file in memory, in one allocation: for tests and small captures. */
export function encodePcap(packets: readonly PcapPacket[], opts: PcapOptions = {}): Uint8Array {
  const r = resolve(opts);
  const lengths = packets.map((p) => recordLengths(p.data, p.originalLength, r));
  const total = lengths.reduce(
    (n, [captured]) => n + PCAP_RECORD_HEADER_LENGTH + captured,
    PCAP_GLOBAL_HEADER_LENGTH,
  );
  const out = new Uint8Array(total);
  writeGlobalHeader(out, r);
  let offset = PCAP_GLOBAL_HEADER_LENGTH;
  packets.forEach((p, i) => {
    const [captured, original] = lengths[i]!;
    offset += writeRecord(out, offset, p.data, p.timestampNs, captured, original, r);
  });
  return out;
}
