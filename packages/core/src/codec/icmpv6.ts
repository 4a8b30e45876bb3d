/**
 * ICMPv6 (RFC 4443): the generic header, echo, and neighbour discovery solicitations and
 * advertisements (RFC 4861). Checksums cover the IPv6 pseudo-header, so builders and
 * {@link verifyIcmpv6Checksum} need the packet's source and destination addresses.
 *
 * @module
 */
import { checksumPartial, finishChecksum, pseudoHeaderSum } from './checksum.js';
import type { BuildIcmpEchoOptions, IcmpEcho, IcmpMessage } from './icmp.js';
import {
  assertBytes,
  assertLength,
  invalid,
  malformed,
  parseEchoOf,
  put16,
  u16,
  writeEchoBody,
} from './internal.js';
import { IpProtocol } from './ipv4.js';
import { writeMac, type MacInput } from './mac.js';

export const Icmpv6Type = {
  EchoRequest: 128,
  EchoReply: 129,
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
} as const;

/** ND option types carrying a link-layer address. */
export const NdOption = { SourceLinkLayerAddress: 1, TargetLinkLayerAddress: 2 } as const;

/** Any ICMPv6 message: type, code, checksum, and the rest as a view. */
export type Icmpv6Message = IcmpMessage;

/** Decodes the 4-byte ICMPv6 header. Throws MALFORMED when shorter. */
export function parseIcmpv6(bytes: Uint8Array): Icmpv6Message {
  assertBytes(bytes, 'ICMPv6 message');
  if (bytes.length < 4) throw malformed(`ICMPv6 message of ${bytes.length} bytes is shorter than 4`);
  return {
    type: bytes[0]!,
    code: bytes[1]!,
    checksum: u16(bytes, 2),
    body: bytes.subarray(4),
  };
}

function icmpv6Sum(
  bytes: Uint8Array,
  offset: number,
  length: number,
  src: Uint8Array,
  dst: Uint8Array,
): number {
  assertLength(src, 16, 'source IPv6 address');
  assertLength(dst, 16, 'destination IPv6 address');
  return checksumPartial(
    bytes,
    pseudoHeaderSum(src, dst, IpProtocol.ICMPv6, length),
    offset,
    offset + length,
  );
}

/**
 * True when the checksum of the whole message (the IPv6 payload: pass `parseIPv6(...).payload`)
 * is right for these addresses. False under 4 bytes.
 */
export function verifyIcmpv6Checksum(bytes: Uint8Array, src: Uint8Array, dst: Uint8Array): boolean {
  if (!(bytes instanceof Uint8Array) || bytes.length < 4) return false;
  return finishChecksum(icmpv6Sum(bytes, 0, bytes.length, src, dst)) === 0;
}

/** Fills the checksum of the `length`-byte message at `offset`. */
function finishIcmpv6(
  out: Uint8Array,
  offset: number,
  length: number,
  src: Uint8Array,
  dst: Uint8Array,
): number {
  put16(out, offset + 2, 0);
  put16(out, offset + 2, finishChecksum(icmpv6Sum(out, offset, length, src, dst)));
  return length;
}

/** The IPv6 addresses the pseudo-header needs. */
export interface Icmpv6Addresses {
  src: Uint8Array;
  dst: Uint8Array;
}

// ---- echo ----

/** Decodes an echo request/reply; `undefined` for other types, MALFORMED when truncated. */
export function parseIcmpv6Echo(bytes: Uint8Array): IcmpEcho | undefined {
  return parseEchoOf(bytes, Icmpv6Type.EchoRequest, Icmpv6Type.EchoReply, 'ICMPv6 message');
}

/** Options of {@link buildIcmpv6Echo}: `type` is 128 (request) or 129 (reply). */
export interface BuildIcmpv6EchoOptions extends BuildIcmpEchoOptions, Icmpv6Addresses {}

