/**
 * The L2-over-L3 shim: turns a layer-3 {@link PacketPort} (IP packets) into a core
 * `TapPort` (Ethernet frames), so that core's engine makes it a TapDevice.
 *
 * The picture is an Ethernet link with the OS at one end, at the device's MAC (`device.mac`
 * means the OS's station on every backend), and the user's program at the other, at MACs of its
 * own.
 *
 * - Frames the user writes ("outbound") are stripped to packets for the OS: IPv4 and IPv6
 *   frames addressed to the device's MAC or to a broadcast/multicast MAC, with a sound IP header.
 *   ARP and neighbour discovery never reach the OS: the shim answers them itself, on the OS's
 *   behalf, with the device's MAC — for on-link addresses only (see {@link LinkAddresses}), never
 *   for an address the user is probing for itself (ARP probes, duplicate address detection).
 *   Like a kernel's neighbour cache, the shim learns from these frames which MAC each of the
 *   user's IP addresses is at.
 * - Packets the OS sends ("inbound") get an Ethernet header from the device's MAC: to the MAC
 *   learned for the destination IP (else the last MAC the user wrote from; else
 *   ff:ff:ff:ff:ff:ff, as nothing was learned yet), to 01:00:5e:… / 33:33:… when multicast, to
 *   ff:ff:ff:ff:ff:ff for IPv4 broadcasts.
 * - What cannot be carried is dropped and counted by reason in the device's stats
 *   ({@link ShimDrop}).
 *
 * @module
 */
import {
  ArpOp,
  EtherType,
  Icmpv6Type,
  IpProtocol,
  TapError,
  TapErrorCode,
  buildArpReplyFrameFor,
  buildNeighborAdvertisementFrame,
  checkDeviceMac,
  formatIPv6Address,
  ipAddressBytes,
  isBroadcastMac,
  isMulticastMac,
  isTapError,
  macEquals,
  parseArp,
  parseCidr,
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
  systemErrorFields,
  verifyIPv4Checksum,
  verifyIcmpv6Checksum,
  type Frame,
  type InterfaceAddress,
  type MacInput,
  type LinkState,
  type MtuLimits,
  type PortSink,
  type TapCapabilities,
  type TapPort,
} from '@tapkit/core';
import { BoundedAddressSet, LinkAddresses, isLinkLocalIPv6, type OnLinkMode } from './on-link.js';
import type { PacketPort, PacketSink } from './packet-port.js';

/** The reasons the shim counts drops under (`device.stats().drops`). */
export const ShimDrop = {
  /** A frame whose EtherType is not IPv4, IPv6 or ARP (VLAN-tagged frames included). */
  NonIp: 'nonIp',
  /** A unicast frame to a MAC that is not the device's (the OS side's). */
  UnknownMac: 'unknownMac',
  /**
   * A frame with an unsound IPv4/IPv6/ARP/neighbour discovery header or a multicast source
   * MAC, or a packet from the OS that is not IPv4/IPv6.
   */
  Malformed: 'malformed',
  /** ARP the OS side does not answer: replies, probes and announcements, off-link targets. */
  ArpIgnored: 'arpIgnored',
  /** Neighbour discovery not answered: advertisements, DAD for others' addresses, off-link targets. */
  NdIgnored: 'ndIgnored',
  /** More answers pending than {@link MAX_PENDING_REPLIES} (a flood of requests in one turn). */
  ReplyOverflow: 'replyOverflow',
  /** A packet from the OS larger than the device's MTU. */
  Oversize: 'oversize',
} as const;

/** Answers waiting for the next microtask; more are dropped as {@link ShimDrop.ReplyOverflow}. */
export const MAX_PENDING_REPLIES = 1024;
/** The OS side's link-local addresses the shim remembers (from the packets it sends). */
export const MAX_LEARNED_ADDRESSES = 16;
/** The user's IP addresses whose MAC the shim remembers; the oldest is forgotten first. */
export const MAX_NEIGHBORS = 256;

const ETH = 14;
const ALL_NODES = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);

