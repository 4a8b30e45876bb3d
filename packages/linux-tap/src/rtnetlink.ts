/**
 * A codec for the rtnetlink messages linux-tap sends and reads (NETLINK_ROUTE: links and
 * addresses), and the requests built on it. The addon only moves bytes (`rtnetlinkRequest`,
 * `LinkWatcher`): everything here is testable without privilege.
 *
 * Layouts are the kernel's (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h,
 * linux/if_addr.h), in host byte order.
 *
 * @module
 */
import { endianness } from 'node:os';
import { formatIPv4Address, formatIPv6Address, type InterfaceAddress } from '@tapkit/core';
import type { RawAddon } from './addon.js';

const LE = endianness() === 'LE';

// Message types and flags.
const NLMSG_HEADER = 16;
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP = 0x300;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;

// struct ifinfomsg (16 bytes) and its attributes.
const IFINFOMSG = 16;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFF_UP = 0x1;

// struct ifaddrmsg (8 bytes) and its attributes.
const IFADDRMSG = 8;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_BROADCAST = 4;
const IFA_FLAGS = 8;
/** Skip duplicate address detection: the IPv6 address is usable at once. */
export const IFA_F_NODAD = 0x02;
/** The IPv6 address is still being checked for duplicates (not usable yet). */
export const IFA_F_TENTATIVE = 0x40;

const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;

const align = (n: number): number => (n + 3) & ~3;

/** An attribute to encode: its type and payload. */
type Attribute = readonly [type: number, payload: Uint8Array];

function u32(value: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, LE);
  return bytes;
}

function cString(text: string): Uint8Array {
  const bytes = new Uint8Array(Buffer.byteLength(text) + 1);
  Buffer.from(bytes.buffer).write(text);
  return bytes;
}

/** A whole message: header, the fixed part `body`, then the attributes, each 4-aligned. */
function message(
  type: number,
  flags: number,
  body: Uint8Array,
  attributes: readonly Attribute[] = [],
): Uint8Array {
  let length = NLMSG_HEADER + align(body.length);
  for (const [, payload] of attributes) length += align(4 + payload.length);
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, length, LE);
  view.setUint16(4, type, LE);
  view.setUint16(6, flags, LE);
  view.setUint32(8, 1, LE); // seq: one request per socket
  bytes.set(body, NLMSG_HEADER);
  let at = NLMSG_HEADER + align(body.length);
  for (const [attribute, payload] of attributes) {
    view.setUint16(at, 4 + payload.length, LE);
    view.setUint16(at + 2, attribute, LE);
    bytes.set(payload, at + 4);
    at += align(4 + payload.length);
  }
  return bytes;
}

function ifinfomsg(index: number, flags = 0, change = 0): Uint8Array {
  const body = new Uint8Array(IFINFOMSG);
  const view = new DataView(body.buffer);
  body[0] = AF_UNSPEC;
  view.setInt32(4, index, LE);
  view.setUint32(8, flags, LE);
  view.setUint32(12, change, LE);
  return body;
}

function ifaddrmsg(address: InterfaceAddress, index: number, flags = 0): Uint8Array {
  const body = new Uint8Array(IFADDRMSG);
  body[0] = address.family === 4 ? AF_INET : AF_INET6;
  body[1] = address.prefixLength;
  body[2] = flags & 0xff;
  new DataView(body.buffer).setUint32(4, index, LE);
  return body;
}

/** RTM_GETLINK of one interface, by index or by name. */
export function getLinkMessage(link: number | string): Uint8Array {
  return typeof link === 'number'
    ? message(RTM_GETLINK, NLM_F_REQUEST, ifinfomsg(link))
    : message(RTM_GETLINK, NLM_F_REQUEST, ifinfomsg(0), [[IFLA_IFNAME, cString(link)]]);
}

/** What {@link setLinkMessage} changes; absent fields are left alone. */
export interface LinkSettings {
  readonly mtu?: number | undefined;
  readonly mac?: Uint8Array | undefined;
  readonly up?: boolean | undefined;
}

/** RTM_SETLINK: MTU, MAC and the up flag of the interface `index`. */
export function setLinkMessage(index: number, settings: LinkSettings): Uint8Array {
  const attributes: Attribute[] = [];
  if (settings.mtu !== undefined) attributes.push([IFLA_MTU, u32(settings.mtu)]);
  if (settings.mac !== undefined) attributes.push([IFLA_ADDRESS, Uint8Array.from(settings.mac)]);
  const up = settings.up;
  const body = up === undefined ? ifinfomsg(index) : ifinfomsg(index, up ? IFF_UP : 0, IFF_UP);
  return message(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, body, attributes);
}

