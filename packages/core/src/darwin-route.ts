/**
 * The macOS routing socket (`socket(PF_ROUTE, SOCK_RAW, AF_UNSPEC)`): the messages a device needs
 * to follow its interface, decoded (and encoded, for simulated kernels and tests) in TypeScript so
 * that the native side only reads bytes.
 *
 * Layouts are xnu's (bsd/net/if.h, bsd/net/if_var.h, bsd/net/route.h), the same on x86_64 and
 * arm64; native-common/tapkit/darwin_sdk.h `static_assert`s every offset used here against the
 * SDK in the macOS cross build:
 *
 * - `struct if_msghdr` (RTM_IFINFO, 112 bytes): `u16 ifm_msglen` 0, `u8 ifm_version` 2,
 *   `u8 ifm_type` 3, `i32 ifm_addrs` 4, `i32 ifm_flags` 8, `u16 ifm_index` 12, `struct if_data
 *   ifm_data` 16 (96 bytes: `u32 ifi_mtu` at 8, `u32 ifi_metric` at 12).
 * - `struct ifa_msghdr` (RTM_NEWADDR / RTM_DELADDR, 20 bytes): as if_msghdr up to `u16
 *   ifam_index` 12, `i32 ifam_metric` 16; then one sockaddr per bit of `ifam_addrs`, in bit order
 *   (RTA_DST, RTA_GATEWAY, RTA_NETMASK, RTA_GENMASK, RTA_IFP, RTA_IFA, RTA_AUTHOR, RTA_BRD), each
 *   padded to 4 bytes (xnu's `SA_SIZE` rounds to `sizeof(uint32_t)`, not to `long` as FreeBSD;
 *   a zero `sa_len` takes 4 bytes).
 *
 * A netmask may arrive trimmed (its `sa_len` shorter than a sockaddr_in, trailing zero bytes
 * left out) and with no family: its bytes are read by the address's family, missing ones are
 * zero. An IPv6 link-local address carries the KAME embedded scope in bytes 2–3, cleared here
 * as ifconfig does. xnu has no RTM_IFANNOUNCE: a destroyed interface shows as the index no
 * longer naming one (the port checks on RTM_IFINFO). Byte order is the host's: little-endian on
 * every Mac tapkit supports.
 *
 * Decoding never throws: a message too short for its header or its sockaddrs is counted in
 * `malformed` and skipped; a length that runs past the buffer ends the walk (counted too).
 *
 * @module
 */
import { formatIPv4Address } from './codec/ipv4.js';
import { formatIPv6Address } from './codec/ipv6.js';
import type { NativeSystemError } from './errors.js';
import type { InterfaceAddress, LinkState } from './types.js';

/** Constants of xnu's routing socket (bsd/net/route.h, bsd/net/if.h, bsd/sys/socket.h). */
export const DARWIN_ROUTE = Object.freeze({
  RTM_VERSION: 5,
  RTM_NEWADDR: 0xc,
  RTM_DELADDR: 0xd,
  RTM_IFINFO: 0xe,
  RTA_DST: 0x1,
  RTA_GATEWAY: 0x2,
  RTA_NETMASK: 0x4,
  RTA_GENMASK: 0x8,
  RTA_IFP: 0x10,
  RTA_IFA: 0x20,
  RTA_AUTHOR: 0x40,
  RTA_BRD: 0x80,
  RTAX_MAX: 8,
  IFF_UP: 0x1,
  IFF_RUNNING: 0x40,
  AF_INET: 2,
  AF_LINK: 18,
  AF_INET6: 30,
  /** sizeof(struct if_msghdr), sizeof(struct if_data), offsetof(if_msghdr, ifm_data). */
  IF_MSGHDR_SIZE: 112,
  IF_DATA_SIZE: 96,
  IFM_DATA_OFFSET: 16,
  /** offsetof(struct if_data, ifi_mtu), offsetof(struct if_data, ifi_metric). */
  IFI_MTU_OFFSET: 8,
  IFI_METRIC_OFFSET: 12,
  /** sizeof(struct ifa_msghdr). */
  IFA_MSGHDR_SIZE: 20,
  SOCKADDR_IN_SIZE: 16,
  SOCKADDR_IN6_SIZE: 28,
});

const R = DARWIN_ROUTE;

/** RTM_IFINFO: the interface's flags and MTU now. */
export interface DarwinLinkMessage {
  readonly kind: 'link';
  readonly index: number;
  readonly flags: number;
  /** IFF_UP: administratively up. */
  readonly up: boolean;
  /** IFF_RUNNING. */
  readonly running: boolean;
  readonly mtu: number;
}

