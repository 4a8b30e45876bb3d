import { chmodSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TapErrorCode, type TapDevice } from '@tapkit/core';
import { cleanupStalePairs, listTapkitInterfaces, pairForSlot } from '../src/index.js';
import { StateStore, type PairRecord } from '../src/state.js';
import { simulated } from './helpers.js';

type Sim = ReturnType<typeof simulated>;
const sims: Sim[] = [];
const devices: TapDevice[] = [];

function sim(options?: Parameters<typeof simulated>[0]): Sim {
  const s = simulated(options);
  sims.push(s);
  return s;
}

afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.close().catch(() => undefined)));
  for (const s of sims.splice(0)) s.runtime.remove();
});

const USER_MAC = '02:aa:00:00:00:01';
const IO_MAC = '02:bb:00:00:00:01';

function mac(text: string): Uint8Array {
  return Uint8Array.from(text.split(':'), (h) => parseInt(h, 16));
}

interface Leftover {
  /** The owner: alive, dead, or a reused pid (a live process that started later). */
  owner?: 'alive' | 'dead' | 'reused';
  /** Which members exist, and how they look. */
  user?: 'ours' | 'default' | 'absent' | 'foreign' | 'renamed-mac';
  io?: 'ours' | 'default' | 'absent';
}

/** What a tapkit process that is gone (or not) left in slot `slot`: a record and interfaces. */
function leave(s: Sim, slot: number, how: Leftover = {}): { user: string; io: string; pid: number } {
  const { user, io } = pairForSlot(slot);
  const started = 1_600_000_000_000 + slot;
  const pid = s.kernel.spawnProcess(started);
  if (how.owner === 'dead' || how.owner === undefined) s.kernel.processes.delete(pid);
  if (how.owner === 'reused') s.kernel.processes.set(pid, started + 5000);
  new StateStore(s.runtime.dir).claim({
    version: 1,
    backend: 'darwin-feth',
    slot,
    user,
    io,
    userMac: USER_MAC,
    ioMac: IO_MAC,
    pid,
    processStart: started,
    createdAt: new Date(started).toISOString(),
  });
  const k = s.kernel;
  const ioHow = how.io ?? 'ours';
  const userHow = how.user ?? 'ours';
  if (ioHow !== 'absent') {
    k.createInterface(io);
    if (ioHow === 'ours') k.setMac(io, mac(IO_MAC));
  }
  if (userHow !== 'absent') {
    k.createInterface(user);
    if (userHow === 'ours') k.setMac(user, mac(USER_MAC));
    if (userHow === 'foreign' || userHow === 'renamed-mac') k.setMac(user, mac('02:cc:00:00:00:09'));
    if (userHow !== 'foreign' && ioHow !== 'absent') k.setPeer(io, user);
  }
  k.calls.length = 0;
  return { user, io, pid };
}

