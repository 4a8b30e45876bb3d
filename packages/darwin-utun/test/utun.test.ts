/**
 * The darwin-utun backend over the simulated utun system: naming, configuration, framing with
 * Darwin's 4-byte family header, batches, backpressure, errors — everything but the syscalls.
 */
import { Worker } from 'node:worker_threads';
import {
  ArpOp,
  EtherType,
  TapErrorCode,
  buildArpRequestFrame,
  buildEthernet,
  buildIPv4,
  buildIPv6,
  buildIcmpEcho,
  buildIcmpv6Echo,
  decodeFrame,
  formatMac,
  isTapError,
  loadBackend,
  openTap,
  parseIPv4,
  parseIPv6,
  parseMac,
  type TapDevice,
  type TapError,
} from '@tapkit/core';
import { describe, expect, it } from 'vitest';
import {
  UNKNOWN_FAMILY,
  UTUN_AF_INET,
  UTUN_AF_INET6,
  backend,
  createSimulatedUtunSystem,
  darwinUtun,
  frameUtunDatagram,
  parseUtunDatagram,
  utunFamilyOf,
  utunUnitOf,
  type DarwinUtunOptions,
  type SimulatedUtun,
  type SimulatedUtunSystem,
} from '../src/index.js';
import { hex, ip4, ip6, settle } from './helpers.js';
import { EthernetHost } from './host.js';

/** The device's MAC (its OS side), and the program's own. */
const MAC = parseMac('02:00:00:00:00:02');
const USER_MAC = parseMac('02:00:00:00:00:03');
const OS4 = ip4('10.9.0.1');
const USER4 = ip4('10.9.0.2');
const OS6 = ip6('fd00:9::1');
const USER6 = ip6('fd00:9::2');

async function expectCode(promise: Promise<unknown> | (() => unknown), code: string): Promise<TapError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    expect(isTapError(error), String(error)).toBe(true);
    expect((error as TapError).code).toBe(code);
    return error as TapError;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

async function open(
  options: DarwinUtunOptions = {},
): Promise<{ dev: TapDevice; system: SimulatedUtunSystem; utun: SimulatedUtun }> {
  const system = (options.system as SimulatedUtunSystem | undefined) ?? createSimulatedUtunSystem();
  const dev = await darwinUtun.open({
    mac: MAC,
    addresses: ['10.9.0.1/24', 'fd00:9::1/64'],
    ...options,
    system,
  });
  return { dev, system, utun: system.interface(dev.name)! };
}

function udp4(dst = USER4, src = OS4, size = 20): Uint8Array {
  return buildIPv4({ src, dst, protocol: 17, payload: new Uint8Array(size) });
}

describe('framing', () => {
  it('puts the big-endian family first: 2 for IPv4, 30 for IPv6 (Darwin values)', () => {
    const v4 = udp4();
    const v6 = buildIPv6({ src: OS6, dst: USER6, nextHeader: 59, payload: new Uint8Array(0) });
    expect([UTUN_AF_INET, UTUN_AF_INET6]).toEqual([2, 30]);
    expect(hex(frameUtunDatagram(v4).subarray(0, 4))).toBe('00000002');
    expect(hex(frameUtunDatagram(v6).subarray(0, 4))).toBe('0000001e');
    expect(hex(parseUtunDatagram(frameUtunDatagram(v6))!)).toBe(hex(v6));
    expect(parseUtunDatagram(frameUtunDatagram(v6, 10))).toBeUndefined(); // Linux's AF_INET6
    expect(parseUtunDatagram(frameUtunDatagram(v4, UTUN_AF_INET6))).toBeUndefined();
    expect(parseUtunDatagram(Uint8Array.of(0, 0, 0, 2))).toBeUndefined();
    expect(utunFamilyOf(Uint8Array.of(0x50))).toBeUndefined();
  });

  it('names utuns utun<N> only', async () => {
    expect(utunUnitOf(undefined)).toBeUndefined();
    expect(utunUnitOf('utun0')).toBe(0);
    expect(utunUnitOf('utun4294967294')).toBe(4294967294);
    for (const name of ['tap0', 'utun', 'utun07', 'utun-1', 'utun4294967295', 'Utun1']) {
      await expectCode(() => utunUnitOf(name), TapErrorCode.INVALID_OPTION);
    }
  });
});

