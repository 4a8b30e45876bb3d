/**
 * A tiny IP host that speaks only Ethernet through a TapDevice: it resolves neighbours with
 * ARP and neighbour discovery, answers both for its own addresses, answers echo requests and
 * can ping. The tests put it behind the shim, where the OS is its only neighbour.
 */
import {
  ArpOp,
  IcmpType,
  Icmpv6Type,
  buildArpReplyFrameFor,
  buildArpRequestFrame,
  buildIcmpEchoFrame,
  buildNeighborAdvertisementFrame,
  buildNeighborSolicitationFrame,
  decodeFrame,
  isMulticastMac,
  linkLocalFromMac,
  macEquals,
  randomMac,
  type Frame,
  type TapDevice,
} from '@tapkit/core';
import { hex } from './helpers.js';

/** What the host did, for the tests to check. */
export interface HostStats {
  arpRequestsSent: number;
  arpRepliesSeen: number;
  solicitationsSent: number;
  advertisementsSeen: number;
  echoRequestsAnswered: number;
  echoRepliesSeen: number;
  /** Source MACs of the neighbours' answers (ARP replies, advertisements). */
  answeredBy: Set<string>;
}

const RESOLVE_TIMEOUT_MS = 1000;

export class EthernetHost {
  readonly mac: Uint8Array;
  readonly linkLocal: Uint8Array;
  readonly stats: HostStats = {
    arpRequestsSent: 0,
    arpRepliesSeen: 0,
    solicitationsSent: 0,
    advertisementsSeen: 0,
    echoRequestsAnswered: 0,
    echoRepliesSeen: 0,
    answeredBy: new Set(),
  };
  readonly #device: TapDevice;
  readonly #ipv4: Uint8Array | undefined;
  readonly #ipv6: Uint8Array[];
  readonly #neighbours = new Map<string, Uint8Array>();
  readonly #waiting = new Map<string, (() => void)[]>();
  readonly #pings = new Map<number, () => void>();
  /** Targets of neighbour advertisements seen (to judge duplicate address detection). */
  readonly #advertised = new Set<string>();
  readonly #listener = (frame: Frame) => this.#onFrame(frame);

  constructor(device: TapDevice, addresses: { ipv4?: Uint8Array; ipv6?: Uint8Array[] }) {
    this.#device = device;
    this.mac = randomMac(); // its own: device.mac is the OS side's
    this.linkLocal = linkLocalFromMac(this.mac);
    this.#ipv4 = addresses.ipv4;
    this.#ipv6 = [this.linkLocal, ...(addresses.ipv6 ?? [])];
    device.on('frame', this.#listener);
  }

  stop(): void {
    this.#device.off('frame', this.#listener);
  }

  #send(frame: Frame): void {
    if (!this.#device.closed) this.#device.write(frame);
  }

  #ownsIPv6(ip: Uint8Array): boolean {
    return this.#ipv6.some((a) => hex(a) === hex(ip));
  }

  #learn(ip: Uint8Array, mac: Uint8Array): void {
    const key = hex(ip);
    this.#neighbours.set(key, Uint8Array.from(mac));
    for (const wake of this.#waiting.get(key) ?? []) wake();
    this.#waiting.delete(key);
  }

