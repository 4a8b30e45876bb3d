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
  abortError,
  isTapError,
  buildArpReplyFrameFor,
  buildArpRequestFrame,
  buildIcmpEchoFrame,
  buildNeighborAdvertisementFrame,
  buildNeighborSolicitationFrame,
  buildUdpFrame,
  parseIPv4Address,
  parseIPv6Address,
  parseNeighborAdvertisement,
  checkDeviceMac,
  checkInterfaceName,
  checkMtu,
  describeValue,
  formatIPv4Address,
  formatIPv6Address,
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
  type InterfaceAddress,
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
  /** How many received frames {@link VirtualHost.received} keeps (the latest). Default 1000. */
  logFrames?: number;
}

/** Options of {@link VirtualHost.ping}. */
export interface PingOptions {
  /** Give up after this many milliseconds (a timer: fake timers drive it). Default 1000. */
  timeoutMs?: number;
  /** Echo data. Default 56 bytes of a pattern, as ping sends. */
  data?: Uint8Array;
  signal?: AbortSignal;
}

/** An echo reply {@link VirtualHost.ping} got. */
export interface PingReply {
  /** Who answered (the address pinged). */
  readonly from: string;
  /** The MAC it answered from (6 bytes). */
  readonly mac: Buffer;
  readonly sequence: number;
  /** Its TTL (IPv4) or hop limit (IPv6). */
  readonly ttl: number;
  /** Milliseconds from the request to the reply, by `Date.now()` (fake timers move it). */
  readonly rttMs: number;
}