/** RTM_NEWADDR / RTM_DELADDR of an IPv4 or IPv6 address. */
export interface DarwinAddressMessage {
  readonly kind: 'address';
  readonly index: number;
  readonly deleted: boolean;
  readonly family: 4 | 6;
  /** Normalised as core's parseCidr does (`10.0.0.1/24`, `fd00::1/64`). */
  readonly cidr: string;
}

export type DarwinRouteMessage = DarwinLinkMessage | DarwinAddressMessage;

/** What {@link decodeDarwinRouteMessages} found. */
export interface DarwinRouteDecoded {
  readonly messages: DarwinRouteMessage[];
  /** Messages too short for what they claim (or a walk cut short): skipped. */
  readonly malformed: number;
}

/** xnu's SA_SIZE: a sockaddr's room in a routing message, rounded up to 4 bytes. */
export function darwinSaSize(saLen: number): number {
  return saLen === 0 ? 4 : (saLen + 3) & ~3;
}

/**
 * Decodes the routing messages in `bytes` (one or more, back to back, as the native watcher
 * hands them over). RTM_IFINFO, RTM_NEWADDR and RTM_DELADDR are returned; every other message
 * type (routes, multicast, RTM_IFINFO2…), another RTM_VERSION and addresses of other families
 * are skipped. Never throws.
 */
export function decodeDarwinRouteMessages(bytes: Uint8Array): DarwinRouteDecoded {
  const messages: DarwinRouteMessage[] = [];
  let malformed = 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < 4) {
      malformed++;
      break;
    }
    const length = view.getUint16(at, true);
    if (length < 4 || length > bytes.length - at) {
      malformed++;
      break; // the next message's start is unknown
    }
    const version = bytes[at + 2]!;
    const type = bytes[at + 3]!;
    if (version === R.RTM_VERSION) {
      const message = new DataView(bytes.buffer, bytes.byteOffset + at, length);
      let decoded: DarwinRouteMessage | null | undefined = null; // null: not one tapkit follows
      if (type === R.RTM_IFINFO) decoded = decodeIfInfo(message);
      else if (type === R.RTM_NEWADDR || type === R.RTM_DELADDR) decoded = decodeAddress(message, type);
      if (decoded === undefined) malformed++;
      else if (decoded !== null) messages.push(decoded);
    }
    at += length;
  }
  return { messages, malformed };
}

/** undefined: malformed. */
function decodeIfInfo(m: DataView): DarwinLinkMessage | undefined {
  if (m.byteLength < R.IF_MSGHDR_SIZE) return undefined;
  const flags = m.getInt32(8, true);
  return {
    kind: 'link',
    index: m.getUint16(12, true),
    flags,
    up: (flags & R.IFF_UP) !== 0,
    running: (flags & R.IFF_RUNNING) !== 0,
    mtu: m.getUint32(R.IFM_DATA_OFFSET + R.IFI_MTU_OFFSET, true),
  };
}

/** undefined: malformed; null: nothing tapkit follows (no address, another family). */
function decodeAddress(m: DataView, type: number): DarwinAddressMessage | null | undefined {
  if (m.byteLength < R.IFA_MSGHDR_SIZE) return undefined;
  const addrs = m.getInt32(4, true);
  const index = m.getUint16(12, true);
  const found: (Uint8Array | undefined)[] = [];
  let at = R.IFA_MSGHDR_SIZE;
  for (let bit = 0; bit < R.RTAX_MAX; bit++) {
    if ((addrs & (1 << bit)) === 0) continue;
    if (at + 1 > m.byteLength) return undefined;
    const saLen = m.getUint8(at);
    const room = darwinSaSize(saLen);
    if (at + saLen > m.byteLength) return undefined;
    found[bit] = new Uint8Array(m.buffer, m.byteOffset + at, saLen);
    at += room;
  }
  const ifa = found[5]; // RTAX_IFA
  if (ifa === undefined || ifa.length < 2) return null;
  const family = ifa[1] === R.AF_INET ? 4 : ifa[1] === R.AF_INET6 ? 6 : undefined;
  if (family === undefined) return null;
  const [offset, size] = family === 4 ? [4, 4] : [8, 16];
  if (ifa.length < offset + size) return undefined;
  const address = Uint8Array.from(ifa.subarray(offset, offset + size));
  if (family === 6 && address[0] === 0xfe && (address[1]! & 0xc0) === 0x80) {
    address[2] = 0; // KAME embedded scope (the interface index) of a link-local address
    address[3] = 0;
  }
  const mask = found[2]; // RTAX_NETMASK
  const prefixLength =
    mask === undefined ? size * 8 : leadingOnes(mask.subarray(Math.min(offset, mask.length)), size);
  const text = family === 4 ? formatIPv4Address(address) : formatIPv6Address(address);
  return { kind: 'address', index, deleted: type === R.RTM_DELADDR, family, cidr: `${text}/${prefixLength}` };
}

