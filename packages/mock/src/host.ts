/**
 * Virtual hosts: minimal IPv4/IPv6 stacks on a switch port that answer what a real host
 * answers — ARP, neighbour solicitations, echo requests — so that tests can ping something.
 *
 * @module
 */
import {
  ArpOp,
  EtherType,
  IcmpType,
  Icmpv6Type,
  IPv4Flags,
  IpProtocol,
  TapError,
  TapErrorCode,
  buildArpReplyFrameFor,
  buildIcmpEchoFrame,
  buildNeighborAdvertisementFrame,
  checkDeviceMac,
  checkInterfaceName,
  checkMtu,
  formatIPv4Address,
  formatIPv6Address,
  formatMac,
  linkLocalFromMac,
  parseArp,
  parseCidr,
  parseEthernet,
  parseIcmpEcho,
  parseIcmpv6Echo,
  parseIPv4,
  parseIPv6,
  parseNeighborSolicitation,
  solicitedNodeMulticast,
  verifyIcmpChecksum,
  verifyIcmpv6Checksum,
  verifyIPv4Checksum,
  type EthernetFrame,
  type Frame,
} from '@tapkit/core';
import { MOCK_CAPABILITIES } from './port.js';
import { Link, type Switch } from './switch.js';

/** Options of {@link MockNetwork.addHost}. */
export interface VirtualHostOptions {
  /** IPv4 address, with or without a prefix length: `10.0.0.2` or `10.0.0.2/24`. */
  ipv4?: string;
  /** IPv6 address, with or without a prefix length: `fd00::2` or `fd00::2/64`. */
  ipv6?: string;
  /** Default: a locally administered MAC drawn from the network's seed (reproducible). */
  mac?: string | Uint8Array;
  /** Default 1500. Frames larger than the MTU allows are dropped by the switch on the way in. */
  mtu?: number;
  /** Switch port name, unique on the network. Default `host0`, `host1`… */
  name?: string;
  /** Answer after this many milliseconds instead of on the next tick: models a slow stack. */
  responseDelayMs?: number;
}

/** What a host has seen and done. */
export interface VirtualHostStats {
  /** Frames the switch delivered to the host. */
  readonly received: number;
  readonly arpReplies: number;
  readonly ndpAdvertisements: number;
  readonly echoReplies: number;
  /** Frames received and not answered: not for this host, not understood, or malformed. */
  readonly ignored: number;
}

