import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildArpRequestFrame,
  buildIcmpEchoFrame,
  buildNeighborAdvertisementFrame,
  buildNeighborSolicitationFrame,
  buildUdpFrame,
  parseIPv4Address,
  parseIPv6Address,
} from '../src/codec/index.js';
import { isTapError, TapErrorCode } from '../src/errors.js';
import { createPcapFile, encodePcap, PcapWriter } from '../src/pcap.js';

/** An independent reader of what we write: little-endian classic pcap. */
function readPcap(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = {
    magic: view.getUint32(0, true),
    versionMajor: view.getUint16(4, true),
    versionMinor: view.getUint16(6, true),
    thiszone: view.getInt32(8, true),
    sigfigs: view.getUint32(12, true),
    snapLength: view.getUint32(16, true),
    linkType: view.getUint32(20, true),
  };
  const records: {
    seconds: number;
    fraction: number;
    captured: number;
    original: number;
    data: Uint8Array;
  }[] = [];
  for (let off = 24; off < bytes.length;) {
    const captured = view.getUint32(off + 8, true);
    records.push({
      seconds: view.getUint32(off, true),
      fraction: view.getUint32(off + 4, true),
      captured,
      original: view.getUint32(off + 12, true),
      data: bytes.subarray(off + 16, off + 16 + captured),
    });
    off += 16 + captured;
  }
  return { header, records };
}

function collectingSink() {
  const chunks: Uint8Array[] = [];
  return {
    chunks,
    write(chunk: Uint8Array) {
      chunks.push(chunk);
    },
    bytes: () => Uint8Array.from(Buffer.concat(chunks)),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'tapkit-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T = 1_700_000_000_123_456_789n;

describe('PcapWriter', () => {
  it('writes the microsecond global header byte by byte', () => {
    const sink = collectingSink();
    new PcapWriter(sink);
    expect(sink.chunks).toHaveLength(1);
    expect(Buffer.from(sink.chunks[0]!).toString('hex')).toBe(
      'd4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + '00000400' + '01000000',
    );
  });

  it('writes the nanosecond magic and a custom snap length', () => {
    const sink = collectingSink();
    const writer = new PcapWriter(sink, { resolution: 'ns', snapLength: 96 });
    expect(writer.resolution).toBe('ns');
    expect(readPcap(sink.bytes()).header).toEqual({
      magic: 0xa1b23c4d,
      versionMajor: 2,
      versionMinor: 4,
      thiszone: 0,
      sigfigs: 0,
      snapLength: 96,
      linkType: 1,
    });
  });

  it('splits timestamps into seconds and µs or ns', () => {
    for (const [resolution, fraction] of [
      ['us', 123456],
      ['ns', 123456789],
    ] as const) {
      const sink = collectingSink();
      new PcapWriter(sink, { resolution }).writePacket(Uint8Array.of(1, 2, 3), T);
      const [record] = readPcap(sink.bytes()).records;
      expect(record).toEqual({
        seconds: 1_700_000_000,
        fraction,
        captured: 3,
        original: 3,
        data: Uint8Array.of(1, 2, 3),
      });
    }
  });

  it('cuts to the snap length with caplen and origlen right', () => {
    const sink = collectingSink();
    const writer = new PcapWriter(sink, { snapLength: 64 });
    const frame = Uint8Array.from({ length: 100 }, (_, i) => i);
    writer.writePacket(frame, T);
    writer.writePacket(frame.subarray(0, 60), T, 1514); // already cut by the caller
    const [cut, precut] = readPcap(sink.bytes()).records;
    expect(cut).toMatchObject({ captured: 64, original: 100, data: frame.subarray(0, 64) });
    expect(precut).toMatchObject({ captured: 60, original: 1514 });
    expect(writer.packetCount).toBe(2);
  });

  it('writes one chunk per packet, copying the frame from its slab', () => {
    const sink = collectingSink();
    const writer = new PcapWriter(sink);
    const slab = Uint8Array.from({ length: 64 }, (_, i) => i);
    const frame = slab.subarray(10, 30);
    writer.writePacket(frame, T);
    slab.fill(0xee); // the caller reuses its buffer
    expect(sink.chunks).toHaveLength(2);
    expect(sink.chunks[1]!.subarray(16)).toEqual(Uint8Array.from({ length: 20 }, (_, i) => i + 10));
  });

  it('stamps packets with the current wall-clock time by default, never going backwards', () => {
    const sink = collectingSink();
    const writer = new PcapWriter(sink, { resolution: 'ns' });
    const before = Date.now();
    for (let i = 0; i < 5; i++) writer.writePacket(new Uint8Array(14));
    const stamps = readPcap(sink.bytes()).records.map((r) => r.seconds * 1000 + r.fraction / 1e6);
    expect(Math.abs(stamps[0]! - before)).toBeLessThan(2000);
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]!).toBeGreaterThanOrEqual(stamps[i - 1]!);
  });

  it('refuses bad options and arguments with INVALID_ARGUMENT', () => {
    const bad = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        expect(isTapError(err, TapErrorCode.INVALID_ARGUMENT)).toBe(true);
        return;
      }
      throw new Error('expected a throw');
    };
    const sink = collectingSink();
    bad(() => new PcapWriter(sink, { snapLength: 0 }));
    bad(() => new PcapWriter(sink, { snapLength: 1.5 }));
    bad(() => new PcapWriter(sink, { resolution: 'ms' as 'us' }));
    bad(() => new PcapWriter({} as never));
    const writer = new PcapWriter(sink);
    bad(() => writer.writePacket(new Uint8Array(10), -1n));
    bad(() => writer.writePacket(new Uint8Array(10), 1n << 64n));
    bad(() => writer.writePacket(new Uint8Array(10), 5 as unknown as bigint));
    bad(() => writer.writePacket(new Uint8Array(10), T, 9)); // original shorter than the data
    bad(() => writer.writePacket('x' as unknown as Uint8Array, T));
  });
});