describe('opening a utun', () => {
  it('lets the kernel pick a unit, or takes the one asked for; a unit in use is NAME_IN_USE', async () => {
    const system = createSimulatedUtunSystem({ firstUnit: 3 });
    const a = await open({ system });
    const b = await open({ system });
    const c = await open({ system, name: 'utun9' });
    expect([a.dev.name, b.dev.name, c.dev.name]).toEqual(['utun3', 'utun4', 'utun9']);
    const error = await expectCode(open({ system, name: 'utun9' }), TapErrorCode.NAME_IN_USE);
    expect(error).toMatchObject({ osCode: 'EBUSY', syscall: 'connect', backend: 'darwin-utun' });
    await Promise.all([a.dev.close(), b.dev.close(), c.dev.close()]);
    expect(system.interfaces()).toHaveLength(0); // destroyed with the socket
  });

  it('sets the MTU and the addresses, is born up, and can be left down', async () => {
    const { dev, utun } = await open({ mtu: 1400 });
    expect(utun).toMatchObject({ mtu: 1400, up: true, addresses: ['10.9.0.1/24', 'fd00:9:0:0:0:0:0:1/64'] });
    expect(dev).toMatchObject({ backend: 'darwin-utun', mtu: 1400 });
    expect(dev.capabilities).toMatchObject({ layer: 2, minMtu: 68, maxMtu: 16384, osInterface: false });
    expect(formatMac(dev.mac)).toBe(formatMac(MAC));
    const down = await open({ up: false });
    expect(down.utun.up).toBe(false);
    await Promise.all([dev.close(), down.dev.close()]);
  });

  it('checks every option before anything is opened', async () => {
    const system = createSimulatedUtunSystem();
    for (const [options, code] of [
      [{ name: 'en0' }, TapErrorCode.INVALID_OPTION],
      [{ peerMac: formatMac(MAC) }, TapErrorCode.UNSUPPORTED_OPTION], // gone: dev.mac is the OS side
      [{ onLink: 'all' }, TapErrorCode.INVALID_OPTION],
      [{ mtu: 20000 }, TapErrorCode.MTU_UNSUPPORTED],
      [{ addresses: ['10.0.0.1'] }, TapErrorCode.INVALID_OPTION],
    ] as const) {
      await expectCode(darwinUtun.open({ mac: MAC, system, ...(options as DarwinUtunOptions) }), code);
    }
    await expectCode(darwinUtun.open({ system: {} as SimulatedUtunSystem }), TapErrorCode.INVALID_OPTION);
    expect(system.interfaces()).toHaveLength(0);
  });

  it('maps system errors to codes and leaves no utun behind when configuring fails', async () => {
    const system = createSimulatedUtunSystem();
    system.failNext('openUtun', 'EPERM');
    const denied = await expectCode(open({ system }), TapErrorCode.PERMISSION_DENIED);
    expect(denied.message).toMatch(/root/);
    system.failNext('setMtu', 'EINVAL');
    await expectCode(open({ system }), TapErrorCode.MTU_UNSUPPORTED);
    system.failNext('addAddress', 'EINVAL');
    await expectCode(open({ system }), TapErrorCode.INVALID_OPTION);
    system.failNext('setUp', 'ENXIO');
    await expectCode(open({ system, up: false }), TapErrorCode.DEVICE_GONE);
    expect(system.interfaces()).toHaveLength(0);
  });

  it('is unavailable off macOS without a system, and loads through core', async () => {
    if (process.platform !== 'darwin') {
      const probe = await darwinUtun.probe();
      expect(probe.available).toBe(false);
      expect(!probe.available && probe.error.code).toBe(TapErrorCode.UNSUPPORTED_PLATFORM);
      await expectCode(darwinUtun.open(), TapErrorCode.UNSUPPORTED_PLATFORM);
    }
    expect(backend).toBe(darwinUtun);
    const loaded = await loadBackend('darwin-utun'); // the package's built dist
    expect(loaded.name).toBe('darwin-utun');
    const dev = await loaded.open({ system: createSimulatedUtunSystem() } as DarwinUtunOptions);
    expect(dev.backend).toBe('darwin-utun');
    await dev.close();
    // A backend named explicitly is opened without a probe, so an injected system works anywhere.
    const viaOpenTap = await openTap({ backend: 'darwin-utun', system: createSimulatedUtunSystem() });
    expect(viaOpenTap.backend).toBe('darwin-utun');
    await viaOpenTap.close();
  });
});

