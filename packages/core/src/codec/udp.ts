/**
 * UDP datagrams (RFC 768) over IPv4 or IPv6: the pseudo-header follows the address length.
 *
 * @module
 */
import { checksumPartial, finishChecksum, pseudoHeaderSum } from './checksum.js';
import { assertAddressPair, assertBytes, assertUint, invalid, malformed, put16, u16 } from './internal.js';
import { IpProtocol } from './ipv4.js';

export const UDP_HEADER_LENGTH = 8;

/** A decoded datagram; `payload` is a view bounded by the `length` field. */
export interface UdpDatagram {
  srcPort: number;
  dstPort: number;
  length: number;
  checksum: number;
  payload: Uint8Array;
}

/** Decodes a UDP header. Throws MALFORMED when the `length` field is under 8 or beyond the buffer. */
export function parseUdp(bytes: Uint8Array): UdpDatagram {
  assertBytes(bytes, 'UDP datagram');
  if (bytes.length < UDP_HEADER_LENGTH)
    throw malformed(`UDP datagram of ${bytes.length} bytes is shorter than 8`);
  const length = u16(bytes, 4);
  if (length < UDP_HEADER_LENGTH || length > bytes.length) {
    throw malformed(`UDP length ${length} is not within 8..${bytes.length}`);
  }
  return {
    srcPort: u16(bytes, 0),
    dstPort: u16(bytes, 2),
    length,
    checksum: u16(bytes, 6),
    payload: bytes.subarray(UDP_HEADER_LENGTH, length),
  };
}

/**
 * True when the checksum is right for the given IP addresses (4 or 16 bytes each). A zero
 * checksum means "none" over IPv4 (true) but is invalid over IPv6 (false). False too when the
 * header is unreadable.
 */
export function verifyUdpChecksum(bytes: Uint8Array, src: Uint8Array, dst: Uint8Array): boolean {
  assertAddressPair(src, dst);
  if (!(bytes instanceof Uint8Array) || bytes.length < UDP_HEADER_LENGTH) return false;
  const length = u16(bytes, 4);
  if (length < UDP_HEADER_LENGTH || length > bytes.length) return false;
  if (u16(bytes, 6) === 0) return src.length === 4;
  const sum = checksumPartial(bytes, pseudoHeaderSum(src, dst, IpProtocol.UDP, length), 0, length);
  return finishChecksum(sum) === 0;
}

/** Options of {@link buildUdp} and {@link writeUdp}. */
export interface BuildUdpOptions {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
  /** Source IP (4 or 16 bytes): selects the IPv4 or IPv6 pseudo-header. */
  src: Uint8Array;
  /** Destination IP, the same length as `src`. */
  dst: Uint8Array;
}

/** Writes header + payload + checksum at `offset`; returns the datagram length. */
export function writeUdp(out: Uint8Array, offset: number, opts: BuildUdpOptions): number {
  assertUint(opts.srcPort, 0xffff, 'srcPort');
  assertUint(opts.dstPort, 0xffff, 'dstPort');
  assertBytes(opts.payload, 'payload');
  assertAddressPair(opts.src, opts.dst);
  const length = UDP_HEADER_LENGTH + opts.payload.length;
  if (length > 0xffff) throw invalid(`UDP length ${length} exceeds 65535`);
  put16(out, offset, opts.srcPort);
  put16(out, offset + 2, opts.dstPort);
  put16(out, offset + 4, length);
  put16(out, offset + 6, 0);
  out.set(opts.payload, offset + UDP_HEADER_LENGTH);
  const sum = checksumPartial(
    out,
    pseudoHeaderSum(opts.src, opts.dst, IpProtocol.UDP, length),
    offset,
    offset + length,
  );
  // A computed 0 is sent as 0xffff: 0 would mean "no checksum" (RFC 768).
  put16(out, offset + 6, finishChecksum(sum) || 0xffff);
  return length;
}

/** Builds a UDP datagram with its checksum, in one allocation. */
export function buildUdp(opts: BuildUdpOptions): Uint8Array {
  assertBytes(opts.payload, 'payload');
  const out = new Uint8Array(UDP_HEADER_LENGTH + opts.payload.length);
  writeUdp(out, 0, opts);
  return out;
}