/** Options of {@link createL2Shim}. */
export interface L2ShimOptions {
  /** The device's MAC: the OS side's station, which the OS's frames come from. */
  readonly mac: MacInput;
  /**
   * The OS side's addresses, as CIDR strings or parsed: they decide what is on-link (see
   * {@link OnLinkMode}). Configuring them on the OS device is the packet port's business.
   */
  readonly addresses?: readonly (string | InterfaceAddress)[];
  /** Which addresses the OS side answers for. Default `'prefixes'`. */
  readonly onLink?: OnLinkMode;
  /** The MTU range reported in the capabilities. Default: the packet port's MTU. */
  readonly limits?: MtuLimits;
}

/** {@link L2ShimOptions} checked and parsed. */
export interface ResolvedShimOptions {
  readonly mac: Uint8Array;
  readonly addresses: readonly InterfaceAddress[];
  readonly onLink: OnLinkMode;
  readonly limits: MtuLimits | undefined;
}

// Array.isArray as a plain boolean: its type guard would turn a readonly array into any[].
const isArray: (value: unknown) => boolean = Array.isArray;

function invalidOption(message: string, cause?: unknown): TapError {
  return new TapError(TapErrorCode.INVALID_OPTION, message, cause === undefined ? {} : { cause });
}

/** A CIDR string parsed, or a parsed address checked. */
function checkAddress(address: unknown): InterfaceAddress {
  if (typeof address === 'string') return parseCidr(address);
  const a = address as Partial<InterfaceAddress> | null;
  const length = a?.family === 4 ? 4 : a?.family === 6 ? 16 : -1;
  const prefix = a?.prefixLength;
  if (
    !(a?.address instanceof Uint8Array) ||
    a.address.length !== length ||
    typeof prefix !== 'number' ||
    !Number.isInteger(prefix) ||
    prefix < 0 ||
    prefix > length * 8
  ) {
    throw invalidOption('addresses must hold CIDR strings (10.0.0.1/24, fd00::1/64) or parsed addresses');
  }
  return a as InterfaceAddress;
}

/** Checks shim options without touching anything; throws `ERR_TAP_INVALID_OPTION`. */
export function resolveShimOptions(options: L2ShimOptions): ResolvedShimOptions {
  if (typeof options !== 'object' || options === null) throw invalidOption('shim options must be an object');
  const mac = checkDeviceMac(options.mac);
  const onLink = options.onLink ?? 'prefixes';
  if (onLink !== 'prefixes' && onLink !== 'any') {
    throw invalidOption(`onLink must be 'prefixes' or 'any', not ${JSON.stringify(onLink)}`);
  }
  const given = options.addresses ?? [];
  if (!isArray(given)) throw invalidOption('addresses must be an array of CIDR strings');
  const addresses = given.map(checkAddress);
  return {
    mac,
    addresses,
    onLink,
    limits: options.limits,
  };
}

/**
 * Wraps a layer-3 packet port into a layer-2 `TapPort`. Give it to core's
 * `createTapDevice` (or use `defineShimBackend`) to get a TapDevice.
 *
 * @example
 * ```ts
 * const shim = createL2Shim(tunPort, { mac: randomMac(), addresses: ['10.0.0.1/24'] });
 * const dev = createTapDevice(shim, { backend: 'my-l3-backend' });
 * ```
 */
export function createL2Shim(lower: PacketPort, options: L2ShimOptions): L2Shim {
  return new L2Shim(lower, resolveShimOptions(options));
}

