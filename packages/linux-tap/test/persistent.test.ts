/**
 * Persistent devices: prepared by root for a user, attached to by that user without any
 * privilege, and left in place when closed. Needs root (see itPrivileged).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TapErrorCode, formatMac } from '@tapkit/core';
import { describe, expect } from 'vitest';
import { linuxTap, preparePersistentTap, removePersistentTap } from '../src/index.js';
import {
  FIXTURES,
  type Netns,
  createNetns,
  expectTapError,
  fixtureCommand,
  interfaces,
  itPrivileged,
  onCleanup,
  run,
  stopChild,
  tsoEnabled,
  uniqueName,
  useCleanup,
  waitFor,
} from './helpers.js';

useCleanup();

const IFF_PERSIST = 0x0800;
const NOBODY = 65534;
const sys = (name: string, file: string): string =>
  readFileSync(`/sys/class/net/${name}/${file}`, 'utf8').trim();

/** A persistent device name, deleted after the test wherever it is (here or in `ns`). */
function persistentName(ns?: Netns): string {
  const name = uniqueName('tkp');
  onCleanup(async () => {
    await run('ip', ['link', 'del', name]).catch(() => undefined);
    if (ns) await ns.ip('link', 'del', name).catch(() => undefined);
  });
  return name;
}

/** Runs the persistent.ts fixture (optionally through a wrapper) and parses its last JSON line. */
async function fixture(args: string[], wrapper: string[] = []): Promise<Record<string, unknown>> {
  const [node, rest] = fixtureCommand('persistent.ts', args);
  const [file, ...argv] = [...wrapper, node, ...rest];
  const out = await run(file!, argv, 30_000);
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
}

/**
 * The command prefix that runs a program in `ns` as `uid` (no capabilities), where
 * /dev/net/tun is open to everyone as on most distributions. Where it is not (mode 0600),
 * the child gets a node of its own that is, bind-mounted over /dev/net/tun in the private
 * mount namespace `ip netns exec` makes: nothing changes outside.
 */