/**
 * RTM_NEWADDR: adds `address` to the interface `index` (an error if it is there already). No
 * label: the kernel takes the interface's name, however many IPv4 addresses there are. IPv4
 * gets the broadcast address of its prefix (as `ip addr add … brd +`); IPv6, with `nodad`,
 * IFA_F_NODAD.
 */
export function newAddressMessage(
  index: number,
  address: InterfaceAddress,
  options: { nodad: boolean },
): Uint8Array {
  const bytes = Uint8Array.from(address.address);
  const attributes: Attribute[] = [
    [IFA_LOCAL, bytes],
    [IFA_ADDRESS, bytes],
  ];
  let flags = 0;
  if (address.family === 4 && address.prefixLength <= 30) {
    const broadcast = Uint8Array.from(bytes);
    for (let bit = address.prefixLength; bit < 32; bit++) broadcast[bit >> 3]! |= 0x80 >> (bit & 7);
    attributes.push([IFA_BROADCAST, broadcast]);
  }
  if (address.family === 6 && options.nodad) flags |= IFA_F_NODAD;
  attributes.push([IFA_FLAGS, u32(flags)]);
  return message(
    RTM_NEWADDR,
    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
    ifaddrmsg(address, index, flags),
    attributes,
  );
}

/** RTM_DELADDR: removes exactly `address` (address and prefix length) from the interface `index`. */
export function deleteAddressMessage(index: number, address: InterfaceAddress): Uint8Array {
  const bytes = Uint8Array.from(address.address);
  return message(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, ifaddrmsg(address, index), [
    [IFA_LOCAL, bytes],
    [IFA_ADDRESS, bytes],
  ]);
}

/** RTM_GETADDR dump of every address of every interface (filtered by the reader). */
export function dumpAddressesMessage(): Uint8Array {
  const body = new Uint8Array(IFADDRMSG);
  return message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, body);
}

/** An RTM_NEWLINK / RTM_DELLINK message, decoded. */
export interface LinkMessage {
  readonly kind: 'link';
  readonly deleted: boolean;
  readonly index: number;
  readonly up: boolean;
  readonly name?: string;
  readonly mtu?: number;
  readonly mac?: Uint8Array;
}

/** An RTM_NEWADDR / RTM_DELADDR message, decoded. */
export interface AddressMessage {
  readonly kind: 'address';
  readonly deleted: boolean;
  readonly index: number;
  readonly family: 4 | 6;
  readonly prefixLength: number;
  readonly address: Uint8Array;
  /** IFA_F_* (from IFA_FLAGS when present: the byte in the header holds only the low 8). */
  readonly flags: number;
  /** As core's parseCidr normalises it: `10.0.0.1/24`, `fd00::1/64`. */
  readonly cidr: string;
}

export type RouteMessage = LinkMessage | AddressMessage;

/**
 * The link and address messages in `bytes` (one or more netlink messages back to back), in
 * order. Other messages, and ones that are cut short or malformed, are skipped: this reads what
 * the kernel sends, and must never throw on it.
 */
export function decodeMessages(bytes: Uint8Array): RouteMessage[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: RouteMessage[] = [];
  let at = 0;
  while (at + NLMSG_HEADER <= bytes.length) {
    const length = view.getUint32(at, LE);
    if (length < NLMSG_HEADER || at + length > bytes.length) break;
    const type = view.getUint16(at + 4, LE);
    const body = at + NLMSG_HEADER;
    const end = at + length;
    if ((type === RTM_NEWLINK || type === RTM_DELLINK) && body + IFINFOMSG <= end) {
      out.push(decodeLink(bytes, view, type === RTM_DELLINK, body, end));
    } else if ((type === RTM_NEWADDR || type === RTM_DELADDR) && body + IFADDRMSG <= end) {
      const decoded = decodeAddress(bytes, view, type === RTM_DELADDR, body, end);
      if (decoded) out.push(decoded);
    }
    at += align(length);
  }
  return out;
}

/** Calls `visit` with each attribute (type without the nested/byte-order bits) from `at` to `end`. */
function attributes(
  view: DataView,
  at: number,
  end: number,
  visit: (type: number, start: number, length: number) => void,
): void {
  while (at + 4 <= end) {
    const length = view.getUint16(at, LE);
    if (length < 4 || at + length > end) return;
    visit(view.getUint16(at + 2, LE) & 0x3fff, at + 4, length - 4);
    at += align(length);
  }
}

