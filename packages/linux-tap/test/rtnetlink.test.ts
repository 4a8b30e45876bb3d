/**
 * The rtnetlink codec, without privilege: messages built byte for byte as the kernel lays them
 * out, and the kernel's notifications decoded (including cut-short and foreign ones).
 */
import { parseCidr } from '@tapkit/core';
import { describe, expect, it } from 'vitest';
import {
  IFA_F_NODAD,
  RTM_DELADDR,
  RTM_NEWADDR,
  RTM_NEWLINK,
  decodeMessages,
  deleteAddressMessage,
  getLinkMessage,
  newAddressMessage,
  setLinkMessage,
} from '../src/rtnetlink.js';

const u16 = (view: DataView, at: number) => view.getUint16(at, true);
const u32 = (view: DataView, at: number) => view.getUint32(at, true);

/** The attributes of a message whose fixed part is `fixed` bytes: type → payload. */
function attributesOf(bytes: Uint8Array, fixed: number): Map<number, Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<number, Uint8Array>();
  for (let at = 16 + fixed; at + 4 <= bytes.length;) {
    const length = u16(view, at);
    out.set(u16(view, at + 2), bytes.slice(at + 4, at + length));
    at += (length + 3) & ~3;
  }
  return out;
}

/** A notification as the kernel sends it: header, fixed part, attributes. */
function notification(type: number, fixed: Uint8Array, attributes: [number, Uint8Array][]): Uint8Array {
  const parts: number[] = [];
  for (const [attr, payload] of attributes) {
    const length = 4 + payload.length;
    parts.push(length & 0xff, length >> 8, attr & 0xff, attr >> 8, ...payload);
    while (parts.length % 4) parts.push(0);
  }
  const total = 16 + fixed.length + parts.length;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, total, true);
  view.setUint16(4, type, true);
  bytes.set(fixed, 16);
  bytes.set(parts, 16 + fixed.length);
  return bytes;
}

function ifinfo(index: number, flags: number): Uint8Array {
  const body = new Uint8Array(16);
  new DataView(body.buffer).setInt32(4, index, true);
  new DataView(body.buffer).setUint32(8, flags, true);
  return body;
}

function ifaddr(family: number, prefix: number, index: number): Uint8Array {
  const body = Uint8Array.of(family, prefix, 0, 0, 0, 0, 0, 0);
  new DataView(body.buffer).setUint32(4, index, true);
  return body;
}

const le32 = (n: number) => Uint8Array.of(n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24);