/** The shim as a port: see the module documentation. */
export class L2Shim implements TapPort {
  readonly capabilities: TapCapabilities;
  /** The lower port's setters, passed through (absent where it has none). */
  readonly setMtu?: (mtu: number) => Promise<void>;
  readonly setUp?: (up: boolean) => Promise<void>;
  readonly addAddress?: (address: InterfaceAddress, options: { readonly dad: boolean }) => Promise<void>;
  readonly removeAddress?: (address: InterfaceAddress) => Promise<void>;
  /** The MTU: inbound packets longer than it are dropped. Follows the interface. */
  #mtu: number;
  /** The OS side's addresses, and what is on-link from them (ARP and NDP answers). */
  #addresses: readonly InterfaceAddress[];
  readonly #onLinkMode: OnLinkMode;
  readonly #lower: PacketPort;
  readonly #mac: Uint8Array;
  /** The MAC of each of the user's IP addresses (key: the address's bytes as text), oldest first. */
  readonly #neighbors = new Map<number | string, Uint8Array>();
  /** The MAC the user last wrote from: where packets to an unlearned address go. */
  #lastUserMac: Uint8Array | undefined;
  #link: LinkAddresses;
  /** The OS side's link-local addresses, learned from what it sends: defended against DAD. */
  readonly #learned = new BoundedAddressSet(MAX_LEARNED_ADDRESSES);
  /** Frames that can be built in front of the packet, in its own buffer (see PacketPort.headroom). */
  readonly #inPlace: boolean;
  #sink: PortSink | undefined;
  #replies: Buffer[] = [];
  #closed = false;

  constructor(lower: PacketPort, options: ResolvedShimOptions) {
    this.#lower = lower;
    this.#mtu = lower.mtu;
    this.#mac = Uint8Array.from(options.mac);
    this.#addresses = options.addresses;
    this.#onLinkMode = options.onLink;
    this.#link = new LinkAddresses(options.addresses, options.onLink);
    if (lower.setMtu) {
      this.setMtu = async (mtu) => {
        await lower.setMtu!(mtu);
        this.#mtu = mtu;
      };
    }
    if (lower.setUp) this.setUp = async (up) => lower.setUp!(up);
    if (lower.addAddress) {
      this.addAddress = async (address, options) => {
        await lower.addAddress!(address, options);
        this.#setAddresses([...this.#addresses.filter((a) => a.cidr !== address.cidr), address]);
      };
    }
    if (lower.removeAddress) {
      this.removeAddress = async (address) => {
        await lower.removeAddress!(address);
        this.#setAddresses(this.#addresses.filter((a) => a.cidr !== address.cidr));
      };
    }
    this.#inPlace = (lower.headroom ?? 0) >= ETH;
    this.capabilities = Object.freeze({
      layer: 2,
      minMtu: options.limits?.minMtu ?? lower.mtu,
      maxMtu: options.limits?.maxMtu ?? lower.mtu,
      multiQueue: false,
      offload: false,
      multicastGroups: false,
      osInterface: lower.osInterface ?? false,
    });
  }

  get name(): string {
    return this.#lower.name;
  }

  get mtu(): number {
    return this.#mtu;
  }

  get up(): boolean | undefined {
    return this.#lower.up;
  }

  get addresses(): readonly string[] | undefined {
    return this.#lower.addresses;
  }

