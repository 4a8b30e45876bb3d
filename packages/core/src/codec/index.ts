/**
 * Frame codecs: parse and build Ethernet, ARP, IPv4, IPv6, UDP, ICMP and ICMPv6 (echo and
 * neighbour discovery). Parsers return views into the given bytes and throw only TapErrors
 * (MALFORMED for undecodable bytes); builders allocate one Uint8Array per result, and the
 * `write*` functions write into a buffer you own.
 *
 * @module
 */
export * from './checksum.js';
export * from './mac.js';
export * from './ethernet.js';
export * from './ipv4.js';
export * from './ipv6.js';
export * from './udp.js';
export * from './icmp.js';
export * from './icmpv6.js';
export * from './arp.js';
export * from './frames.js';