describe('cleanupStalePairs', () => {
  it('removes the pair of a dead owner: I/O member, user-facing member, record', async () => {
    const s = sim();
    leave(s, 3);
    const report = await cleanupStalePairs({ system: s.kernel, runtimeDir: s.runtime.dir });
    expect(s.kernel.calls).toEqual(['destroy feth20003', 'destroy feth10003']);
    expect(s.runtime.stateFiles()).toEqual([]);
    expect(report.removed).toMatchObject([
      { name: 'feth10003', ioName: 'feth20003', owner: 'dead', user: 'present', io: 'present' },
    ]);
    expect(report).toMatchObject({ dryRun: false, active: [], unreadable: [], errors: [] });
  });

  it('leaves pairs of live owners alone, and removes those whose pid now belongs to another process', async () => {
    const s = sim();
    leave(s, 1, { owner: 'alive' });
    leave(s, 2, { owner: 'reused' });
    const report = await cleanupStalePairs({ system: s.kernel, runtimeDir: s.runtime.dir });
    expect(report.active.map((p) => [p.name, p.owner])).toEqual([['feth10001', 'alive']]);
    expect(report.removed.map((p) => p.name)).toEqual(['feth10002']);
    expect(s.kernel.feths().sort()).toEqual(['feth10001', 'feth20001']);
    expect(s.runtime.stateFiles()).toEqual(['feth10001.json']);
  });

  it('never removes a pair on a guess: unknown start times and unreadable processes count as alive', async () => {
    const s = sim();
    const { pid } = leave(s, 12, { owner: 'alive' });
    const store = new StateStore(s.runtime.dir);
    const record = JSON.parse(readFileSync(join(store.dir, 'feth10012.json'), 'utf8')) as PairRecord;
    store.remove('feth10012');
    store.claim({ ...record, processStart: 0 });
    s.kernel.processes.set(pid, 1); // some live process has the pid: the recorded start is unknown
    expect((await cleanupStalePairs({ system: s.kernel, runtimeDir: s.runtime.dir })).active).toHaveLength(1);
    s.kernel.processStartTime = (p: number) => {
      if (p === pid) throw new Error('sysctl failed');
      return s.kernel.processes.get(p);
    };
    store.remove('feth10012');
    store.claim(record);
    expect((await cleanupStalePairs({ system: s.kernel, runtimeDir: s.runtime.dir })).active).toHaveLength(1);
    expect(s.kernel.feths()).toContain('feth10012');
  });

  it('with dryRun, reports what it would remove and changes nothing', async () => {
    const s = sim();
    leave(s, 4);
    const report = await cleanupStalePairs({ system: s.kernel, runtimeDir: s.runtime.dir, dryRun: true });
    expect(report.removed.map((p) => p.name)).toEqual(['feth10004']);
    expect(report.dryRun).toBe(true);
    expect(s.kernel.calls).toEqual([]);
    expect(s.runtime.stateFiles()).toEqual(['feth10004.json']);
  });

  it.each<[string, Leftover, string[]]>([
    [
      'created but never configured (kernel default MACs)',
      { user: 'default', io: 'default' },
      ['destroy feth20005', 'destroy feth10005'],
    ],
    [
      'whose user-facing MAC was changed but which is still peered',
      { user: 'renamed-mac' },
      ['destroy feth20005', 'destroy feth10005'],
    ],
    ['whose I/O member is already gone', { io: 'absent' }, ['destroy feth10005']],
  ])('removes a pair %s', async (_, how, calls) => {
    const s = sim();
    leave(s, 5, how);
    await cleanupStalePairs({ system: s.kernel, runtimeDir: s.runtime.dir });
    expect(s.kernel.calls).toEqual(calls);
    expect(s.runtime.stateFiles()).toEqual([]);
  });

  it('never destroys an interface that is no longer the one tapkit made', async () => {
    const s = sim();
    leave(s, 6, { user: 'foreign' }); // feth10006 now has another MAC and no peering with ours
    const report = await cleanupStalePairs({ system: s.kernel, runtimeDir: s.runtime.dir });
    expect(s.kernel.calls).toEqual(['destroy feth20006']);
    expect(s.kernel.feths()).toEqual(['feth10006']);
    expect(report.removed).toMatchObject([{ name: 'feth10006', user: 'foreign', io: 'present' }]);
    expect(s.runtime.stateFiles()).toEqual([]);
  });

  it('never touches feth interfaces it has no record of, nor files that are not records', async () => {
    const s = sim();
    s.kernel.createInterface('feth10007');
    s.kernel.createInterface('feth20007');
    s.kernel.createInterface('feth42');
    leave(s, 8);
    const dir = join(s.runtime.dir, 'darwin-feth');
    writeFileSync(join(dir, 'feth10009.json'), '{ "half a reco');
    writeFileSync(join(dir, 'feth10010.json'), JSON.stringify({ version: 1, backend: 'other' }));
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    const report = await cleanupStalePairs({ system: s.kernel, runtimeDir: s.runtime.dir });
    expect(s.kernel.calls).toEqual(['destroy feth20008', 'destroy feth10008']);
    expect(s.kernel.feths().sort()).toEqual(['feth10007', 'feth20007', 'feth42']);
    expect(report.unreadable.map((u) => [u.file.slice(dir.length + 1), u.problem.split(':')[0]])).toEqual([
      ['feth10009.json', 'unreadable'],
      ['feth10010.json', 'not a darwin-feth pair record'],
    ]);
    expect(s.runtime.stateFiles()).toEqual(['feth10009.json', 'feth10010.json', 'notes.txt']);
  });

  it('reports that root is needed, and keeps the record, when it may not destroy', async () => {
    const s = sim();
    leave(s, 11);
    s.kernel.root = false;
    const report = await cleanupStalePairs({ system: s.kernel, runtimeDir: s.runtime.dir });
    expect(report.removed).toEqual([]);
    expect(report.errors.map((e) => e.code)).toEqual([
      TapErrorCode.PERMISSION_DENIED,
      TapErrorCode.PERMISSION_DENIED,
    ]);
    expect(s.runtime.stateFiles()).toEqual(['feth10011.json']);
  });

  it('is a no-op when the runtime directory does not exist', async () => {
    const s = sim();
    const report = await cleanupStalePairs({ system: s.kernel, runtimeDir: join(s.runtime.dir, 'missing') });
    expect(report).toMatchObject({ removed: [], active: [], unreadable: [], errors: [] });
  });
});

