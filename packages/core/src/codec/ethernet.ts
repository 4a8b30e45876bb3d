/**
 * Ethernet II frames, with at most one 802.1Q VLAN tag. Frames carry no FCS (TAP devices
 * neither deliver nor expect one).
 *
 * @module
 */
import { assertBytes, assertUint, invalid, malformed, put16, u16 } from './internal.js';
import { writeMac, type MacInput } from './mac.js';

/** Common EtherType values. Values below 0x0600 are 802.3 length fields, not types. */
export const EtherType = {
  IPv4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  IPv6: 0x86dd,
  QinQ: 0x88a8,
} as const;

export const ETHERNET_HEADER_LENGTH = 14;
export const VLAN_TAG_LENGTH = 4;
/** The 64-byte minimum frame less its 4-byte FCS: what {@link buildEthernet} pads to. */
export const ETHERNET_MIN_FRAME_LENGTH = 60;

/** An 802.1Q tag's control information. */
export interface VlanTag {
  /** Priority code point, 0–7. */
  pcp: number;
  /** Drop eligible indicator. */
  dei: boolean;
  /** VLAN id, 0–4095. */
  vid: number;
}

/** A decoded frame. `dst`, `src` and `payload` are views into the parsed bytes, not copies. */
export interface EthernetFrame {
  dst: Uint8Array;
  src: Uint8Array;
  /** The inner EtherType when the frame is VLAN-tagged. */
  etherType: number;
  vlan?: VlanTag | undefined;
  /** 14, or 18 with a VLAN tag. */
  headerLength: number;
  /** Everything after the header, Ethernet padding included (IP parsers trim it). */
  payload: Uint8Array;
}

/**
 * Decodes an Ethernet header. One 802.1Q (0x8100) tag is decoded into `vlan`; an 802.1ad
 * (0x88a8) outer tag is not, and is reported as the EtherType with the rest as payload.
 * Throws MALFORMED under 14 bytes or for a truncated tag.
 */
export function parseEthernet(frame: Uint8Array): EthernetFrame {
  assertBytes(frame, 'frame');
  if (frame.length < ETHERNET_HEADER_LENGTH) {
    throw malformed(`Ethernet frame of ${frame.length} bytes is shorter than its 14-byte header`);
  }
  let etherType = u16(frame, 12);
  let headerLength = ETHERNET_HEADER_LENGTH;
  let vlan: VlanTag | undefined;
  if (etherType === EtherType.VLAN) {
    headerLength += VLAN_TAG_LENGTH;
    if (frame.length < headerLength)
      throw malformed(`Ethernet frame of ${frame.length} bytes has a truncated 802.1Q tag`);
    const tci = u16(frame, 14);
    vlan = { pcp: tci >>> 13, dei: (tci & 0x1000) !== 0, vid: tci & 0x0fff };
    etherType = u16(frame, 16);
  }
  return {
    dst: frame.subarray(0, 6),
    src: frame.subarray(6, 12),
    etherType,
    vlan,
    headerLength,
    payload: frame.subarray(headerLength),
  };
}

/** The header fields {@link writeEthernetHeader} writes. */
export interface EthernetHeaderOptions {
  dst: MacInput;
  src: MacInput;
  etherType: number;
  vlan?: VlanTag | undefined;
}

/** Writes a 14- or 18-byte header at `offset` and returns its length. */
export function writeEthernetHeader(out: Uint8Array, offset: number, opts: EthernetHeaderOptions): number {
  assertUint(opts.etherType, 0xffff, 'etherType');
  writeMac(out, offset, opts.dst, 'destination MAC');
  writeMac(out, offset + 6, opts.src, 'source MAC');
  const { vlan } = opts;
  if (vlan === undefined) {
    put16(out, offset + 12, opts.etherType);
    return ETHERNET_HEADER_LENGTH;
  }
  if (typeof vlan !== 'object' || vlan === null) throw invalid('vlan must be an object { pcp, dei, vid }');
  assertUint(vlan.pcp, 7, 'vlan.pcp');
  assertUint(vlan.vid, 0xfff, 'vlan.vid');
  put16(out, offset + 12, EtherType.VLAN);
  put16(out, offset + 14, (vlan.pcp << 13) | (vlan.dei ? 0x1000 : 0) | vlan.vid);
  put16(out, offset + 16, opts.etherType);
  return ETHERNET_HEADER_LENGTH + VLAN_TAG_LENGTH;
}

/** Options of {@link buildEthernet}. */
export interface BuildEthernetOptions extends EthernetHeaderOptions {
  payload: Uint8Array;
  /** Zero-pad the frame to 60 bytes (the wire minimum less FCS). Default false: TAP needs none. */
  padTo60?: boolean | undefined;
}

/** Builds a frame: header (with the VLAN tag if given) + payload, in one allocation. */
export function buildEthernet(opts: BuildEthernetOptions): Buffer {
  assertBytes(opts.payload, 'payload');
  const headerLength =
    opts.vlan === undefined ? ETHERNET_HEADER_LENGTH : ETHERNET_HEADER_LENGTH + VLAN_TAG_LENGTH;
  const length = headerLength + opts.payload.length;
  const out = Buffer.alloc(opts.padTo60 === true ? Math.max(length, ETHERNET_MIN_FRAME_LENGTH) : length);
  writeEthernetHeader(out, 0, opts);
  out.set(opts.payload, headerLength);
  return out;
}