describe('the data path', () => {
  it('delivers the OS’s packets as frames built in place in the batch’s memory', async () => {
    const { dev, utun } = await open();
    const v6 = buildIPv6({ src: OS6, dst: USER6, nextHeader: 59, payload: new Uint8Array(0) });
    utun.send(udp4());
    utun.send(v6);
    const [a, b] = await dev.readBatch();
    expect(formatMac(a!, 0)).toBe('ff:ff:ff:ff:ff:ff'); // the program's MAC is not known yet
    expect(formatMac(a!, 6)).toBe(formatMac(MAC));
    expect(hex(a!.subarray(14))).toBe(hex(udp4()));
    expect(hex(b!.subarray(14))).toBe(hex(v6));
    expect((b![12]! << 8) | b![13]!).toBe(EtherType.IPv6);
    expect(a!.buffer).toBe(b!.buffer); // one slab, no copies
    await dev.close();
  });

  it('drops datagrams whose family header does not fit their packet', async () => {
    const { dev, utun } = await open();
    utun.sendDatagram(frameUtunDatagram(udp4(), UTUN_AF_INET6));
    utun.sendDatagram(frameUtunDatagram(udp4(), 10));
    utun.sendDatagram(Uint8Array.of(0, 0, 0, 2));
    utun.send(udp4());
    const frame = await dev.read();
    expect(hex(frame.subarray(14))).toBe(hex(udp4()));
    expect(dev.stats().drops).toEqual({ [UNKNOWN_FAMILY]: 3 });
    await dev.close();
  });

  it('keeps every frame of many batches intact (the slab is never written twice)', async () => {
    const { dev, utun } = await open({ rxQueueFrames: 4096 });
    const count = 500;
    for (let i = 0; i < count; i++) utun.send(udp4(USER4, OS4, i % 1400));
    const frames: Uint8Array[] = [];
    while (frames.length < count) frames.push(...(await dev.readBatch()));
    for (let i = 0; i < count; i++)
      expect(hex(frames[i]!.subarray(14)), `frame ${i}`).toBe(hex(udp4(USER4, OS4, i % 1400)));
    await dev.close();
  });

  it('writes packets with the right family header', async () => {
    const { dev, utun } = await open();
    const peer = MAC; // the OS side
    const got: Uint8Array[] = [];
    utun.onPacket = (packet) => got.push(Uint8Array.from(packet));
    const v4 = buildEthernet({
      dst: peer,
      src: USER_MAC,
      etherType: EtherType.IPv4,
      payload: udp4(OS4, USER4),
    });
    const v6Packet = buildIPv6({ src: USER6, dst: OS6, nextHeader: 59, payload: new Uint8Array(0) });
    const v6 = buildEthernet({ dst: peer, src: USER_MAC, etherType: EtherType.IPv6, payload: v6Packet });
    dev.write(v4);
    dev.writeBatch([v6, v4]);
    expect(got.map(hex)).toEqual([hex(udp4(OS4, USER4)), hex(v6Packet), hex(udp4(OS4, USER4))]);
    expect(utun.rejected).toBe(0);
    await dev.close();
  });

  it('says false when the socket is full and drains when it empties', async () => {
    const { dev, utun } = await open();
    const peer = MAC; // the OS side
    const frame = buildEthernet({
      dst: peer,
      src: USER_MAC,
      etherType: EtherType.IPv4,
      payload: udp4(OS4, USER4, 1400),
    });
    utun.stallWrites();
    let writes = 0;
    while (dev.write(frame)) writes++;
    expect(writes).toBeGreaterThan(100);
    let drained = false;
    const draining = dev.drain().then(() => (drained = true));
    await settle();
    expect(drained).toBe(false);
    utun.releaseWrites();
    await draining;
    expect(utun.received).toBe(writes + 1);
    await dev.close();
  });

  it('counts packets the kernel had no buffer for, and goes on', async () => {
    const { dev, utun } = await open();
    const frame = buildEthernet({
      dst: MAC,
      src: USER_MAC,
      etherType: EtherType.IPv4,
      payload: udp4(OS4, USER4),
    });
    utun.failNextWrite('ENOBUFS');
    expect(dev.write(frame)).toBe(true);
    await new Promise((resolve) => process.nextTick(resolve)); // write() sends at the end of the turn
    utun.failNextWrite('ENOSPC');
    dev.writeBatch([frame, frame, frame]);
    dev.write(frame);
    expect(dev.stats().drops).toEqual({ txNoBuffer: 4 });
    expect(utun.received).toBe(1);
    await dev.close();
  });

  it('counts the frame the utun refused, not another, in a batch where the shim answered some frames', async () => {
    const { dev, utun } = await open();
    const errors: TapError[] = [];
    dev.on('error', (e) => errors.push(e));
    const packet = (size: number) =>
      buildEthernet({ dst: MAC, src: USER_MAC, etherType: EtherType.IPv4, payload: udp4(OS4, USER4, size) });
    // One turn's writes go as one batch: an ARP request the shim answers (no packet), then three
    // packets, the first of which the utun refuses.
    dev.write(buildArpRequestFrame({ srcMac: USER_MAC, srcIp: USER4, targetIp: OS4 }));
    for (const size of [20, 21, 22]) dev.write(packet(size));
    utun.failNextWrite('EINVAL');
    expect(dev.stats()).toMatchObject({ txFrames: 3, drops: { txError: 1 } });
    expect(utun.received).toBe(2); // the two after it, each once
    expect(errors).toEqual([expect.objectContaining({ code: TapErrorCode.SYSTEM, osCode: 'EINVAL' })]);
    await dev.close();
  });

  it('ends the device when the utun goes away, on read or on write', async () => {
    const reading = await open();
    const closed = new Promise<TapError | undefined>((resolve) => reading.dev.once('close', resolve));
    const pending = reading.dev.read();
    reading.utun.failReads('ENXIO');
    await expectCode(pending, TapErrorCode.DEVICE_GONE);
    expect((await closed)?.code).toBe(TapErrorCode.DEVICE_GONE);
    expect(reading.system.interfaces()).toHaveLength(0);

    const writing = await open();
    writing.utun.failNextWrite('ENXIO');
    const frame = buildEthernet({
      dst: MAC,
      src: USER_MAC,
      etherType: EtherType.IPv4,
      payload: udp4(OS4, USER4),
    });
    await expectCode(() => writing.dev.writeBatch([frame]), TapErrorCode.DEVICE_GONE);
    await settle();
    expect(writing.dev.closed).toBe(true);
    // write() accepts at once and sends at the end of the turn: the device ends then.
    const late = await open();
    const ended = new Promise<TapError | undefined>((resolve) => late.dev.once('close', resolve));
    late.utun.failNextWrite('ENXIO');
    expect(late.dev.write(frame)).toBe(true);
    expect((await ended)?.code).toBe(TapErrorCode.DEVICE_GONE);
    expect(late.dev.stats().drops).toEqual({ txError: 1 });
  });

  it('pauses the utun when the program does not read, as a NIC would', async () => {
    const system = createSimulatedUtunSystem({ maxPending: 100 });
    const { dev, utun } = await open({ system, rxQueueFrames: 64 });
    for (let i = 0; i < 128; i++) utun.send(udp4());
    await settle();
    await settle();
    // One batch of 64 reached the device, which paused the utun: the rest waits in the kernel,
    // whose queue then overflows like a NIC's ring.
    for (let i = 0; i < 100; i++) utun.send(udp4());
    expect(utun.overflowed).toBe(64);
    let read = 0;
    while (read < 164) read += (await dev.readBatch(undefined, { signal: AbortSignal.timeout(2000) })).length;
    expect(read).toBe(164);
    expect(dev.stats().drops).toEqual({});
    await dev.close();
  });
});

