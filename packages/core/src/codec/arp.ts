/**
 * ARP (RFC 826) for Ethernet and IPv4 only: the 28-byte form.
 *
 * @module
 */
import { assertBytes, assertLength, assertUint, malformed, put16, u16 } from './internal.js';
import { EtherType } from './ethernet.js';
import { writeMac, type MacInput } from './mac.js';

export const ArpOp = { Request: 1, Reply: 2 } as const;

export const ARP_LENGTH = 28;

/** A decoded ARP packet; the addresses are views into the parsed bytes. */
export interface ArpPacket {
  op: number;
  senderMac: Uint8Array;
  senderIp: Uint8Array;
  targetMac: Uint8Array;
  targetIp: Uint8Array;
}

/**
 * Decodes Ethernet/IPv4 ARP. Throws MALFORMED under 28 bytes or for another hardware or
 * protocol type or address length. `op` is not checked (RARP and InARP use other values).
 */
export function parseArp(bytes: Uint8Array): ArpPacket {
  assertBytes(bytes, 'ARP packet');
  if (bytes.length < ARP_LENGTH) throw malformed(`ARP packet of ${bytes.length} bytes is shorter than 28`);
  const htype = u16(bytes, 0);
  const ptype = u16(bytes, 2);
  if (htype !== 1 || ptype !== EtherType.IPv4 || bytes[4] !== 6 || bytes[5] !== 4) {
    throw malformed(`ARP for hardware ${htype}/protocol 0x${ptype.toString(16)} is not Ethernet/IPv4`);
  }
  return {
    op: u16(bytes, 6),
    senderMac: bytes.subarray(8, 14),
    senderIp: bytes.subarray(14, 18),
    targetMac: bytes.subarray(18, 24),
    targetIp: bytes.subarray(24, 28),
  };
}

/** Options of {@link buildArp}. */
export interface BuildArpOptions {
  /** {@link ArpOp.Request} or {@link ArpOp.Reply} (any 16-bit value is written as given). */
  op: number;
  senderMac: MacInput;
  senderIp: Uint8Array;
  /** Default 00:00:00:00:00:00 (what requests carry). */
  targetMac?: MacInput | undefined;
  targetIp: Uint8Array;
}

/** Writes a 28-byte ARP packet at `offset`; returns 28. */
export function writeArp(out: Uint8Array, offset: number, opts: BuildArpOptions): number {
  assertUint(opts.op, 0xffff, 'op');
  assertLength(opts.senderIp, 4, 'senderIp');
  assertLength(opts.targetIp, 4, 'targetIp');
  put16(out, offset, 1); // Ethernet
  put16(out, offset + 2, EtherType.IPv4);
  out[offset + 4] = 6;
  out[offset + 5] = 4;
  put16(out, offset + 6, opts.op);
  writeMac(out, offset + 8, opts.senderMac, 'senderMac');
  out.set(opts.senderIp, offset + 14);
  if (opts.targetMac === undefined) out.fill(0, offset + 18, offset + 24);
  else writeMac(out, offset + 18, opts.targetMac, 'targetMac');
  out.set(opts.targetIp, offset + 24);
  return ARP_LENGTH;
}

/** Builds a 28-byte ARP packet. */
export function buildArp(opts: BuildArpOptions): Uint8Array {
  const out = new Uint8Array(ARP_LENGTH);
  writeArp(out, 0, opts);
  return out;
}

/** The reply to `request` from the owner of its target IP, whose MAC is `mac`. */
export function arpReplyOptions(request: ArpPacket, mac: MacInput): BuildArpOptions {
  return {
    op: ArpOp.Reply,
    senderMac: mac,
    senderIp: request.targetIp,
    targetMac: request.senderMac,
    targetIp: request.senderIp,
  };
}

/** Builds the reply to `request` as sent by the owner of its target IP, whose MAC is `mac`. */
export function buildArpReply(request: ArpPacket, mac: MacInput): Uint8Array {
  return buildArp(arpReplyOptions(request, mac));
}