const ALL_NODES = Uint8Array.of(0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC = Uint8Array.of(0x33, 0x33, 0, 0, 0, 1);

function equal(a: Uint8Array, b: Uint8Array | undefined): boolean {
  if (b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isZero(a: Uint8Array): boolean {
  return a.every((b) => b === 0);
}

function invalidOption(message: string): TapError {
  return new TapError(TapErrorCode.INVALID_OPTION, message);
}

/** Parses a host address with an optional prefix; refuses the wrong family and non-unicast addresses. */
function hostAddress(value: unknown, family: 4 | 6): Uint8Array | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string')
    throw invalidOption(
      `ipv${family} must be a string such as ${family === 4 ? '10.0.0.2/24' : 'fd00::2/64'}`,
    );
  const parsed = parseCidr(value.includes('/') ? value : `${value}/${family === 4 ? 32 : 128}`);
  if (parsed.family !== family)
    throw invalidOption(`ipv${family} ${JSON.stringify(value)} is an IPv${parsed.family} address`);
  const a = parsed.address;
  const unusable = family === 4 ? isZero(a) || a[0]! >= 224 : isZero(a) || a[0] === 0xff;
  if (unusable) throw invalidOption(`ipv${family} ${JSON.stringify(value)} is not a unicast host address`);
  return a;
}

/** Checks addHost's options; name and MAC come from the network when absent. */
export function resolveHostOptions(options: VirtualHostOptions): {
  ipv4: Uint8Array | undefined;
  ipv6: Uint8Array | undefined;
  mac: Uint8Array | undefined;
  mtu: number;
  name: string | undefined;
  responseDelayMs: number;
} {
  if (typeof options !== 'object' || options === null) throw invalidOption('host options must be an object');
  const { responseDelayMs = 0 } = options;
  if (typeof responseDelayMs !== 'number' || !(responseDelayMs >= 0 && responseDelayMs < 2 ** 31)) {
    throw invalidOption(
      `responseDelayMs must be a number of milliseconds >= 0, not ${String(responseDelayMs)}`,
    );
  }
  return {
    ipv4: hostAddress(options.ipv4, 4),
    ipv6: hostAddress(options.ipv6, 6),
    mac: options.mac === undefined ? undefined : checkDeviceMac(options.mac),
    mtu: checkMtu(options.mtu ?? 1500, MOCK_CAPABILITIES),
    name: options.name === undefined ? undefined : checkInterfaceName(options.name),
    responseDelayMs,
  };
}

/**
 * A virtual host on a mock network. It answers ARP requests for its IPv4 address, neighbour
 * solicitations for its IPv6 and link-local addresses (duplicate address detection included),
 * and ICMP/ICMPv6 echo requests to them, with TTL/hop limit 64 (255 for neighbour discovery).
 * It ignores everything else, sends nothing unprompted, and keeps no neighbour cache: replies
 * go to the MAC the request came from.
 */
export class VirtualHost {
  /** The host's switch port name. */
  readonly name: string;
  /** `aa:bb:cc:dd:ee:ff`. */
  readonly mac: string;
  /** The IPv4 address (no prefix), when it has one. */
  readonly ipv4: string | undefined;
  /** The IPv6 address (no prefix), when it has one. */
  readonly ipv6: string | undefined;
  /** The link-local address derived from the MAC (modified EUI-64); it answers for it too. */
  readonly linkLocal: string;
  readonly mtu: number;

  readonly #switch: Switch;
  readonly #link: Link;
  readonly #mac: Uint8Array;
  readonly #ip4: Uint8Array | undefined;
  /** Its IPv6 addresses (link-local first) and their solicited-node groups. */
  readonly #ip6: Uint8Array[];
  readonly #groups: Uint8Array[];
  readonly #delayMs: number;

  #received = 0;
  #arpReplies = 0;
  #ndpAdvertisements = 0;
  #echoReplies = 0;

  /** @internal Use {@link MockNetwork.addHost}. */
  constructor(sw: Switch, name: string, mac: Uint8Array, options: ReturnType<typeof resolveHostOptions>) {
    this.#switch = sw;
    this.#mac = mac;
    this.#ip4 = options.ipv4;
    const linkLocal = linkLocalFromMac(mac);
    this.#ip6 = options.ipv6 ? [linkLocal, options.ipv6] : [linkLocal];
    this.#groups = this.#ip6.map(solicitedNodeMulticast);
    this.#delayMs = options.responseDelayMs;
    this.name = name;
    this.mac = formatMac(mac);
    this.ipv4 = options.ipv4 && formatIPv4Address(options.ipv4);
    this.ipv6 = options.ipv6 && formatIPv6Address(options.ipv6);
    this.linkLocal = formatIPv6Address(linkLocal);
    this.mtu = options.mtu;
    this.#link = new Link(name, 'host', mac, options.mtu, Infinity, {
      receive: (frames) => this.#receive(frames),
      gone: () => {},
    });
    sw.attach(this.#link);
  }

  /** Whether the host is still on its network. */
  get attached(): boolean {
    return this.#link.attached;
  }

  stats(): VirtualHostStats {
    const answered = this.#arpReplies + this.#ndpAdvertisements + this.#echoReplies;
    return {
      received: this.#received,
      arpReplies: this.#arpReplies,
      ndpAdvertisements: this.#ndpAdvertisements,
      echoReplies: this.#echoReplies,
      ignored: this.#received - answered,
    };
  }

  /**
   * Sends a frame from the host into the switch (copied; the caller may reuse it). Throws
   * INVALID_ARGUMENT / FRAME_TOO_SHORT / FRAME_TOO_LARGE for a bad frame, CLOSED once detached.
   */
  send(frame: Frame): void {
    if (!(frame instanceof Uint8Array))
      throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'a frame must be a Uint8Array');
    if (frame.length < 14)
      throw new TapError(TapErrorCode.FRAME_TOO_SHORT, `frame of ${frame.length} bytes is shorter than 14`);
    const type = (frame[12]! << 8) | frame[13]!;
    const limit = this.mtu + 14 + (type === EtherType.VLAN || type === EtherType.QinQ ? 4 : 0);
    if (frame.length > limit) {
      throw new TapError(
        TapErrorCode.FRAME_TOO_LARGE,
        `frame of ${frame.length} bytes exceeds host ${this.name}'s limit of ${limit}`,
      );
    }
    const link = this.#link;
    if (!link.attached) throw new TapError(TapErrorCode.CLOSED, `host ${this.name} is detached`);
    if (link.failNext !== undefined) {
      const error = link.failNext;
      link.failNext = undefined;
      throw error;
    }
    this.#switch.ingress(link, this.#switch.copier.copy(frame));
  }

  /** Takes the host off the network; pending delayed replies are dropped. Idempotent. */
  detach(): void {
    this.#switch.detach(this.#link);
  }

  // ---- the stack ----

  #receive(frames: Frame[]): void {
    this.#received += frames.length;
    for (const frame of frames) {
      let reply: Frame | undefined;
      try {
        reply = this.#answer(frame);
      } catch {
        reply = undefined; // malformed: a real stack drops it silently
      }
      if (reply !== undefined) this.#reply(reply);
    }
  }

  #reply(frame: Frame): void {
    const link = this.#link;
    if (this.#delayMs === 0) {
      this.#switch.ingress(link, frame);
      return;
    }
    // On the link's timer set, so that detaching (or closing the network) cancels it.
    const timer = setTimeout(() => {
      link.timers.delete(timer);
      if (link.attached) this.#switch.ingress(link, frame);
    }, this.#delayMs);
    link.timers.add(timer);
  }

  /** The reply to `frame`, or undefined when a real host would stay silent. */
  #answer(frame: Frame): Frame | undefined {
    // The NIC's filter: our unicast MAC, or a group address (the IP layer then decides).
    if ((frame[0]! & 1) === 0 && !equal(frame.subarray(0, 6), this.#mac)) return undefined;
    const eth = parseEthernet(frame);
    if (eth.vlan !== undefined) return undefined; // an untagged (access) port: tagged frames are not ours
    switch (eth.etherType) {
      case EtherType.ARP:
        return this.#arp(eth);
      case EtherType.IPv4:
        return this.#ipv4(eth);
      case EtherType.IPv6:
        return this.#ipv6(eth);
      default:
        return undefined;
    }
  }

  #arp(eth: EthernetFrame): Frame | undefined {
    const arp = parseArp(eth.payload);
    if (arp.op !== ArpOp.Request || !equal(arp.targetIp, this.#ip4)) return undefined;
    // Probes (sender 0.0.0.0, RFC 5227) and gratuitous requests (sender = target) announce or
    // test an address; they ask nothing of us.
    if (isZero(arp.senderIp) || equal(arp.senderIp, arp.targetIp)) return undefined;
    this.#arpReplies++;
    return buildArpReplyFrameFor(arp, this.#mac);
  }

  #ipv4(eth: EthernetFrame): Frame | undefined {
    const ip = parseIPv4(eth.payload);
    if (!equal(ip.dst, this.#ip4) || !verifyIPv4Checksum(eth.payload) || ip.protocol !== IpProtocol.ICMP)
      return undefined;
    // No reassembly: a fragment does not hold a whole echo request.
    if (ip.fragmentOffset !== 0 || (ip.flags & IPv4Flags.MoreFragments) !== 0) return undefined;
    const echo = parseIcmpEcho(ip.payload);
    if (echo?.type !== IcmpType.EchoRequest || echo.code !== 0 || !verifyIcmpChecksum(ip.payload))
      return undefined;
    this.#echoReplies++;
    return buildIcmpEchoFrame({
      srcMac: this.#mac,
      dstMac: eth.src,
      src: ip.dst,
      dst: ip.src,
      ttl: 64,
      type: 'reply',
      identifier: echo.identifier,
      sequence: echo.sequence,
      data: echo.data,
    });
  }

  #ipv6(eth: EthernetFrame): Frame | undefined {
    const ip = parseIPv6(eth.payload);
    const unicast = this.#ip6.some((a) => equal(ip.dst, a));
    const forUs = unicast || equal(ip.dst, ALL_NODES) || this.#groups.some((g) => equal(ip.dst, g));
    // Extension headers are not walked: a real stack would, but NDP and ping never carry them.
    if (!forUs || ip.nextHeader !== IpProtocol.ICMPv6 || !verifyIcmpv6Checksum(ip.payload, ip.src, ip.dst)) {
      return undefined;
    }
    const type = ip.payload[0];
    if (type === Icmpv6Type.NeighborSolicitation)
      return this.#solicitation(eth, ip.src, ip.dst, ip.hopLimit, ip.payload);
    if (type !== Icmpv6Type.EchoRequest || !unicast) return undefined;
    const echo = parseIcmpv6Echo(ip.payload)!;
    if (echo.code !== 0) return undefined;
    this.#echoReplies++;
    return buildIcmpEchoFrame({
      srcMac: this.#mac,
      dstMac: eth.src,
      src: ip.dst,
      dst: ip.src,
      ttl: 64,
      type: 'reply',
      identifier: echo.identifier,
      sequence: echo.sequence,
      data: echo.data,
    });
  }

  /** RFC 4861 §7.1.1 validation, then §7.2.4's advertisement. */
  #solicitation(
    eth: EthernetFrame,
    src: Uint8Array,
    dst: Uint8Array,
    hopLimit: number,
    body: Uint8Array,
  ): Frame | undefined {
    // Hop limit 255 proves the solicitation was not forwarded by a router.
    if (hopLimit !== 255) return undefined;
    const ns = parseNeighborSolicitation(body);
    if (ns === undefined) return undefined;
    const target = this.#ip6.find((a) => equal(ns.target, a));
    if (target === undefined) return undefined;
    const dad = isZero(src);
    if (dad && (ns.sourceLinkLayer !== undefined || !this.#groups.some((g) => equal(dst, g))))
      return undefined;
    this.#ndpAdvertisements++;
    return buildNeighborAdvertisementFrame({
      srcMac: this.#mac,
      src: target,
      // DAD: the asker has no address yet, so the answer goes to all nodes, unsolicited.
      dst: dad ? ALL_NODES : src,
      dstMac: dad ? ALL_NODES_MAC : (ns.sourceLinkLayer ?? eth.src),
      target,
      targetLinkLayer: this.#mac,
      solicited: !dad,
      override: true,
    });
  }
}
