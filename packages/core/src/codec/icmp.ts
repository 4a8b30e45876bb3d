/**
 * ICMP for IPv4 (RFC 792): the generic header, and echo request/reply.
 *
 * @module
 */
import { checksumPartial, finishChecksum } from './checksum.js';
import { assertBytes, invalid, malformed, parseEchoOf, put16, u16, writeEchoBody } from './internal.js';

export const IcmpType = { EchoReply: 0, EchoRequest: 8 } as const;

export const ICMP_ECHO_HEADER_LENGTH = 8;

/** Any ICMP message: type, code, checksum, and the rest as a view. */
export interface IcmpMessage {
  type: number;
  code: number;
  checksum: number;
  body: Uint8Array;
}

/** An echo request or reply (ICMPv4 or ICMPv6); `data` is a view. */
export interface IcmpEcho {
  type: number;
  code: number;
  checksum: number;
  identifier: number;
  sequence: number;
  data: Uint8Array;
}

/** Decodes the 4-byte ICMP header. Throws MALFORMED when shorter. */
export function parseIcmp(bytes: Uint8Array): IcmpMessage {
  assertBytes(bytes, 'ICMP message');
  if (bytes.length < 4) throw malformed(`ICMP message of ${bytes.length} bytes is shorter than 4`);
  return { type: bytes[0]!, code: bytes[1]!, checksum: u16(bytes, 2), body: bytes.subarray(4) };
}

/** Decodes an echo request/reply; `undefined` for other types, MALFORMED when truncated. */
export function parseIcmpEcho(bytes: Uint8Array): IcmpEcho | undefined {
  return parseEchoOf(bytes, IcmpType.EchoRequest, IcmpType.EchoReply, 'ICMP message');
}

/** True when the checksum over the whole message is right (false under 4 bytes). */
export function verifyIcmpChecksum(bytes: Uint8Array): boolean {
  if (!(bytes instanceof Uint8Array) || bytes.length < 4) return false;
  return finishChecksum(checksumPartial(bytes)) === 0;
}

/** Options of {@link buildIcmpEcho}. */
export interface BuildIcmpEchoOptions {
  /** {@link IcmpType.EchoRequest} or {@link IcmpType.EchoReply}. */
  type: number;
  identifier: number;
  sequence: number;
  data: Uint8Array;
}

/** Writes an ICMPv4 echo message with its checksum at `offset`; returns its length. */
export function writeIcmpEcho(out: Uint8Array, offset: number, opts: BuildIcmpEchoOptions): number {
  if (opts.type !== IcmpType.EchoRequest && opts.type !== IcmpType.EchoReply) {
    throw invalid(`ICMP echo type must be 8 (request) or 0 (reply), got ${String(opts.type)}`);
  }
  const length = writeEchoBody(out, offset, opts);
  put16(out, offset + 2, finishChecksum(checksumPartial(out, 0, offset, offset + length)));
  return length;
}

/** Builds an ICMPv4 echo request/reply with its checksum, in one allocation. */
export function buildIcmpEcho(opts: BuildIcmpEchoOptions): Uint8Array {
  assertBytes(opts.data, 'data');
  const out = new Uint8Array(ICMP_ECHO_HEADER_LENGTH + opts.data.length);
  writeIcmpEcho(out, 0, opts);
  return out;
}