describe.runIf(new Uint8Array(Uint16Array.of(1).buffer)[0] === 1)(
  'rtnetlink codec (little-endian host)',
  () => {
    it('builds RTM_SETLINK with the MTU, the MAC and the up flag as its change mask', () => {
      const bytes = setLinkMessage(7, { mtu: 9000, up: false, mac: Uint8Array.of(2, 0, 0, 0, 0, 1) });
      const view = new DataView(bytes.buffer);
      expect([u32(view, 0), u16(view, 4), u16(view, 6)]).toEqual([bytes.length, 19, 0x1 | 0x4]);
      expect([view.getInt32(20, true), u32(view, 24), u32(view, 28)]).toEqual([7, 0, 1]); // index, flags, change
      const attributes = attributesOf(bytes, 16);
      expect(attributes.get(4)).toEqual(le32(9000)); // IFLA_MTU
      expect(attributes.get(1)).toEqual(Uint8Array.of(2, 0, 0, 0, 0, 1)); // IFLA_ADDRESS
      // Without `up`, the flags are left alone (a zero change mask).
      expect(u32(new DataView(setLinkMessage(7, { mtu: 1500 }).buffer), 28)).toBe(0);
    });

    it('builds RTM_NEWADDR without a label: IPv4 with its broadcast, IPv6 with IFA_F_NODAD when asked', () => {
      const v4 = newAddressMessage(3, parseCidr('10.1.2.3/24'), { nodad: true });
      const view = new DataView(v4.buffer);
      expect([u16(view, 4), u16(view, 6)]).toEqual([20, 0x1 | 0x4 | 0x400 | 0x200]);
      expect([...v4.subarray(16, 20)]).toEqual([2, 24, 0, 0]);
      expect(u32(view, 20)).toBe(3);
      const a4 = attributesOf(v4, 8);
      expect(a4.get(2)).toEqual(Uint8Array.of(10, 1, 2, 3)); // IFA_LOCAL
      expect(a4.get(1)).toEqual(Uint8Array.of(10, 1, 2, 3)); // IFA_ADDRESS
      expect(a4.get(4)).toEqual(Uint8Array.of(10, 1, 2, 255)); // IFA_BROADCAST
      expect(a4.get(8)).toEqual(le32(0)); // IFA_FLAGS: DAD is IPv6's
      expect(a4.has(3)).toBe(false); // no IFA_LABEL
      expect(attributesOf(newAddressMessage(3, parseCidr('10.1.2.3/31'), { nodad: false }), 8).has(4)).toBe(
        false,
      );

      const v6 = newAddressMessage(3, parseCidr('fd00::5/64'), { nodad: true });
      expect([...v6.subarray(16, 19)]).toEqual([10, 64, IFA_F_NODAD]);
      expect(attributesOf(v6, 8).get(8)).toEqual(le32(IFA_F_NODAD));
      const withDad = newAddressMessage(3, parseCidr('fd00::5/64'), { nodad: false });
      expect(attributesOf(withDad, 8).get(8)).toEqual(le32(0));
    });

    it('builds RTM_DELADDR for exactly the address and prefix, and RTM_GETLINK by index or name', () => {
      const del = deleteAddressMessage(9, parseCidr('fd00::5/64'));
      expect(u16(new DataView(del.buffer), 4)).toBe(21);
      expect([...del.subarray(16, 18)]).toEqual([10, 64]);
      expect(attributesOf(del, 8).get(2)).toEqual(parseCidr('fd00::5/64').address);
      const byName = getLinkMessage('tap0');
      expect(u16(new DataView(byName.buffer), 4)).toBe(18);
      expect(attributesOf(byName, 16).get(3)).toEqual(new TextEncoder().encode('tap0\0'));
      expect(new DataView(getLinkMessage(12).buffer).getInt32(20, true)).toBe(12);
    });

    it('decodes link and address notifications back to back, in order', () => {
      const name = new TextEncoder().encode('tk-renamed\0');
      const bytes = Buffer.concat([
        notification(RTM_NEWLINK, ifinfo(5, 0x1043), [
          [3, name],
          [4, le32(9000)],
          [1, Uint8Array.of(2, 0, 0, 0, 0, 9)],
        ]),
        notification(RTM_NEWADDR, ifaddr(2, 24, 5), [
          [1, Uint8Array.of(10, 0, 0, 2)],
          [2, Uint8Array.of(10, 0, 0, 1)],
        ]),
        notification(RTM_DELADDR, ifaddr(10, 64, 5), [
          [1, parseCidr('fd00::1/64').address],
          [8, le32(0x80 | 0x40)],
        ]),
        notification(24, ifaddr(2, 24, 5), []), // RTM_NEWROUTE: not ours
      ]);
      expect(decodeMessages(bytes)).toEqual([
        {
          kind: 'link',
          deleted: false,
          index: 5,
          up: true,
          name: 'tk-renamed',
          mtu: 9000,
          mac: Uint8Array.of(2, 0, 0, 0, 0, 9),
        },
        {
          kind: 'address',
          deleted: false,
          index: 5,
          family: 4,
          prefixLength: 24,
          address: Uint8Array.of(10, 0, 0, 1), // IFA_LOCAL, not the peer's IFA_ADDRESS
          flags: 0,
          cidr: '10.0.0.1/24',
        },
        {
          kind: 'address',
          deleted: true,
          index: 5,
          family: 6,
          prefixLength: 64,
          address: parseCidr('fd00::1/64').address,
          flags: 0xc0,
          cidr: 'fd00::1/64',
        },
      ]);
    });

    it('never throws on what it cannot read: cut short, bad lengths, other families', () => {
      const good = notification(RTM_NEWADDR, ifaddr(2, 24, 5), [[2, Uint8Array.of(10, 0, 0, 1)]]);
      for (let cut = 0; cut < good.length; cut++)
        expect(() => decodeMessages(good.subarray(0, cut))).not.toThrow();
      expect(decodeMessages(good.subarray(0, good.length - 1))).toEqual([]);
      const badAttribute = Uint8Array.from(good);
      badAttribute[24] = 200; // the attribute claims more than the message holds
      expect(decodeMessages(badAttribute)).toEqual([]); // no address in it: skipped
      expect(decodeMessages(notification(RTM_NEWADDR, ifaddr(17, 24, 5), []))).toEqual([]); // AF_PACKET
      expect(
        decodeMessages(notification(RTM_NEWADDR, ifaddr(2, 40, 5), [[2, Uint8Array.of(1, 2, 3, 4)]])),
      ).toEqual([]);
      const zeroLength = new Uint8Array(32);
      expect(decodeMessages(zeroLength)).toEqual([]);
    });
  },
);
