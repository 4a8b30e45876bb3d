import {
  buildArpReplyFrameFor,
  buildIcmpEchoFrame,
  decodeFrame,
  isTapError,
  randomMac,
  TapErrorCode,
  type Frame,
} from '@tapkit/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMockNetwork } from '../src/index.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('virtual hosts start traffic and show what they got', () => {
  it('ping another host over IPv4 and IPv6 (link-local too), reporting the reply', async () => {
    await using net = createMockNetwork({ seed: 7 });
    const a = net.addHost({ ipv4: '10.0.0.1/24', ipv6: 'fd00::1/64' });
    const b = net.addHost({ ipv4: '10.0.0.2/24', ipv6: 'fd00::2/64' });
    const v4 = await a.ping('10.0.0.2');
    expect(v4).toMatchObject({ from: '10.0.0.2', mac: b.mac, sequence: 1, ttl: 64 });
    expect(v4.rttMs).toBeGreaterThanOrEqual(0);
    expect(await a.ping(Uint8Array.of(10, 0, 0, 2))).toMatchObject({ sequence: 2 });
    expect(await a.ping('fd00::2')).toMatchObject({ from: 'fd00::2', mac: b.mac, ttl: 64 });
    expect(await a.ping(b.linkLocal)).toMatchObject({ from: b.linkLocal });
    expect(b.stats()).toMatchObject({ echoReplies: 4, arpReplies: 2, ndpAdvertisements: 2 });
  });

  it("test a device's own responder: the host pings it, and logs what it received", async () => {
    await using net = createMockNetwork();
    const host = net.addHost({ ipv4: '10.0.0.2/24' });
    const dev = await net.open();
    // The code under test: a host at 10.0.0.1 behind the device, at a MAC of its own (dev.mac
    // is the device's OS station); it answers ARP for 10.0.0.1 and echo requests to it.
    const me = randomMac();
    dev.on('frame', (frame: Frame) => {
      const d = decodeFrame(frame);
      if (d.arp?.op === 1) dev.write(buildArpReplyFrameFor(d.arp, me));
      else if (d.icmpEcho?.type === 8 && d.ipv4) {
        dev.write(
          buildIcmpEchoFrame({
            srcMac: me,
            dstMac: d.eth.src,
            src: d.ipv4.dst,
            dst: d.ipv4.src,
            type: 'reply',
            identifier: d.icmpEcho.identifier,
            sequence: d.icmpEcho.sequence,
            data: d.icmpEcho.data,
          }),
        );
      }
    });
    const reply = await host.ping('10.0.0.1', { data: Buffer.from('hello') });
    expect(reply.mac).toEqual(Buffer.from(me));
    const got = host.received({ clear: true });
    expect(got.map((f) => decodeFrame(f).arp?.op ?? decodeFrame(f).icmpEcho?.type)).toEqual([2, 0]);
    expect(Buffer.isBuffer(got[0])).toBe(true);
    expect(host.received()).toEqual([]);
  });

  it('send a UDP datagram to a device, after resolving its MAC', async () => {
    await using net = createMockNetwork();
    const a = net.addHost({ ipv4: '10.0.0.1/24' });
    const b = net.addHost({ ipv4: '10.0.0.2/24' });
    await a.sendUdp({ to: '10.0.0.2', port: 5000, payload: 'hi there' });
    await new Promise((resolve) => setImmediate(resolve));
    const udp = b
      .received()
      .map((f) => decodeFrame(f))
      .find((d) => d.udp);
    expect(udp?.udp?.dstPort).toBe(5000);
    expect(Buffer.from(udp!.udp!.payload).toString()).toBe('hi there');
  });

  it('time out under fake timers with ERR_TAP_ABORTED whose cause is a TimeoutError', async () => {
    vi.useFakeTimers();
    const net = createMockNetwork();
    const host = net.addHost({ ipv4: '10.0.0.2/24' });
    const pinging = host.ping('10.0.0.9', { timeoutMs: 500 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(500);
    const error = await pinging;
    expect(isTapError(error, TapErrorCode.ABORTED)).toBe(true);
    expect((error as Error).cause).toMatchObject({ name: 'TimeoutError' });
    await net.close();
  });

  it('refuse what they cannot do, and end pending pings when they leave the network', async () => {
    await using net = createMockNetwork();
    const v4only = net.addHost({ ipv4: '10.0.0.2/24' });
    const bare = net.addHost();
    await expect(bare.ping('10.0.0.2')).rejects.toMatchObject({ code: TapErrorCode.INVALID_ARGUMENT });
    await expect(v4only.ping('not an address')).rejects.toMatchObject({
      code: TapErrorCode.INVALID_ARGUMENT,
    });
    const pending = v4only.ping('10.0.0.9').catch((e: unknown) => e);
    v4only.detach();
    expect(await pending).toMatchObject({ code: TapErrorCode.CLOSED });
    await expect(v4only.ping('10.0.0.9')).rejects.toMatchObject({ code: TapErrorCode.CLOSED });
  });
});