/** The prefix length of a (possibly trimmed) mask of `size` bytes: its leading one bits. */
function leadingOnes(mask: Uint8Array, size: number): number {
  let bits = 0;
  for (let i = 0; i < size; i++) {
    const byte = mask[i] ?? 0;
    if (byte === 0xff) {
      bits += 8;
      continue;
    }
    for (let b = 0x80; b > 0 && (byte & b) !== 0; b >>= 1) bits++;
    break;
  }
  return bits;
}

/** Encodes an RTM_IFINFO as xnu's rt_ifmsg() sends it (no sockaddrs). */
export function encodeDarwinIfInfo(info: { index: number; flags: number; mtu: number }): Uint8Array {
  const out = new Uint8Array(R.IF_MSGHDR_SIZE);
  const view = new DataView(out.buffer);
  view.setUint16(0, R.IF_MSGHDR_SIZE, true);
  out[2] = R.RTM_VERSION;
  out[3] = R.RTM_IFINFO;
  view.setInt32(8, info.flags, true);
  view.setUint16(12, info.index, true);
  view.setUint32(R.IFM_DATA_OFFSET + R.IFI_MTU_OFFSET, info.mtu, true);
  return out;
}

/**
 * Encodes an RTM_NEWADDR / RTM_DELADDR as xnu's rt_newaddrmsg() does: RTA_NETMASK (trimmed of
 * trailing zero bytes, family 0, as the kernel's masks are), RTA_IFA and, for IPv4, RTA_BRD.
 */
export function encodeDarwinAddressMessage(info: {
  index: number;
  deleted: boolean;
  address: InterfaceAddress;
}): Uint8Array {
  const { family, address, prefixLength } = info.address;
  const [offset, size, saSize, af]: [number, number, number, number] =
    family === 4 ? [4, 4, R.SOCKADDR_IN_SIZE, R.AF_INET] : [8, 16, R.SOCKADDR_IN6_SIZE, R.AF_INET6];
  const sockaddr = (bytes: Uint8Array, saFamily: number, saLen: number = saSize): Uint8Array => {
    const sa = new Uint8Array(saSize);
    sa[0] = saLen;
    sa[1] = saFamily;
    sa.set(bytes, offset);
    return sa.subarray(0, saLen);
  };
  const maskBytes = new Uint8Array(size);
  for (let bit = 0; bit < prefixLength; bit++) maskBytes[bit >> 3]! |= 0x80 >> (bit & 7);
  let maskLength = offset + size;
  while (maskLength > offset && maskBytes[maskLength - offset - 1] === 0) maskLength--;
  const parts: [number, Uint8Array][] = [
    [R.RTA_NETMASK, sockaddr(maskBytes, 0, maskLength === offset ? 0 : maskLength)],
    [R.RTA_IFA, sockaddr(address, af)],
  ];
  if (family === 4) {
    const broadcast = Uint8Array.from(address, (b, i) => b | (~maskBytes[i]! & 0xff));
    parts.push([R.RTA_BRD, sockaddr(broadcast, af)]);
  }
  const total = parts.reduce<number>((n, [, sa]) => n + darwinSaSize(sa.length), R.IFA_MSGHDR_SIZE);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint16(0, total, true);
  out[2] = R.RTM_VERSION;
  out[3] = info.deleted ? R.RTM_DELADDR : R.RTM_NEWADDR;
  view.setInt32(
    4,
    parts.reduce<number>((bits, [bit]) => bits | bit, 0),
    true,
  );
  view.setUint16(12, info.index, true);
  let at = R.IFA_MSGHDR_SIZE;
  for (const [, sa] of parts) {
    out.set(sa, at);
    at += darwinSaSize(sa.length);
  }
  return out;
}

