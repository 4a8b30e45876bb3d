/**
 * IPv4 addresses and packet headers (RFC 791).
 *
 * @module
 */
import { checksumPartial, finishChecksum } from './checksum.js';
import { assertBytes, assertLength, assertUint, invalid, malformed, put16, quote, u16 } from './internal.js';

/** IP protocol numbers (the IPv4 `protocol` / IPv6 `nextHeader` field). */
export const IpProtocol = { ICMP: 1, TCP: 6, UDP: 17, ICMPv6: 58 } as const;

export const IPV4_HEADER_LENGTH = 20;

/**
 * Writes a strict dotted quad (`192.0.2.1`) into `out` at `offset`. Leading zeros are refused
 * (`010` means 8 to some parsers and 10 to others). Throws INVALID_ARGUMENT.
 */
export function writeIPv4Address(out: Uint8Array, offset: number, s: string): void {
  const bad = () => invalid(`Invalid IPv4 address ${quote(s)}: expected a dotted quad like 192.0.2.1`);
  if (typeof s !== 'string' || s.length < 7 || s.length > 15) throw bad();
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e; // a virtual '.' closes the last octet
    if (c === 0x2e) {
      if (digits === 0 || part > 3) throw bad();
      out[offset + part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) throw bad(); // leading zero
      value = value * 10 + (c - 0x30);
      if (++digits > 3 || value > 255) throw bad();
    } else {
      throw bad();
    }
  }
  if (part !== 4) throw bad();
}

/** Parses a strict dotted quad into 4 bytes. Throws INVALID_ARGUMENT. */
export function parseIPv4Address(s: string): Uint8Array {
  const out = new Uint8Array(4);
  writeIPv4Address(out, 0, s);
  return out;
}

/** Formats the 4 bytes at `offset` as a dotted quad. */
export function formatIPv4Address(bytes: Uint8Array, offset = 0): string {
  if (!(bytes instanceof Uint8Array) || offset < 0 || bytes.length < offset + 4) {
    throw invalid('formatIPv4Address needs 4 bytes at the offset');
  }
  return `${bytes[offset]!}.${bytes[offset + 1]!}.${bytes[offset + 2]!}.${bytes[offset + 3]!}`;
}

/** A decoded IPv4 packet. `src`, `dst` and `payload` are views into the parsed bytes. */
export interface IPv4Packet {
  version: 4;
  /** In bytes (IHL × 4), 20–60. */
  headerLength: number;
  dscp: number;
  ecn: number;
  totalLength: number;
  identification: number;
  /** The 3 flag bits: 0b010 is Don't Fragment, 0b001 More Fragments. */
  flags: number;
  /** In 8-byte units. */
  fragmentOffset: number;
  ttl: number;
  protocol: number;
  checksum: number;
  src: Uint8Array;
  dst: Uint8Array;
  /** Header options, when IHL > 5 (empty otherwise). */
  options: Uint8Array;
  /** The bytes after the header up to `totalLength`: Ethernet padding is excluded. */
  payload: Uint8Array;
}

/** IPv4 `flags` bits. */
export const IPv4Flags = { DontFragment: 0b010, MoreFragments: 0b001 } as const;

/**
 * Decodes an IPv4 header. Throws MALFORMED for a wrong version, IHL < 5, or a header or total
 * length beyond the buffer. The checksum is not checked: see {@link verifyIPv4Checksum}.
 */
