/**
 * The virtio-net header codec of offload mode; no privileges needed.
 */
import { TapErrorCode, isTapError } from '@tapkit/core';
import { describe, expect, it } from 'vitest';
import {
  VNET_HEADER_LENGTH,
  VnetFlags,
  VnetGso,
  buildVnetHeader,
  parseVnetHeader,
  vnetPayload,
  withVnetHeader,
  writeVnetHeader,
} from '../src/index.js';

describe('virtio-net header codec', () => {
  it('writes struct virtio_net_hdr_v1, little-endian, and reads it back', () => {
    const header = {
      flags: VnetFlags.NeedsChecksum,
      gsoType: VnetGso.TcpV4 | VnetGso.Ecn,
      headerLength: 66,
      gsoSize: 1448,
      checksumStart: 34,
      checksumOffset: 16,
    };
    const bytes = buildVnetHeader(header);
    expect(Array.from(bytes)).toEqual([1, 0x81, 66, 0, 0xa8, 0x05, 34, 0, 16, 0, 0, 0]);
    expect(parseVnetHeader(bytes)).toEqual(header);
    expect(Array.from(buildVnetHeader())).toEqual(new Array(VNET_HEADER_LENGTH).fill(0));
  });

  it('puts a header in front of an Ethernet frame and takes the frame back out without a copy', () => {
    const ethernet = Uint8Array.from({ length: 60 }, (_, i) => i);
    const frame = withVnetHeader(ethernet, { flags: VnetFlags.DataValid });
    expect(frame.length).toBe(72);
    expect(parseVnetHeader(frame)).toMatchObject({ flags: VnetFlags.DataValid, gsoType: VnetGso.None });
    const inner = vnetPayload(frame);
    expect(inner).toEqual(ethernet);
    expect(inner.buffer).toBe(frame.buffer); // a view
    const out = new Uint8Array(20).fill(0xee);
    expect(writeVnetHeader(out, 4, { gsoSize: 0x1234 })).toBe(16);
    expect(Array.from(out.subarray(0, 18))).toEqual([
      ...[0xee, 0xee, 0xee, 0xee],
      ...[0, 0, 0, 0, 0x34, 0x12, 0, 0, 0, 0, 0, 0],
      ...[0xee, 0xee],
    ]);
  });

  it('refuses buffers too short for a header with ERR_TAP_MALFORMED', () => {
    for (const action of [
      () => parseVnetHeader(new Uint8Array(11)),
      () => vnetPayload(new Uint8Array(3)),
      () => writeVnetHeader(new Uint8Array(12), 1),
    ]) {
      let error: unknown;
      try {
        action();
      } catch (e) {
        error = e;
      }
      expect(isTapError(error, TapErrorCode.MALFORMED)).toBe(true);
    }
  });
});