describe('open and stale pairs', () => {
  it('removes a dead process’s pairs first, so their names are free again', async () => {
    const s = sim();
    leave(s, 0);
    const device = await s.open();
    devices.push(device);
    expect(device.name).toBe('feth10000');
    expect(s.kernel.calls.slice(0, 3)).toEqual([
      'destroy feth20000',
      'destroy feth10000',
      'create feth10000',
    ]);
  });

  it('skips a slot a live tapkit process holds', async () => {
    const s = sim();
    leave(s, 0, { owner: 'alive' });
    const device = await s.open();
    devices.push(device);
    expect(device.name).toBe('feth10001');
  });
});

describe('listTapkitInterfaces', () => {
  it('lists recorded pairs with their owner and whether they exist', async () => {
    const s = sim();
    const device = await s.open({ networkId: 'office', mtu: 1400 });
    devices.push(device);
    leave(s, 20, { owner: 'alive' });
    leave(s, 21, { io: 'absent', user: 'absent' });
    const pairs = await listTapkitInterfaces({ system: s.kernel, runtimeDir: s.runtime.dir });
    expect(pairs.map((p) => [p.name, p.owner, p.user, p.io])).toEqual(
      [
        [device.name, 'self', 'present', 'present'],
        ['feth10020', 'alive', 'present', 'present'],
        ['feth10021', 'dead', 'absent', 'absent'],
      ].sort((a, b) => a[0]!.localeCompare(b[0]!)),
    );
    const own = pairs.find((p) => p.owner === 'self')!;
    expect(own).toMatchObject({
      networkId: 'office',
      mtu: 1400,
      pid: process.pid,
      ioName: device.name.replace('feth1', 'feth2'),
    });
    expect(own.mac).toBe([...device.mac].map((b) => b.toString(16).padStart(2, '0')).join(':'));
    expect(s.kernel.calls.filter((c) => c.startsWith('destroy'))).toEqual([]); // listing changes nothing
  });
});

describe('trusting only its own records', () => {
  it('acts on no record others could have written, nor one behind a link: reported, their interfaces kept', async () => {
    const s = sim();
    leave(s, 12); // a stale pair of its own: still cleaned up
    leave(s, 13);
    leave(s, 14);
    const dir = join(s.runtime.dir, 'darwin-feth');
    chmodSync(join(dir, 'feth10013.json'), 0o666); // anyone could have written it
    renameSync(join(dir, 'feth10014.json'), join(s.runtime.dir, 'planted.json'));
    symlinkSync(join(s.runtime.dir, 'planted.json'), join(dir, 'feth10014.json'));
    const report = await cleanupStalePairs({ system: s.kernel, runtimeDir: s.runtime.dir });
    expect(s.kernel.calls).toEqual(['destroy feth20012', 'destroy feth10012']);
    expect(s.kernel.feths()).toEqual(
      expect.arrayContaining(['feth10013', 'feth20013', 'feth10014', 'feth20014']),
    );
    expect(report.unreadable.map((u) => [u.file.slice(dir.length + 1), u.problem])).toEqual([
      ['feth10013.json', 'not trusted: it is writable by others (mode 666)'],
      ['feth10014.json', 'not trusted: it is a symbolic link'],
    ]);
  });

  it('refuses a runtime directory others can write to, or one behind a link: ERR_TAP_INVALID_OPTION, nothing touched', async () => {
    const s = sim();
    leave(s, 15);
    const cleanup = () => cleanupStalePairs({ system: s.kernel, runtimeDir: s.runtime.dir });
    chmodSync(s.runtime.dir, 0o777);
    await expect(cleanup()).rejects.toMatchObject({ code: TapErrorCode.INVALID_OPTION });
    const refused = await s.open().catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: TapErrorCode.INVALID_OPTION });
    expect((refused as Error).message).toMatch(/writable by others \(mode 777\)/);
    chmodSync(s.runtime.dir, 0o755);
    const dir = join(s.runtime.dir, 'darwin-feth');
    renameSync(dir, join(s.runtime.dir, 'elsewhere'));
    symlinkSync(join(s.runtime.dir, 'elsewhere'), dir);
    await expect(cleanup()).rejects.toMatchObject({ code: TapErrorCode.INVALID_OPTION });
    expect(s.kernel.calls).toEqual([]);
    expect(s.kernel.feths()).toEqual(expect.arrayContaining(['feth10015', 'feth20015']));
  });
});
