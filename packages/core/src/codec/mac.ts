/**
 * MAC (EUI-48) addresses: parsing, formatting and classification.
 *
 * @module
 */
import { getRandomValues } from 'node:crypto';
import { assertLength, invalid, quote } from './internal.js';

/** A MAC address: 6 bytes. */
export type MacAddress = Uint8Array;

/** What the builders accept for a MAC: `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, or 6 bytes. */
export type MacInput = string | Uint8Array;

export const MAC_LENGTH = 6;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30; // 0-9
  c |= 0x20; // fold A-F to a-f
  return c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
}

/**
 * Writes a MAC into `out` at `offset` without allocating (builders use this so that a string
 * MAC costs no intermediate buffer). Throws INVALID_ARGUMENT when `input` is not a MAC.
 */
export function writeMac(out: Uint8Array, offset: number, input: MacInput, what = 'MAC address'): void {
  if (input instanceof Uint8Array) {
    if (input.length !== MAC_LENGTH) throw invalid(`${what} must be 6 bytes, got ${input.length}`);
    out.set(input, offset);
    return;
  }
  const bad = () =>
    invalid(
      `Invalid ${what} ${quote(input)}: expected six hex pairs separated by ':' or '-' (aa:bb:cc:dd:ee:ff)`,
    );
  if (typeof input !== 'string' || input.length !== 17) throw bad();
  const sep = input.charCodeAt(2);
  if (sep !== 0x3a && sep !== 0x2d) throw bad(); // ':' or '-', the same one throughout
  for (let i = 0; i < MAC_LENGTH; i++) {
    const p = i * 3;
    if (i > 0 && input.charCodeAt(p - 1) !== sep) throw bad();
    const hi = hexValue(input.charCodeAt(p));
    const lo = hexValue(input.charCodeAt(p + 1));
    if (hi < 0 || lo < 0) throw bad();
    out[offset + i] = (hi << 4) | lo;
  }
}

/** Parses `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` (any case); 6 bytes are copied. */
export function parseMac(input: MacInput): MacAddress {
  const out = new Uint8Array(MAC_LENGTH);
  writeMac(out, 0, input);
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Formats 6 bytes at `offset` as lowercase `aa:bb:cc:dd:ee:ff`. */
export function formatMac(bytes: Uint8Array, offset = 0): string {
  if (!(bytes instanceof Uint8Array) || offset < 0 || bytes.length < offset + MAC_LENGTH) {
    throw invalid('formatMac needs 6 bytes at the offset');
  }
  let s = HEX[bytes[offset]!]!;
  for (let i = 1; i < MAC_LENGTH; i++) s += `:${HEX[bytes[offset + i]!]!}`;
  return s;
}

function has6(b: Uint8Array, off: number): boolean {
  return off >= 0 && b.length >= off + MAC_LENGTH;
}

/**
 * True when the MACs are equal: each given as text (`aa:bb:cc:dd:ee:ff`, any case) or as bytes,
 * the 6 at `aOffset` in `a` and at `bOffset` in `b`. False when either is short or not a MAC.
 */
export function macEquals(a: MacInput, b: MacInput, aOffset = 0, bOffset = 0): boolean {
  if (typeof a === 'string' || typeof b === 'string') {
    try {
      return macEquals(
        typeof a === 'string' ? parseMac(a) : a,
        typeof b === 'string' ? parseMac(b) : b,
        typeof a === 'string' ? 0 : aOffset,
        typeof b === 'string' ? 0 : bOffset,
      );
    } catch {
      return false; // text that is not a MAC equals nothing
    }
  }
  if (!has6(a, aOffset) || !has6(b, bOffset)) return false;
  for (let i = 0; i < MAC_LENGTH; i++) if (a[aOffset + i] !== b[bOffset + i]) return false;
  return true;
}

/** ff:ff:ff:ff:ff:ff. The classification helpers return false for fewer than 6 bytes. */
export function isBroadcastMac(mac: Uint8Array, offset = 0): boolean {
  if (!has6(mac, offset)) return false;
  for (let i = 0; i < MAC_LENGTH; i++) if (mac[offset + i] !== 0xff) return false;
  return true;
}

/** The I/G bit (bit 0 of the first byte) is set: multicast, broadcast included. */
export function isMulticastMac(mac: Uint8Array, offset = 0): boolean {
  return has6(mac, offset) && (mac[offset]! & 0x01) !== 0;
}

/** The I/G bit is clear. */
export function isUnicastMac(mac: Uint8Array, offset = 0): boolean {
  return has6(mac, offset) && (mac[offset]! & 0x01) === 0;
}

/** The U/L bit (bit 1 of the first byte) is set. */
export function isLocallyAdministeredMac(mac: Uint8Array, offset = 0): boolean {
  return has6(mac, offset) && (mac[offset]! & 0x02) !== 0;
}

/** A random unicast, locally administered MAC (cryptographically random; no OUI collisions). */
export function randomMac(): MacAddress {
  const mac = getRandomValues(new Uint8Array(MAC_LENGTH));
  mac[0] = (mac[0]! & 0xfc) | 0x02;
  return mac;
}

/**
 * ff:ff:ff:ff:ff:ff, shared: do not mutate it (typed arrays cannot be frozen). Use
 * {@link broadcastMac} for a copy you may change.
 */
export const BROADCAST_MAC: Readonly<MacAddress> = new Uint8Array(MAC_LENGTH).fill(0xff);

/** A fresh ff:ff:ff:ff:ff:ff. */
export function broadcastMac(): MacAddress {
  return new Uint8Array(MAC_LENGTH).fill(0xff);
}

/** The Ethernet group address of an IPv4 multicast group (RFC 1112): 01:00:5e + its low 23 bits. */
export function ipv4MulticastMac(addr: Uint8Array): MacAddress {
  assertLength(addr, 4, 'IPv4 address');
  return Uint8Array.of(0x01, 0x00, 0x5e, addr[1]! & 0x7f, addr[2]!, addr[3]!);
}

/** The Ethernet group address of an IPv6 multicast group (RFC 2464 §7): 33:33 + its last 4 bytes. */
export function ipv6MulticastMac(addr: Uint8Array): MacAddress {
  assertLength(addr, 16, 'IPv6 address');
  return Uint8Array.of(0x33, 0x33, addr[12]!, addr[13]!, addr[14]!, addr[15]!);
}
