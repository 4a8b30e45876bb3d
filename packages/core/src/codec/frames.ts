/**
 * Whole-frame builders (Ethernet + ARP/IP + UDP/ICMP) for tests, mocks and demos, each writing
 * every layer into one allocation; and {@link decodeFrame}, a one-shot decoder that never throws.
 *
 * Addresses may be given either way: IPs as text (`10.0.0.1`, `fd00::1`) or bytes, MACs as
 * `aa:bb:cc:dd:ee:ff` or 6 bytes. The IP version follows the address: 4 bytes (or dotted
 * decimal) IPv4, 16 bytes (or text with colons) IPv6. Frames built are Buffers.
 *
 * @module
 */
import { isTapError, TapError, TapErrorCode } from '../errors.js';
import { ArpOp, parseArp, writeArp, type ArpPacket } from './arp.js';
import {
  ETHERNET_HEADER_LENGTH,
  ETHERNET_MIN_FRAME_LENGTH,
  EtherType,
  parseEthernet,
  VLAN_TAG_LENGTH,
  writeEthernetHeader,
  type EthernetFrame,
  type VlanTag,
} from './ethernet.js';
import {
  IcmpType,
  parseIcmp,
  parseIcmpEcho,
  writeIcmpEcho,
  type IcmpEcho,
  type IcmpMessage,
} from './icmp.js';
import {
  Icmpv6Type,
  neighborMessageLength,
  parseIcmpv6,
  parseIcmpv6Echo,
  parseNeighborAdvertisement,
  parseNeighborSolicitation,
  writeIcmpv6Echo,
  writeNeighborAdvertisement,
  writeNeighborSolicitation,
  type Icmpv6Message,
  type NeighborAdvertisement,
  type NeighborSolicitation,
} from './icmpv6.js';
import { assertAddressPair, assertBytes, assertLength } from './internal.js';
import {
  IPv4Flags,
  IpProtocol,
  IPV4_HEADER_LENGTH,
  parseIPv4,
  writeIPv4Header,
  type IPv4Packet,
} from './ipv4.js';
import { parseIPv4Address } from './ipv4.js';
import {
  IPV6_HEADER_LENGTH,
  parseIPv6Address,
  parseIPv6,
  writeIPv6Header,
  solicitedNodeMulticast,
  type IPv6Packet,
} from './ipv6.js';
import { BROADCAST_MAC, ipv6MulticastMac, type MacInput } from './mac.js';
import { parseUdp, UDP_HEADER_LENGTH, writeUdp, type UdpDatagram } from './udp.js';

/** An IP address: text (`10.0.0.1`, `fd00::1`) or bytes (4 or 16). */
export type IpInput = string | Uint8Array;

/** The bytes of an IP address given as text or bytes (bytes are returned as they are). */
export function ipAddressBytes(input: IpInput, what = 'IP address'): Uint8Array {
  if (typeof input === 'string')
    return input.includes(':') ? parseIPv6Address(input) : parseIPv4Address(input);
  assertBytes(input, what);
  return input;
}

/** `T` with the IP address fields `K` as bytes. */
type WithIpBytes<T, K extends keyof T> = Omit<T, K> & {
  [P in K]: undefined extends T[P] ? Uint8Array | undefined : Uint8Array;
};

/** A copy of `opts` with the IP address fields `keys` (those set) as bytes. */
function withIpBytes<T extends object, K extends keyof T>(opts: T, keys: readonly K[]): WithIpBytes<T, K> {
  const out = { ...opts } as Record<string, unknown>;
  for (const key of keys) {
    const value = opts[key] as IpInput | undefined;
    if (value !== undefined) out[key as string] = ipAddressBytes(value, String(key));
  }
  return out as WithIpBytes<T, K>;
}

/** Link-layer options every frame builder takes. */
export interface FrameOptions {
  /** Add an 802.1Q tag. */
  vlan?: VlanTag | undefined;
  /** Zero-pad to 60 bytes as a NIC would. Default false. */
  padTo60?: boolean | undefined;
}

