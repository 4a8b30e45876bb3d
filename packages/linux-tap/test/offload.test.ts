/**
 * Offload mode on the real kernel: frames are a virtio-net header then the Ethernet frame, and
 * TCP crosses a relay as TSO/GSO super-frames far longer than the MTU, passed on unchanged.
 * Needs root (see itPrivileged).
 */
import { readFileSync } from 'node:fs';
import { TapErrorCode, buildUdpFrame, parseIPv4Address, type Frame, type TapDevice, type TapError } from '@tapkit/core';
import { describe, expect } from 'vitest';
import {
  OFFLOAD_MAX_FRAME_LENGTH,
  VNET_HEADER_LENGTH,
  VnetGso,
  linuxTap,
  parseVnetHeader,
  vnetPayload,
  withVnetHeader,
  type LinuxTapOptions,
} from '../src/index.js';
import {
  createNetns,
  expectTapError,
  fetchThroughRelay,
  itPrivileged,
  moveInto,
  onCleanup,
  run,
  tsoEnabled,
  uniqueName,
  useCleanup,
} from './helpers.js';
import { relay } from './responder.js';

useCleanup();

const IFF_VNET_HDR = 0x4000;

async function open(options: LinuxTapOptions = {}): Promise<TapDevice> {
  const device = await linuxTap.open({ name: uniqueName(), offload: true, ...options });
  onCleanup(() => device.close());
  return device;
}