export function parseIPv4(bytes: Uint8Array): IPv4Packet {
  assertBytes(bytes, 'IPv4 packet');
  if (bytes.length < IPV4_HEADER_LENGTH)
    throw malformed(`IPv4 packet of ${bytes.length} bytes is shorter than 20`);
  const b0 = bytes[0]!;
  if (b0 >>> 4 !== 4) throw malformed(`IPv4 packet has version ${b0 >>> 4}`);
  const headerLength = (b0 & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_LENGTH) throw malformed(`IPv4 header length ${headerLength} is under 20`);
  const totalLength = u16(bytes, 2);
  if (totalLength < headerLength)
    throw malformed(`IPv4 total length ${totalLength} is under the header length`);
  if (totalLength > bytes.length) {
    throw malformed(`IPv4 total length ${totalLength} exceeds the ${bytes.length} bytes available`);
  }
  const fragment = u16(bytes, 6);
  return {
    version: 4,
    headerLength,
    dscp: bytes[1]! >>> 2,
    ecn: bytes[1]! & 0x03,
    totalLength,
    identification: u16(bytes, 4),
    flags: fragment >>> 13,
    fragmentOffset: fragment & 0x1fff,
    ttl: bytes[8]!,
    protocol: bytes[9]!,
    checksum: u16(bytes, 10),
    src: bytes.subarray(12, 16),
    dst: bytes.subarray(16, 20),
    options: bytes.subarray(IPV4_HEADER_LENGTH, headerLength),
    payload: bytes.subarray(headerLength, totalLength),
  };
}

/** True when the header checksum is right. False also when there is no complete header to check. */
export function verifyIPv4Checksum(bytes: Uint8Array): boolean {
  if (!(bytes instanceof Uint8Array) || bytes.length < IPV4_HEADER_LENGTH) return false;
  const headerLength = (bytes[0]! & 0x0f) * 4;
  if (headerLength < IPV4_HEADER_LENGTH || headerLength > bytes.length) return false;
  return finishChecksum(checksumPartial(bytes, 0, 0, headerLength)) === 0;
}

/** The fields of an IPv4 header without options. */
export interface IPv4HeaderOptions {
  src: Uint8Array;
  dst: Uint8Array;
  protocol: number;
  /** Default 64. */
  ttl?: number | undefined;
  /** Default 0. */
  identification?: number | undefined;
  /** Default true (tapkit never fragments). */
  dontFragment?: boolean | undefined;
  /** Default 0. */
  dscp?: number | undefined;
  /** Default 0. */
  ecn?: number | undefined;
}

/**
 * Writes a 20-byte header with its checksum at `offset`, for a payload of `payloadLength`
 * bytes (written by the caller). Returns 20.
 */
export function writeIPv4Header(
  out: Uint8Array,
  offset: number,
  opts: IPv4HeaderOptions,
  payloadLength: number,
): number {
  const { ttl = 64, identification = 0, dscp = 0, ecn = 0 } = opts;
  assertLength(opts.src, 4, 'source IPv4 address');
  assertLength(opts.dst, 4, 'destination IPv4 address');
  assertUint(opts.protocol, 0xff, 'protocol');
  assertUint(ttl, 0xff, 'ttl');
  assertUint(identification, 0xffff, 'identification');
  assertUint(dscp, 63, 'dscp');
  assertUint(ecn, 3, 'ecn');
  const totalLength = IPV4_HEADER_LENGTH + payloadLength;
  if (totalLength > 0xffff) throw invalid(`IPv4 total length ${totalLength} exceeds 65535`);
  out[offset] = 0x45;
  out[offset + 1] = (dscp << 2) | ecn;
  put16(out, offset + 2, totalLength);
  put16(out, offset + 4, identification);
  put16(out, offset + 6, opts.dontFragment === false ? 0 : 0x4000);
  out[offset + 8] = ttl;
  out[offset + 9] = opts.protocol;
  put16(out, offset + 10, 0); // the checksum covers itself as zero
  out.set(opts.src, offset + 12);
  out.set(opts.dst, offset + 16);
  put16(out, offset + 10, finishChecksum(checksumPartial(out, 0, offset, offset + IPV4_HEADER_LENGTH)));
  return IPV4_HEADER_LENGTH;
}

/** Options of {@link buildIPv4}. */
export interface BuildIPv4Options extends IPv4HeaderOptions {
  payload: Uint8Array;
}

/** Builds an IPv4 packet (20-byte header, checksum filled) in one allocation. */
export function buildIPv4(opts: BuildIPv4Options): Uint8Array {
  assertBytes(opts.payload, 'payload');
  const out = new Uint8Array(IPV4_HEADER_LENGTH + opts.payload.length);
  writeIPv4Header(out, 0, opts, opts.payload.length);
  out.set(opts.payload, IPV4_HEADER_LENGTH);
  return out;
}
