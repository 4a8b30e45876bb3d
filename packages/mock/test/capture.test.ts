import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS, TapErrorCode } from '@tapkit/core';
import { createMockNetwork } from '../src/index.js';
import { BROADCAST, rawFrame, received, seqOf, settle } from './helpers.js';

/** Parses a little-endian classic pcap file. */
function parsePcap(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = {
    magic: view.getUint32(0, true),
    major: view.getUint16(4, true),
    minor: view.getUint16(6, true),
    snapLength: view.getUint32(16, true),
    linkType: view.getUint32(20, true),
  };
  const records: { seconds: number; fraction: number; data: Uint8Array; originalLength: number }[] = [];
  for (let at = 24; at < bytes.length;) {
    const captured = view.getUint32(at + 8, true);
    records.push({
      seconds: view.getUint32(at, true),
      fraction: view.getUint32(at + 4, true),
      originalLength: view.getUint32(at + 12, true),
      data: bytes.subarray(at + 16, at + 16 + captured),
    });
    at += 16 + captured;
  }
  return { header, records };
}

describe('capture', () => {
  it('records every frame entering the switch as pcap', async () => {
    await using net = createMockNetwork();
    const [a, b] = [await net.open(), await net.open()];
    const capture = net.capture();
    const sent = [
      rawFrame(BROADCAST, a.mac, 1, 60),
      rawFrame(a.mac, b.mac, 2, 1514),
      rawFrame(b.mac, a.mac, 3, 100),
    ];
    a.write(sent[0]!);
    await settle();
    b.write(sent[1]!);
    a.write(sent[2]!);
    (await received(b))[0]!.fill(0); // a receiver's changes don't reach the capture
    await capture.close();
    a.write(rawFrame(BROADCAST, a.mac, 4)); // after close: not recorded
    await settle();
    expect(capture.packets).toBe(3);
    const { header, records } = parsePcap(capture.bytes());
    expect(header).toEqual({
      magic: PCAP_MAGIC_MICROSECONDS,
      major: 2,
      minor: 4,
      snapLength: 262144,
      linkType: 1,
    });
    expect(records.map((r) => Buffer.from(r.data))).toEqual(sent.map((f) => Buffer.from(f)));
    expect(records.map((r) => r.originalLength)).toEqual([60, 1514, 100]);
    const now = Date.now() / 1000;
    for (const r of records) {
      expect(Math.abs(r.seconds - now)).toBeLessThan(60);
      expect(r.fraction).toBeLessThan(1_000_000);
    }
  });

  it('records only frames from and to one port, as delivered (after faults)', async () => {
    await using net = createMockNetwork();
    const [a, b, c] = [await net.open(), await net.open(), await net.open()];
    const capture = net.capture({ port: b.name, resolution: 'ns' });
    net.setFaults({ duplicate: 1 }, b.name);
    a.write(rawFrame(BROADCAST, a.mac, 1)); // to b (twice: duplicated) and c
    c.write(rawFrame(a.mac, c.mac, 2)); // to a only: not b's
    b.write(rawFrame(c.mac, b.mac, 3)); // from b
    await settle();
    await capture.close();
    const { header, records } = parsePcap(capture.bytes());
    expect(header.magic).toBe(PCAP_MAGIC_NANOSECONDS);
    expect(records.map((r) => seqOf(r.data)).sort()).toEqual([1, 1, 3]);
  });

  it('writes a pcap file to a path, or to a sink', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tapkit-mock-'));
    try {
      const net = createMockNetwork();
      const [a] = [await net.open(), await net.open()];
      const path = join(dir, 'lan.pcap');
      const file = net.capture({ path });
      const chunks: Uint8Array[] = [];
      const streamed = net.capture({ sink: { write: (chunk) => void chunks.push(chunk) } });
      for (let i = 0; i < 50; i++) a.write(rawFrame(BROADCAST, a.mac, i, 60 + i));
      await settle();
      await net.close(); // closes the captures too
      await file.close(); // idempotent
      const fromFile = parsePcap(await readFile(path));
      expect(fromFile.header.linkType).toBe(1);
      expect(fromFile.records.map((r) => seqOf(r.data))).toEqual(Array.from({ length: 50 }, (_, i) => i));
      const fromSink = parsePcap(Buffer.concat(chunks));
      expect(fromSink.records.map((r) => Buffer.from(r.data))).toEqual(
        fromFile.records.map((r) => Buffer.from(r.data)),
      );
      expect([file.packets, streamed.packets]).toEqual([50, 50]);
      expect(file.bytes()).toHaveLength(0);

      const bad = createMockNetwork().capture({ path: join(dir, 'missing', 'x.pcap') });
      await expect(bad.close()).rejects.toMatchObject({ code: TapErrorCode.SYSTEM, osCode: 'ENOENT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