/** What {@link VirtualHost.sendUdp} sends. */
export interface UdpSendOptions {
  /** The destination address (IPv4 or IPv6; the host must have an address of that family). */
  to: string | Uint8Array;
  port: number;
  /** Source port. Default 40000. */
  fromPort?: number;
  payload: Uint8Array | string;
  /** Give up resolving the destination's MAC after this many milliseconds. Default 1000. */
  timeoutMs?: number;
  signal?: AbortSignal;
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

/** A timeout and a signal as one; `done` releases both. */
interface Deadline {
  readonly signal: AbortSignal;
  readonly what: string;
  done(): void;
}

function formatIp(address: Uint8Array): string {
  return address.length === 4 ? formatIPv4Address(address) : formatIPv6Address(address);
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

function hostAddresses(value: unknown, family: 4 | 6): Uint8Array[] {
  const address = hostAddress(value, family);
  return address === undefined ? [] : [address];
}

/** addHost's options, checked. */
export interface ResolvedHostOptions {
  ipv4: Uint8Array[];
  ipv6: Uint8Array[];
  mac: Uint8Array | undefined;
  mtu: number;
  name: string | undefined;
  responseDelayMs: number;
  logFrames: number;
}

/** A device's OS station: answers at once and keeps no log. */
export const STATION = { mac: undefined, name: undefined, responseDelayMs: 0, logFrames: 0 } as const;

/** Checks addHost's options; name and MAC come from the network when absent. */
export function resolveHostOptions(options: VirtualHostOptions): ResolvedHostOptions {
  if (typeof options !== 'object' || options === null) throw invalidOption('host options must be an object');
  const { responseDelayMs = 0 } = options;
  if (typeof responseDelayMs !== 'number' || !(responseDelayMs >= 0 && responseDelayMs < 2 ** 31)) {
    throw invalidOption(
      `responseDelayMs must be a number of milliseconds >= 0, not ${String(responseDelayMs)}`,
    );
  }
  const { logFrames = 1000 } = options;
  if (!Number.isInteger(logFrames) || logFrames < 0) {
    throw invalidOption(`logFrames must be an integer >= 0, not ${describeValue(logFrames)}`);
  }
  return {
    logFrames,
    ipv4: hostAddresses(options.ipv4, 4),
    ipv6: hostAddresses(options.ipv6, 6),
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
  /** Its IPv4 addresses (a device's station may have several). */
  readonly #ip4: Uint8Array[];
  /** Its IPv6 addresses (link-local first) and their solicited-node groups. */
  readonly #ip6: Uint8Array[];
  readonly #groups: Uint8Array[];
  readonly #delayMs: number;
  readonly #logFrames: number;
  #log: Buffer[] = [];
  /** Frames awaited by ping() and sendUdp(): each one is offered every frame received. */
  readonly #waiters = new Set<(frame: Frame) => boolean>();
  #nextSequence = 1;
  /** The deadlines of pending ping()s and sendUdp()s: leaving the network ends them. */
  readonly #pending = new Set<AbortController>();

  #received = 0;
  #arpReplies = 0;
  #ndpAdvertisements = 0;
  #echoReplies = 0;

  /** @internal Use {@link MockNetwork.addHost}. */
  constructor(
    sw: Switch,
    name: string,
    mac: Uint8Array,
    options: ResolvedHostOptions,
    kind: 'host' | 'station' = 'host',
  ) {
    this.#switch = sw;
    this.#mac = mac;
    this.#ip4 = options.ipv4;
    const linkLocal = linkLocalFromMac(mac);
    this.#ip6 = [linkLocal, ...options.ipv6];
    this.#groups = this.#ip6.map(solicitedNodeMulticast);
    this.#delayMs = options.responseDelayMs;
    this.#logFrames = options.logFrames;
    this.name = name;
    this.ipv4 = options.ipv4[0] && formatIPv4Address(options.ipv4[0]);
    this.ipv6 = options.ipv6[0] && formatIPv6Address(options.ipv6[0]);
    this.linkLocal = formatIPv6Address(linkLocal);
    this.mtu = options.mtu;
    this.#link = new Link(name, kind, mac, options.mtu, Infinity, {
      receive: (frames) => this.#receive(frames),
      gone: (error) => this.#abortPending(error),
    });
    sw.attach(this.#link);
  }

  /**
   * @internal A device's station takes one of the device's addresses, or gives it up (the
   * device's addAddress/removeAddress, the network's admin verbs).
   */
  setAddress(address: InterfaceAddress, present: boolean): void {
    const list = address.family === 4 ? this.#ip4 : this.#ip6;
    const at = list.findIndex((a) => a.every((byte, i) => byte === address.address[i]));
    if (present && at < 0) list.push(Uint8Array.from(address.address));
    if (!present && at >= 0) list.splice(at, 1);
    if (address.family === 6)
      this.#groups.splice(0, this.#groups.length, ...this.#ip6.map(solicitedNodeMulticast));
  }

  /** The host's MAC (6 bytes, as `TapDevice.mac`; `formatMac()` for text). A copy. */
  get mac(): Buffer {
    return Buffer.from(this.#mac);
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

  /**
   * The frames the host received (the latest `logFrames`, oldest first), whether it answered
   * them or not: what a test asserts its code sent. Buffers; `clear` empties the log.
   */
  received(options: { clear?: boolean } = {}): Buffer[] {
    const log = this.#log.slice();
    if (options.clear === true) this.#log = [];
    return log;
  }

  /**
   * Pings `address` as a real host does: resolves its MAC (ARP, or neighbour solicitation),
   * sends one echo request and resolves with the reply. Rejects with `ERR_TAP_ABORTED` when no
   * answer comes within `timeoutMs` (its cause a `TimeoutError`) or the signal aborts, and with
   * `ERR_TAP_INVALID_ARGUMENT` for an address of a family the host has none of. No randomness:
   * sequence numbers count from 1, so a seeded run is the same every time.
   */
  async ping(address: string | Uint8Array, options: PingOptions = {}): Promise<PingReply> {
    const { dst, src } = this.#route(address);
    const deadline = this.#deadline(options.timeoutMs, options.signal, `ping ${formatIp(dst)}`);
    try {
      const mac = await this.#resolve(dst, src, deadline);
      const sequence = this.#nextSequence++;
      const identifier = 0x7470; // 'tp'
      const sent = Date.now();
      this.#send(
        buildIcmpEchoFrame({
          srcMac: this.#mac,
          dstMac: mac,
          src,
          dst,
          type: 'request',
          identifier,
          sequence,
          data: options.data ?? Uint8Array.from({ length: 56 }, (_, i) => i),
        }),
      );
      const ttl = await this.#await(deadline, (frame) => {
        const eth = parseEthernet(frame);
        if (dst.length === 4) {
          if (eth.etherType !== EtherType.IPv4) return undefined;
          const ip = parseIPv4(eth.payload);
          const echo = equal(ip.src, dst) ? parseIcmpEcho(ip.payload) : undefined;
          return echo?.type === IcmpType.EchoReply && echo.sequence === sequence ? ip.ttl : undefined;
        }
        if (eth.etherType !== EtherType.IPv6) return undefined;
        const ip = parseIPv6(eth.payload);
        const echo = equal(ip.src, dst) ? parseIcmpv6Echo(ip.payload) : undefined;
        return echo?.type === Icmpv6Type.EchoReply && echo.sequence === sequence ? ip.hopLimit : undefined;
      });
      return { from: formatIp(dst), mac: Buffer.from(mac), sequence, ttl, rttMs: Date.now() - sent };
    } finally {
      deadline.done();
    }
  }

  /**
   * Sends a UDP datagram from the host: resolves the destination's MAC (ARP, or neighbour
   * solicitation), then sends. Rejects as {@link ping} does when the MAC cannot be resolved.
   */
  async sendUdp(options: UdpSendOptions): Promise<void> {
    const { dst, src } = this.#route(options.to);
    const payload =
      typeof options.payload === 'string' ? Buffer.from(options.payload) : (options.payload as unknown);
    if (!(payload instanceof Uint8Array)) {
      throw new TapError(TapErrorCode.INVALID_ARGUMENT, 'payload must be a Uint8Array or a string');
    }
    const deadline = this.#deadline(options.timeoutMs, options.signal, `UDP to ${formatIp(dst)}`);
    try {
      const mac = await this.#resolve(dst, src, deadline);
      this.#send(
        buildUdpFrame({
          srcMac: this.#mac,
          dstMac: mac,
          src,
          dst,
          srcPort: options.fromPort ?? 40000,
          dstPort: options.port,
          payload,
        }),
      );
    } finally {
      deadline.done();
    }
  }