function l2Length(opts: FrameOptions): number {
  return opts.vlan === undefined ? ETHERNET_HEADER_LENGTH : ETHERNET_HEADER_LENGTH + VLAN_TAG_LENGTH;
}

/** Allocates the frame (the only allocation) and writes its Ethernet header. */
function allocFrame(
  opts: FrameOptions,
  dst: MacInput,
  src: MacInput,
  etherType: number,
  bodyLength: number,
): Buffer {
  const length = l2Length(opts) + bodyLength;
  // A Buffer, as frames a device receives are: one rule for frames tapkit hands out.
  const out = Buffer.alloc(opts.padTo60 === true ? Math.max(length, ETHERNET_MIN_FRAME_LENGTH) : length);
  writeEthernetHeader(out, 0, { dst, src, etherType, vlan: opts.vlan });
  return out;
}

// ---- ARP ----

/** Options of {@link buildArpRequestFrame}. */
export interface ArpRequestFrameOptions extends FrameOptions {
  srcMac: MacInput;
  srcIp: IpInput;
  targetIp: IpInput;
}

/** A broadcast "who has `targetIp`? tell `srcIp`". */
export function buildArpRequestFrame(options: ArpRequestFrameOptions): Buffer {
  const opts = withIpBytes(options, ['srcIp', 'targetIp']);
  const out = allocFrame(opts, BROADCAST_MAC, opts.srcMac, EtherType.ARP, 28);
  writeArp(out, l2Length(opts), {
    op: ArpOp.Request,
    senderMac: opts.srcMac,
    senderIp: opts.srcIp,
    targetIp: opts.targetIp,
  });
  return out;
}

/** Options of {@link buildArpReplyFrame}: `src*` answers, `dst*` asked. */
export interface ArpReplyFrameOptions extends FrameOptions {
  srcMac: MacInput;
  srcIp: IpInput;
  dstMac: MacInput;
  dstIp: IpInput;
}

/** A unicast "`srcIp` is at `srcMac`" to the asker. */
export function buildArpReplyFrame(options: ArpReplyFrameOptions): Buffer {
  const opts = withIpBytes(options, ['srcIp', 'dstIp']);
  const out = allocFrame(opts, opts.dstMac, opts.srcMac, EtherType.ARP, 28);
  writeArp(out, l2Length(opts), {
    op: ArpOp.Reply,
    senderMac: opts.srcMac,
    senderIp: opts.srcIp,
    targetMac: opts.dstMac,
    targetIp: opts.dstIp,
  });
  return out;
}

/** The reply frame to a decoded `request`, from the owner (`mac`) of its target IP. */
export function buildArpReplyFrameFor(request: ArpPacket, mac: MacInput, opts: FrameOptions = {}): Buffer {
  return buildArpReplyFrame({
    ...opts,
    srcMac: mac,
    srcIp: request.targetIp,
    dstMac: request.senderMac,
    dstIp: request.senderIp,
  });
}

// ---- IP ----

/** Addressing common to the IP frame builders. */
export interface IpFrameOptions extends FrameOptions {
  srcMac: MacInput;
  dstMac: MacInput;
  /** IPv4 or IPv6, as text or bytes. */
  src: IpInput;
  /** Of the same family as `src`. */
  dst: IpInput;
  /** TTL / hop limit. Default 64. */
  ttl?: number | undefined;
}

/** Allocates the frame and writes Ethernet + IP headers; the caller writes `l4Length` bytes at {@link l4Offset}. */
/** {@link IpFrameOptions} with both addresses as bytes. */
type IpFrameBytes = WithIpBytes<IpFrameOptions, 'src' | 'dst'>;

function allocIpFrame(opts: IpFrameBytes, protocol: number, l4Length: number): Buffer {
  assertAddressPair(opts.src, opts.dst);
  const v4 = opts.src.length === 4;
  const ipLength = v4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH;
  const out = allocFrame(
    opts,
    opts.dstMac,
    opts.srcMac,
    v4 ? EtherType.IPv4 : EtherType.IPv6,
    ipLength + l4Length,
  );
  const ip = {
    src: opts.src,
    dst: opts.dst,
    protocol,
    nextHeader: protocol,
    ttl: opts.ttl,
    hopLimit: opts.ttl,
  };
  if (v4) writeIPv4Header(out, l2Length(opts), ip, l4Length);
  else writeIPv6Header(out, l2Length(opts), ip, l4Length);
  return out;
}

