// The judging half of `tapkit list` and `cleanup`, on hand-made inputs: runs on any OS, no
// privileges. The reading half is tested against the real kernel in cli-linux.test.ts.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanupDarwin } from '../src/system/cleanup.js';
import {
  describeDarwin,
  listDarwinInterfaces,
  parseIfconfig,
  type FethModule,
} from '../src/system/darwin.js';
import { describeLinux, type LinuxSystem, type RawLink } from '../src/system/linux.js';

function link(name: string, fields: Partial<RawLink> = {}): RawLink {
  return {
    name,
    ifindex: 1,
    iflink: fields.ifindex ?? 1,
    type: 1,
    flags: 0x1003,
    mtu: 1500,
    mac: '02:00:00:00:00:01',
    alias: '',
    tunFlags: undefined,
    hardware: false,
    devtype: undefined,
    kind: undefined,
    peer: undefined,
    master: undefined,
    addresses: [],
    ...fields,
  };
}

describe('describeLinux', () => {
  const system: LinuxSystem = {
    links: [
      link('lo', { ifindex: 1, type: 772, addresses: ['127.0.0.1/8'] }),
      link('eth0', { ifindex: 2, hardware: true, addresses: ['192.0.2.2/24'] }),
      link('tap0', { ifindex: 3, tunFlags: 0x1002, addresses: ['10.0.0.1/24'] }),
      link('tun0', { ifindex: 4, tunFlags: 0x1001, flags: 0x1002 }),
      link('keep0', { ifindex: 5, tunFlags: 0x1802, alias: 'tapkit:linux-tap persistent' }),
      link('vm0', { ifindex: 6, tunFlags: 0x1802, alias: 'tapkit:linux-tap persistent pid=77 start=5' }),
      link('va', { ifindex: 7, iflink: 8, kind: 'veth', master: 'br0' }),
      link('vb', { ifindex: 8, iflink: 7 }), // no ip: kind unknown, so no peer either
      link('vc', { ifindex: 9, iflink: 42, kind: 'veth' }), // peer in another namespace
      link('br0', { ifindex: 10, devtype: 'bridge' }),
      link('wlan0', { ifindex: 11, hardware: true, devtype: 'wlan' }),
    ],
    holders: [
      // tap0 is held here by a tapkit process; a process elsewhere holds its own tap0.
      { pid: 100, command: 'node', iff: 'tap0', sameNetns: true, namesInItsNetns: undefined, tapkit: true },
      {
        pid: 200,
        command: 'qemu',
        iff: 'tap0',
        sameNetns: false,
        namesInItsNetns: ['lo', 'tap0'],
        tapkit: false,
      },
      // tun0 was moved here out of pid 300's namespace: its fd still counts.
      { pid: 300, command: 'vpnd', iff: 'tun0', sameNetns: false, namesInItsNetns: ['lo'], tapkit: false },
    ],
    holdersComplete: false,
    ipAvailable: true,
  };
  const list = describeLinux(system, new Map([['vm0', false]]));
  const byName = new Map(list.interfaces.map((e) => [e.name, e]));

  it('tells kinds apart, and which are virtual', () => {
    expect(list.interfaces.map((e) => [e.name, e.kind, e.virtual])).toEqual([
      ['lo', 'loopback', false],
      ['eth0', 'physical', false],
      ['tap0', 'tap', true],
      ['tun0', 'tun', true],
      ['keep0', 'tap', true],
      ['vm0', 'tap', true],
      ['va', 'veth', true],
      ['vb', 'virtual', true],
      ['vc', 'veth', true],
      ['br0', 'bridge', true],
      ['wlan0', 'physical', false],
    ]);
    expect(byName.get('va')).toMatchObject({ peer: 'vb', master: 'br0' });
    expect(byName.get('vc')?.peer).toBe('#42');
    expect(byName.get('tun0')?.up).toBe(false);
  });

  it('finds the owners of tun/tap devices in this namespace only', () => {
    expect(byName.get('tap0')?.owners).toEqual([{ pid: 100, command: 'node', tapkit: true }]);
    expect(byName.get('tun0')?.owners).toEqual([{ pid: 300, command: 'vpnd', tapkit: false }]);
    expect(byName.get('keep0')?.owners).toEqual([]);
    expect(byName.get('eth0')?.owners).toBeUndefined();
  });

  it("marks tapkit's interfaces, by alias or by the process that holds them", () => {
    expect(byName.get('tap0')?.tapkit).toEqual({
      backend: 'linux-tap',
      evidence: 'process',
      persistent: false,
    });
    expect(byName.get('tun0')?.tapkit).toBeUndefined();
    expect(byName.get('keep0')?.tapkit).toEqual({
      backend: 'linux-tap',
      evidence: 'alias',
      persistent: true,
    });
    expect(byName.get('vm0')?.tapkit).toEqual({
      backend: 'linux-tap',
      evidence: 'alias',
      persistent: true,
      ownerPid: 77,
      owner: 'dead',
    });
    expect(list.notes.join(' ')).toMatch(/run as root/);
  });
});

