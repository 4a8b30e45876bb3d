/**
 * What a host behind a device does, written with core's codecs: answers ARP and ICMP echo for
 * an IPv4 address, neighbour solicitations and ICMPv6 echo for an IPv6 one. And a relay between
 * two devices. No vitest here: fixtures (child processes) use it too.
 */
import {
  ArpOp,
  TapErrorCode,
  buildArpReplyFrameFor,
  buildIcmpEchoFrame,
  buildNeighborAdvertisementFrame,
  decodeFrame,
  isTapError,
  type Frame,
  type TapDevice,
} from '@tapkit/core';

export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** What {@link answer} saw. */
export interface Answered {
  pings: number;
  solicitations: number;
}

/** Answers ARP / neighbour solicitations and echo requests for `address` (4 or 16 bytes) on the device. */
export function answer(device: TapDevice, address: Uint8Array): Answered {
  const seen: Answered = { pings: 0, solicitations: 0 };
  const mac = device.mac;
  device.on('frame', (frame: Frame) => {
    const d = decodeFrame(frame);
    if (d.eth === undefined) return;
    const ip = d.ipv4 ?? d.ipv6;
    const echo = d.icmpEcho ?? d.icmpv6Echo;
    if (d.arp?.op === ArpOp.Request && sameBytes(d.arp.targetIp, address)) {
      device.write(buildArpReplyFrameFor(d.arp, mac));
    } else if (d.ipv6 && d.neighborSolicitation && sameBytes(d.neighborSolicitation.target, address)) {
      seen.solicitations++;
      device.write(
        buildNeighborAdvertisementFrame({
          srcMac: mac,
          dstMac: d.eth.src,
          src: address,
          dst: d.ipv6.src,
          target: address,
          solicited: true,
          override: true,
        }),
      );
    } else if (ip && echo && (echo.type === 8 || echo.type === 128) && sameBytes(ip.dst, address)) {
      seen.pings++;
      device.write(
        buildIcmpEchoFrame({
          srcMac: mac,
          dstMac: d.eth.src,
          src: address,
          dst: ip.src,
          type: 'reply',
          identifier: echo.identifier,
          sequence: echo.sequence,
          data: echo.data,
        }),
      );
    }
  });
  return seen;
}

/**
 * Relays frames both ways between two devices, batch by batch and unchanged, honouring
 * backpressure; `observe` sees every batch first.
 */
export function relay(a: TapDevice, b: TapDevice, observe?: (batch: readonly Frame[]) => void): void {
  const pump = async (from: TapDevice, to: TapDevice): Promise<void> => {
    try {
      for await (const batch of from.batches()) {
        if (to.closed) return;
        observe?.(batch);
        if (!to.writeBatch(batch)) await to.drain();
      }
    } catch (error) {
      if (!isTapError(error, TapErrorCode.CLOSED)) throw error;
    }
  };
  void pump(a, b);
  void pump(b, a);
}

/** How a user joins two devices both ways: through JavaScript, or with pipeTo() (native code where both ports can). */
export const JOINS: Readonly<Record<string, (a: TapDevice, b: TapDevice) => void>> = {
  'a loop of batches() and writeBatch()': (a, b) => relay(a, b),
  'pipeTo() both ways, in native code': (a, b) => {
    void a.pipeTo(b);
    void b.pipeTo(a);
  },
};
