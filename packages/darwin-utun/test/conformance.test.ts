/**
 * Core's conformance suite on the shim, twice:
 *
 * - darwin-utun over the simulated utun system: a pair is two utuns the simulated kernel joins
 *   like a wire. A frame to a's OS side (a.mac) is stripped on a, crosses as a packet and is
 *   rebuilt on b, from b.mac: a routed pair, as the suite calls it.
 * - the shim over real Linux TUNs (IFF_TUN|IFF_NO_PI, linux-tap's TUN mode), privileged: a pair
 *   is two TUNs in a fresh namespace where tc redirects what the kernel receives on one to the
 *   other's output, unchanged (routing would lower the TTL). IPv6 is off in the namespace so the
 *   kernel adds no chatter.
 */
import { definePortBackend, type TapDevice, type TapOpenOptions } from '@tapkit/core';
import { conformanceSuite } from '@tapkit/core/testing';
import { openLinuxTunPort, TUN_LIMITS } from '@tapkit/linux-tap';
import { describe, it } from 'vitest';
import { createL2Shim, createSimulatedUtunSystem, darwinUtun } from '../src/index.js';
import { PrivilegedContext, itPrivileged, run } from './privileged.js';

conformanceSuite(
  { describe, it },
  {
    name: 'darwin-utun over a simulated utun',
    backend: 'darwin-utun',
    open: (options?: TapOpenOptions) => darwinUtun.open({ system: createSimulatedUtunSystem(), ...options }),
    openPair: async () => {
      const system = createSimulatedUtunSystem();
      const a = await darwinUtun.open({ system });
      const b = await darwinUtun.open({ system });
      system.link(a.name, b.name);
      return [a, b] as const;
    },
    routedPair: true,
    // The shim answers ARP for the OS side; the simulated utun system has no IP stack to answer ping.
    answers: ['arp'],
  },
);

const context = new PrivilegedContext();

/** The shim over a Linux TUN, as a backend (the TUN is not brought up: nothing talks on it). */
const shimOverTun = definePortBackend<TapOpenOptions>({
  name: 'l2-shim-over-tun',
  limits: TUN_LIMITS,
  probe: async () => ({ available: true }),
  async openPort(options) {
    const tun = await openLinuxTunPort({
      name: options.name ?? context.interfaceName(),
      mtu: options.mtu,
      up: false,
    });
    return createL2Shim(tun, {
      mac: options.mac,
      addresses: options.addresses,
      limits: TUN_LIMITS,
    });
  },
});

async function openTunPair(): Promise<readonly [TapDevice, TapDevice]> {
  const ns = await context.netns();
  await ns.exec('sysctl', [
    '-qw',
    'net.ipv6.conf.all.disable_ipv6=1',
    'net.ipv6.conf.default.disable_ipv6=1',
  ]);
  const a = await shimOverTun.open();
  context.onCleanup(() => a.close());
  const b = await shimOverTun.open();
  context.onCleanup(() => b.close());
  for (const dev of [a, b]) await run('ip', ['link', 'set', 'dev', dev.name, 'netns', ns.name]);
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    await ns.exec('tc', ['qdisc', 'add', 'dev', from.name, 'handle', 'ffff:', 'ingress']);
    await ns.exec('tc', [
      ...['filter', 'add', 'dev', from.name, 'parent', 'ffff:', 'u32', 'match', 'u32', '0', '0'],
      ...['action', 'mirred', 'egress', 'redirect', 'dev', to.name],
    ]);
  }
  for (const dev of [a, b]) await ns.ip('link', 'set', 'dev', dev.name, 'up');
  return [a, b];
}

conformanceSuite(
  { describe, it: itPrivileged },
  {
    name: 'the shim over real Linux TUNs',
    backend: 'l2-shim-over-tun',
    open: (options?: TapOpenOptions) => shimOverTun.open(options),
    openPair: openTunPair,
    routedPair: true,
    // The shim answers ARP; the TUN is not up and holds no address, so nothing answers ping.
    answers: ['arp'],
    openModule: new URL('fixtures/open-shim-over-tun.mjs', import.meta.url).href,
  },
);