  /** The destination's bytes and this host's address of its family. */
  #route(address: string | Uint8Array): { dst: Uint8Array; src: Uint8Array } {
    if (!this.#link.attached) throw new TapError(TapErrorCode.CLOSED, `host ${this.name} is detached`);
    let dst: Uint8Array | undefined;
    try {
      if (typeof address === 'string')
        dst = address.includes(':') ? parseIPv6Address(address) : parseIPv4Address(address);
      else if (address instanceof Uint8Array) dst = Uint8Array.from(address);
    } catch (error) {
      throw new TapError(TapErrorCode.INVALID_ARGUMENT, `invalid address ${describeValue(address)}`, {
        cause: error,
      });
    }
    const src =
      dst?.length === 4 ? this.#ip4[0] : dst?.length === 16 ? (this.#ip6[1] ?? this.#ip6[0]) : undefined;
    if (dst === undefined || src === undefined) {
      throw new TapError(
        TapErrorCode.INVALID_ARGUMENT,
        `host ${this.name} has no address to reach ${describeValue(address)} from`,
      );
    }
    // A link-local destination is reached from the link-local address.
    return {
      dst,
      src: dst.length === 16 && dst[0] === 0xfe && (dst[1]! & 0xc0) === 0x80 ? this.#ip6[0]! : src,
    };
  }

  /** A timeout (on the link's timers: detaching cancels it) and the caller's signal, as one. */
  #deadline(timeoutMs = 1000, signal: AbortSignal | undefined, what: string): Deadline {
    const controller = new AbortController();
    this.#pending.add(controller);
    const link = this.#link;
    const timer = setTimeout(() => {
      link.timers.delete(timer);
      controller.abort(new DOMException(`${what} timed out after ${timeoutMs} ms`, 'TimeoutError'));
    }, timeoutMs);
    link.timers.add(timer);
    const onAbort = () => controller.abort(signal!.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    return {
      signal: controller.signal,
      what,
      done: () => {
        this.#pending.delete(controller);
        clearTimeout(timer);
        link.timers.delete(timer);
        signal?.removeEventListener('abort', onAbort);
      },
    };
  }