describe('a host behind the shim, and the simulated OS', () => {
  /** The OS side: answers echo requests sent to it, as a kernel would. */
  function echoResponder(utun: SimulatedUtun): void {
    utun.onPacket = (packet) => {
      if (packet[0]! >> 4 === 4) {
        const ip = parseIPv4(packet);
        if (ip.protocol !== 1 || ip.payload[0] !== 8) return;
        const echo = ip.payload;
        const reply = buildIcmpEcho({
          type: 0,
          identifier: (echo[4]! << 8) | echo[5]!,
          sequence: (echo[6]! << 8) | echo[7]!,
          data: echo.subarray(8),
        });
        utun.send(buildIPv4({ src: ip.dst, dst: ip.src, protocol: 1, payload: reply }));
      } else {
        const ip = parseIPv6(packet);
        if (ip.nextHeader !== 58 || ip.payload[0] !== 128) return;
        const echo = ip.payload;
        const reply = buildIcmpv6Echo({
          type: 129,
          identifier: (echo[4]! << 8) | echo[5]!,
          sequence: (echo[6]! << 8) | echo[7]!,
          data: echo.subarray(8),
          src: ip.dst,
          dst: ip.src,
        });
        utun.send(buildIPv6({ src: ip.dst, dst: ip.src, nextHeader: 58, payload: reply }));
      }
    };
  }

  it('pings the OS over IPv4 and IPv6, resolving it with ARP and neighbour discovery', async () => {
    const { dev, utun } = await open();
    echoResponder(utun);
    const host = new EthernetHost(dev, { ipv4: USER4, ipv6: [USER6] });
    expect(await host.detectDuplicate(USER6, 50)).toBe(true); // its own address: unanswered
    expect(await host.detectDuplicate(OS6, 50)).toBe(false); // the OS's: defended
    await host.ping(OS4, USER4, 1);
    await host.ping(OS6, USER6, 2);
    expect(host.stats).toMatchObject({ arpRequestsSent: 1, arpRepliesSeen: 1, solicitationsSent: 1 });
    expect([...host.stats.answeredBy]).toEqual([hex(MAC)]);
    expect(utun.rejected).toBe(0);
    host.stop();
    await dev.close();
  });

  it('answers the OS’s pings from behind the shim', async () => {
    const { dev, utun } = await open();
    const host = new EthernetHost(dev, { ipv4: USER4, ipv6: [USER6] });
    const replies: Uint8Array[] = [];
    utun.onPacket = (packet) => replies.push(Uint8Array.from(packet));
    const data = new Uint8Array(56).fill(7);
    utun.send(
      buildIPv4({
        src: OS4,
        dst: USER4,
        protocol: 1,
        payload: buildIcmpEcho({ type: 8, identifier: 9, sequence: 1, data }),
      }),
    );
    utun.send(
      buildIPv6({
        src: OS6,
        dst: USER6,
        nextHeader: 58,
        payload: buildIcmpv6Echo({ type: 128, identifier: 9, sequence: 2, data, src: OS6, dst: USER6 }),
      }),
    );
    for (let i = 0; i < 100 && replies.length < 2; i++) await settle();
    expect(
      replies.map((p) => (p[0]! >> 4 === 4 ? parseIPv4(p).payload[0] : parseIPv6(p).payload[0])),
    ).toEqual([0, 129]);
    host.stop();
    await dev.close();
  });

  it('answers ARP for on-link addresses only', async () => {
    const { dev } = await open();
    dev.write(buildArpRequestFrame({ srcMac: USER_MAC, srcIp: USER4, targetIp: ip4('10.9.0.77') }));
    dev.write(buildArpRequestFrame({ srcMac: USER_MAC, srcIp: USER4, targetIp: ip4('10.8.0.1') }));
    const reply = await dev.read();
    expect(decodeFrame(reply).arp).toMatchObject({ op: ArpOp.Reply });
    await settle();
    expect(dev.stats().drops).toEqual({ arpIgnored: 1 });
    await dev.close();
  });
});

describe('worker threads', () => {
  it('runs a simulated utun device in a worker', async () => {
    const result = await new Promise((resolve, reject) => {
      const worker = new Worker(new URL('./fixtures/worker.mjs', import.meta.url));
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before reporting`)));
    });
    expect(result).toEqual({ name: 'utun0', reply: 'arp-reply', closed: true });
  });
});
