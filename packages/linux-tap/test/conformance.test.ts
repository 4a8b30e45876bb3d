/**
 * Core's conformance suite on the real kernel. Each pair is a wire: two taps inside a fresh
 * network namespace, where tc redirects every frame one receives to the other's output, so a
 * frame written on one is read on the other whatever its MAC. (A bridge would not do: it
 * delivers frames for its ports' own MACs to itself.) IPv6 is off in the namespace, so the
 * kernel sends no chatter of its own (router solicitations, MLD reports) over the wire.
 */
import type { TapDevice, TapOpenOptions } from '@tapkit/core';
import { conformanceSuite } from '@tapkit/core/testing';
import { describe } from 'vitest';
import { linuxTap, linuxTun } from '../src/index.js';
import { createNetns, itPrivileged, onCleanup, run, uniqueName, useCleanup } from './helpers.js';

useCleanup();

async function open(options: TapOpenOptions = {}): Promise<TapDevice> {
  return linuxTap.open({ name: uniqueName(), ...options });
}

/**
 * Two devices of `open`'s kind joined by a wire: inside a fresh namespace, tc redirects every
 * frame (or, on TUNs, packet) the kernel receives on one to the other's output.
 */
async function wiredPair(
  open: (options: TapOpenOptions) => Promise<TapDevice>,
): Promise<readonly [TapDevice, TapDevice]> {
  const ns = await createNetns();
  await ns.exec('sysctl', [
    '-qw',
    'net.ipv6.conf.all.disable_ipv6=1',
    'net.ipv6.conf.default.disable_ipv6=1',
  ]);
  const a = await open({ up: false });
  onCleanup(() => a.close());
  const b = await open({ up: false });
  onCleanup(() => b.close());
  for (const dev of [a, b]) await run('ip', ['link', 'set', 'dev', dev.name, 'netns', ns.name]);
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    await ns.exec('tc', ['qdisc', 'add', 'dev', from.name, 'handle', 'ffff:', 'ingress']);
    // u32 matching everything: the matchall classifier is not built into every kernel.
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
    name: 'linux-tap',
    backend: 'linux-tap',
    open,
    openPair: () => wiredPair(open),
    openModule: new URL('fixtures/open-device.mjs', import.meta.url).href,
  },
);

// The same contract on a TUN device (linuxTun, layer 3): packets instead of frames.
const openTun = (options: TapOpenOptions = {}) => linuxTun.open({ name: uniqueName(), ...options });
conformanceSuite(
  { describe, it: itPrivileged },
  {
    name: 'linux-tap TUN (linuxTun)',
    backend: 'linux-tun',
    open: openTun,
    openPair: () => wiredPair(openTun),
    // No link layer: nothing to resolve, and its addresses are the kernel's IP business.
    answers: [],
  },
);