  #setAddresses(addresses: readonly InterfaceAddress[]): void {
    this.#addresses = addresses;
    this.#link = new LinkAddresses(addresses, this.#onLinkMode);
  }

  /** The lower port reported a change of its interface: follow it, and tell the engine. */
  #linkChanged(state: Partial<LinkState>, sink: PortSink): void {
    if (state.mtu !== undefined) this.#mtu = state.mtu;
    if (state.addresses !== undefined) this.#setAddresses(state.addresses.map((cidr) => parseCidr(cidr)));
    sink.link(state);
  }

  /** The device's MAC, the OS side's (a copy). */
  get mac(): Uint8Array {
    return Uint8Array.from(this.#mac);
  }

  /** The MAC learned for one of the user's IP addresses (a copy), if any. */
  neighborMac(address: string | Uint8Array): Uint8Array | undefined {
    const mac = this.#neighbors.get(ipKey(ipAddressBytes(address)));
    return mac && Uint8Array.from(mac);
  }

  /** The OS side's link-local addresses seen so far (at most {@link MAX_LEARNED_ADDRESSES}). */
  learnedAddresses(): string[] {
    return this.#learned.values().map((a) => formatIPv6Address(a));
  }

  start(sink: PortSink): void {
    this.#sink = sink;
    const lowerSink: PacketSink = {
      receive: (packets) => this.#receive(packets),
      writable: () => sink.writable(),
      dropped: (reason, count) => sink.dropped(reason, count),
      // The user wrote each packet as a frame: behind a 14-byte Ethernet header (untagged).
      notSent: (reason, packets, bytes) => sink.notSent(reason, packets, bytes + 14 * packets),
      gone: (error) => sink.gone(error),
      error: (error) => sink.error(error),
      link: (state) => this.#linkChanged(state, sink),
    };
    this.#lower.start(lowerSink);
  }

  // ---- outbound: the user's frames ----

  write(frame: Frame): boolean {
    const packet = this.#outbound(frame);
    return packet === undefined ? true : this.#lower.write(packet);
  }

  writeBatch(frames: readonly Frame[]): boolean {
    const packets: Uint8Array[] = [];
    const frameOf: number[] = []; // packets[i] came from frames[frameOf[i]]
    for (let i = 0; i < frames.length; i++) {
      const packet = this.#outbound(frames[i]!);
      if (packet === undefined) continue;
      packets.push(packet);
      frameOf.push(i);
    }
    if (packets.length === 0) return true;
    const lower = this.#lower;
    let sent = 0;
    try {
      if (lower.writeBatch) return lower.writeBatch(packets);
      let accepted = true;
      for (; sent < packets.length; sent++) accepted = lower.write(packets[sent]!) && accepted;
      return accepted;
    } catch (error) {
      throw atFrame(error, frameOf, lower.writeBatch ? undefined : sent);
    }
  }

  /** The packet to send for `frame`, or undefined when it was answered here or dropped. */
  #outbound(frame: Frame): Uint8Array | undefined {
    if (frame.length < ETH) return this.#drop(ShimDrop.Malformed);
    const toOs = macEquals(frame, this.#mac);
    if (!toOs && !isMulticastMac(frame)) return this.#drop(ShimDrop.UnknownMac);
    if (isMulticastMac(frame, 6)) return this.#drop(ShimDrop.Malformed); // no such sender on Ethernet
    switch ((frame[12]! << 8) | frame[13]!) {
      case EtherType.IPv4: {
        const packet = this.#ipv4Out(frame);
        if (packet !== undefined) this.#learn(packet.subarray(12, 16), frame);
        return packet;
      }
      case EtherType.IPv6: {
        const packet = this.#ipv6Out(frame);
        if (packet !== undefined) this.#learn(packet.subarray(8, 24), frame);
        return packet;
      }
      case EtherType.ARP:
        if (!toOs && !isBroadcastMac(frame)) return this.#drop(ShimDrop.UnknownMac);
        this.#arp(frame);
        return undefined;
      default:
        return this.#drop(ShimDrop.NonIp);
    }
  }

  /** The IPv4 packet in `frame` (Ethernet padding trimmed), if its header is sound. */
  #ipv4Out(frame: Frame): Uint8Array | undefined {
    const ip = frame.subarray(ETH);
    if (ip.length < 20 || ip[0]! >> 4 !== 4) return this.#drop(ShimDrop.Malformed);
    const headerLength = (ip[0]! & 0x0f) * 4;
    const totalLength = (ip[2]! << 8) | ip[3]!;
    if (headerLength < 20 || totalLength < headerLength || totalLength > ip.length) {
      return this.#drop(ShimDrop.Malformed);
    }
    if (!verifyIPv4Checksum(ip)) return this.#drop(ShimDrop.Malformed);
    return ip.subarray(0, totalLength);
  }

  /** The IPv6 packet in `frame` (padding trimmed); neighbour discovery is handled here instead. */
  #ipv6Out(frame: Frame): Uint8Array | undefined {
    const ip = frame.subarray(ETH);
    if (ip.length < 40 || ip[0]! >> 4 !== 6) return this.#drop(ShimDrop.Malformed);
    const end = 40 + ((ip[4]! << 8) | ip[5]!);
    if (end > ip.length) return this.#drop(ShimDrop.Malformed);
    const packet = ip.subarray(0, end);
    if (packet[6] === IpProtocol.ICMPv6 && end > 40) {
      const type = packet[40];
      if (type === Icmpv6Type.NeighborSolicitation || type === Icmpv6Type.NeighborAdvertisement) {
        this.#neighborDiscovery(frame, packet);
        return undefined;
      }
    }
    return packet;
  }

  /** Answers an ARP request for an on-link address; everything else ARP stops here. */
  #arp(frame: Frame): void {
    let arp;
    try {
      arp = parseArp(frame.subarray(ETH));
    } catch {
      this.#drop(ShimDrop.Malformed);
      return;
    }
    if (arp.op !== ArpOp.Request) {
      this.#drop(ShimDrop.ArpIgnored); // replies, RARP…: the OS has no ARP cache to fill
      return;
    }
    if (isMulticastMac(arp.senderMac) || arp.senderMac.every((b) => b === 0)) {
      this.#drop(ShimDrop.Malformed);
      return;
    }
    const { senderIp, targetIp } = arp;
    const probe = senderIp.every((b) => b === 0);
    // A probe (RFC 5227) asks "is anyone using this address?": answered only when the OS side
    // holds it, or the user would take its own tentative address for a conflict. An
    // announcement (sender = target) asks nothing.
    const answer = probe
      ? this.#link.holdsIPv4(targetIp)
      : !sameIp(senderIp, targetIp) && this.#link.isOnLinkIPv4(targetIp);
    if (!probe) this.#learn(senderIp, frame, arp.senderMac);
    if (!answer) {
      this.#drop(ShimDrop.ArpIgnored);
      return;
    }
    this.#reply(buildArpReplyFrameFor(arp, this.#mac));
  }

  /**
   * Neighbour solicitations for on-link addresses get an advertisement from the device's MAC;
   * duplicate address detection is answered only for the OS side's own addresses, so the
   * user's tentative addresses stay unique. Advertisements stop here: the OS needs none.
   */
  #neighborDiscovery(frame: Frame, packet: Uint8Array): void {
    const src = packet.subarray(8, 24);
    const dst = packet.subarray(24, 40);
    const icmp = packet.subarray(40);
    // RFC 4861 §7.1: hop limit 255 (it came from this link) and a correct checksum.
    if (packet[7] !== 255 || !verifyIcmpv6Checksum(icmp, src, dst)) {
      this.#drop(ShimDrop.Malformed);
      return;
    }
    let ns;
    try {
      if (icmp[0] === Icmpv6Type.NeighborAdvertisement) {
        parseNeighborAdvertisement(icmp); // only to count a bad one as malformed
        this.#drop(ShimDrop.NdIgnored);
        return;
      }
      ns = parseNeighborSolicitation(icmp)!;
    } catch {
      this.#drop(ShimDrop.Malformed);
      return;
    }
    const target = ns.target;
    const dad = src.every((b) => b === 0);
    if (target[0] === 0xff || (dad && (ns.sourceLinkLayer !== undefined || !isSolicitedNode(dst, target)))) {
      this.#drop(ShimDrop.Malformed); // RFC 4861 §7.1.1
      return;
    }
    if (dad) {
      if (!this.#link.holdsIPv6(target) && !this.#learned.has(target)) {
        this.#drop(ShimDrop.NdIgnored);
        return;
      }
      // RFC 4862 §5.4.3: defend the address with an advertisement to all nodes.
      this.#reply(
        buildNeighborAdvertisementFrame({
          srcMac: this.#mac,
          src: target,
          dst: ALL_NODES,
          target,
          targetLinkLayer: this.#mac,
          router: false,
          solicited: false,
          override: true,
        }),
      );
      return;
    }
    this.#learn(src, frame, ns.sourceLinkLayer);
    if (sameIp(src, target) || !(this.#link.isOnLinkIPv6(target) || this.#learned.has(target))) {
      this.#drop(ShimDrop.NdIgnored);
      return;
    }
    this.#reply(
      buildNeighborAdvertisementFrame({
        srcMac: this.#mac,
        src: target,
        dst: src,
        dstMac: ns.sourceLinkLayer ?? frame.subarray(6, 12),
        target,
        targetLinkLayer: this.#mac,
        router: false,
        solicited: true,
        override: true,
      }),
    );
  }

  /**
   * Queues an answer for the user. Answers are delivered on the next microtask, in one batch,
   * never inside the user's write(): a handler that writes from a 'frame' event would
   * otherwise re-enter itself.
   */
  #reply(frame: Buffer): void {
    if (this.#closed || this.#sink === undefined) return;
    if (this.#replies.length >= MAX_PENDING_REPLIES) {
      this.#drop(ShimDrop.ReplyOverflow);
      return;
    }
    if (this.#replies.push(frame) === 1) queueMicrotask(() => this.#flushReplies());
  }

  #flushReplies(): void {
    const replies = this.#replies;
    this.#replies = [];
    if (!this.#closed && replies.length > 0) this.#sink?.receive(replies);
  }

  /**
   * Remembers that the user's address `ip` is at `mac` (default: the frame's source MAC), as a
   * kernel fills its neighbour cache from what it receives. Unspecified and multicast sources
   * teach nothing; neither does a frame sent from the OS side's own MAC.
   */
  #learn(ip: Uint8Array, frame: Frame, mac: Uint8Array = frame.subarray(6, 12)): void {
    if (isMulticastMac(mac) || macEquals(mac, this.#mac) || mac.every((b) => b === 0)) return;
    const known = this.#lastUserMac;
    if (known === undefined || !macEquals(known, mac)) this.#lastUserMac = Uint8Array.from(mac);
    if (ip.every((b) => b === 0) || ip[0]! >= (ip.length === 4 ? 224 : 0xff)) return;
    const key = ipKey(ip);
    const entry = this.#neighbors.get(key);
    if (entry !== undefined && macEquals(entry, mac)) return;
    this.#neighbors.delete(key);
    if (this.#neighbors.size >= MAX_NEIGHBORS) this.#neighbors.delete(this.#neighbors.keys().next().value!);
    this.#neighbors.set(key, Uint8Array.from(mac));
  }

  #drop(reason: string): undefined {
    this.#sink?.dropped(reason);
    return undefined;
  }

  // ---- inbound: the OS's packets ----

  #receive(packets: Uint8Array[]): void {
    const frames: Buffer[] = [];
    for (const packet of packets) {
      const frame = this.#inbound(packet);
      if (frame !== undefined) frames.push(frame);
    }
    if (frames.length > 0 && !this.#closed) this.#sink?.receive(frames);
  }

  /** The frame that carries `packet` to the user, or undefined when it is dropped. */
  #inbound(packet: Uint8Array): Buffer | undefined {
    const version = packet.length > 0 ? packet[0]! >> 4 : 0;
    let length: number;
    let etherType: number;
    if (version === 4 && packet.length >= 20) {
      const headerLength = (packet[0]! & 0x0f) * 4;
      length = (packet[2]! << 8) | packet[3]!;
      if (headerLength < 20 || length < headerLength || length > packet.length) {
        return this.#drop(ShimDrop.Malformed);
      }
      etherType = EtherType.IPv4;
    } else if (version === 6 && packet.length >= 40) {
      length = 40 + ((packet[4]! << 8) | packet[5]!);
      if (length > packet.length) return this.#drop(ShimDrop.Malformed);
      etherType = EtherType.IPv6;
      if (isLinkLocalIPv6(packet, 8)) this.#learned.add(packet, 8);
    } else {
      return this.#drop(ShimDrop.Malformed);
    }
    if (length > this.mtu) return this.#drop(ShimDrop.Oversize);
    let frame: Buffer;
    if (this.#inPlace && packet.byteOffset >= ETH) {
      frame = Buffer.from(packet.buffer, packet.byteOffset - ETH, ETH + length);
    } else {
      frame = Buffer.alloc(ETH + length);
      frame.set(packet.subarray(0, length), ETH);
    }
    this.#writeDestination(frame, version);
    frame.set(this.#mac, 6);
    frame[12] = etherType >> 8;
    frame[13] = etherType & 0xff;
    return frame;
  }

  /** Writes the destination MAC for the packet at `frame[14…]`. */
  #writeDestination(frame: Uint8Array, version: number): void {
    if (version === 4) {
      const dst = frame.subarray(ETH + 16, ETH + 20);
      if (this.#link.isBroadcastIPv4(dst)) {
        frame.fill(0xff, 0, 6);
      } else if ((dst[0]! & 0xf0) === 0xe0) {
        // RFC 1112: 01:00:5e and the group's low 23 bits.
        frame[0] = 0x01;
        frame[1] = 0x00;
        frame[2] = 0x5e;
        frame[3] = dst[1]! & 0x7f;
        frame[4] = dst[2]!;
        frame[5] = dst[3]!;
      } else {
        this.#writeUserMac(frame, dst);
      }
    } else if (frame[ETH + 24] === 0xff) {
      // RFC 2464 §7: 33:33 and the group's last 4 bytes.
      frame[0] = 0x33;
      frame[1] = 0x33;
      frame.copyWithin(2, ETH + 36, ETH + 40);
    } else {
      this.#writeUserMac(frame, frame.subarray(ETH + 24, ETH + 40));
    }
  }

  /** The user's MAC for unicast to `ip`: learned for it, else the last one seen, else broadcast. */
  #writeUserMac(frame: Uint8Array, ip: Uint8Array): void {
    const mac = this.#neighbors.get(ipKey(ip)) ?? this.#lastUserMac;
    if (mac === undefined) frame.fill(0xff, 0, 6);
    else frame.set(mac, 0);
  }

  // ---- the rest goes to the packet port ----

  pause(): void {
    this.#lower.pause?.();
  }

  resume(): void {
    this.#lower.resume?.();
  }

  ref(): void {
    this.#lower.ref?.();
  }

  unref(): void {
    this.#lower.unref?.();
  }

  close(): Promise<void> | void {
    if (this.#closed) return;
    this.#closed = true;
    this.#replies = [];
    return this.#lower.close();
  }
}

