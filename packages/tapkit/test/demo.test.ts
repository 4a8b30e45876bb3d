import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDemo } from '../src/demo.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tapkit-demo-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Reads a classic little-endian pcap: the record count and each record's captured bytes. */
function pcapRecords(file: Buffer): Buffer[] {
  expect(file.readUInt32LE(0)).toBe(0xa1b2c3d4);
  expect(file.readUInt32LE(20)).toBe(1); // Ethernet
  const records: Buffer[] = [];
  for (let at = 24; at < file.length;) {
    const caplen = file.readUInt32LE(at + 8);
    records.push(file.subarray(at + 16, at + 16 + caplen));
    at += 16 + caplen;
  }
  return records;
}

describe('the demo', () => {
  it('resolves the virtual host with ARP, gets every ping answered and records the exchange', async () => {
    const lines: string[] = [];
    const pcapPath = join(dir, 'demo.pcap');
    const result = await runDemo({ count: 3, intervalMs: 1, pcapPath, print: (l) => lines.push(l) });
    expect(result.backend).toBe('mock');
    expect(result.rttMs).toHaveLength(3);
    expect(result.peerMac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(lines.filter((l) => /bytes from 10\.77\.0\.2: icmp_seq=\d ttl=64 time=/.test(l))).toHaveLength(3);
    expect(lines.some((l) => l.startsWith('device stats: rx 4 frames'))).toBe(true);
    const records = pcapRecords(await readFile(pcapPath));
    expect(records).toHaveLength(result.pcapPackets);
    expect(records).toHaveLength(8); // ARP request + reply, three echo requests + replies
    expect(records[0]!.readUInt16BE(12)).toBe(0x0806);
    expect(records[7]![14 + 20]).toBe(0); // the last record is an ICMP echo reply
  });

  it('runs from the CLI, and refuses bad usage with exit code 2', async () => {
    const pcapPath = join(dir, 'cli.pcap');
    const { stdout } = await run(process.execPath, [cli, 'demo', '--count', '2', '--pcap', pcapPath]);
    expect(stdout).toContain('2 transmitted, 2 received, 0% loss');
    expect(stdout).toContain(`written to ${pcapPath}`);
    await expect(run(process.execPath, [cli, 'demo', '--count', 'x'])).rejects.toMatchObject({ code: 2 });
    await expect(run(process.execPath, [cli, 'demo', '--nope'])).rejects.toMatchObject({ code: 2 });
    await expect(run(process.execPath, [cli, 'frobnicate'])).rejects.toMatchObject({ code: 2 });
  });

  it('fails with the backend error for an unknown backend', async () => {
    await expect(
      runDemo({ backend: 'nope', pcapPath: join(dir, 'x.pcap'), print: () => {} }),
    ).rejects.toMatchObject({
      code: 'ERR_TAP_UNKNOWN_BACKEND',
    });
  });
});