/** What a macOS system's routing-socket watcher reports (the addons' RouteWatcher, a simulation's). */
export interface DarwinRouteWatcherOptions {
  /** Routing messages, one or more back to back, as read from the socket. */
  readonly onMessages: (bytes: Uint8Array) => void;
  /** A read failed: ENOBUFS (messages were lost; watching goes on), else watching has ended. */
  readonly onError: (error: NativeSystemError) => void;
}

/** An open routing-socket watcher. */
export interface DarwinRouteWatcher {
  /** Stops watching; idempotent. */
  close(): void;
}

/**
 * A routing socket for the simulated macOS kernels (darwin-utun's simulation, darwin-feth's
 * test kernel): messages queued by "someone else" are read a batch per event-loop turn, as the
 * addons' RouteWatcher reads them, and it never holds the event loop, as the addons' does not.
 */
export class SimulatedRouteWatcher implements DarwinRouteWatcher {
  readonly #options: DarwinRouteWatcherOptions;
  readonly #onClose: (watcher: SimulatedRouteWatcher) => void;
  #pending: Uint8Array[] = [];
  #error: NativeSystemError | undefined;
  #scheduled = false;
  #closed = false;

  constructor(options: DarwinRouteWatcherOptions, onClose: (watcher: SimulatedRouteWatcher) => void) {
    this.#options = options;
    this.#onClose = onClose;
  }

  /** Routing messages the kernel sends now (copied). */
  queue(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#pending.push(Uint8Array.from(bytes));
    this.#schedule();
  }

  /** The next read fails with `error` (ENOBUFS: what was pending is lost). */
  fail(error: NativeSystemError): void {
    if (this.#closed) return;
    this.#pending = [];
    this.#error = error;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#closed) return;
      const total = this.#pending.reduce((n, b) => n + b.length, 0);
      const bytes = new Uint8Array(total);
      let at = 0;
      for (const chunk of this.#pending.splice(0)) {
        bytes.set(chunk, at);
        at += chunk.length;
      }
      const error = this.#error;
      this.#error = undefined;
      if (total > 0) this.#options.onMessages(bytes);
      if (error && !this.#closed) this.#options.onError(error);
    }).unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = [];
    this.#onClose(this);
  }
}

/** What {@link DarwinInterfaceFollower.apply} saw. */
export interface DarwinFollowResult {
  /** The interface's state changed. */
  readonly changed: boolean;
  /** The interface's index names no interface any more: it was destroyed. */
  readonly gone: boolean;
  readonly malformed: number;
}

/**
 * One macOS interface's live state — name, MTU, up flag, addresses — followed through routing
 * messages, by index (which stays while the interface exists). xnu has no RTM_IFANNOUNCE and
 * its RTM_IFINFO carries no name, so on each RTM_IFINFO for the interface its name is looked up
 * by index (`if_indextoname`, passed in as `nameOf`): none means the interface is gone, another
 * one that it was renamed.
 */
export class DarwinInterfaceFollower {
  readonly index: number;
  name: string;
  mtu: number;
  up: boolean;
  /** In the order they came; a Set makes a repeated message a no-op. */
  readonly addresses: Set<string>;
  readonly #nameOf: (index: number) => string | undefined;

  constructor(
    state: { index: number; name: string; mtu: number; up: boolean; addresses: readonly string[] },
    nameOf: (index: number) => string | undefined,
  ) {
    this.index = state.index;
    this.name = state.name;
    this.mtu = state.mtu;
    this.up = state.up;
    this.addresses = new Set(state.addresses);
    this.#nameOf = nameOf;
  }

  /** The state as core's `PortSink.link()` takes it. */
  state(): LinkState {
    return { name: this.name, mtu: this.mtu, up: this.up, addresses: [...this.addresses] };
  }

  /** Applies the routing messages in `bytes` that are about this interface. Never throws. */
  apply(bytes: Uint8Array): DarwinFollowResult {
    const { messages, malformed } = decodeDarwinRouteMessages(bytes);
    const before = JSON.stringify(this.state());
    let gone = false;
    for (const message of messages) {
      if (message.index !== this.index) continue;
      if (message.kind === 'link') {
        let name: string | undefined;
        try {
          name = this.#nameOf(this.index);
        } catch {
          name = undefined;
        }
        if (name === undefined) {
          gone = true;
          break;
        }
        this.name = name;
        this.mtu = message.mtu;
        this.up = message.up;
      } else if (message.deleted) {
        this.addresses.delete(message.cidr);
      } else {
        this.addresses.add(message.cidr);
      }
    }
    return { changed: !gone && JSON.stringify(this.state()) !== before, gone, malformed };
  }
}