function l4Offset(opts: IpFrameBytes): number {
  return l2Length(opts) + (opts.src.length === 4 ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH);
}

/** Options of {@link buildUdpFrame}. */
export interface UdpFrameOptions extends IpFrameOptions {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

/** Ethernet + IPv4/IPv6 + UDP (checksums filled). */
export function buildUdpFrame(options: UdpFrameOptions): Buffer {
  const opts = withIpBytes(options, ['src', 'dst']);
  assertBytes(opts.payload, 'payload');
  const out = allocIpFrame(opts, IpProtocol.UDP, UDP_HEADER_LENGTH + opts.payload.length);
  writeUdp(out, l4Offset(opts), opts);
  return out;
}

/** Options of {@link buildIcmpEchoFrame}. */
export interface IcmpEchoFrameOptions extends IpFrameOptions {
  /** `'request'`/`'reply'`, or the numeric type of the address family (8/0 or 128/129). */
  type: 'request' | 'reply' | number;
  identifier: number;
  sequence: number;
  data: Uint8Array;
}

/** Ethernet + IPv4 + ICMP echo, or Ethernet + IPv6 + ICMPv6 echo (by address length). */
export function buildIcmpEchoFrame(options: IcmpEchoFrameOptions): Buffer {
  const opts = withIpBytes(options, ['src', 'dst']);
  assertBytes(opts.data, 'data');
  assertAddressPair(opts.src, opts.dst);
  const v4 = opts.src.length === 4;
  const out = allocIpFrame(opts, v4 ? IpProtocol.ICMP : IpProtocol.ICMPv6, 8 + opts.data.length);
  const { type } = opts;
  const echo = {
    ...opts,
    type:
      type === 'request'
        ? v4
          ? IcmpType.EchoRequest
          : Icmpv6Type.EchoRequest
        : type === 'reply'
          ? v4
            ? IcmpType.EchoReply
            : Icmpv6Type.EchoReply
          : type,
  };
  if (v4) writeIcmpEcho(out, l4Offset(opts), echo);
  else writeIcmpv6Echo(out, l4Offset(opts), echo);
  return out;
}

// ---- neighbour discovery (IPv6; hop limit 255 as RFC 4861 requires) ----

/** Options of {@link buildNeighborSolicitationFrame}. */
export interface NeighborSolicitationFrameOptions extends FrameOptions {
  srcMac: MacInput;
  /** The sender's address; `::` for duplicate address detection (then no link-layer option). */
  src: IpInput;
  target: IpInput;
  /** Default: the target's solicited-node multicast group. */
  dst?: IpInput | undefined;
  /** Default: the Ethernet group address of `dst`. */
  dstMac?: MacInput | undefined;
}

/** Ethernet + IPv6 + neighbour solicitation "who has `target`?". */
export function buildNeighborSolicitationFrame(options: NeighborSolicitationFrameOptions): Buffer {
  const opts = withIpBytes(options, ['src', 'target', 'dst']);
  assertLength(opts.src, 16, 'src');
  assertLength(opts.target, 16, 'target');
  const dst = opts.dst ?? solicitedNodeMulticast(opts.target);
  const unspecified = opts.src.every((b) => b === 0);
  const frame = { ...opts, dst, dstMac: opts.dstMac ?? ipv6MulticastMac(dst), ttl: 255 };
  const out = allocIpFrame(frame, IpProtocol.ICMPv6, neighborMessageLength(!unspecified));
  writeNeighborSolicitation(out, l4Offset(frame), {
    src: opts.src,
    dst,
    target: opts.target,
    sourceLinkLayer: unspecified ? undefined : opts.srcMac,
  });
  return out;
}

/** Options of {@link buildNeighborAdvertisementFrame}. */
export interface NeighborAdvertisementFrameOptions extends FrameOptions {
  srcMac: MacInput;
  src: IpInput;
  /** Default ff02::1 (all nodes: an unsolicited advertisement). */
  dst?: IpInput | undefined;
  /** Default: the Ethernet group address of `dst`. */
  dstMac?: MacInput | undefined;
  target: IpInput;
  /** Default `srcMac`; `null` to leave the option out. */
  targetLinkLayer?: MacInput | null | undefined;
  router?: boolean | undefined;
  solicited: boolean;
  override: boolean;
}

const ALL_NODES = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);

