/**
 * darwin-feth on a real Mac: the conformance suite on real feth pairs, a ping from the OS
 * through a device, a large MTU, multicast groups, and cleanup after SIGTERM and SIGKILL.
 *
 * Runs only on macOS, as root, with TAPKIT_DARWIN_FETH_REAL=1 and the package built (`npm run
 * build -w @tapkit/darwin-feth`): see .github/workflows/macos-feth.yml. It has NOT been run yet: the project
 * has no Mac; the first macOS CI run is its first run.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildArpReplyFrameFor,
  buildIcmpEchoFrame,
  decodeFrame,
  formatIPv4Address,
  parseIPv4Address,
  type TapDevice,
} from '@tapkit/core';
import { conformanceSuite } from '@tapkit/core/testing';
import { cleanupStalePairs, createDarwinFethBackend, listTapkitInterfaces } from '../src/index.js';

const real =
  process.platform === 'darwin' && process.getuid?.() === 0 && process.env['TAPKIT_DARWIN_FETH_REAL'] === '1';
const run = promisify(execFile);
const runtimeDir = real ? mkdtempSync(join(tmpdir(), 'tapkit-feth-real-')) : join(tmpdir(), 'unused');
const backend = createDarwinFethBackend({ runtimeDir });
const bridges: string[] = [];

async function ifconfig(...args: string[]): Promise<string> {
  return (await run('/sbin/ifconfig', args)).stdout;
}

async function exists(name: string): Promise<boolean> {
  return ifconfig(name).then(
    () => true,
    () => false,
  );
}

/** Two devices whose user-facing members are bridged: `ifconfig bridgeN addm A addm B up`. */
async function openBridgedPair(options: { mtu?: number } = {}): Promise<readonly [TapDevice, TapDevice]> {
  const a = await backend.open(options);
  const b = await backend.open(options);
  const bridge = `bridge${200 + bridges.length}`;
  await ifconfig(bridge, 'create');
  bridges.push(bridge);
  await ifconfig(bridge, 'addm', a.name, 'addm', b.name, 'up');
  return [a, b] as const;
}

afterAll(async () => {
  if (!real) return;
  for (const bridge of bridges) await ifconfig(bridge, 'destroy').catch(() => undefined);
  rmSync(runtimeDir, { recursive: true, force: true });
});

describe.skipIf(!real)('darwin-feth on a real Mac', () => {
  conformanceSuite(
    { describe, it },
    {
      name: 'darwin-feth (real feth pairs, bridged)',
      backend: 'darwin-feth',
      open: (options) => backend.open(options),
      openPair: () => openBridgedPair(),
      cycles: 50,
      receiveTimeoutMs: 5000,
    },
  );

  it('answers a ping from the OS through the device', async () => {
    await using device = await backend.open({ addresses: ['10.213.7.1/24'] });
    const peerIp = parseIPv4Address('10.213.7.2');
    const peerMac = Uint8Array.of(0x02, 0x74, 0x6b, 0, 0, 2);
    let echoes = 0;
    const responder = (async () => {
      for await (const frame of device) {
        const decoded = decodeFrame(frame);
        const { arp, ipv4, icmpEcho } = decoded;
        if (arp && arp.op === 1 && formatIPv4Address(arp.targetIp) === '10.213.7.2') {
          device.write(buildArpReplyFrameFor(arp, peerMac));
        } else if (decoded.eth && ipv4 && icmpEcho?.type === 8) {
          echoes++;
          device.write(
            buildIcmpEchoFrame({
              srcMac: peerMac,
              dstMac: decoded.eth.src,
              src: peerIp,
              dst: ipv4.src,
              type: 'reply',
              identifier: icmpEcho.identifier,
              sequence: icmpEcho.sequence,
              data: icmpEcho.data,
            }),
          );
        }
      }
    })();
    const { stdout } = await run('/sbin/ping', ['-c', '3', '-t', '10', '10.213.7.2']);
    expect(stdout).toMatch(/3 packets received/);
    expect(echoes).toBeGreaterThanOrEqual(3);
    await device.close();
    await responder;
  });

  it('carries MTU 9000: raises net.link.fake.max_mtu and the NDRV send buffer', async () => {
    const [a, b] = await openBridgedPair({ mtu: 9000 });
    try {
      expect(await ifconfig(a.name)).toMatch(/mtu 9000/);
      const frame = new Uint8Array(9014);
      frame.set(b.mac, 0);
      frame.set(a.mac, 6);
      frame.set([0x88, 0xb5], 12);
      frame.fill(0x5a, 14);
      a.write(frame);
      for (;;) {
        const got = await b.read({ signal: AbortSignal.timeout(5000) });
        if (got.length === 9014) {
          expect(got[9013]).toBe(0x5a);
          break;
        }
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('reports the multicast groups the OS joined', async () => {
    await using device = await backend.open({ addresses: ['fd00:213:7::1/64'] });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await device.multicastGroups()).toContain('33:33:00:00:00:01');
  });

  it('leaves nothing when closed, and lists its pairs while open', async () => {
    const device = await backend.open({ networkId: 'tapkit-ci' });
    const io = device.name.replace('feth1', 'feth2');
    const listed = await listTapkitInterfaces({ runtimeDir });
    expect(listed).toContainEqual(
      expect.objectContaining({ name: device.name, owner: 'self', user: 'present' }),
    );
    await device.close();
    expect(await exists(device.name)).toBe(false);
    expect(await exists(io)).toBe(false);
  });

  /** A program (the built package) that opens a device and waits; resolves with its name. */
  function child(): { name: Promise<string>; kill(signal: NodeJS.Signals): Promise<string | null> } {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const script =
      'const { darwinFeth } = await import(process.argv[1]); const d = await darwinFeth.open({ runtimeDir: process.argv[2] });' +
      'console.log(d.name); setInterval(() => {}, 1000);';
    const proc = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, join(root, 'dist', 'index.js'), runtimeDir],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const name = new Promise<string>((resolve) =>
      proc.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())),
    );
    const exited = new Promise<string | null>((resolve) =>
      proc.once('exit', (_code, signal) => resolve(signal)),
    );
    return { name, kill: (signal) => (proc.kill(signal), exited) };
  }

  it('removes the pair when the process gets SIGTERM, and still dies of it', async () => {
    const program = child();
    const name = await program.name;
    expect(await exists(name)).toBe(true);
    expect(await program.kill('SIGTERM')).toBe('SIGTERM');
    expect(await exists(name)).toBe(false);
  });

  it('removes the pair a SIGKILLed process left, with cleanupStalePairs', async () => {
    const program = child();
    const name = await program.name;
    await program.kill('SIGKILL');
    expect(await exists(name)).toBe(true);
    const dry = await cleanupStalePairs({ runtimeDir, dryRun: true });
    expect(dry.removed.map((p) => p.name)).toContain(name);
    expect(await exists(name)).toBe(true);
    const report = await cleanupStalePairs({ runtimeDir });
    expect(report.removed.map((p) => p.name)).toContain(name);
    expect(report.errors).toEqual([]);
    expect(await exists(name)).toBe(false);
  });
});
