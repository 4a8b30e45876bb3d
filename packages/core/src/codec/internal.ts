/**
 * Small helpers shared by the codecs. Not re-exported: not part of the public API.
 *
 * @internal
 * @module
 */
import { TapError, TapErrorCode } from '../errors.js';
import type { BuildIcmpEchoOptions, IcmpEcho } from './icmp.js';

/** A TapError for bytes that cannot be decoded. */
export function malformed(message: string): TapError {
  return new TapError(TapErrorCode.MALFORMED, message);
}

/** A TapError for a bad builder or helper input. */
export function invalid(message: string): TapError {
  return new TapError(TapErrorCode.INVALID_ARGUMENT, message);
}

/** Parsers take only Uint8Array (Buffer is one); anything else is the caller's mistake. */
export function assertBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalid(`${what} must be a Uint8Array`);
}

/** Builders' fixed-size inputs (IP addresses): a Uint8Array of exactly `length` bytes. */
export function assertLength(value: unknown, length: number, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw invalid(`${what} must be a Uint8Array of ${length} bytes`);
  }
}

/** Throws INVALID_ARGUMENT unless `src` and `dst` are both IPv4 (4 bytes) or both IPv6 (16 bytes). */
export function assertAddressPair(src: unknown, dst: unknown): asserts src is Uint8Array {
  const ok =
    src instanceof Uint8Array &&
    dst instanceof Uint8Array &&
    src.length === dst.length &&
    (src.length === 4 || src.length === 16);
  if (!ok) throw invalid('src and dst must both be 4-byte IPv4 or both 16-byte IPv6 addresses');
}

/** An integer in [0, max]; the builders' check for header fields. */
export function assertUint(value: unknown, max: number, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw invalid(`${what} must be an integer from 0 to ${max}, got ${String(value)}`);
  }
}

// Callers check bounds first; `!` only silences noUncheckedIndexedAccess.
export function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function u32(b: Uint8Array, o: number): number {
  return b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}

// Uint8Array stores `v & 0xff`, so no masking is needed.
export function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

export function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/** Quotes a user string for an error message, shortened so huge inputs don't flood logs. */
export function quote(s: unknown): string {
  const text = typeof s === 'string' ? s : String(s);
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

/** ICMPv4 and ICMPv6 echo parsing: `undefined` unless the type is `request` or `reply`. */
export function parseEchoOf(
  bytes: Uint8Array,
  request: number,
  reply: number,
  what: string,
): IcmpEcho | undefined {
  assertBytes(bytes, what);
  if (bytes.length === 0) throw malformed(`${what} is empty`);
  const type = bytes[0]!;
  if (type !== request && type !== reply) return undefined;
  if (bytes.length < 8) throw malformed(`${what} echo of ${bytes.length} bytes is shorter than 8`);
  return {
    type,
    code: bytes[1]!,
    checksum: u16(bytes, 2),
    identifier: u16(bytes, 4),
    sequence: u16(bytes, 6),
    data: bytes.subarray(8),
  };
}

/**
 * Writes an echo header + data at `offset` with the checksum left zero; the caller finishes it
 * (ICMPv4 and ICMPv6 differ only in their checksum). Returns the message length.
 */
export function writeEchoBody(out: Uint8Array, offset: number, opts: BuildIcmpEchoOptions): number {
  assertUint(opts.identifier, 0xffff, 'identifier');
  assertUint(opts.sequence, 0xffff, 'sequence');
  assertBytes(opts.data, 'data');
  out[offset] = opts.type;
  out[offset + 1] = 0;
  put16(out, offset + 2, 0);
  put16(out, offset + 4, opts.identifier);
  put16(out, offset + 6, opts.sequence);
  out.set(opts.data, offset + 8);
  return 8 + opts.data.length;
}
