/**
 * IPv6 addresses (RFC 4291 text forms, RFC 5952 canonical output) and fixed headers (RFC 8200).
 * Extension headers are not walked: `nextHeader` and `payload` are those of the fixed header.
 *
 * @module
 */
import { assertBytes, assertLength, assertUint, invalid, malformed, put16, quote, u16 } from './internal.js';
import { writeIPv4Address } from './ipv4.js';
import { writeMac, type MacInput } from './mac.js';

export const IPV6_HEADER_LENGTH = 40;

const HEX_GROUP = /^[0-9a-f]{1,4}$/i;

/** Appends the 16-bit words of one side of `::` to `words`; an IPv4 tail counts as two. */
function pushWords(part: string, v4TailAllowed: boolean, words: number[], bad: (why: string) => Error): void {
  if (part === '') return;
  const pieces = part.split(':');
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i]!;
    if (v4TailAllowed && i === pieces.length - 1 && piece.includes('.')) {
      const v4 = new Uint8Array(4);
      try {
        writeIPv4Address(v4, 0, piece);
      } catch {
        throw bad(`${quote(piece)} is not a dotted quad`);
      }
      words.push(u16(v4, 0), u16(v4, 2));
    } else if (HEX_GROUP.test(piece)) {
      words.push(parseInt(piece, 16));
    } else {
      throw bad(piece === '' ? 'empty group' : `bad group ${quote(piece)}`);
    }
  }
}

/**
 * Writes an IPv6 address in any RFC 4291 text form (`2001:db8::1`, `::`, `::ffff:192.0.2.1`,
 * full form, any case) into `out` at `offset`. Zone indices (`%eth0`) are refused. Throws
 * INVALID_ARGUMENT.
 */
export function writeIPv6Address(out: Uint8Array, offset: number, s: string): void {
  const bad = (why: string) => invalid(`Invalid IPv6 address ${quote(s)}: ${why}`);
  if (typeof s !== 'string') throw bad('not a string');
  if (s.includes('%')) throw bad('zone indices (%) are not part of an address');
  if (s.length < 2 || s.length > 45) throw bad('wrong length'); // '::' … 6 groups + dotted quad
  const gap = s.indexOf('::');
  if (gap !== -1 && s.indexOf('::', gap + 1) !== -1) throw bad('"::" may appear once');
  const head: number[] = [];
  const tail: number[] = [];
  pushWords(gap === -1 ? s : s.slice(0, gap), gap === -1, head, bad);
  if (gap !== -1) pushWords(s.slice(gap + 2), true, tail, bad);
  if (gap === -1 ? head.length !== 8 : head.length + tail.length > 7) {
    throw bad(gap === -1 ? 'expected 8 groups' : 'too many groups for "::" to stand for one or more');
  }
  out.fill(0, offset, offset + 16);
  head.forEach((w, i) => put16(out, offset + 2 * i, w));
  tail.forEach((w, i) => put16(out, offset + 16 - 2 * (tail.length - i), w));
}

/** Parses any RFC 4291 text form into 16 bytes. Throws INVALID_ARGUMENT. */
export function parseIPv6Address(s: string): Uint8Array {
  const out = new Uint8Array(16);
  writeIPv6Address(out, 0, s);
  return out;
}

/**
 * Formats the 16 bytes at `offset` in RFC 5952 canonical form: lowercase, no leading zeros,
 * the longest run of two or more zero groups (the first on a tie) as `::`, and IPv4-mapped
 * addresses as `::ffff:192.0.2.1` (§5).
 */
export function formatIPv6Address(bytes: Uint8Array, offset = 0): string {
  if (!(bytes instanceof Uint8Array) || offset < 0 || bytes.length < offset + 16) {
    throw invalid('formatIPv6Address needs 16 bytes at the offset');
  }
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(u16(bytes, offset + 2 * i));
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    const b = offset + 12;
    return `::ffff:${bytes[b]!}.${bytes[b + 1]!}.${bytes[b + 2]!}.${bytes[b + 3]!}`;
  }
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never compressed
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i]; // strict '>': first run wins ties
    i = j;
  }
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += '::';
      i += bestLength - 1;
    } else {
      if (s !== '' && !s.endsWith(':')) s += ':';
      s += words[i]!.toString(16);
    }
  }
  return s;
}

/** A decoded IPv6 fixed header. `src`, `dst` and `payload` are views into the parsed bytes. */
export interface IPv6Packet {
  version: 6;
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
  nextHeader: number;
  hopLimit: number;
  src: Uint8Array;
  dst: Uint8Array;
  /** `payloadLength` bytes after the fixed header: Ethernet padding is excluded. */
  payload: Uint8Array;
}

/**
 * Decodes an IPv6 fixed header. Throws MALFORMED for a wrong version, fewer than 40 bytes, or
 * a payload length beyond the buffer. (A jumbogram's zero payload length yields an empty payload.)
 */