/** Writes an echo message with its checksum at `offset`; returns its length. */
export function writeIcmpv6Echo(out: Uint8Array, offset: number, opts: BuildIcmpv6EchoOptions): number {
  if (opts.type !== Icmpv6Type.EchoRequest && opts.type !== Icmpv6Type.EchoReply) {
    throw invalid(`ICMPv6 echo type must be 128 (request) or 129 (reply), got ${String(opts.type)}`);
  }
  return finishIcmpv6(out, offset, writeEchoBody(out, offset, opts), opts.src, opts.dst);
}

/** Builds an ICMPv6 echo request/reply with its checksum, in one allocation. */
export function buildIcmpv6Echo(opts: BuildIcmpv6EchoOptions): Uint8Array {
  assertBytes(opts.data, 'data');
  const out = new Uint8Array(8 + opts.data.length);
  writeIcmpv6Echo(out, 0, opts);
  return out;
}

// ---- neighbour discovery ----

/** A neighbour solicitation; `target` and `sourceLinkLayer` are views. */
export interface NeighborSolicitation {
  target: Uint8Array;
  sourceLinkLayer?: Uint8Array | undefined;
}

/** A neighbour advertisement; `target` and `targetLinkLayer` are views. */
export interface NeighborAdvertisement {
  target: Uint8Array;
  router: boolean;
  solicited: boolean;
  override: boolean;
  targetLinkLayer?: Uint8Array | undefined;
}

const ND_LENGTH = 24; // type, code, checksum, 4 bytes reserved/flags, 16-byte target
const LINK_LAYER_OPTION_LENGTH = 8; // type, length (in 8-byte units), 6-byte MAC

/**
 * Walks the ND options after `start` and returns the first link-layer address option of type
 * `wanted` (its first 6 bytes). Every option is bounds-checked; a zero length is MALFORMED
 * (RFC 4861 §4.6: it would loop forever).
 */
function findLinkLayerOption(bytes: Uint8Array, start: number, wanted: number): Uint8Array | undefined {
  let found: Uint8Array | undefined;
  for (let off = start; off < bytes.length;) {
    if (bytes.length - off < 2) throw malformed('ND option header is truncated');
    const length = bytes[off + 1]! * 8;
    if (length === 0) throw malformed('ND option has length 0');
    if (off + length > bytes.length) throw malformed('ND option runs past the end of the message');
    if (found === undefined && bytes[off] === wanted)
      found = bytes.subarray(off + 2, off + LINK_LAYER_OPTION_LENGTH);
    off += length;
  }
  return found;
}

/** Checks type/length/code; `false` when `bytes` is not of `type`. */
function checkNd(bytes: Uint8Array, type: number, what: string): boolean {
  assertBytes(bytes, 'ICMPv6 message');
  if (bytes.length === 0) throw malformed('ICMPv6 message is empty');
  if (bytes[0] !== type) return false;
  if (bytes.length < ND_LENGTH) throw malformed(`${what} of ${bytes.length} bytes is shorter than 24`);
  if (bytes[1] !== 0) throw malformed(`${what} has code ${bytes[1]!}, not 0`);
  return true;
}

/** Decodes a neighbour solicitation (type 135); `undefined` for other types, MALFORMED when bad. */
export function parseNeighborSolicitation(bytes: Uint8Array): NeighborSolicitation | undefined {
  if (!checkNd(bytes, Icmpv6Type.NeighborSolicitation, 'Neighbor solicitation')) return undefined;
  return {
    target: bytes.subarray(8, 24),
    sourceLinkLayer: findLinkLayerOption(bytes, ND_LENGTH, NdOption.SourceLinkLayerAddress),
  };
}

/** Decodes a neighbour advertisement (type 136); `undefined` for other types, MALFORMED when bad. */
export function parseNeighborAdvertisement(bytes: Uint8Array): NeighborAdvertisement | undefined {
  if (!checkNd(bytes, Icmpv6Type.NeighborAdvertisement, 'Neighbor advertisement')) return undefined;
  const flags = bytes[4]!;
  return {
    target: bytes.subarray(8, 24),
    router: (flags & 0x80) !== 0,
    solicited: (flags & 0x40) !== 0,
    override: (flags & 0x20) !== 0,
    targetLinkLayer: findLinkLayerOption(bytes, ND_LENGTH, NdOption.TargetLinkLayerAddress),
  };
}

