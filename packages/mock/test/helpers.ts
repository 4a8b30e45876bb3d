/** Small helpers shared by the mock's tests. */
import { formatMac, type Frame, type TapDevice } from '@tapkit/core';

/** A frame of `size` bytes from `src` to `dst` (MACs as bytes or strings), EtherType 0x88b5 (local experimental), tagged with `seq`. */
export function rawFrame(dst: Uint8Array | string, src: Uint8Array | string, seq = 0, size = 64): Uint8Array {
  const f = new Uint8Array(size);
  f.set(typeof dst === 'string' ? macBytes(dst) : dst, 0);
  f.set(typeof src === 'string' ? macBytes(src) : src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  new DataView(f.buffer).setUint32(14, seq);
  return f;
}

export function seqOf(frame: Frame): number {
  return new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(14);
}

export function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export const BROADCAST = 'ff:ff:ff:ff:ff:ff';

/** Lets the switch run a few ticks (each tick is one setImmediate). */
export async function settle(ticks = 4): Promise<void> {
  for (let i = 0; i < ticks; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Every frame the device has received by now (after letting the switch settle), without waiting for more. */
export async function received(device: TapDevice, ticks = 4): Promise<Frame[]> {
  await settle(ticks);
  const out: Frame[] = [];
  for (;;) {
    const controller = new AbortController();
    const pending = device.readBatch(undefined, { signal: controller.signal });
    controller.abort(); // queued frames were taken synchronously; otherwise the read ends here
    try {
      out.push(...(await pending));
    } catch {
      return out;
    }
  }
}

/**
 * The MAC a test's program uses on a device's link: its own, as `device.mac` is the device's
 * OS station (which answers on the network). Derived from it, so fixed per device.
 */
export function me(device: TapDevice): Uint8Array {
  const mac = Uint8Array.from(device.mac);
  mac[5] = mac[5]! ^ 0xa5;
  return mac;
}

export function macOf(device: TapDevice): string {
  return formatMac(device.mac);
}