function decodeLink(
  bytes: Uint8Array,
  view: DataView,
  deleted: boolean,
  body: number,
  end: number,
): LinkMessage {
  const link: { -readonly [K in keyof LinkMessage]: LinkMessage[K] } = {
    kind: 'link',
    deleted,
    index: view.getInt32(body + 4, LE),
    up: (view.getUint32(body + 8, LE) & IFF_UP) !== 0,
  };
  attributes(view, body + IFINFOMSG, end, (type, start, length) => {
    if (type === IFLA_IFNAME && length > 0) {
      const nul = bytes.indexOf(0, start);
      const stop = nul < 0 || nul > start + length ? start + length : nul;
      link.name = Buffer.from(bytes.buffer, bytes.byteOffset + start, stop - start).toString('utf8');
    } else if (type === IFLA_MTU && length >= 4) {
      link.mtu = view.getUint32(start, LE);
    } else if (type === IFLA_ADDRESS && length > 0) {
      link.mac = Uint8Array.from(bytes.subarray(start, start + length));
    }
  });
  return link;
}

function decodeAddress(
  bytes: Uint8Array,
  view: DataView,
  deleted: boolean,
  body: number,
  end: number,
): AddressMessage | undefined {
  const familyCode = bytes[body]!;
  const family = familyCode === AF_INET ? 4 : familyCode === AF_INET6 ? 6 : undefined;
  if (family === undefined) return undefined;
  const size = family === 4 ? 4 : 16;
  const prefixLength = bytes[body + 1]!;
  let flags = bytes[body + 2]!;
  let local: Uint8Array | undefined;
  let peer: Uint8Array | undefined;
  attributes(view, body + IFADDRMSG, end, (type, start, length) => {
    if (type === IFA_LOCAL && length === size) local = Uint8Array.from(bytes.subarray(start, start + size));
    else if (type === IFA_ADDRESS && length === size)
      peer = Uint8Array.from(bytes.subarray(start, start + size));
    else if (type === IFA_FLAGS && length >= 4) flags = view.getUint32(start, LE);
  });
  // IPv4 puts the interface's own address in IFA_LOCAL (IFA_ADDRESS is the peer's on a
  // point-to-point link); IPv6 sends IFA_ADDRESS alone, unless there is a peer.
  const address = local ?? peer;
  if (address === undefined || prefixLength > size * 8) return undefined;
  const text = family === 4 ? formatIPv4Address(address) : formatIPv6Address(address);
  return {
    kind: 'address',
    deleted,
    index: view.getUint32(body + 4, LE),
    family,
    prefixLength,
    address,
    flags,
    cidr: `${text}/${prefixLength}`,
  };
}

// ---- Requests ----

/** An interface as RTM_GETLINK reports it. */
export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  readonly mtu: number;
  readonly mac: Uint8Array;
  readonly up: boolean;
}

const REQUEST_NAMES: Readonly<Record<number, string>> = {
  [RTM_GETLINK]: 'RTM_GETLINK',
  [RTM_SETLINK]: 'RTM_SETLINK',
  [RTM_NEWADDR]: 'RTM_NEWADDR',
  [RTM_DELADDR]: 'RTM_DELADDR',
  [RTM_GETADDR]: 'RTM_GETADDR',
};

/**
 * Sends `bytes`; returns the kernel's answer, decoded. Throws the addon's system error, whose
 * `request` is `label` (default: the message type's name, `RTM_NEWADDR`).
 */
export function request(addon: RawAddon, bytes: Uint8Array, subject: string, label?: string): RouteMessage[] {
  const type = new DataView(bytes.buffer, bytes.byteOffset).getUint16(4, LE);
  return decodeMessages(addon.rtnetlinkRequest(bytes, label ?? REQUEST_NAMES[type] ?? 'rtnetlink', subject));
}

/** The interface `link` (an index or a name). Needs no privilege; ENODEV when there is none. */
export function getLink(addon: RawAddon, link: number | string): LinkInfo {
  const answer = request(addon, getLinkMessage(link), String(link)).find((m) => m.kind === 'link');
  if (answer?.kind !== 'link' || answer.name === undefined || answer.mtu === undefined) {
    throw Object.assign(
      new Error(`EPROTO: no link in the kernel's answer, rtnetlink RTM_GETLINK '${link}'`),
      {
        code: 'EPROTO',
        errno: -71,
        syscall: 'rtnetlink',
        request: 'RTM_GETLINK',
        path: String(link),
      },
    );
  }
  return {
    index: answer.index,
    name: answer.name,
    mtu: answer.mtu,
    mac: answer.mac ?? new Uint8Array(0),
    up: answer.up,
  };
}

/** The addresses of the interface `index`, as CIDR strings in the kernel's order. */
export function getAddresses(addon: RawAddon, index: number, subject: string): string[] {
  return request(addon, dumpAddressesMessage(), subject)
    .filter((m): m is AddressMessage => m.kind === 'address' && m.index === index)
    .map((m) => m.cidr);
}
