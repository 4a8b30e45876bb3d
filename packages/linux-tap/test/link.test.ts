/**
 * Live link state against the real kernel: what an admin changes with `ip` shows on the device
 * (with a `link` event), and the setters change the interface through rtnetlink.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TapErrorCode, type LinkChange, type TapDevice } from '@tapkit/core';
import { describe, expect } from 'vitest';
import { linuxTap, linuxTun } from '../src/index.js';
import {
  createNetns,
  expectTapError,
  fixtureCommand,
  itPrivileged,
  onCleanup,
  run,
  uniqueName,
  useCleanup,
  waitFor,
} from './helpers.js';

useCleanup();

const sys = (name: string, file: string): string =>
  readFileSync(`/sys/class/net/${name}/${file}`, 'utf8').trim();

/** An IPv4 frame of `length` bytes (its content does not matter to the length checks). */
function frameOf(length: number): Uint8Array {
  const frame = new Uint8Array(length);
  frame.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
  return frame;
}

/** A device, closed after the test, and the link events it emits. */
async function watched(open: () => Promise<TapDevice>): Promise<{ dev: TapDevice; changes: LinkChange[] }> {
  const dev = await open();
  onCleanup(() => dev.close());
  const changes: LinkChange[] = [];
  dev.on('link', (change) => changes.push(change));
  return { dev, changes };
}

/** Waits for the link event that `pick` finds. */
async function eventFor(changes: LinkChange[], pick: (change: LinkChange) => boolean): Promise<LinkChange> {
  await waitFor(() => changes.some(pick), 10_000, 'a link event');
  return changes.find(pick)!;
}

/** Notifications the kernel dropped for this process's netlink sockets (their buffer was full). */
function netlinkDrops(): number {
  const ours = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) ours.add(match[1]!);
    } catch {
      // closed meanwhile
    }
  }
  // Columns: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
  return readFileSync('/proc/net/netlink', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((columns) => ours.has(columns[9]!))
    .reduce((sum, columns) => sum + Number(columns[8]), 0);
}