function asUser(ns: Netns, uid: number): string[] {
  const drop = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  const tun = statSync('/dev/net/tun');
  if ((tun.mode & 0o006) === 0o006) return ['ip', 'netns', 'exec', ns.name, ...drop];
  const dir = mkdtempSync(join(tmpdir(), 'tapkit-tun-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const node = join(dir, 'tun');
  const [major, minor] = [(tun.rdev >> 8) & 0xfff, (tun.rdev & 0xff) | ((tun.rdev >> 12) & 0xfff00)];
  return [
    ...['ip', 'netns', 'exec', ns.name, 'sh', '-c'],
    `mknod -m 666 "$0" c ${major} ${minor} && mount --bind "$0" /dev/net/tun && exec "$@"`,
    node,
    ...drop,
  ];
}

describe('linux-tap: persistent devices', () => {
  itPrivileged(
    'a user attaches to a device prepared for it, without privileges, and passes traffic',
    async () => {
      const readable = await run('setpriv', [
        ...[`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'],
        ...['test', '-r', `${FIXTURES}persistent.ts`],
      ]).then(
        () => true,
        () => false,
      );
      if (!readable) {
        console.warn(`skipped: ${FIXTURES} is not readable by other users`);
        return;
      }
      const ns = await createNetns();
      const name = persistentName(ns);
      const asRoot = ['ip', 'netns', 'exec', ns.name];
      // Prepared by root inside the namespace, for nobody (by name), with an address there.
      const prepared = await fixture(
        [
          'prepare',
          JSON.stringify({
            name,
            owner: 'nobody',
            mtu: 1400,
            mac: '02:00:00:00:30:01',
            addresses: ['10.200.7.1/24'],
          }),
        ],
        asRoot,
      );
      expect(prepared).toEqual({
        info: { name, mtu: 1400, mac: '02:00:00:00:30:01', owner: NOBODY },
      });
      const tunFlags = async (): Promise<number> =>
        Number(await ns.exec('cat', [`/sys/class/net/${name}/tun_flags`]));
      expect((await tunFlags()) & IFF_PERSIST).toBe(IFF_PERSIST);
      expect((await ns.exec('cat', [`/sys/class/net/${name}/owner`])).trim()).toBe(String(NOBODY));

      // Root left TSO on (an attach in offload mode); nobody's plain attach must turn it off.
      const offloaded = await fixture(
        ['attach', JSON.stringify({ name, attach: true, offload: true }), '0.0.0.0'],
        [...asRoot, 'sh', '-c', 'exec "$@" < /dev/null', 'sh'],
      );
      expect(offloaded).toMatchObject({ closed: true });
      expect(await tsoEnabled(name, ns)).toBe(true);

      // nobody attaches and answers ping from the namespace.
      const [node, args] = fixtureCommand('persistent.ts', [
        'attach',
        JSON.stringify({ name, attach: true }),
        '10.200.7.2',
      ]);
      const [file, ...argv] = [...asUser(ns, NOBODY), node, ...args];
      const child = spawn(file!, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
      onCleanup(() => stopChild(child));
      let output = '';
      child.stdout.on('data', (data: Buffer) => (output += data.toString()));
      const lines = (): Record<string, unknown>[] =>
        output
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as Record<string, unknown>);
      await waitFor(() => lines().length > 0, 20_000, 'the unprivileged child to attach');
      expect(lines()[0]).toEqual({
        ready: true,
        uid: NOBODY,
        capEff: '0000000000000000',
        mtu: 1400,
        mac: '02:00:00:00:30:01',
      });
      expect(await tsoEnabled(name, ns)).toBe(false);
      const out = await ns.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.200.7.2']);
      expect(out).toMatch(/3 packets transmitted, 3 received/);

      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.stdin.end();
      expect(await exited).toBe(0);
      expect(lines()[1]).toEqual({ closed: true, pings: 3 });

      // Another user may not attach; the error says who may.
      const refused = await fixture(
        ['attach', JSON.stringify({ name, attach: true }), '0.0.0.0'],
        asUser(ns, 12345),
      );
      expect(refused).toMatchObject({ error: { code: TapErrorCode.PERMISSION_DENIED } });
      expect((refused['error'] as { message: string }).message).toContain(`uid ${NOBODY}`);

      // Closing did not delete it; removing does.
      expect((await tunFlags()) & IFF_PERSIST).toBe(IFF_PERSIST);
      expect(await fixture(['remove', name], asRoot)).toEqual({ removed: true });
      expect(await ns.exec('ls', ['/sys/class/net'])).not.toContain(name);
      expect(await fixture(['remove', name], asRoot)).toEqual({ removed: false });
    },
    60_000,
  );

  itPrivileged(
    'attach keeps the prepared settings, changes what is asked, and leaves the device on close',
    async () => {
      const name = persistentName();
      const info = await preparePersistentTap({ name, owner: 0, group: 'root', mtu: 1400, up: false });
      expect(info).toMatchObject({ name, mtu: 1400, owner: 0, group: 0 });
      expect(Number(sys(name, 'tun_flags')) & IFF_PERSIST).toBe(IFF_PERSIST);
      expect([sys(name, 'owner'), sys(name, 'group')]).toEqual(['0', '0']);

      const a = await linuxTap.open({ name, attach: true });
      expect([a.mtu, formatMac(a.mac), a.capabilities.offload]).toEqual([1400, info.mac, false]);
      expect(Number(sys(name, 'flags')) & 1).toBe(0); // still down, as prepared
      await expectTapError(() => linuxTap.open({ name, attach: true }), TapErrorCode.NAME_IN_USE);
      await a.close();
      expect(interfaces()).toContain(name);

      const b = await linuxTap.open({ name, attach: true, mtu: 1300, up: true, offload: true });
      expect([b.mtu, sys(name, 'mtu'), b.capabilities.offload]).toEqual([1300, '1300', true]);
      expect(Number(sys(name, 'flags')) & 1).toBe(1);
      expect(await tsoEnabled(name)).toBe(true);
      await b.close();
      expect(await tsoEnabled(name)).toBe(true); // offloads outlive the fd…
      const c = await linuxTap.open({ name, attach: true });
      expect(await tsoEnabled(name)).toBe(false); // …so a plain attach turns them off
      await c.close();

      expect(await removePersistentTap(name)).toBe(true);
      expect(interfaces()).not.toContain(name);
      expect(await removePersistentTap(name)).toBe(false);
    },
  );

  itPrivileged('a multi-queue persistent device takes one queue or several', async () => {
    const name = persistentName();
    await preparePersistentTap({ name, owner: 0, multiQueue: true, up: false });
    const one = await linuxTap.open({ name, attach: true });
    await one.close();
    const three = await linuxTap.open({ name, attach: true, queues: 3 });
    await three.close();
    expect(Number(sys(name, 'tun_flags')) & (IFF_PERSIST | 0x0100)).toBe(IFF_PERSIST | 0x0100);
    expect(await removePersistentTap(name)).toBe(true);
  });

  itPrivileged('refuses what cannot be attached to, prepared or removed, with clear codes', async () => {
    await expectTapError(() => linuxTap.open({ attach: true }), TapErrorCode.INVALID_OPTION);
    const missing = uniqueName();
    const gone = await expectTapError(
      () => linuxTap.open({ name: missing, attach: true }),
      TapErrorCode.DEVICE_GONE,
    );
    expect(gone.message).toContain('preparePersistentTap');
    expect(interfaces()).not.toContain(missing);
    await expectTapError(() => linuxTap.open({ name: 'lo', attach: true }), TapErrorCode.INVALID_OPTION);
    await expectTapError(
      () => linuxTap.open({ name: 'x', attach: 'yes' as unknown as boolean }),
      TapErrorCode.INVALID_OPTION,
    );

    // A device that is not persistent: one queue is taken (EBUSY); a multi-queue one is refused
    // after a look, and keeps working.
    const single = await linuxTap.open({ name: uniqueName(), up: false });
    onCleanup(() => single.close());
    await expectTapError(() => linuxTap.open({ name: single.name, attach: true }), TapErrorCode.NAME_IN_USE);
    const multi = await linuxTap.open({ name: uniqueName(), queues: 2, up: false });
    onCleanup(() => multi.close());
    await expectTapError(
      () => linuxTap.open({ name: multi.name, attach: true }),
      TapErrorCode.INVALID_OPTION,
    );
    expect(multi.closed).toBe(false);
    expect(multi.write(new Uint8Array(60).fill(0xff, 0, 12))).toBe(true);

    await expectTapError(() => preparePersistentTap({ name: uniqueName() }), TapErrorCode.INVALID_OPTION);
    await expectTapError(
      () => preparePersistentTap({ name: uniqueName(), owner: 'no-such-user-tapkit' }),
      TapErrorCode.INVALID_OPTION,
    );
    await expectTapError(
      () => preparePersistentTap({ name: uniqueName(), owner: -1 }),
      TapErrorCode.INVALID_OPTION,
    );
    await expectTapError(
      () => preparePersistentTap({ name: single.name, owner: 0 }),
      TapErrorCode.NAME_IN_USE,
    );
    await expectTapError(() => removePersistentTap(single.name), TapErrorCode.NAME_IN_USE);
    await expectTapError(() => removePersistentTap(multi.name), TapErrorCode.INVALID_OPTION);
    await expectTapError(() => removePersistentTap('lo'), TapErrorCode.INVALID_OPTION);
    expect(await removePersistentTap(missing)).toBe(false);
  });
});