describe('linux-tap: offload mode', () => {
  itPrivileged('opens with IFF_VNET_HDR and TSO on, and checks frames as header + Ethernet', async () => {
    const ns = await createNetns();
    const dev = await open({ up: false });
    expect(dev.capabilities.offload).toBe(true);
    expect(Number(readFileSync(`/sys/class/net/${dev.name}/tun_flags`, 'utf8')) & IFF_VNET_HDR).toBe(
      IFF_VNET_HDR,
    );
    expect(await tsoEnabled(dev.name)).toBe(true);
    // Sizes: up to a 64 KiB super-frame with its header; at least a header and an Ethernet header.
    const plain = (length: number): Frame => withVnetHeader(new Uint8Array(length).fill(0xff, 0, 12));
    expect(dev.write(plain(OFFLOAD_MAX_FRAME_LENGTH - VNET_HEADER_LENGTH))).toBe(true); // down: dropped
    await expectTapError(
      () => dev.write(plain(OFFLOAD_MAX_FRAME_LENGTH - VNET_HEADER_LENGTH + 1)),
      TapErrorCode.FRAME_TOO_LARGE,
    );
    await expectTapError(
      () => dev.write(new Uint8Array(VNET_HEADER_LENGTH + 13)),
      TapErrorCode.FRAME_TOO_SHORT,
    );
    await expectTapError(() => dev.writeBatch([plain(60), new Uint8Array(20)]), TapErrorCode.FRAME_TOO_SHORT);
    // Refused for the frame itself: thrown, not also counted as a drop (as in plain mode).
    expect(dev.stats().drops.txError).toBeUndefined();
    // Up in a namespace, the kernel reads the header: one it cannot use is refused, and the
    // device goes on.
    await moveInto(ns, dev.name, '10.200.9.1/24');
    const udp = buildUdpFrame({
      srcMac: '02:00:00:00:09:02',
      dstMac: dev.mac,
      src: parseIPv4Address('10.200.9.2'),
      dst: parseIPv4Address('10.200.9.1'),
      srcPort: 9,
      dstPort: 9,
      payload: new Uint8Array(100),
    });
    const bad = await expectTapError(
      () => dev.writeBatch([withVnetHeader(udp, { gsoType: 0x7f })]),
      TapErrorCode.INVALID_ARGUMENT,
    );
    expect(bad.message).toContain('virtio-net header');
    // write() sends at the end of the turn: the kernel's refusal then is counted and emitted,
    // and the frames written after it still go.
    const errors: TapError[] = [];
    dev.on('error', (e) => errors.push(e));
    const before = dev.stats().txFrames;
    expect(dev.write(withVnetHeader(udp, { gsoType: 0x7f }))).toBe(true);
    expect(dev.write(withVnetHeader(udp))).toBe(true);
    expect(dev.stats()).toMatchObject({ txFrames: before + 1, drops: { txError: 1 } });
    expect(errors).toEqual([expect.objectContaining({ code: TapErrorCode.INVALID_ARGUMENT })]);
    expect(dev.closed).toBe(false);
  });

  itPrivileged(
    'pipes TCP super-frames between two offload devices in native code',
    async () => {
      const [nsA, nsB] = [await createNetns(), await createNetns()];
      const [a, b] = [await open(), await open()];
      const piping = Promise.all([a.pipeTo(b), b.pipeTo(a)]);
      await moveInto(nsA, a.name, '10.200.10.1/24');
      await moveInto(nsB, b.name, '10.200.10.2/24');
      const bytes = await fetchThroughRelay(nsA, nsB, 5003, ['http://10.200.10.2:5003/in'], 'offload pipe');
      // Far fewer frames than MTU-sized ones would take: super-frames went through whole.
      const frames = a.stats().txFrames;
      expect(a.stats().rxBytes + b.stats().rxBytes).toBeGreaterThan(bytes);
      expect(frames).toBeLessThan(bytes / a.mtu);
      await a.close();
      await piping;
    },
    60_000,
  );

  itPrivileged(
    'relays TCP (IPv4 and IPv6) between two namespaces as super-frames, headers and all',
    async () => {
      const [nsA, nsB] = [await createNetns(), await createNetns()];
      const [a, b] = [await open(), await open()];
      const seen = { frames: 0, longest: 0, gso: new Set<number>() };
      // Frames go from one device to the other exactly as read: header, super-frame and all.
      relay(a, b, (batch) => {
        for (const frame of batch) {
          seen.frames++;
          seen.longest = Math.max(seen.longest, frame.length);
          seen.gso.add(parseVnetHeader(frame).gsoType & ~VnetGso.Ecn);
        }
      });
      await moveInto(nsA, a.name, '10.200.8.1/24', 'fd00:208::1/64');
      await moveInto(nsB, b.name, '10.200.8.2/24', 'fd00:208::2/64');
      const bytes = await fetchThroughRelay(
        nsA,
        nsB,
        5002,
        ['http://10.200.8.2:5002/in', 'http://[fd00:208::2]:5002/in'],
        'offload relay',
      );
      // Super-frames: far longer than an MTU-sized frame, cut by the receiving kernel.
      expect(seen.longest).toBeGreaterThan(VNET_HEADER_LENGTH + a.mtu + 14);
      expect([...seen.gso]).toEqual(expect.arrayContaining([VnetGso.TcpV4, VnetGso.TcpV6]));
      expect(seen.frames).toBeLessThan((2 * bytes) / a.mtu);
      console.log(`offload relay: ${seen.frames} frames, the longest ${seen.longest} bytes`);
    },
    90_000,
  );

  itPrivileged(
    'pipes a plain device into an offload one (a zero header added); refuses the other way',
    async () => {
      const [nsA, nsB] = [await createNetns(), await createNetns()];
      const a = await linuxTap.open({ name: uniqueName() });
      onCleanup(() => a.close());
      const b = await open();
      const refused = await expectTapError(() => b.pipeTo(a), TapErrorCode.INVALID_ARGUMENT);
      expect(refused.message).toMatch(/offload mode/);
      // a → b by the pipe (header added); b → a by hand, without the header (ARP and ping are never
      // super-frames, and carry their checksums whole).
      const piping = a.pipeTo(b);
      b.on('frame', (frame: Frame) => a.write(vnetPayload(frame)));
      await moveInto(nsA, a.name, '10.200.11.1/24');
      await moveInto(nsB, b.name, '10.200.11.2/24');
      const out = await run('ip', [
        'netns',
        'exec',
        nsA.name,
        'ping',
        '-c',
        '3',
        '-i',
        '0.2',
        '-W',
        '2',
        '10.200.11.2',
      ]);
      expect(out).toMatch(/3 received/);
      expect(b.stats().txFrames).toBeGreaterThanOrEqual(4); // ARP and 3 echo requests, through the pipe
      await a.close();
      await piping;
    },
  );
});