export function parseIPv6(bytes: Uint8Array): IPv6Packet {
  assertBytes(bytes, 'IPv6 packet');
  if (bytes.length < IPV6_HEADER_LENGTH)
    throw malformed(`IPv6 packet of ${bytes.length} bytes is shorter than 40`);
  const b0 = bytes[0]!;
  if (b0 >>> 4 !== 6) throw malformed(`IPv6 packet has version ${b0 >>> 4}`);
  const payloadLength = u16(bytes, 4);
  if (IPV6_HEADER_LENGTH + payloadLength > bytes.length) {
    throw malformed(`IPv6 payload length ${payloadLength} exceeds the ${bytes.length - 40} bytes available`);
  }
  const b1 = bytes[1]!;
  return {
    version: 6,
    trafficClass: ((b0 & 0x0f) << 4) | (b1 >>> 4),
    flowLabel: ((b1 & 0x0f) << 16) | u16(bytes, 2),
    payloadLength,
    nextHeader: bytes[6]!,
    hopLimit: bytes[7]!,
    src: bytes.subarray(8, 24),
    dst: bytes.subarray(24, 40),
    payload: bytes.subarray(IPV6_HEADER_LENGTH, IPV6_HEADER_LENGTH + payloadLength),
  };
}

/** The fields of an IPv6 fixed header. */
export interface IPv6HeaderOptions {
  src: Uint8Array;
  dst: Uint8Array;
  nextHeader: number;
  /** Default 64. */
  hopLimit?: number | undefined;
  /** Default 0. */
  trafficClass?: number | undefined;
  /** Default 0. */
  flowLabel?: number | undefined;
}

/** Writes the 40-byte fixed header at `offset` for a payload of `payloadLength` bytes. Returns 40. */
export function writeIPv6Header(
  out: Uint8Array,
  offset: number,
  opts: IPv6HeaderOptions,
  payloadLength: number,
): number {
  const { hopLimit = 64, trafficClass = 0, flowLabel = 0 } = opts;
  assertLength(opts.src, 16, 'source IPv6 address');
  assertLength(opts.dst, 16, 'destination IPv6 address');
  assertUint(opts.nextHeader, 0xff, 'nextHeader');
  assertUint(hopLimit, 0xff, 'hopLimit');
  assertUint(trafficClass, 0xff, 'trafficClass');
  assertUint(flowLabel, 0xfffff, 'flowLabel');
  if (payloadLength > 0xffff)
    throw invalid(`IPv6 payload length ${payloadLength} exceeds 65535 (no jumbograms)`);
  out[offset] = 0x60 | (trafficClass >>> 4);
  out[offset + 1] = ((trafficClass & 0x0f) << 4) | (flowLabel >>> 16);
  put16(out, offset + 2, flowLabel & 0xffff);
  put16(out, offset + 4, payloadLength);
  out[offset + 6] = opts.nextHeader;
  out[offset + 7] = hopLimit;
  out.set(opts.src, offset + 8);
  out.set(opts.dst, offset + 24);
  return IPV6_HEADER_LENGTH;
}

/** Options of {@link buildIPv6}. */
export interface BuildIPv6Options extends IPv6HeaderOptions {
  payload: Uint8Array;
}

/** Builds an IPv6 packet in one allocation. */
export function buildIPv6(opts: BuildIPv6Options): Uint8Array {
  assertBytes(opts.payload, 'payload');
  const out = new Uint8Array(IPV6_HEADER_LENGTH + opts.payload.length);
  writeIPv6Header(out, 0, opts, opts.payload.length);
  out.set(opts.payload, IPV6_HEADER_LENGTH);
  return out;
}

/** Writes ff02::1:ffXX:XXXX for the address at `addr` (its low 24 bits) into `out` at `offset`. */
export function writeSolicitedNodeMulticast(out: Uint8Array, offset: number, addr: Uint8Array): void {
  assertLength(addr, 16, 'IPv6 address');
  out.fill(0, offset, offset + 16);
  out[offset] = 0xff;
  out[offset + 1] = 0x02;
  out[offset + 11] = 0x01;
  out[offset + 12] = 0xff;
  out[offset + 13] = addr[13]!;
  out[offset + 14] = addr[14]!;
  out[offset + 15] = addr[15]!;
}

/** The solicited-node multicast group of `addr` (RFC 4291 §2.7.1): ff02::1:ffXX:XXXX. */
export function solicitedNodeMulticast(addr: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  writeSolicitedNodeMulticast(out, 0, addr);
  return out;
}

/** True for ff00::/8. */
export function isIPv6Multicast(addr: Uint8Array, offset = 0): boolean {
  return addr instanceof Uint8Array && addr.length >= offset + 16 && addr[offset] === 0xff;
}

/** fe80::/64 with the modified EUI-64 interface id of `mac` (RFC 4291 appendix A). */
export function linkLocalFromMac(mac: MacInput): Uint8Array {
  const out = new Uint8Array(16);
  out[0] = 0xfe;
  out[1] = 0x80;
  writeMac(out, 8, mac); // aa:bb:cc:dd:ee:ff → aa bb cc dd ee ff at 8..13, then spread
  out.copyWithin(13, 11, 14); // dd ee ff → 13..15
  out[8] = out[8]! ^ 0x02; // flip the U/L bit
  out[11] = 0xff;
  out[12] = 0xfe;
  return out;
}
