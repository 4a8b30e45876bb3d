/**
 * The BPF record walker: turns what read(2) on a darwin BPF device returned into frames.
 *
 * A read holds records back to back, each a `struct bpf_hdr` (see {@link BPF_HDR_FIELDS}),
 * padding up to `bh_hdrlen`, then `bh_caplen` bytes of the packet; the next record starts at
 * `BPF_WORDALIGN(bh_hdrlen + bh_caplen)` from this one (4-byte alignment, bpf.c catchpacket).
 * The last record is not padded: a read ends where its packet ends.
 *
 * Nothing here trusts a length: every record is checked to lie inside the buffer before a
 * byte of it is used, every step moves forward by at least 20 bytes, and a record that does
 * not fit ends the walk with a `ERR_TAP_MALFORMED` error (the frames before it are kept).
 *
 * Truncated records (`bh_caplen < bh_datalen`: the packet was larger than the BPF buffer, or
 * a filter cut it) are dropped and counted, not delivered: a TapDevice promises whole frames,
 * and a cut frame would look like a valid shorter one to a relay. Records shorter than an
 * Ethernet header are dropped and counted as runts.
 *
 * @module
 */
import { TapError, TapErrorCode, type ReceivedFrame } from '@tapkit/core';
import {
  BACKEND,
  BPF_ALIGNMENT,
  BPF_HDR_CAPLEN,
  BPF_HDR_DATALEN,
  BPF_HDR_FIELDS,
  BPF_HDR_HDRLEN,
} from './facts.js';

const ETHERNET_HEADER = 14;

/** What a walk found. */
export interface BpfWalk {
  /** Whole frames, in order: views into the walked buffer (no copy). */
  readonly frames: ReceivedFrame[];
  /** Records dropped because the kernel captured less than the packet (`caplen < datalen`). */
  readonly truncated: number;
  /** Records dropped because they are shorter than an Ethernet header. */
  readonly runts: number;
  /** Set when a record did not fit its read: that read's walk stopped there. */
  readonly error: TapError | undefined;
}

/** BPF_WORDALIGN, without 32-bit bitwise arithmetic (lengths here may exceed 2^31). */
function wordAlign(length: number): number {
  const rest = length % BPF_ALIGNMENT;
  return rest === 0 ? length : length + BPF_ALIGNMENT - rest;
}

function malformed(message: string): TapError {
  return new TapError(TapErrorCode.MALFORMED, `malformed BPF buffer: ${message}`, { backend: BACKEND });
}

interface Counts {
  truncated: number;
  runts: number;
}

/**
 * Walks the records of one read, appending frames to `out`. Returns an error for the first
 * record that does not fit, else undefined.
 */
function walkRead(bytes: Uint8Array, out: ReceivedFrame[], counts: Counts): TapError | undefined {
  const end = bytes.byteLength;
  const view = new DataView(bytes.buffer, bytes.byteOffset, end);
  let at = 0;
  while (at < end) {
    const left = end - at;
    if (left < BPF_HDR_FIELDS) {
      return malformed(`${left} bytes at offset ${at} are too few for a bpf_hdr (${BPF_HDR_FIELDS})`);
    }
    // Host order: little-endian on every Mac that has feth.
    const caplen = view.getUint32(at + BPF_HDR_CAPLEN, true);
    const datalen = view.getUint32(at + BPF_HDR_DATALEN, true);
    const hdrlen = view.getUint16(at + BPF_HDR_HDRLEN, true);
    if (hdrlen < BPF_HDR_FIELDS) {
      return malformed(`record at offset ${at} has bh_hdrlen ${hdrlen}, less than the header itself`);
    }
    if (caplen > datalen) {
      return malformed(`record at offset ${at} captured ${caplen} bytes of a ${datalen}-byte packet`);
    }
    if (hdrlen + caplen > left) {
      return malformed(
        `record at offset ${at} needs ${hdrlen} + ${caplen} bytes but only ${left} are left in the read`,
      );
    }
    if (caplen < datalen) counts.truncated++;
    else if (caplen < ETHERNET_HEADER) counts.runts++;
    else out.push(Buffer.from(bytes.buffer, bytes.byteOffset + at + hdrlen, caplen)); // a view
    // At least wordAlign(18) = 20 bytes forward: the walk always ends.
    at += wordAlign(hdrlen + caplen);
  }
  return undefined;
}

/** Walks the records of one read (`bytes`: exactly what read(2) returned). */
export function walkBpfBuffer(bytes: Uint8Array): BpfWalk {
  const frames: ReceivedFrame[] = [];
  const counts = { truncated: 0, runts: 0 };
  const error = walkRead(bytes, frames, counts);
  return { frames, ...counts, error };
}

/**
 * Walks a batch as the BPF reader delivers it: several reads back to back in `buffer`, read
 * `i` ending at `chunkEnds[i]`. Each read is walked on its own (records never span reads), so
 * a malformed read costs only its own remaining records; the first error is reported.
 */
export function walkBpfBatch(buffer: ArrayBuffer, chunkEnds: ArrayLike<number>): BpfWalk {
  const frames: ReceivedFrame[] = [];
  const counts = { truncated: 0, runts: 0 };
  let error: TapError | undefined;
  let start = 0;
  for (let i = 0; i < chunkEnds.length; i++) {
    const end = chunkEnds[i]!;
    if (!Number.isInteger(end) || end < start || end > buffer.byteLength) {
      error ??= malformed(`read ${i} ends at ${end}, outside ${start}–${buffer.byteLength}`);
      break;
    }
    const failed = walkRead(new Uint8Array(buffer, start, end - start), frames, counts);
    error ??= failed;
    start = end;
  }
  return { frames, ...counts, error };
}
