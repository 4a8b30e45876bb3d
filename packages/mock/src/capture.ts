/**
 * Packet capture on a mock network, written as pcap by core's {@link PcapWriter}.
 *
 * @module
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { fromSystemError, PcapWriter, TapError, TapErrorCode, type Frame, type PcapSink } from '@tapkit/core';
import type { Link, Switch, Tap } from './switch.js';

/** Options of {@link MockNetwork.capture}. Give at most one of `path` and `sink`; with neither, the capture is kept in memory. */
export interface MockCaptureOptions {
  /** Only frames from and to this port (as `tcpdump -i` on it would see them). Default: every frame entering the switch. */
  port?: string;
  /** Write a pcap file here (created or truncated). */
  path?: string;
  /** Write the pcap stream here, one chunk per call (a Writable will do). */
  sink?: PcapSink;
  /** Timestamp resolution. Default `'us'`. */
  resolution?: 'us' | 'ns';
}

/** A running capture. */
export interface MockCapture {
  /** Packets recorded so far. */
  readonly packets: number;
  /** The pcap bytes so far, for an in-memory capture (neither `path` nor `sink`); empty otherwise. */
  bytes(): Uint8Array;
  /** Stops recording; for a file, flushes and closes it (rejects if writing it failed). Idempotent. */
  close(): Promise<void>;
}

export class Capture implements MockCapture, Tap {
  readonly link: Link | undefined;
  readonly #switch: Switch;
  readonly #writer: PcapWriter;
  readonly #chunks: Uint8Array[] | undefined;
  readonly #file: WriteStream | undefined;
  #fileError: TapError | undefined;
  #closing: Promise<void> | undefined;

  constructor(sw: Switch, link: Link | undefined, options: MockCaptureOptions) {
    const { path, sink } = options;
    if (path !== undefined && sink !== undefined) {
      throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'capture: give either path or sink, not both');
    }
    if (path !== undefined && (typeof path !== 'string' || path === '')) {
      throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'capture: path must be a non-empty string');
    }
    let out: PcapSink;
    if (path !== undefined) {
      // A stream keeps capture() synchronous: chunks queue, in order, until the file is open.
      const file = createWriteStream(path);
      file.on('error', (error) => {
        this.#fileError ??= fromSystemError(error, `write capture file ${path}`);
      });
      this.#file = file;
      out = { write: (chunk) => void file.write(chunk) };
    } else if (sink !== undefined) {
      out = sink;
    } else {
      const chunks: Uint8Array[] = (this.#chunks = []);
      out = { write: (chunk) => void chunks.push(chunk) };
    }
    this.#writer = new PcapWriter(out, { resolution: options.resolution ?? 'us' });
    this.#switch = sw;
    this.link = link;
  }

  get packets(): number {
    return this.#writer.packetCount;
  }

  record(frame: Frame): void {
    // PcapWriter copies the frame into its record at once: later changes by a receiver don't show.
    this.#writer.writePacket(frame);
  }

  bytes(): Uint8Array {
    return this.#chunks ? Buffer.concat(this.#chunks) : new Uint8Array(0);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#switch.removeTap(this);
    const file = this.#file;
    if (file === undefined) return;
    // 'close' comes after the last write and the file descriptor's release.
    if (!file.closed) await new Promise<void>((resolve) => file.once('close', resolve).end());
    if (this.#fileError) throw this.#fileError;
  }
}