describe('macOS interfaces (ifconfig output written from its sources; not yet from a real Mac)', () => {
  const output = readFileSync(new URL('./fixtures/ifconfig-macos.txt', import.meta.url), 'utf8');
  const pairs = [
    { name: 'feth10042', ioName: 'feth20042', pid: 321, owner: 'alive', user: 'present', io: 'present' },
    { name: 'feth10043', ioName: 'feth20043', pid: 654, owner: 'dead', user: 'present', io: 'absent' },
  ] as const;

  it('parses ifconfig -a', () => {
    const entries = parseIfconfig(output);
    expect(entries.map((e) => e.name)).toEqual([
      'lo0',
      'en0',
      'awdl0',
      'bridge0',
      'en1',
      'utun3',
      'feth1000',
      'feth6000',
      'feth10042',
      'feth20042',
      'feth10043',
    ]);
    expect(entries[1]).toMatchObject({
      mtu: 1500,
      mac: '3c:22:fb:11:22:33',
      addresses: ['fe80::1c8f:5a1e:9a3b:77f1/64', '192.168.1.23/24'],
    });
    expect(entries[6]).toMatchObject({
      metric: 5000,
      mtu: 2800,
      peer: 'feth6000',
      addresses: ['172.27.1.9/16'],
    });
    expect(entries[3]?.members).toEqual(['en1', 'en2']);
    expect(entries[10]?.peer).toBeUndefined();
  });

  it("tells kinds apart, and marks tapkit's feth pairs from darwin-feth's records", () => {
    const list = describeDarwin(parseIfconfig(output), pairs);
    const byName = new Map(list.interfaces.map((e) => [e.name, e]));
    expect(byName.get('lo0')).toMatchObject({ kind: 'loopback', virtual: false });
    expect(byName.get('en0')).toMatchObject({ kind: 'physical', virtual: false, up: true });
    expect(byName.get('en1')).toMatchObject({ kind: 'physical', master: 'bridge0' });
    expect(byName.get('awdl0')).toMatchObject({ kind: 'awdl', virtual: true });
    expect(byName.get('utun3')).toMatchObject({ kind: 'utun', virtual: true });
    // ZeroTier's pair: a feth pair, not tapkit's.
    expect(byName.get('feth1000')).toMatchObject({ kind: 'feth', peer: 'feth6000', metric: 5000 });
    expect(byName.get('feth1000')?.tapkit).toBeUndefined();
    expect(byName.get('feth10042')?.tapkit).toEqual({
      backend: 'darwin-feth',
      evidence: 'record',
      ownerPid: 321,
      owner: 'alive',
      role: 'user',
    });
    expect(byName.get('feth20042')?.tapkit?.role).toBe('io');
    expect(byName.get('feth10043')).toMatchObject({ peer: 'feth20043', tapkit: { owner: 'dead' } });
  });

  it('lists without darwin-feth installed, and says so', async () => {
    const list = await listDarwinInterfaces({ ifconfig: async () => output, feth: async () => undefined });
    expect(list.interfaces).toHaveLength(11);
    expect(list.interfaces.some((e) => e.tapkit)).toBe(false);
    expect(list.notes.join(' ')).toMatch(/darwin-feth is not installed/);
  });

  it("cleanup is darwin-feth's stale-pair sweep, dry run passed through", async () => {
    const calls: unknown[] = [];
    const feth: FethModule = {
      listTapkitInterfaces: async () => [],
      cleanupStalePairs: async (options) => {
        calls.push(options);
        return {
          removed: [{ name: 'feth10043', ioName: 'feth20043', pid: 654 }],
          active: [{ name: 'feth10042', ioName: 'feth20042', pid: 321 }],
          unreadable: [{ file: '/var/run/tapkit/darwin-feth/x.json', problem: 'not JSON' }],
          errors: [{ code: 'ERR_TAP_PERMISSION_DENIED', message: 'destroy feth10044: permission denied' }],
        };
      },
    };
    const result = await cleanupDarwin({ dryRun: true, feth: async () => feth });
    expect(calls).toEqual([{ dryRun: true }]);
    expect(result.removed).toEqual([
      {
        name: 'feth10043',
        backend: 'darwin-feth',
        peer: 'feth20043',
        ownerPid: 654,
        reason: 'its owner, process 654, is gone',
      },
    ]);
    expect(result.kept.map((k) => k.name)).toEqual(['feth10042']);
    expect(result.failed).toEqual([
      { code: 'ERR_TAP_PERMISSION_DENIED', message: 'destroy feth10044: permission denied' },
    ]);
    expect(result.notes[0]).toMatch(/x\.json \(not JSON\)/);
    const none = await cleanupDarwin({ dryRun: false, feth: async () => undefined });
    expect(none.removed).toEqual([]);
    expect(none.notes[0]).toMatch(/not installed/);
  });
});