  /** The MAC of `ip`, from the cache or by asking (ARP or a neighbour solicitation). */
  async resolve(ip: Uint8Array): Promise<Uint8Array> {
    const key = hex(ip);
    for (let attempt = 0; attempt < 3; attempt++) {
      const known = this.#neighbours.get(key);
      if (known) return known;
      const answered = new Promise<void>((resolve) => {
        const list = this.#waiting.get(key) ?? [];
        list.push(resolve);
        this.#waiting.set(key, list);
      });
      if (ip.length === 4) {
        this.stats.arpRequestsSent++;
        this.#send(buildArpRequestFrame({ srcMac: this.mac, srcIp: this.#ipv4!, targetIp: ip }));
      } else {
        this.stats.solicitationsSent++;
        const src = ip[0] === 0xfe ? this.linkLocal : (this.#ipv6[1] ?? this.linkLocal);
        this.#send(buildNeighborSolicitationFrame({ srcMac: this.mac, src, target: ip }));
      }
      await Promise.race([answered, new Promise((r) => setTimeout(r, RESOLVE_TIMEOUT_MS))]);
    }
    const known = this.#neighbours.get(key);
    if (known) return known;
    throw new Error(`no neighbour answered for ${key}`);
  }

  /**
   * Duplicate address detection for `ip` (RFC 4862): a solicitation from `::`, then silence
   * for `waitMs` means the address is ours to use. Returns true when it is unique.
   */
  async detectDuplicate(ip: Uint8Array, waitMs = 300): Promise<boolean> {
    this.#advertised.delete(hex(ip));
    this.#send(buildNeighborSolicitationFrame({ srcMac: this.mac, src: new Uint8Array(16), target: ip }));
    await new Promise((r) => setTimeout(r, waitMs));
    return !this.#advertised.has(hex(ip));
  }

  /** Sends an echo request to `ip` from `from` and waits for the reply. */
  async ping(ip: Uint8Array, from: Uint8Array, sequence: number, timeoutMs = 2000): Promise<void> {
    const mac = await this.resolve(ip);
    const replied = new Promise<void>((resolve) => this.#pings.set(sequence, resolve));
    this.#send(
      buildIcmpEchoFrame({
        srcMac: this.mac,
        dstMac: mac,
        src: from,
        dst: ip,
        type: 'request',
        identifier: 0x7a7a,
        sequence,
        data: new TextEncoder().encode(`tapkit ping ${sequence}`),
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        replied,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no echo reply ${sequence}`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  #onFrame(frame: Frame): void {
    const d = decodeFrame(frame);
    if (d.eth === undefined) return;
    if (!macEquals(d.eth.dst, this.mac) && !isMulticastMac(d.eth.dst)) return;
    if (d.arp) {
      const { arp } = d;
      if (arp.op === ArpOp.Reply) {
        this.stats.arpRepliesSeen++;
        this.stats.answeredBy.add(hex(d.eth.src));
        this.#learn(arp.senderIp, arp.senderMac);
      } else if (arp.op === ArpOp.Request && this.#ipv4 && hex(arp.targetIp) === hex(this.#ipv4)) {
        this.#learn(arp.senderIp, arp.senderMac);
        this.#send(buildArpReplyFrameFor(arp, this.mac));
      }
      return;
    }
    if (d.neighborAdvertisement && d.ipv6) {
      const na = d.neighborAdvertisement;
      this.stats.advertisementsSeen++;
      this.stats.answeredBy.add(hex(d.eth.src));
      this.#advertised.add(hex(na.target));
      // RFC 4861 §7.2.5: an unsolicited advertisement creates no cache entry.
      if (na.solicited && na.targetLinkLayer) this.#learn(na.target, na.targetLinkLayer);
      return;
    }
    if (d.neighborSolicitation && d.ipv6) {
      const ns = d.neighborSolicitation;
      if (!this.#ownsIPv6(ns.target) || d.ipv6.src.every((b) => b === 0)) return;
      if (ns.sourceLinkLayer) this.#learn(d.ipv6.src, ns.sourceLinkLayer);
      this.#send(
        buildNeighborAdvertisementFrame({
          srcMac: this.mac,
          src: ns.target,
          dst: d.ipv6.src,
          dstMac: ns.sourceLinkLayer ?? d.eth.src,
          target: ns.target,
          solicited: true,
          override: true,
        }),
      );
      return;
    }
    const echo = d.icmpEcho ?? d.icmpv6Echo;
    const ip = d.ipv4 ?? d.ipv6;
    if (!echo || !ip) return;
    const request = d.ipv4 ? IcmpType.EchoRequest : Icmpv6Type.EchoRequest;
    const reply = d.ipv4 ? IcmpType.EchoReply : Icmpv6Type.EchoReply;
    if (echo.type === reply) {
      this.stats.echoRepliesSeen++;
      this.#pings.get(echo.sequence)?.();
      this.#pings.delete(echo.sequence);
      return;
    }
    const mine = d.ipv4 ? this.#ipv4 && hex(ip.dst) === hex(this.#ipv4) : this.#ownsIPv6(ip.dst);
    if (echo.type !== request || !mine) return;
    // Copies: the frame's memory is the device's, and the answer waits for resolution.
    const src = Uint8Array.from(ip.dst);
    const dst = Uint8Array.from(ip.src);
    const data = Uint8Array.from(echo.data);
    const { identifier, sequence } = echo;
    this.resolve(dst).then(
      (mac) => {
        this.stats.echoRequestsAnswered++;
        this.#send(
          buildIcmpEchoFrame({
            srcMac: this.mac,
            dstMac: mac,
            src,
            dst,
            type: 'reply',
            identifier,
            sequence,
            data,
          }),
        );
      },
      () => undefined, // unresolved: the OS sees a lost reply, which the test reports
    );
  }
}