/** A map key for an IP address: a number for IPv4 (no string per packet), text for IPv6. */
function ipKey(ip: Uint8Array): number | string {
  return ip.length === 4 ? ((ip[0]! << 24) | (ip[1]! << 16) | (ip[2]! << 8) | ip[3]!) >>> 0 : ip.join(':');
}

function sameIp(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `dst` is the solicited-node multicast group of `target` (ff02::1:ffXX:XXXX). */
function isSolicitedNode(dst: Uint8Array, target: Uint8Array): boolean {
  for (let i = 0; i < 13; i++) {
    const expected = i === 0 ? 0xff : i === 1 ? 0x02 : i === 11 ? 0x01 : i === 12 ? 0xff : 0;
    if (dst[i] !== expected) return false;
  }
  return dst[13] === target[13] && dst[14] === target[14] && dst[15] === target[15];
}

/**
 * A lower port's error for a batch of packets, as the error for the batch of frames they came
 * from: the failed packet's index (a native error's `index`, or `sent` packets written one by
 * one) becomes its frame's, which the engine reads to know what was sent.
 */
function atFrame(error: unknown, frameOf: readonly number[], sent: number | undefined): unknown {
  if (!isTapError(error)) return error;
  const cause = systemErrorFields(error.cause);
  const index = sent ?? cause.index;
  if (typeof index !== 'number' || frameOf[index] === undefined) return error;
  const { code, errno, osCode, syscall, backend, message } = error;
  const moved = Object.assign(new Error(cause.message ?? message), cause, { index: frameOf[index] });
  return new TapError(code, message, { errno, osCode, syscall, backend, cause: moved });
}