/** Ethernet + IPv6 + neighbour advertisement "`target` is at `targetLinkLayer`". */
export function buildNeighborAdvertisementFrame(options: NeighborAdvertisementFrameOptions): Buffer {
  const opts = withIpBytes(options, ['src', 'dst', 'target']);
  const dst = opts.dst ?? ALL_NODES;
  assertLength(dst, 16, 'dst');
  const targetLinkLayer = opts.targetLinkLayer === null ? undefined : (opts.targetLinkLayer ?? opts.srcMac);
  const frame = { ...opts, dst, dstMac: opts.dstMac ?? ipv6MulticastMac(dst), ttl: 255 };
  const out = allocIpFrame(frame, IpProtocol.ICMPv6, neighborMessageLength(targetLinkLayer !== undefined));
  writeNeighborAdvertisement(out, l4Offset(frame), { ...opts, dst, targetLinkLayer });
  return out;
}

// ---- decoding ----

/** The layers of a frame whose Ethernet header decoded. */
export interface DecodedLayers {
  eth: EthernetFrame;
  arp?: ArpPacket;
  ipv4?: IPv4Packet;
  ipv6?: IPv6Packet;
  udp?: UdpDatagram;
  /** Any ICMPv4 message; `icmpEcho` too when it is an echo request/reply. */
  icmp?: IcmpMessage;
  icmpEcho?: IcmpEcho;
  /** Any ICMPv6 message; one of the next three too when it is of that type. */
  icmpv6?: Icmpv6Message;
  icmpv6Echo?: IcmpEcho;
  neighborSolicitation?: NeighborSolicitation;
  neighborAdvertisement?: NeighborAdvertisement;
  /**
   * Why decoding stopped early: an inner layer was malformed (its message names the layer, as
   * {@link DecodedLayers.failedLayer} does). The layers outside it are set.
   */
  error?: TapError;
  /** The layer that did not decode, when `error` is set. */
  failedLayer?: FrameLayer;
}

/** The layers {@link decodeFrame} knows, outermost first. */
export type FrameLayer = 'ethernet' | 'arp' | 'ipv4' | 'ipv6' | 'udp' | 'icmp' | 'icmpv6';

/**
 * A frame too short for an Ethernet header (or not bytes at all). Every layer is absent, so
 * `decodeFrame(f).arp` and the like can be read without narrowing first.
 */
export type DecodeFailure = { eth: undefined; error: TapError; failedLayer: 'ethernet' } & {
  [K in Exclude<keyof DecodedLayers, 'eth' | 'error' | 'failedLayer'>]?: undefined;
};

/** What {@link decodeFrame} returns: test `eth === undefined` to tell the two apart. */
export type DecodedFrame = DecodedLayers | DecodeFailure;

const LAYER_NAMES: Readonly<Record<FrameLayer, string>> = {
  ethernet: 'Ethernet',
  arp: 'ARP',
  ipv4: 'IPv4',
  ipv6: 'IPv6',
  udp: 'UDP',
  icmp: 'ICMP',
  icmpv6: 'ICMPv6',
};

/** A parser's error as decodeFrame reports it: its code (`ERR_TAP_MALFORMED`), naming the layer. */
function layerError(layer: FrameLayer, err: unknown): TapError {
  // Parsers throw only TapErrors; a bug in one still gives a TapError here.
  const code = isTapError(err) ? err.code : TapErrorCode.MALFORMED;
  const why = isTapError(err) ? err.message : String(err);
  return new TapError(code, `decodeFrame: the ${LAYER_NAMES[layer]} layer does not decode: ${why}`, {
    cause: err,
  });
}