describe('linux-tap: live link state', () => {
  itPrivileged('follows an admin MTU change: writes are checked against the new MTU', async () => {
    // Down: the kernel sends nothing out of it in this namespace.
    const { dev, changes } = await watched(() => linuxTap.open({ name: uniqueName(), up: false }));
    await run('ip', ['link', 'set', 'dev', dev.name, 'mtu', '9000']);
    expect(await eventFor(changes, (c) => c.mtu?.to === 9000)).toEqual({ mtu: { from: 1500, to: 9000 } });
    expect(dev.mtu).toBe(9000);
    dev.write(frameOf(9014)); // the interface is down: dropped by the kernel, but accepted
    await run('ip', ['link', 'set', 'dev', dev.name, 'mtu', '1300']);
    await eventFor(changes, (c) => c.mtu?.to === 1300);
    expect(dev.mtu).toBe(1300);
    await expectTapError(() => dev.write(frameOf(1514)), TapErrorCode.FRAME_TOO_LARGE);
    dev.write(frameOf(1314));
    expect(dev.stats().txFrames + (dev.stats().drops['interfaceDown'] ?? 0)).toBe(2);
  });

  itPrivileged('follows an admin rename: name, multicast groups and stats go with it', async () => {
    const { dev, changes } = await watched(() => linuxTap.open({ name: uniqueName() }));
    const before = dev.name;
    const after = uniqueName('tkr');
    await run('ip', ['link', 'set', 'dev', before, 'down']);
    await run('ip', ['link', 'set', 'dev', before, 'name', after]);
    await run('ip', ['link', 'set', 'dev', after, 'up']);
    await eventFor(changes, (c) => c.name !== undefined);
    expect(changes.find((c) => c.name)!.name).toEqual({ from: before, to: after });
    expect(dev.name).toBe(after);
    await waitFor(
      async () => (await dev.multicastGroups()).length > 0,
      10_000,
      'groups on the renamed device',
    );
    expect(await dev.multicastGroups()).toContain('33:33:00:00:00:01');
  });

  itPrivileged('follows ip link set down/up, and setUp() changes the interface', async () => {
    const { dev, changes } = await watched(() => linuxTap.open({ name: uniqueName() }));
    expect(dev.up).toBe(true);
    await run('ip', ['link', 'set', 'dev', dev.name, 'down']);
    // (Down, the kernel also drops the link-local address: that may come in the same event.)
    expect((await eventFor(changes, (c) => c.up?.to === false)).up).toEqual({ from: true, to: false });
    expect(dev.up).toBe(false);
    await run('ip', ['link', 'set', 'dev', dev.name, 'up']);
    await eventFor(changes, (c) => c.up?.to === true);
    await dev.setUp(false);
    expect(Number(sys(dev.name, 'flags')) & 1).toBe(0);
    expect(dev.up).toBe(false);
    await dev.setMtu(2000);
    expect(sys(dev.name, 'mtu')).toBe('2000');
    dev.write(frameOf(2014));
  });

  itPrivileged(
    'follows ip addr add/del; adds several IPv4 addresses and a usable IPv6 one (inside a namespace)',
    async () => {
      const ns = await createNetns();
      const name = uniqueName();
      const [node, args] = fixtureCommand('link.ts', [name]);
      const out = JSON.parse(
        (await run('ip', ['netns', 'exec', ns.name, node, ...args], 60_000)).trim().split('\n').pop()!,
      ) as Record<string, unknown>;
      expect(out['atOpen']).toEqual(expect.arrayContaining(['10.200.9.1/24', 'fd00:209::1/64']));
      expect(out['openTentative']).toEqual([]); // fd00:209::1, added without DAD (the kernel's fe80:: is not ours)
      expect(out['adminChanges']).toEqual([
        { addresses: { added: ['10.200.9.2/24'], removed: [] } },
        { addresses: { added: [], removed: ['10.200.9.2/24'] } },
      ]);
      // Two IPv4 addresses added with no labels (each has the interface's name); IPv6 not tentative.
      expect(out['afterAdd']).toEqual(
        expect.arrayContaining([
          { local: '10.200.9.3', prefixlen: 24, label: name, flags: [] },
          { local: '10.200.10.4', prefixlen: 25, label: name, flags: [] },
          { local: 'fd00:209::5', prefixlen: 64, flags: [] },
        ]),
      );
      expect(out['setterChanges']).toEqual([
        { addresses: { added: ['10.200.9.3/24'], removed: [] } },
        { addresses: { added: ['10.200.10.4/25'], removed: [] } },
        { addresses: { added: ['fd00:209::5/64'], removed: [] } },
      ]);
      expect(out['duplicate']).toBe(TapErrorCode.INVALID_ARGUMENT);
      expect(out['removeAbsent']).toBe(TapErrorCode.INVALID_ARGUMENT);
      expect(out['afterRemove']).not.toContain('10.200.9.3/24');
      expect(out['afterRemove']).toContain('10.200.10.4/25');
      expect(out['ping6']).toBe(true);
      expect(out['upAfterSetUp']).toBe(false);
      expect(out['ipUp']).toBe(false);
      expect((out['upChanges'] as LinkChange[]).map((c) => c.up)).toEqual([
        { from: true, to: false },
        { from: false, to: true },
      ]);
      // Down, the kernel flushed the IPv6 addresses (IPv4 ones stay): the device says the same.
      expect(out['final']).toEqual(expect.arrayContaining(['10.200.9.1/24', '10.200.10.4/25']));
      expect(out['final']).not.toContain('fd00:209::5/64');
    },
  );

  itPrivileged(
    'reads the whole state again when notifications were lost (ENOBUFS), so a change among them is not missed',
    async () => {
      const { dev, changes } = await watched(() => linuxTap.open({ name: uniqueName(), up: false }));
      const bridge = uniqueName('tb'); // any interface to add addresses to
      await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
      onCleanup(async () => void (await run('ip', ['link', 'del', bridge])));
      // Thousands of notifications while this thread is blocked (spawnSync): the watcher's socket
      // buffer overflows, and the kernel drops the rest — the MTU change, last, among them.
      const batch = join(tmpdir(), `${bridge}.batch`);
      onCleanup(() => rmSync(batch, { force: true }));
      const lines = Array.from(
        { length: 4000 },
        (_, i) => `address add 10.250.${i >> 8}.${i & 255}/32 dev ${bridge}`,
      );
      writeFileSync(batch, [...lines, `link set dev ${dev.name} mtu 1400`, ''].join('\n'));
      const dropsBefore = netlinkDrops();
      expect(spawnSync('ip', ['-batch', batch]).status).toBe(0);
      expect(netlinkDrops()).toBeGreaterThan(dropsBefore); // the overflow happened
      expect(await eventFor(changes, (c) => c.mtu !== undefined)).toEqual({ mtu: { from: 1500, to: 1400 } });
      expect(dev.mtu).toBe(1400);
      // And the watcher goes on: a change after the overflow is seen as before.
      await run('ip', ['link', 'set', 'dev', dev.name, 'mtu', '1280']);
      await eventFor(changes, (c) => c.mtu?.to === 1280);
    },
    60_000,
  );

  itPrivileged('a tun follows its MTU too: packets are checked against it', async () => {
    const { dev, changes } = await watched(() => linuxTun.open({ name: uniqueName('tkt'), up: false }));
    await run('ip', ['link', 'set', 'dev', dev.name, 'mtu', '1280']);
    await eventFor(changes, (c) => c.mtu?.to === 1280);
    const packet = new Uint8Array(1281);
    packet[0] = 0x45;
    await expectTapError(() => dev.write(packet), TapErrorCode.FRAME_TOO_LARGE);
    dev.write(packet.subarray(0, 1280));
  });
});
