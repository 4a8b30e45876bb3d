/**
 * The demo behind `npm run demo` / `tapkit demo`: open a device, find a peer's MAC with ARP,
 * ping it, print each reply with its round-trip time and the device's stats, and record the
 * exchange in a pcap file. The peer is the device's OS station (`device.mac`), which owns the
 * peer address: the operating system's stack on a real backend, the mock's station on the mock.
 * The same code runs on every backend.
 *
 * @module
 */
import {
  ArpOp,
  IcmpType,
  buildArpReplyFrameFor,
  buildArpRequestFrame,
  buildIcmpEchoFrame,
  createPcapFile,
  decodeFrame,
  formatMac,
  openTap,
  parseIPv4Address,
  randomMac,
  type Frame,
} from '@tapkit/core';

/** What the demo is asked to do. */
export interface DemoOptions {
  /** Backend name. Default `mock`. */
  readonly backend?: string;
  /** Echo requests to send. Default 4. */
  readonly count?: number;
  /** Pause between requests, ms. Default 200. */
  readonly intervalMs?: number;
  /** Where the pcap goes. Default `tapkit-demo.pcap` in the working directory. */
  readonly pcapPath?: string;
  /** How long to wait for each answer, ms. Default 2000. */
  readonly timeoutMs?: number;
  /** Where lines go. Default console.log. */
  readonly print?: (line: string) => void;
}

/** What the demo saw. */
export interface DemoResult {
  readonly backend: string;
  readonly device: string;
  readonly peerMac: string;
  /** Round-trip times in ms of the replies, in order; lost requests are absent. */
  readonly rttMs: readonly number[];
  readonly sent: number;
  readonly pcapPath: string;
  readonly pcapPackets: number;
}

// The device side (this program) and the peer, on a /24 used only on this device's link.
const SELF_IP = '10.77.0.1';
const PEER_IP = '10.77.0.2';

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

/** Runs the demo; resolves with what it saw, rejects with a TapError when the device cannot open. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const backendName = options.backend ?? 'mock';
  const count = options.count ?? 4;
  const intervalMs = options.intervalMs ?? 200;
  const timeoutMs = options.timeoutMs ?? 2000;
  const pcapPath = options.pcapPath ?? 'tapkit-demo.pcap';
  const print = options.print ?? ((line: string) => console.log(line));
  const selfIp = parseIPv4Address(SELF_IP);
  const peerIp = parseIPv4Address(PEER_IP);

  // The device's OS station owns the peer address, so it answers our ARP and pings.
  const device = await openTap({ backend: backendName, name: 'tapkit-demo', addresses: [`${PEER_IP}/24`] });
  const pcap = await createPcapFile(pcapPath);
  // Our own station on the link: device.mac is the OS's side of it, on every backend.
  const mac = randomMac();
  const record = (frame: Frame) => pcap.writePacket(frame);
  const send = (frame: Frame) => {
    record(frame);
    if (!device.write(frame)) return device.drain();
    return undefined;
  };

  /** Reads frames, answering ARP for our own address, until `match` accepts one or time runs out. */
  async function receive<T>(match: (frame: Frame) => T | undefined): Promise<T | undefined> {
    // A timer of our own, to tell a timeout from the device's own errors.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      for (;;) {
        const frame = await device.read({ signal: controller.signal });
        record(frame);
        const d = decodeFrame(frame);
        if (d.arp?.op === ArpOp.Request && sameBytes(d.arp.targetIp, selfIp)) {
          await send(buildArpReplyFrameFor(d.arp, mac));
          continue;
        }
        const hit = match(frame);
        if (hit !== undefined) return hit;
      }
    } catch (error) {
      if (controller.signal.aborted) return undefined;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  try {
    print(
      `tapkit demo: ${device.backend} device ${device.name} (MAC ${formatMac(device.mac)}, MTU ${device.mtu}); ` +
        `this program is ${SELF_IP} at ${formatMac(mac)}`,
    );
    print(`ARP: who has ${PEER_IP}? tell ${SELF_IP}`);
    await send(buildArpRequestFrame({ srcMac: mac, srcIp: selfIp, targetIp: peerIp }));
    const peerMac = await receive((frame) => {
      const { arp } = decodeFrame(frame);
      return arp?.op === ArpOp.Reply && sameBytes(arp.senderIp, peerIp)
        ? Uint8Array.from(arp.senderMac)
        : undefined;
    });
    if (!peerMac) throw new Error(`no ARP reply from ${PEER_IP} within ${timeoutMs} ms`);
    print(`ARP: ${PEER_IP} is at ${formatMac(peerMac)}`);

    const identifier = process.pid & 0xffff;
    const data = new Uint8Array(56).map((_, i) => i);
    const rttMs: number[] = [];
    print(`PING ${PEER_IP} from ${SELF_IP}: ${data.length} data bytes`);
    for (let sequence = 1; sequence <= count; sequence++) {
      const started = performance.now();
      await send(
        buildIcmpEchoFrame({
          srcMac: mac,
          dstMac: peerMac,
          src: selfIp,
          dst: peerIp,
          type: 'request',
          identifier,
          sequence,
          data,
        }),
      );
      const reply = await receive((frame) => {
        const d = decodeFrame(frame);
        const echo = d.icmpEcho;
        return echo?.type === IcmpType.EchoReply &&
          echo.identifier === identifier &&
          echo.sequence === sequence
          ? d
          : undefined;
      });
      if (reply?.ipv4) {
        const rtt = performance.now() - started;
        rttMs.push(rtt);
        print(
          `${reply.ipv4.payload.length + 20} bytes from ${PEER_IP}: icmp_seq=${sequence} ttl=${reply.ipv4.ttl} time=${rtt.toFixed(3)} ms`,
        );
      } else {
        print(`no reply to icmp_seq=${sequence} within ${timeoutMs} ms`);
      }
      if (sequence < count) await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }

    const loss = ((count - rttMs.length) / count) * 100;
    print(
      `--- ${PEER_IP} ping statistics: ${count} transmitted, ${rttMs.length} received, ${loss.toFixed(0)}% loss`,
    );
    const stats = device.stats();
    print(
      `device stats: rx ${stats.rxFrames} frames / ${stats.rxBytes} bytes, tx ${stats.txFrames} frames / ${stats.txBytes} bytes, drops ${JSON.stringify(stats.drops)}`,
    );
    return {
      backend: device.backend,
      device: device.name,
      peerMac: formatMac(peerMac),
      rttMs,
      sent: count,
      pcapPath,
      pcapPackets: pcap.packetCount,
    };
  } finally {
    await device.close();
    await pcap.close();
    print(`pcap: ${pcap.packetCount} packets written to ${pcapPath} (open with wireshark or tshark -r)`);
  }
}
