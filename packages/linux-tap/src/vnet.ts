/**
 * The virtio-net header that leads every frame of a device opened in offload mode
 * (`offload: true`): the kernel's metadata for TSO/GSO super-frames and partial checksums.
 *
 * Layout (struct virtio_net_hdr_v1, 12 bytes, little-endian):
 *
 * | offset | field          | meaning                                                        |
 * |-------:|----------------|----------------------------------------------------------------|
 * |      0 | flags          | {@link VnetFlags}: `NeedsChecksum`, `DataValid`                |
 * |      1 | gsoType        | {@link VnetGso}: `None`, `TcpV4`, `TcpV6`, `UdpL4`… (+ `Ecn`)  |
 * |      2 | headerLength   | bytes of Ethernet + IP + L4 headers (a hint)                   |
 * |      4 | gsoSize        | payload bytes per segment (the MSS for TCP)                    |
 * |      6 | checksumStart  | where the checksum's coverage starts, from the Ethernet header |
 * |      8 | checksumOffset | where the checksum goes, from `checksumStart`                  |
 * |     10 | (numBuffers)   | unused by tap devices: 0                                       |
 *
 * @module
 */
import { TapError, TapErrorCode, VNET_HEADER_LENGTH } from '@tapkit/core';

/** Bytes of the virtio-net header in front of each frame in offload mode. */
export { VNET_HEADER_LENGTH };

/** `flags` bits. */
export const VnetFlags = {
  /** The checksum at `checksumStart + checksumOffset` holds only the pseudo-header sum: finish it. */
  NeedsChecksum: 1,
  /** The checksums were verified already. */
  DataValid: 2,
} as const;

/** `gsoType` values. */
export const VnetGso = {
  /** A frame of its own, not a super-frame. */
  None: 0,
  /** An IPv4 TCP super-frame, to be cut into `gsoSize` segments. */
  TcpV4: 1,
  /** IPv4 UDP fragmentation offload (UFO; obsolete, not enabled by tapkit). */
  Udp: 3,
  /** An IPv6 TCP super-frame. */
  TcpV6: 4,
  /** A UDP super-frame (USO, IPv4 or IPv6; Linux 6.2+). */
  UdpL4: 5,
  /** Flag on a TCP type: the segments carry ECN's CWR bit. */
  Ecn: 0x80,
} as const;

/** A parsed virtio-net header. */
export interface VnetHeader {
  flags: number;
  gsoType: number;
  headerLength: number;
  gsoSize: number;
  checksumStart: number;
  checksumOffset: number;
}

function tooShort(length: number): TapError {
  return new TapError(
    TapErrorCode.MALFORMED,
    `${length} bytes cannot hold a virtio-net header (${VNET_HEADER_LENGTH} bytes)`,
  );
}

/** Reads the header at the start of an offload-mode frame. Throws `ERR_TAP_MALFORMED` when too short. */
export function parseVnetHeader(frame: Uint8Array): VnetHeader {
  if (frame.length < VNET_HEADER_LENGTH) throw tooShort(frame.length);
  const u16 = (at: number): number => frame[at]! | (frame[at + 1]! << 8);
  return {
    flags: frame[0]!,
    gsoType: frame[1]!,
    headerLength: u16(2),
    gsoSize: u16(4),
    checksumStart: u16(6),
    checksumOffset: u16(8),
  };
}

/**
 * Writes a header at `offset` of `out` (absent fields are 0: a plain frame with its checksums
 * complete); returns the offset after it.
 */
export function writeVnetHeader(out: Uint8Array, offset: number, header: Partial<VnetHeader> = {}): number {
  if (offset < 0 || out.length - offset < VNET_HEADER_LENGTH) throw tooShort(out.length - offset);
  const u16 = (at: number, value = 0): void => {
    out[offset + at] = value & 0xff;
    out[offset + at + 1] = (value >> 8) & 0xff;
  };
  out[offset] = header.flags ?? 0;
  out[offset + 1] = header.gsoType ?? 0;
  u16(2, header.headerLength);
  u16(4, header.gsoSize);
  u16(6, header.checksumStart);
  u16(8, header.checksumOffset);
  u16(10);
  return offset + VNET_HEADER_LENGTH;
}

/** A 12-byte header (absent fields 0). */
export function buildVnetHeader(header: Partial<VnetHeader> = {}): Uint8Array {
  const out = new Uint8Array(VNET_HEADER_LENGTH);
  writeVnetHeader(out, 0, header);
  return out;
}

/**
 * An Ethernet frame made into an offload-mode frame: a header (default: a plain frame with its
 * checksums complete, as every frame built with tapkit's codecs is) then a copy of `ethernet`.
 */
export function withVnetHeader(ethernet: Uint8Array, header: Partial<VnetHeader> = {}): Uint8Array {
  const out = new Uint8Array(VNET_HEADER_LENGTH + ethernet.length);
  writeVnetHeader(out, 0, header);
  out.set(ethernet, VNET_HEADER_LENGTH);
  return out;
}

/** The Ethernet frame inside an offload-mode frame: a view, no copy (for `decodeFrame` and the like). */
export function vnetPayload(frame: Uint8Array): Uint8Array {
  if (frame.length < VNET_HEADER_LENGTH) throw tooShort(frame.length);
  return frame.subarray(VNET_HEADER_LENGTH);
}