describe('encodePcap', () => {
  it('equals what PcapWriter streams', () => {
    const packets = [
      { data: Uint8Array.of(1, 2, 3), timestampNs: T },
      { data: new Uint8Array(200).fill(9), timestampNs: T + 1_000n, originalLength: 300 },
    ];
    const sink = collectingSink();
    const writer = new PcapWriter(sink, { snapLength: 128 });
    for (const p of packets) writer.writePacket(p.data, p.timestampNs, p.originalLength);
    expect(encodePcap(packets, { snapLength: 128 })).toEqual(sink.bytes());
    expect(readPcap(encodePcap(packets, { snapLength: 128 })).records[1]).toMatchObject({
      captured: 128,
      original: 300,
    });
  });

  it('encodes an empty capture as just the header', () => {
    expect(encodePcap([]).length).toBe(24);
  });
});

describe('createPcapFile', () => {
  it('writes a file equal to encodePcap, across buffer flushes and oversized packets', async () => {
    const path = join(dir, 'many.pcap');
    const packets = Array.from({ length: 300 }, (_, i) => ({
      data: Uint8Array.from({ length: 60 + ((i * 37) % 1400) }, (_, j) => (i + j) & 0xff),
      timestampNs: T + BigInt(i) * 1000n,
    }));
    packets.push({ data: new Uint8Array(100_000).fill(7), timestampNs: T + 999_999n }); // > 64 KiB buffer
    const file = await PcapWriter.toFile(path, { resolution: 'ns' });
    for (const p of packets) file.writePacket(p.data, p.timestampNs);
    await file.close();
    await file.close(); // idempotent
    expect(Buffer.compare(readFileSync(path), encodePcap(packets, { resolution: 'ns' }))).toBe(0);
  });

  it('flush() makes written packets visible before close', async () => {
    const path = join(dir, 'flush.pcap');
    const file = await createPcapFile(path);
    file.writePacket(new Uint8Array(20), T);
    file.flush();
    expect(readFileSync(path).length).toBe(24 + 16 + 20);
    await file.close();
  });

  it('throws CLOSED after close, and a TapError for an unopenable path', async () => {
    const file = await createPcapFile(join(dir, 'closed.pcap'));
    await file.close();
    expect(() => file.writePacket(new Uint8Array(14), T)).toThrow(
      expect.objectContaining({ code: TapErrorCode.CLOSED }),
    );
    await expect(createPcapFile(join(dir, 'no', 'such', 'dir.pcap'))).rejects.toSatisfy((err) =>
      isTapError(err),
    );
    await expect(createPcapFile(join(dir, 'x.pcap'), { snapLength: -1 })).rejects.toSatisfy((err) =>
      isTapError(err, TapErrorCode.INVALID_ARGUMENT),
    );
  });
});

// ---- an external reader: tshark (or tcpdump) must read what we write ----

function onPath(tool: string): boolean {
  const result = spawnSync(tool, ['--version'], { stdio: 'ignore' });
  return result.error === undefined;
}