/** Writes the common ND layout with the checksum; returns the message length. */
function writeNd(
  out: Uint8Array,
  offset: number,
  type: number,
  flags: number,
  target: Uint8Array,
  option: number,
  mac: MacInput | undefined,
  addrs: Icmpv6Addresses,
): number {
  assertLength(target, 16, 'target address');
  out[offset] = type;
  out[offset + 1] = 0;
  out[offset + 4] = flags;
  out.fill(0, offset + 5, offset + 8);
  out.set(target, offset + 8);
  let length = ND_LENGTH;
  if (mac !== undefined) {
    out[offset + length] = option;
    out[offset + length + 1] = 1; // 8 bytes
    writeMac(out, offset + length + 2, mac, 'link-layer address');
    length += LINK_LAYER_OPTION_LENGTH;
  }
  return finishIcmpv6(out, offset, length, addrs.src, addrs.dst);
}

/** Options of {@link buildNeighborSolicitation}. */
export interface BuildNeighborSolicitationOptions extends Icmpv6Addresses {
  target: Uint8Array;
  /** The sender's MAC. Omit it when `src` is `::` (duplicate address detection). */
  sourceLinkLayer?: MacInput | undefined;
}

/** Options of {@link buildNeighborAdvertisement}. */
export interface BuildNeighborAdvertisementOptions extends Icmpv6Addresses {
  target: Uint8Array;
  targetLinkLayer?: MacInput | undefined;
  /** Default false. */
  router?: boolean | undefined;
  solicited: boolean;
  override: boolean;
}

/** The length of a solicitation/advertisement with or without its link-layer option. */
export function neighborMessageLength(withLinkLayer: boolean): number {
  return ND_LENGTH + (withLinkLayer ? LINK_LAYER_OPTION_LENGTH : 0);
}

/** Writes a neighbour solicitation with its checksum at `offset`; returns its length. */
export function writeNeighborSolicitation(
  out: Uint8Array,
  offset: number,
  opts: BuildNeighborSolicitationOptions,
): number {
  const { NeighborSolicitation: type } = Icmpv6Type;
  return writeNd(
    out,
    offset,
    type,
    0,
    opts.target,
    NdOption.SourceLinkLayerAddress,
    opts.sourceLinkLayer,
    opts,
  );
}

/** Writes a neighbour advertisement with its checksum at `offset`; returns its length. */
export function writeNeighborAdvertisement(
  out: Uint8Array,
  offset: number,
  opts: BuildNeighborAdvertisementOptions,
): number {
  const flags = (opts.router === true ? 0x80 : 0) | (opts.solicited ? 0x40 : 0) | (opts.override ? 0x20 : 0);
  const { NeighborAdvertisement: type } = Icmpv6Type;
  return writeNd(
    out,
    offset,
    type,
    flags,
    opts.target,
    NdOption.TargetLinkLayerAddress,
    opts.targetLinkLayer,
    opts,
  );
}

/** Builds a neighbour solicitation (with a source link-layer option if given), in one allocation. */
export function buildNeighborSolicitation(opts: BuildNeighborSolicitationOptions): Uint8Array {
  const out = new Uint8Array(neighborMessageLength(opts.sourceLinkLayer !== undefined));
  writeNeighborSolicitation(out, 0, opts);
  return out;
}

/** Builds a neighbour advertisement (with a target link-layer option if given), in one allocation. */
export function buildNeighborAdvertisement(opts: BuildNeighborAdvertisementOptions): Uint8Array {
  const out = new Uint8Array(neighborMessageLength(opts.targetLinkLayer !== undefined));
  writeNeighborAdvertisement(out, 0, opts);
  return out;
}
