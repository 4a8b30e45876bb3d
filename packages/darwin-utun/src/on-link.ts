/**
 * What is "on-link" on the shim's virtual Ethernet, i.e. which IP addresses the OS side answers
 * ARP and neighbour solicitations for.
 *
 * The link is point-to-point: the user's program is one side, the OS (behind the device's MAC) the
 * other. With the default mode, `'prefixes'`, an address is on-link when it lies in one of the
 * prefixes configured on the device (`addresses: ['10.0.0.1/24']` puts 10.0.0.0/24 on-link),
 * IPv6 link-local addresses (fe80::/10) always being on-link, as RFC 4861 has it. The OS side
 * then answers for every such address but the asker's own — as a router doing proxy ARP for
 * its connected prefix would, which is what the OS is to the user: everything in the prefix is
 * reached through it. Never answered: the unspecified, loopback, multicast and broadcast
 * addresses, and (for IPv4 prefixes up to /30) a prefix's network and broadcast addresses.
 *
 * With `'any'`, every address that could be a unicast neighbour is on-link: for devices whose
 * addresses are configured outside tapkit.
 *
 * The OS side *holds* only the configured addresses themselves (and the link-local addresses
 * it is seen sending from): only those are defended against duplicate address detection.
 *
 * @module
 */
import type { InterfaceAddress } from '@tapkit/core';

/** How the shim decides which addresses are on-link: see the module documentation. */
export type OnLinkMode = 'prefixes' | 'any';

/** True when the first `length` bits of `ip` and `prefix` agree. */
function inPrefix(ip: Uint8Array, prefix: Uint8Array, length: number): boolean {
  const whole = length >> 3;
  for (let i = 0; i < whole; i++) if (ip[i] !== prefix[i]) return false;
  const rest = length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((ip[whole]! ^ prefix[whole]!) & mask) === 0;
}

/** True when every bit of `ip` after the first `length` equals `bit`. */
function hostBits(ip: Uint8Array, length: number, bit: 0 | 1): boolean {
  const fill = bit === 1 ? 0xff : 0;
  for (let i = length >> 3; i < ip.length; i++) {
    const mask = i === length >> 3 ? 0xff >> (length & 7) : 0xff;
    if ((ip[i]! & mask) !== (fill & mask)) return false;
  }
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isZero(ip: Uint8Array): boolean {
  for (const b of ip) if (b !== 0) return false;
  return true;
}

/** An IPv4 address that cannot be a unicast neighbour: 0/8, 127/8, 224/4 and 240/4. */
function specialIPv4(ip: Uint8Array): boolean {
  const first = ip[0]!;
  return first === 0 || first === 127 || first >= 224;
}

/** An IPv6 address that cannot be a unicast neighbour: ::, ::1, ff00::/8. */
function specialIPv6(ip: Uint8Array): boolean {
  if (ip[0] === 0xff) return true;
  for (let i = 0; i < 15; i++) if (ip[i] !== 0) return false;
  return ip[15] === 0 || ip[15] === 1;
}

/** fe80::/10. */
export function isLinkLocalIPv6(ip: Uint8Array, offset = 0): boolean {
  return ip[offset] === 0xfe && (ip[offset + 1]! & 0xc0) === 0x80;
}

/** The addresses of the shim's link: the configured ones and the on-link rule. */
export class LinkAddresses {
  readonly #v4: readonly InterfaceAddress[];
  readonly #v6: readonly InterfaceAddress[];
  readonly #mode: OnLinkMode;

  constructor(addresses: readonly InterfaceAddress[], mode: OnLinkMode) {
    this.#v4 = addresses.filter((a) => a.family === 4);
    this.#v6 = addresses.filter((a) => a.family === 6);
    this.#mode = mode;
  }

  /** IPv4 `ip` (4 bytes) is on-link: the OS side answers ARP requests for it. */
  isOnLinkIPv4(ip: Uint8Array): boolean {
    if (specialIPv4(ip)) return false;
    if (this.#mode === 'any') return true;
    for (const { address, prefixLength } of this.#v4) {
      if (!inPrefix(ip, address, prefixLength)) continue;
      // A /31 or /32 has no network or broadcast address (RFC 3021).
      if (prefixLength <= 30 && (hostBits(ip, prefixLength, 0) || hostBits(ip, prefixLength, 1))) continue;
      return true;
    }
    return false;
  }

  /** IPv6 `ip` (16 bytes) is on-link: the OS side answers neighbour solicitations for it. */
  isOnLinkIPv6(ip: Uint8Array): boolean {
    if (specialIPv6(ip)) return false;
    if (this.#mode === 'any' || isLinkLocalIPv6(ip)) return true;
    return this.#v6.some(({ address, prefixLength }) => inPrefix(ip, address, prefixLength));
  }

  /** `ip` is one of the OS side's own configured IPv4 addresses. */
  holdsIPv4(ip: Uint8Array): boolean {
    return this.#v4.some(({ address }) => sameBytes(ip, address));
  }

  /** `ip` is one of the OS side's own configured IPv6 addresses. */
  holdsIPv6(ip: Uint8Array): boolean {
    return this.#v6.some(({ address }) => sameBytes(ip, address));
  }

  /** 255.255.255.255, or the broadcast address of a configured prefix of /30 or shorter. */
  isBroadcastIPv4(ip: Uint8Array): boolean {
    if (ip[0] === 255 && ip[1] === 255 && ip[2] === 255 && ip[3] === 255) return true;
    for (const { address, prefixLength } of this.#v4) {
      if (prefixLength <= 30 && inPrefix(ip, address, prefixLength) && hostBits(ip, prefixLength, 1)) {
        return true;
      }
    }
    return false;
  }
}

/**
 * A set of IPv6 addresses with a fixed capacity: when full, adding drops the oldest. What the
 * shim learns from traffic is kept in these, so that no input can grow its memory.
 */
export class BoundedAddressSet {
  readonly #capacity: number;
  // Keys are the 32 hex digits of the address; a Map iterates in insertion order.
  readonly #entries = new Map<string, Uint8Array>();
  #last: Uint8Array | undefined;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Adds the 16 bytes at `offset` of `bytes` (copied). */
  add(bytes: Uint8Array, offset: number): void {
    const last = this.#last;
    if (last !== undefined && sameBytes(last, bytes.subarray(offset, offset + 16))) return; // the usual case
    const copy = bytes.slice(offset, offset + 16);
    const key = Buffer.from(copy.buffer, copy.byteOffset, 16).toString('hex');
    this.#last = copy;
    if (this.#entries.has(key)) {
      this.#entries.delete(key); // refresh: move to the newest end
    } else if (this.#entries.size >= this.#capacity) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(key, copy);
  }

  has(ip: Uint8Array): boolean {
    if (this.#entries.size === 0 || isZero(ip)) return false;
    return this.#entries.has(Buffer.from(ip.buffer, ip.byteOffset, 16).toString('hex'));
  }

  /** The addresses, oldest first (copies). */
  values(): Uint8Array[] {
    return [...this.#entries.values()].map((v) => Uint8Array.from(v));
  }
}
