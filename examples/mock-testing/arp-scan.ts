/**
 * Example: network code you want to test in CI — an ARP scan that finds which addresses of a
 * /24 answer on a TapDevice. It only speaks Ethernet frames, so it runs unchanged on a real
 * device (linux-tap, darwin-feth) and on @tapkit/mock. See arp-scan.test.ts for the tests.
 */
import {
  ArpOp,
  buildArpReplyFrameFor,
  buildArpRequestFrame,
  decodeFrame,
  formatIPv4Address,
  formatMac,
  parseIPv4Address,
  randomMac,
  type TapDevice,
} from '@tapkit/core';

export interface ScanOptions {
  /** Our own address on the link, e.g. `10.0.0.1`. */
  readonly self: string;
  /** Our own MAC (device.mac is the OS station's). Default: a random one. */
  readonly mac?: Uint8Array;
  /** The last octets to probe in our /24, e.g. 1–254. */
  readonly hosts: Iterable<number>;
  /** How long to wait for answers after the last request, ms. */
  readonly waitMs?: number;
}

/** Sends one ARP request per address and returns who answered: IP → MAC. */
export async function arpScan(device: TapDevice, options: ScanOptions): Promise<Map<string, string>> {
  const self = parseIPv4Address(options.self);
  const mac = options.mac ?? randomMac();
  const found = new Map<string, string>();
  const controller = new AbortController();
  const listening = (async () => {
    try {
      for await (const frame of device.frames({ signal: controller.signal })) {
        const { arp } = decodeFrame(frame);
        if (arp?.op === ArpOp.Reply && Buffer.compare(arp.targetIp, self) === 0) {
          found.set(formatIPv4Address(arp.senderIp), formatMac(arp.senderMac));
        } else if (arp?.op === ArpOp.Request && Buffer.compare(arp.targetIp, self) === 0) {
          device.write(buildArpReplyFrameFor(arp, mac)); // be a good neighbour
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    }
  })();
  for (const octet of options.hosts) {
    const target = Uint8Array.from(self);
    target[3] = octet;
    const request = buildArpRequestFrame({ srcMac: mac, srcIp: self, targetIp: target });
    if (!device.write(request)) await device.drain();
  }
  await new Promise((resolve) => setTimeout(resolve, options.waitMs ?? 100));
  controller.abort();
  await listening;
  return found;
}
