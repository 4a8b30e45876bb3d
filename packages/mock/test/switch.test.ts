import { describe, expect, it } from 'vitest';
import { formatMac, isTapError, openTap, TapErrorCode, type TapDevice } from '@tapkit/core';
import { backend, createMockNetwork } from '../src/index.js';
import { BROADCAST, macOf, me, rawFrame, received, seqOf, settle } from './helpers.js';

function expectCode(action: () => unknown, code: string): void {
  let error: unknown;
  try {
    action();
  } catch (e) {
    error = e;
  }
  expect(isTapError(error), String(error)).toBe(true);
  expect((error as { code: string }).code).toBe(code);
}

describe('learning switch', () => {
  it('floods unknown unicast, then forwards to the learned port only', async () => {
    await using net = createMockNetwork();
    const [a, b, c] = [await net.open(), await net.open(), await net.open()];
    expect([a.name, b.name, c.name]).toEqual(['mock0', 'mock1', 'mock2']);

    a.write(rawFrame(me(b), me(a), 1)); // b unknown yet: flooded to b and c
    expect((await received(b)).map(seqOf)).toEqual([1]);
    expect((await received(c)).map(seqOf)).toEqual([1]);

    b.write(rawFrame(me(a), me(b), 2)); // a was learned from frame 1: a only
    a.write(rawFrame(me(b), me(a), 3)); // b learned from frame 2: b only
    expect((await received(a)).map(seqOf)).toEqual([2]);
    expect((await received(b)).map(seqOf)).toEqual([3]);
    expect(await received(c)).toEqual([]);

    expect(net.fdb()).toEqual([
      { mac: formatMac(me(a)), port: 'mock0' },
      { mac: formatMac(me(b)), port: 'mock1' },
    ]);
    // Frame 1 also reached the three devices' OS stations (ports of their own; see ports()).
    expect(net.stats()).toMatchObject({ frames: 3, flooded: 1, forwarded: 2, delivered: 2 + 2 + 3 });
  });

  it('floods broadcast and multicast to every port but the sender, each with its own copy', async () => {
    await using net = createMockNetwork();
    const [a, b, c] = [await net.open(), await net.open(), await net.open()];
    a.write(rawFrame(me(b), me(a), 0));
    b.write(rawFrame(me(a), me(b), 0)); // both learned
    await received(a);
    await received(b);
    await received(c);

    const sent = rawFrame(BROADCAST, me(a), 7, 200);
    a.write(sent);
    sent.fill(0); // the caller may reuse its buffer at once
    b.write(rawFrame('01:00:5e:00:00:fb', me(b), 8, 200));
    const [atA, atB, atC] = [await received(a), await received(b), await received(c)];
    expect(atA.map(seqOf)).toEqual([8]);
    expect(atB.map(seqOf)).toEqual([7]);
    expect(atC.map(seqOf)).toEqual([7, 8]);
    atB[0]!.fill(0xee); // receivers may mutate what they got…
    expect(seqOf(atC[0]!)).toBe(7); // …without touching another receiver's copy
  });

  it('never sends a frame back to the port it came from', async () => {
    await using net = createMockNetwork();
    const [a, b] = [await net.open(), await net.open()];
    a.write(rawFrame(BROADCAST, me(a), 1));
    a.write(rawFrame('02:00:00:00:00:99', me(a), 2)); // unknown: flooded, not back to a
    await settle();
    // A second station behind port a (say a bridge there) is learned on a: frames between the
    // two stations stay on their segment.
    a.write(rawFrame(me(a), '02:00:00:00:00:99', 3));
    a.write(rawFrame('02:00:00:00:00:99', me(a), 4));
    expect(await received(a)).toEqual([]);
    expect((await received(b)).map(seqOf)).toEqual([1, 2]);
    expect(net.stats().drops).toEqual({ filtered: 2 });
  });

  it('re-learns a station that moves, and forgets ports that close', async () => {
    await using net = createMockNetwork();
    const [a, b, c] = [await net.open(), await net.open(), await net.open()];
    const roaming = '02:00:00:00:00:42';
    a.write(rawFrame(BROADCAST, roaming, 1));
    await settle();
    expect(net.fdb()).toEqual([{ mac: roaming, port: a.name }]);
    b.write(rawFrame(BROADCAST, roaming, 2));
    await settle();
    expect(net.fdb()).toEqual([{ mac: roaming, port: b.name }]);
    await b.close();
    expect(net.fdb()).toEqual([]);
    c.write(rawFrame(roaming, me(c), 3)); // unknown again: flooded
    expect((await received(a)).map(seqOf)).toEqual([2, 3]);
  });

  it('drops frames larger than the egress port allows, per port, and counts them', async () => {
    await using net = createMockNetwork();
    const big = await net.open({ mtu: 9000 });
    const small = await net.open({ mtu: 1280 });
    const std = await net.open();
    big.write(rawFrame(BROADCAST, me(big), 1, 1294)); // 1280 + 14: fits everywhere
    big.write(rawFrame(BROADCAST, me(big), 2, 1295)); // too big for small
    big.write(rawFrame(BROADCAST, me(big), 3, 1514));
    big.write(rawFrame(BROADCAST, me(big), 4, 1515)); // too big for both
    const tagged = rawFrame(BROADCAST, me(big), 0, 1518);
    tagged.set([0x81, 0x00, 0x00, 0x05, 0x88, 0xb5], 12); // 802.1Q: 4 more bytes allowed
    big.write(tagged);
    expect((await received(small)).map((f) => f.length)).toEqual([1294]);
    expect((await received(std)).map((f) => f.length)).toEqual([1294, 1295, 1514, 1518]);
    // Each device's OS station has its device's MTU: twice the drops.
    expect(net.stats().drops).toEqual({ mtuExceeded: 2 * 5 });
  });

  it('write() returns false past the high-water mark and drain() resolves once flushed', async () => {
    await using net = createMockNetwork({ txHighWater: 8 });
    const [a, b] = [await net.open(), await net.open()];
    // Frames written in one turn go to the port together at its end: its answer comes then.
    const results = Array.from({ length: 10 }, (_, i) => a.write(rawFrame(me(b), me(a), i)));
    expect(results).toEqual(Array(10).fill(true));
    await new Promise((resolve) => process.nextTick(resolve));
    expect(a.writeBatch([rawFrame(me(b), me(a), 10)])).toBe(false);
    let drained = false;
    await a.drain().then(() => (drained = true));
    expect(drained).toBe(true);
    expect(a.write(rawFrame(me(b), me(a), 11))).toBe(true);
    expect((await received(b)).map(seqOf)).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });

  it('holds frames for a paused receiver in a bounded backlog, counts drops, and flushes it on resume', async () => {
    await using net = createMockNetwork({ backlogFrames: 100 });
    const a = await net.open();
    const b = await net.open({ rxQueueFrames: 16 });
    a.write(rawFrame(BROADCAST, me(a), 0)); // teaches the switch where a is
    expect((await received(b)).map(seqOf)).toEqual([0]);
    let seq = 1;
    // 16 fill b's queue (the engine pauses the port), 100 wait in the backlog, 34 are dropped.
    for (let i = 0; i < 150; i++) {
      if (!a.write(rawFrame(me(b), me(a), seq++))) await a.drain();
    }
    await settle();
    expect(net.ports().find((p) => p.name === b.name)).toMatchObject({ paused: true, backlog: 100 });
    expect(net.stats().drops).toEqual({ backlogFull: 34 });
    expect(b.stats().drops).toEqual({ backlogFull: 34 }); // the device hears about it too
    const got: number[] = [];
    while (got.length < 116) for (const f of await b.readBatch()) got.push(seqOf(f));
    // Order is kept and nothing held was lost on the way back.
    expect(got).toEqual(Array.from({ length: 116 }, (_, i) => i + 1));
    expect(b.stats().drops).toEqual({ backlogFull: 34 });
    expect(net.ports().find((p) => p.name === b.name)).toMatchObject({ paused: false, backlog: 0 });
  });

  it('names ports mock0, mock1… reusing freed names, and refuses a name in use', async () => {
    await using net = createMockNetwork();
    const a = await net.open();
    const b = await net.open({ name: 'tap7' });
    const host = net.addHost({ name: 'router' });
    await expect(net.open({ name: 'tap7' })).rejects.toMatchObject({ code: TapErrorCode.NAME_IN_USE });
    expect(() => net.addHost({ name: 'mock0' })).toThrow(
      expect.objectContaining({ code: TapErrorCode.NAME_IN_USE }),
    );
    await a.close();
    const c = await net.open();
    expect([b.name, c.name, host.name]).toEqual(['tap7', 'mock0', 'router']);
    expect(net.ports().map((p) => [p.name, p.kind])).toEqual([
      ['tap7', 'device'],
      ['tap7:os', 'station'],
      ['router', 'host'],
      ['mock0', 'device'],
      ['mock0:os', 'station'],
    ]);
  });

  it('reports the mock capabilities, MAC and MTU', async () => {
    await using net = createMockNetwork();
    const dev = await net.open({ mac: '02:aa:bb:cc:dd:ee', mtu: 9000 });
    expect(dev.backend).toBe('mock');
    expect(macOf(dev)).toBe('02:aa:bb:cc:dd:ee');
    expect(dev.mtu).toBe(9000);
    expect(dev.capabilities).toEqual({
      layer: 2,
      minMtu: 68,
      maxMtu: 65535,
      multiQueue: false,
      offload: false,
      multicastGroups: false,
      osInterface: false,
    });
    expect(await backend.probe()).toEqual({ available: true });
  });

  it('refuses bad options and arguments with TapErrors', async () => {
    await using net = createMockNetwork();
    expect(() => createMockNetwork({ seed: Number.NaN })).toThrow(
      expect.objectContaining({ code: TapErrorCode.INVALID_OPTION }),
    );
    expect(() => createMockNetwork({ txHighWater: 0 })).toThrow(
      expect.objectContaining({ code: TapErrorCode.INVALID_OPTION }),
    );
    expectCode(() => net.addHost({ ipv4: '10.0.0.300' }), TapErrorCode.INVALID_OPTION);
    expectCode(() => net.addHost({ ipv4: 'fd00::1' }), TapErrorCode.INVALID_OPTION);
    expectCode(() => net.addHost({ ipv6: '10.0.0.1/24' }), TapErrorCode.INVALID_OPTION);
    expectCode(() => net.addHost({ ipv6: 'ff02::1' }), TapErrorCode.INVALID_OPTION);
    expectCode(() => net.addHost({ ipv4: '224.0.0.1' }), TapErrorCode.INVALID_OPTION);
    expectCode(() => net.addHost({ ipv4: '10.0.0.1/33' }), TapErrorCode.INVALID_OPTION);
    expectCode(() => net.addHost({ mac: '01:00:5e:00:00:01' }), TapErrorCode.INVALID_OPTION);
    expectCode(() => net.addHost({ name: 'no spaces' }), TapErrorCode.INVALID_OPTION);
    expectCode(() => net.addHost({ mtu: 20 }), TapErrorCode.MTU_UNSUPPORTED);
    expectCode(() => net.addHost({ responseDelayMs: -1 }), TapErrorCode.INVALID_OPTION);
    expectCode(() => net.setFaults({ loss: 1.5 }), TapErrorCode.INVALID_ARGUMENT);
    expectCode(() => net.setFaults({ delayMs: -1 }), TapErrorCode.INVALID_ARGUMENT);
    expectCode(() => net.setFaults({ loss: 0.1 }, 'nope'), TapErrorCode.INVALID_ARGUMENT);
    expectCode(() => net.disconnect('nope'), TapErrorCode.INVALID_ARGUMENT);
    expectCode(() => net.failNextWrite('nope'), TapErrorCode.INVALID_ARGUMENT);
    expectCode(() => net.capture({ port: 'nope' }), TapErrorCode.INVALID_ARGUMENT);
    expectCode(
      () => net.capture({ path: '/tmp/x.pcap', sink: { write() {} } }),
      TapErrorCode.INVALID_ARGUMENT,
    );
    const other = createMockNetwork();
    await expect(net.open({ network: other })).rejects.toMatchObject({ code: TapErrorCode.INVALID_OPTION });
    await expect(backend.open({ network: {} as never })).rejects.toMatchObject({
      code: TapErrorCode.INVALID_OPTION,
    });
    await expect(net.open({ mtu: 10 })).rejects.toMatchObject({ code: TapErrorCode.MTU_UNSUPPORTED });
    const host = net.addHost();
    expectCode(() => host.send(new Uint8Array(10)), TapErrorCode.FRAME_TOO_SHORT);
    expectCode(() => host.send(new Uint8Array(1515)), TapErrorCode.FRAME_TOO_LARGE);
    expect(net.ports()).toHaveLength(1); // nothing half-made was left behind
  });

  it('keeps networks fully independent', async () => {
    await using one = createMockNetwork();
    await using two = createMockNetwork();
    const [a1, b1] = [await one.open(), await one.open()];
    const [a2, b2] = [await two.open(), await two.open()];
    expect([a1.name, a2.name]).toEqual(['mock0', 'mock0']); // names are per network
    one.setFaults({ loss: 1 });
    a1.write(rawFrame(BROADCAST, me(a1), 1));
    a2.write(rawFrame(BROADCAST, me(a2), 2));
    expect(await received(b1)).toEqual([]);
    expect((await received(b2)).map(seqOf)).toEqual([2]);
    expect(one.stats().frames).toBe(1);
    expect(two.stats()).toMatchObject({ frames: 1, drops: {} });
  });

  it('opens through openTap and TAPKIT_BACKEND=mock, each device on its own private network', async () => {
    const a = await openTap({ backend: 'mock' });
    const b = await openTap({ env: { TAPKIT_BACKEND: 'mock' } });
    try {
      expect([a.backend, b.backend, a.name, b.name]).toEqual(['mock', 'mock', 'mock0', 'mock0']);
      a.write(rawFrame(BROADCAST, me(a), 1));
      expect(await received(b)).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
    const net = createMockNetwork();
    const [c, d] = [await openTap({ backend: 'mock', network: net }), await backend.open({ network: net })];
    c.write(rawFrame(BROADCAST, me(c), 2));
    expect((await received(d)).map(seqOf)).toEqual([2]);
    await net.close();
  });

  it('closing the network closes its devices with ERR_TAP_DEVICE_GONE, detaches hosts, and is idempotent', async () => {
    const net = createMockNetwork();
    const dev = await net.open();
    const host = net.addHost({ ipv4: '10.0.0.2' });
    const pending = dev.read();
    const closed = new Promise<unknown>((resolve) => dev.once('close', resolve));
    const late = net.open(); // its port joins now; its device starts after the close below
    await net.close();
    await net.close();
    expect((await late).closed).toBe(true);
    await expect(pending).rejects.toMatchObject({ code: TapErrorCode.DEVICE_GONE });
    expect(await closed).toMatchObject({ code: TapErrorCode.DEVICE_GONE });
    expect(dev.closed).toBe(true);
    expect(host.attached).toBe(false);
    expect(net.closed).toBe(true);
    await expect(net.open()).rejects.toMatchObject({ code: TapErrorCode.CLOSED });
    expectCode(() => net.addHost(), TapErrorCode.CLOSED);
    expectCode(() => host.send(rawFrame(BROADCAST, host.mac)), TapErrorCode.CLOSED);
    await dev.close(); // still fine
  });

  it('moves many frames both ways without loss (relay-style traffic)', async () => {
    await using net = createMockNetwork();
    const [a, b] = [await net.open(), await net.open()];
    const count = 20_000;
    const reader = (async (dev: TapDevice) => {
      let n = 0;
      let last = -1;
      for await (const batch of dev.batches()) {
        for (const f of batch) {
          expect(seqOf(f)).toBe(last + 1);
          last++;
        }
        n += batch.length;
        if (n >= count) return n;
      }
      return n;
    })(b);
    for (let i = 0; i < count; i++)
      if (!a.write(rawFrame(me(b), me(a), i, i % 2 ? 1514 : 60))) await a.drain();
    expect(await reader).toBe(count);
    expect(b.stats().drops).toEqual({});
  });
});
