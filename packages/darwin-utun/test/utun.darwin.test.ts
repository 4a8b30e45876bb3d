/**
 * darwin-utun on a real Mac: real utuns from the kernel-control socket, configured by ioctl,
 * pinged by the macOS kernel. Needs macOS, root and the built addon (`npm run build`); the CI
 * workflow (ci/macos-utun.yml) runs it with sudo and TAPKIT_REQUIRE_PRIVILEGED=1, where
 * anything missing fails instead of skipping. Elsewhere every test is skipped with the reason.
 *
 * Addresses are from 198.18.0.0/15 (benchmarking, never routed) and fd00::/8 (ULA).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TapErrorCode, isTapError, randomMac, type TapDevice } from '@tapkit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { darwinUtun } from '../src/index.js';
import { hex, ip4, ip6 } from './helpers.js';
import { EthernetHost } from './host.js';

async function findProblem(): Promise<string | undefined> {
  if (process.platform !== 'darwin') return `needs macOS, this is ${process.platform}`;
  const probe = await darwinUtun.probe();
  return probe.available ? undefined : probe.reason;
}

const PROBLEM = await findProblem();

function itDarwin(name: string, body: () => Promise<void>, timeout = 30_000): void {
  if (PROBLEM === undefined) it(name, body, timeout);
  else if (process.platform === 'darwin' && process.env['TAPKIT_REQUIRE_PRIVILEGED'] === '1') {
    it(name, () => expect.fail(`macOS test cannot run (TAPKIT_REQUIRE_PRIVILEGED=1): ${PROBLEM}`));
  } else it.skip(`${name} [skipped: ${PROBLEM}]`, body);
}

const sh = async (file: string, args: string[]) =>
  (await promisify(execFile)(file, args, { encoding: 'utf8', timeout: 20_000 })).stdout;

const devices: TapDevice[] = [];
afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.close()));
});

async function open(options: Parameters<typeof darwinUtun.open>[0]): Promise<TapDevice> {
  const dev = await darwinUtun.open(options);
  devices.push(dev);
  return dev;
}

describe('darwin-utun on macOS', () => {
  itDarwin('creates a utun with the MTU and addresses asked for, and destroys it on close', async () => {
    const dev = await open({ mtu: 1400, addresses: ['198.18.201.1/24', 'fd00:201::1/64'] });
    expect(dev.name).toMatch(/^utun\d+$/);
    expect(dev.capabilities.osInterface).toBe(true);
    const config = await sh('ifconfig', [dev.name]);
    expect(config).toMatch(/mtu 1400/);
    expect(config).toMatch(/inet 198\.18\.201\.1/);
    expect(config).toMatch(/inet6 fd00:201::1 prefixlen 64/);
    expect(await sh('route', ['-n', 'get', '198.18.201.77'])).toMatch(new RegExp(`interface: ${dev.name}`));
    await dev.close();
    expect((await sh('ifconfig', ['-l'])).split(/\s+/)).not.toContain(dev.name);
  });

  itDarwin('takes the unit asked for; a unit in use is ERR_TAP_NAME_IN_USE', async () => {
    const first = await open({});
    const unit = Number(first.name.slice(4)) + 7;
    const asked = await open({ name: `utun${unit}` });
    expect(asked.name).toBe(`utun${unit}`);
    await expect(open({ name: `utun${unit}` })).rejects.toSatisfy((error) =>
      isTapError(error, TapErrorCode.NAME_IN_USE),
    );
  });

  itDarwin('the kernel pings a host behind the shim, over IPv4 and IPv6', async () => {
    const dev = await open({ addresses: ['198.18.202.1/24', 'fd00:202::1/64'], mac: randomMac() });
    const host = new EthernetHost(dev, { ipv4: ip4('198.18.202.2'), ipv6: [ip6('fd00:202::2')] });
    try {
      expect(await sh('ping', ['-c', '3', '-i', '0.2', '-t', '5', '198.18.202.2'])).toMatch(
        /3 packets received/,
      );
      expect(await sh('ping6', ['-c', '3', '-i', '0.2', 'fd00:202::2'])).toMatch(/3 packets received/);
      expect(host.stats.echoRequestsAnswered).toBe(6);
      // And the host pings the kernel, resolving it through the shim.
      await host.ping(ip4('198.18.202.1'), ip4('198.18.202.2'), 1);
      await host.ping(ip6('fd00:202::1'), ip6('fd00:202::2'), 2);
      expect(host.stats.answeredBy.size).toBe(1);
      expect([...host.stats.answeredBy][0]).toHaveLength(12);
      expect(dev.stats().drops['malformed'] ?? 0).toBe(0);
    } finally {
      host.stop();
    }
  });

  itDarwin('reports what the kernel sends with the family header it uses', async () => {
    const dev = await open({ addresses: ['198.18.203.1/24'] });
    const got = new Promise<Uint8Array>((resolve) => {
      const listener = (frame: Uint8Array) => {
        if (frame.length >= 34 && hex(frame.subarray(30, 34)) === hex(ip4('198.18.203.9'))) {
          dev.off('frame', listener);
          resolve(frame);
        }
      };
      dev.on('frame', listener);
    });
    // The kernel sends to an on-link address: it arrives as an IPv4 frame to the device's MAC.
    void sh('ping', ['-c', '1', '-t', '2', '198.18.203.9']).catch(() => undefined);
    const frame = await got;
    expect((frame[12]! << 8) | frame[13]!).toBe(0x0800);
    expect(hex(frame.subarray(0, 6))).toBe(hex(dev.mac));
    expect(dev.stats().drops['unknownFamily'] ?? 0).toBe(0);
  });
});