const tshark = onPath('tshark');
const tcpdump = !tshark && onPath('tcpdump');
const requireTools = process.env.TAPKIT_REQUIRE_PRIVILEGED === '1';

describe('external readers', () => {
  const mac1 = '02:00:00:00:00:01';
  const mac2 = '02:00:00:00:00:02';
  const v4 = { src: parseIPv4Address('192.0.2.1'), dst: parseIPv4Address('192.0.2.2') };
  const v6 = { src: parseIPv6Address('fd00::1'), dst: parseIPv6Address('fd00::2') };
  const data = new TextEncoder().encode('tapkit pcap');
  const frames = [
    buildArpRequestFrame({ srcMac: mac1, srcIp: v4.src, targetIp: v4.dst }),
    buildUdpFrame({ srcMac: mac1, dstMac: mac2, ...v4, srcPort: 40000, dstPort: 9, payload: data }),
    buildUdpFrame({
      srcMac: mac1,
      dstMac: mac2,
      ...v6,
      srcPort: 40000,
      dstPort: 9,
      payload: data,
      vlan: { pcp: 0, dei: false, vid: 5 },
    }),
    buildIcmpEchoFrame({
      srcMac: mac1,
      dstMac: mac2,
      ...v4,
      type: 'request',
      identifier: 1,
      sequence: 1,
      data,
    }),
    buildIcmpEchoFrame({
      srcMac: mac1,
      dstMac: mac2,
      ...v6,
      type: 'reply',
      identifier: 1,
      sequence: 1,
      data,
    }),
    buildNeighborSolicitationFrame({ srcMac: mac1, src: v6.src, target: v6.dst }),
    buildNeighborAdvertisementFrame({
      srcMac: mac2,
      dstMac: mac1,
      src: v6.dst,
      dst: v6.src,
      target: v6.dst,
      solicited: true,
      override: true,
    }),
  ];

  it.for(['us', 'ns'] as const)(
    'a capture (%s) reads back with every packet, all checksums good',
    async (resolution, ctx) => {
      if (!tshark && !tcpdump) {
        if (requireTools)
          throw new Error('TAPKIT_REQUIRE_PRIVILEGED=1 but neither tshark nor tcpdump is on PATH');
        ctx.skip('neither tshark nor tcpdump is on PATH (install tshark to run this check)');
      }
      const path = join(dir, `external-${resolution}.pcap`);
      const file = await createPcapFile(path, { resolution });
      frames.forEach((frame, i) => file.writePacket(frame, T + BigInt(i) * 1_000_000n));
      await file.close();

      if (tcpdump) {
        const out = spawnSync('tcpdump', ['-nn', '-r', path], { encoding: 'utf8' });
        expect(out.status, out.stderr).toBe(0);
        expect(out.stdout.trim().split('\n')).toHaveLength(frames.length);
        return;
      }
      const fields = [
        'frame.protocols',
        'frame.time_epoch',
        'ip.checksum.status',
        'udp.checksum.status',
        'icmp.checksum.status',
        'icmpv6.checksum.status',
      ];
      const out = spawnSync(
        'tshark',
        [
          '-n',
          '-r',
          path,
          '-o',
          'ip.check_checksum:TRUE',
          '-o',
          'udp.check_checksum:TRUE',
          '-T',
          'fields',
          '-E',
          'separator=|',
          ...fields.flatMap((f) => ['-e', f]),
        ],
        { encoding: 'utf8' },
      );
      expect(out.status, out.stderr).toBe(0);
      const rows = out.stdout
        .trim()
        .split('\n')
        .map((line) => line.split('|'));
      expect(rows).toHaveLength(frames.length);
      expect(rows.map((r) => r[0])).toEqual([
        'eth:ethertype:arp',
        'eth:ethertype:ip:udp:data',
        'eth:ethertype:vlan:ethertype:ipv6:udp:data',
        'eth:ethertype:ip:icmp:data',
        'eth:ethertype:ipv6:icmpv6:data',
        'eth:ethertype:ipv6:icmpv6',
        'eth:ethertype:ipv6:icmpv6',
      ]);
      expect(rows[0]![1]).toMatch(/^1700000000\.123456/);
      // Wireshark's checksum status: 1 = good (0 = bad, 2 = unverified). Every checked one is good.
      const statuses = rows.flatMap((r) => r.slice(2)).filter((s) => s !== '');
      expect(statuses.length).toBeGreaterThanOrEqual(8);
      expect(new Set(statuses)).toEqual(new Set(['1']));
    },
  );
});