  /** Waits for a received frame `match` gives a value for. */
  #await<T>(deadline: Deadline, match: (frame: Frame) => T | undefined): Promise<T> {
    const { signal, what } = deadline;
    return new Promise<T>((resolve, reject) => {
      const fail = () => {
        this.#waiters.delete(waiter);
        const reason: unknown = signal.reason;
        // The host left the network (a TapError), or the timeout or the caller's signal fired.
        reject(isTapError(reason) ? reason : abortError(what, signal));
      };
      const waiter = (frame: Frame): boolean => {
        const value = match(frame);
        if (value === undefined) return false;
        signal.removeEventListener('abort', fail);
        resolve(value);
        return true;
      };
      if (signal.aborted) return fail();
      signal.addEventListener('abort', fail, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** The MAC of `dst` on the link: asked with ARP or a neighbour solicitation. */
  #resolve(dst: Uint8Array, src: Uint8Array, deadline: Deadline): Promise<Uint8Array> {
    // Sent first: the answer comes through the switch, a tick later at the earliest.
    this.#send(
      dst.length === 4
        ? buildArpRequestFrame({ srcMac: this.#mac, srcIp: src, targetIp: dst })
        : buildNeighborSolicitationFrame({ srcMac: this.#mac, src, target: dst }),
    );
    return this.#await(deadline, (frame) => {
      const eth = parseEthernet(frame);
      if (dst.length === 4) {
        if (eth.etherType !== EtherType.ARP) return undefined;
        const arp = parseArp(eth.payload);
        return arp.op === ArpOp.Reply && equal(arp.senderIp, dst)
          ? Uint8Array.from(arp.senderMac)
          : undefined;
      }
      if (eth.etherType !== EtherType.IPv6) return undefined;
      const ip = parseIPv6(eth.payload);
      const na = ip.nextHeader === IpProtocol.ICMPv6 ? parseNeighborAdvertisement(ip.payload) : undefined;
      return na !== undefined && equal(na.target, dst)
        ? Uint8Array.from(na.targetLinkLayer ?? eth.src)
        : undefined;
    });
  }

  /** Sends a frame the host made itself. */
  #send(frame: Buffer): void {
    if (!this.#link.attached) throw new TapError(TapErrorCode.CLOSED, `host ${this.name} is detached`);
    this.#switch.ingress(this.#link, frame);
  }

  /** Takes the host off the network; pending delayed replies are dropped. Idempotent. */
  detach(): void {
    this.#switch.detach(this.#link);
    this.#abortPending(new TapError(TapErrorCode.CLOSED, `host ${this.name} was detached`));
  }

  #abortPending(error: TapError): void {
    for (const controller of this.#pending) controller.abort(error);
  }

  // ---- the stack ----

  #receive(frames: Buffer[]): void {
    this.#received += frames.length;
    if (this.#logFrames > 0) {
      this.#log.push(...frames);
      if (this.#log.length > this.#logFrames) this.#log = this.#log.slice(-this.#logFrames);
    }
    for (const frame of frames) {
      for (const waiter of this.#waiters) {
        try {
          if (waiter(frame)) this.#waiters.delete(waiter);
        } catch {
          // malformed: not what the waiter waits for
        }
      }
      let reply: Buffer | undefined;
      try {
        reply = this.#answer(frame);
      } catch {
        reply = undefined; // malformed: a real stack drops it silently
      }
      if (reply !== undefined) this.#reply(reply);
    }
  }

  #reply(frame: Buffer): void {
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
  #answer(frame: Frame): Buffer | undefined {
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

  #arp(eth: EthernetFrame): Buffer | undefined {
    const arp = parseArp(eth.payload);
    if (arp.op !== ArpOp.Request || !this.#ip4.some((a) => equal(arp.targetIp, a))) return undefined;
    // Probes (sender 0.0.0.0, RFC 5227) and gratuitous requests (sender = target) announce or
    // test an address; they ask nothing of us.
    if (isZero(arp.senderIp) || equal(arp.senderIp, arp.targetIp)) return undefined;
    this.#arpReplies++;
    return buildArpReplyFrameFor(arp, this.#mac);
  }

  #ipv4(eth: EthernetFrame): Buffer | undefined {
    const ip = parseIPv4(eth.payload);
    if (
      !this.#ip4.some((a) => equal(ip.dst, a)) ||
      !verifyIPv4Checksum(eth.payload) ||
      ip.protocol !== IpProtocol.ICMP
    )
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

  #ipv6(eth: EthernetFrame): Buffer | undefined {
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
  ): Buffer | undefined {
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