/** Parses one layer, or records on `d` that it failed (and returns undefined). */
function layer<T>(d: DecodedLayers, name: FrameLayer, parse: () => T): T | undefined {
  try {
    return parse();
  } catch (err) {
    d.error = layerError(name, err);
    d.failedLayer = name;
    return undefined;
  }
}

/**
 * Decodes as many layers as it can and never throws. Layers are set only when present and
 * well-formed; when an inner layer is malformed, `error` says why and the outer layers stay.
 * Checksums are not verified, IPv4 fragments and IPv6 extension headers are not followed
 * (the IP layer is the last one set), and all fields are views into `frame`.
 */
export function decodeFrame(frame: Uint8Array): DecodedFrame {
  let eth: EthernetFrame;
  try {
    eth = parseEthernet(frame);
  } catch (err) {
    return { eth: undefined, error: layerError('ethernet', err), failedLayer: 'ethernet' };
  }
  const decoded: DecodedLayers = { eth };
  decodeNetwork(decoded, eth);
  return decoded;
}

function set<K extends keyof DecodedLayers>(
  d: DecodedLayers,
  key: K,
  value: DecodedLayers[K] | undefined,
): void {
  if (value !== undefined) d[key] = value;
}

function decodeNetwork(d: DecodedLayers, eth: EthernetFrame): void {
  switch (eth.etherType) {
    case EtherType.ARP:
      set(
        d,
        'arp',
        layer(d, 'arp', () => parseArp(eth.payload)),
      );
      return;
    case EtherType.IPv4: {
      const ip = layer(d, 'ipv4', () => parseIPv4(eth.payload));
      if (ip === undefined) return;
      d.ipv4 = ip;
      // Only an unfragmented packet carries a whole upper-layer message.
      if (ip.fragmentOffset !== 0 || (ip.flags & IPv4Flags.MoreFragments) !== 0) return;
      if (ip.protocol === IpProtocol.UDP)
        set(
          d,
          'udp',
          layer(d, 'udp', () => parseUdp(ip.payload)),
        );
      else if (ip.protocol === IpProtocol.ICMP) {
        set(
          d,
          'icmp',
          layer(d, 'icmp', () => parseIcmp(ip.payload)),
        );
        if (d.icmp)
          set(
            d,
            'icmpEcho',
            layer(d, 'icmp', () => parseIcmpEcho(ip.payload)),
          );
      }
      return;
    }
    case EtherType.IPv6: {
      const ip = layer(d, 'ipv6', () => parseIPv6(eth.payload));
      if (ip === undefined) return;
      d.ipv6 = ip;
      if (ip.nextHeader === IpProtocol.UDP)
        set(
          d,
          'udp',
          layer(d, 'udp', () => parseUdp(ip.payload)),
        );
      else if (ip.nextHeader === IpProtocol.ICMPv6) {
        const msg = layer(d, 'icmpv6', () => parseIcmpv6(ip.payload));
        if (msg !== undefined) layer(d, 'icmpv6', () => decodeIcmpv6(d, msg, ip.payload));
      }
      return;
    }
  }
}

function decodeIcmpv6(d: DecodedLayers, msg: Icmpv6Message, bytes: Uint8Array): void {
  d.icmpv6 = msg;
  switch (msg.type) {
    case Icmpv6Type.EchoRequest:
    case Icmpv6Type.EchoReply:
      d.icmpv6Echo = parseIcmpv6Echo(bytes)!; // defined: the type matched
      return;
    case Icmpv6Type.NeighborSolicitation:
      d.neighborSolicitation = parseNeighborSolicitation(bytes)!;
      return;
    case Icmpv6Type.NeighborAdvertisement:
      d.neighborAdvertisement = parseNeighborAdvertisement(bytes)!;
      return;
  }
}
