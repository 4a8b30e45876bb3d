import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatMac, isTapError, TapErrorCode, type TapDevice, type TapErrorCodeValue } from '@tapkit/core';
import { slotForNetworkId, type DarwinFethOptions } from '../src/index.js';
import { sysError } from './kernel.js';
import { simulated } from './helpers.js';

type Sim = ReturnType<typeof simulated>;
const sims: Sim[] = [];
const devices: TapDevice[] = [];

function sim(options?: Parameters<typeof simulated>[0]): Sim {
  const s = simulated(options);
  sims.push(s);
  return s;
}

async function open(s: Sim, options?: DarwinFethOptions): Promise<TapDevice> {
  const device = await s.open(options);
  devices.push(device);
  return device;
}

async function rejects(promise: Promise<unknown>, code: TapErrorCodeValue, message?: RegExp): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isTapError(error)) throw new Error(`expected a TapError ${code}, got ${String(error)}`);
  expect(error.code).toBe(code);
  if (message) expect(error.message).toMatch(message);
}

/** Nothing of tapkit's is left: no feth, no BPF device, no state file, no exit cleanup. */
function expectNothingLeft(s: Sim, except: string[] = []): void {
  expect(s.kernel.feths().filter((n) => !except.includes(n))).toEqual([]);
  expect(s.kernel.bpfOpen).toBe(0);
  expect(s.runtime.stateFiles()).toEqual([]);
  expect(s.exitCleanup.size).toBe(0);
}

afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.close().catch(() => undefined)));
  for (const s of sims.splice(0)) s.runtime.remove();
});

describe('the setup sequence', () => {
  it('raises the MTU ceiling, creates, peers, configures, then opens BPF and NDRV on the I/O member', async () => {
    const s = sim();
    const device = await open(s, {
      mtu: 9000,
      mac: '02:00:00:00:00:01',
      addresses: ['10.9.0.1/24', 'fd00:9::1/64'],
      metric: 7000,
    });
    expect(device.name).toBe('feth10000');
    const ioMac = formatMac(s.kernel.interfaces.get('feth20000')!.mac!);
    expect(s.kernel.calls).toEqual([
      'sysctl net.link.fake.max_mtu=9000',
      'create feth10000',
      'create feth20000',
      'peer feth20000 feth10000',
      'mtu feth10000 9000',
      'mtu feth20000 9000',
      'mac feth10000 02:00:00:00:00:01',
      `mac feth20000 ${ioMac}`,
      'metric feth10000 7000',
      'up feth20000',
      'addr feth10000 10.9.0.1/24',
      'addr feth10000 fd000009000000000000000000000001/64',
      'up feth10000',
      'bpf feth20000',
      'ndrv feth20000 sndbuf=9216', // 9000 + 18 > 8192: raised, rounded up to 1 KiB
    ]);
    const user = s.kernel.interfaces.get('feth10000')!;
    expect(user).toMatchObject({ mtu: 9000, metric: 7000, up: true });
    expect(user.peer?.name).toBe('feth20000');
    expect(device.mtu).toBe(9000);
    expect(formatMac(device.mac)).toBe('02:00:00:00:00:01');
    expect(device.capabilities).toMatchObject({ layer: 2, minMtu: 72, maxMtu: 16370, osInterface: true });

    s.kernel.calls.length = 0;
    await device.close();
    expect(s.kernel.calls).toEqual(['destroy feth20000', 'destroy feth10000']);
    expectNothingLeft(s);
  });

  it('records the pair while it exists, with its owner and MACs', async () => {
    const s = sim();
    const device = await open(s, { networkId: 'lab', mac: '02:00:00:00:00:02' });
    const [file] = s.runtime.stateFiles();
    expect(file).toBe(`${device.name}.json`);
    const record = JSON.parse(readFileSync(join(s.runtime.dir, 'darwin-feth', file!), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(record).toMatchObject({
      version: 1,
      backend: 'darwin-feth',
      user: device.name,
      io: device.name.replace('feth1', 'feth2'),
      userMac: '02:00:00:00:00:02',
      pid: process.pid,
      processStart: s.kernel.processStartTime(process.pid),
      networkId: 'lab',
    });
    expect(record['ioMac']).toBe(formatMac(s.kernel.interfaces.get(record['io'] as string)!.mac!));
    await device.close();
    expect(s.runtime.stateFiles()).toEqual([]);
  });

  it('leaves the MTU ceiling alone when it is high enough, and does not lower it after', async () => {
    const s = sim({ maxMtuSysctl: 9000 });
    await (await open(s, { mtu: 4000 })).close();
    await (await open(s, { mtu: 1500 })).close();
    expect(s.kernel.calls.filter((c) => c.startsWith('sysctl'))).toEqual([]);
    expect(s.kernel.sysctlGet('net.link.fake.max_mtu')).toBe(9000);
  });

  it('keeps the NDRV send buffer at its default while the largest frame fits in 8 KiB', async () => {
    const s = sim({ maxMtuSysctl: 16370 });
    await (await open(s, { mtu: 8174 })).close(); // 8174 + 18 = 8192
    await (await open(s, { mtu: 8175 })).close();
    expect(s.kernel.calls.filter((c) => c.startsWith('ndrv'))).toEqual([
      'ndrv feth20000 sndbuf=8192',
      'ndrv feth20000 sndbuf=9216',
    ]);
  });

  it('registers the pair for removal at exit while it is open', async () => {
    const s = sim();
    const device = await open(s);
    expect(s.exitCleanup.size).toBe(1);
    for (const event of ['exit', 'SIGINT', 'SIGTERM', 'SIGHUP']) expect(s.proc.listenerCount(event)).toBe(1);
    await device.close();
    for (const event of ['exit', 'SIGINT', 'SIGTERM', 'SIGHUP']) expect(s.proc.listenerCount(event)).toBe(0);
  });

  it('sets the user-facing member down last when up is false, even after an IPv4 address brought it up', async () => {
    const s = sim();
    await open(s, { up: false, addresses: ['10.9.0.1/24'] });
    expect(s.kernel.calls.slice(-3)).toEqual([
      'down feth10000',
      'bpf feth20000',
      'ndrv feth20000 sndbuf=8192',
    ]);
    expect(s.kernel.interfaces.get('feth10000')!.up).toBe(false);
    expect(s.kernel.interfaces.get('feth20000')!.up).toBe(true);
  });
});

describe('naming', () => {
  it('takes the lowest free pair, skipping pairs that exist', async () => {
    const s = sim();
    s.kernel.createInterface('feth20001'); // someone else's, in the I/O half of slot 1
    const a = await open(s);
    const b = await open(s);
    expect([a.name, b.name]).toEqual(['feth10000', 'feth10002']);
    await Promise.all([a.close(), b.close()]);
    expectNothingLeft(s, ['feth20001']);
  });

  it('derives a stable name from a network id, and the next free one when it is taken', async () => {
    const s = sim();
    const slot = slotForNetworkId('8056c2e21c000001');
    const expected = `feth${10000 + slot}`;
    const first = await open(s, { networkId: '8056c2e21c000001' });
    expect(first.name).toBe(expected);
    const second = await open(s, { networkId: 0x8056c2e21c000001n }); // the same id as a bigint
    expect(second.name).toBe(`feth${10000 + ((slot + 1) % 10000)}`);
    await first.close();
    const again = await open(s, { networkId: '8056c2e21c000001' });
    expect(again.name).toBe(expected);
  });

  it('opens the asked-for name, and refuses a taken one', async () => {
    const s = sim();
    const device = await open(s, { name: 'feth10042' });
    expect(device.name).toBe('feth10042');
    expect(s.kernel.interfaces.get('feth20042')?.peer?.name).toBe('feth10042');
    await rejects(open(s, { name: 'feth10042' }), TapErrorCode.NAME_IN_USE);
    s.kernel.createInterface('feth10043');
    await rejects(open(s, { name: 'feth10043' }), TapErrorCode.NAME_IN_USE);
    expect(s.kernel.feths().sort()).toEqual(['feth10042', 'feth10043', 'feth20042']);
  });

  it('moves to the next pair when another program creates a name first (EEXIST)', async () => {
    const s = sim();
    const create = s.kernel.createInterface.bind(s.kernel);
    let raced = false;
    s.kernel.createInterface = (name: string) => {
      if (name === 'feth20000' && !raced) {
        raced = true;
        create('feth20000'); // the other program wins the race
      }
      create(name);
    };
    const device = await open(s);
    expect(device.name).toBe('feth10001');
    await device.close();
    expectNothingLeft(s, ['feth20000']); // theirs stays; our feth10000 from the lost race is gone
  });

  it.each<[string, DarwinFethOptions, RegExp]>([
    ['a name outside feth10000–feth19999', { name: 'feth5' }, /feth10000–feth19999/],
    ['an I/O member name', { name: 'feth20000' }, /feth10000–feth19999/],
    ['a non-feth name', { name: 'tap0' }, /names feth interfaces by unit/],
    ['name and networkId', { name: 'feth10000', networkId: 'x' }, /not both/],
    ['an empty networkId', { networkId: '' }, /networkId/],
    ['a negative metric', { metric: -1 }, /metric/],
    ['a relative runtimeDir', { runtimeDir: 'tmp/tapkit' }, /absolute/],
  ])('refuses %s before touching the system', async (_, options, message) => {
    const s = sim();
    await rejects(open(s, options), TapErrorCode.INVALID_OPTION, message);
    expect(s.kernel.calls).toEqual([]);
  });
});

describe('MTU', () => {
  it('refuses MTUs outside 72–16370 before anything', async () => {
    const s = sim();
    await rejects(open(s, { mtu: 16371 }), TapErrorCode.MTU_UNSUPPORTED);
    await rejects(open(s, { mtu: 71 }), TapErrorCode.MTU_UNSUPPORTED);
    expect(s.kernel.calls).toEqual([]);
  });

  it('carries the largest MTU: 16370, tagged frames of 16388 bytes', async () => {
    const s = sim();
    const device = await open(s, { mtu: 16370 });
    const frame = new Uint8Array(16388);
    frame.set(device.mac, 0);
    frame.set([0x81, 0x00, 0x00, 0x07, 0x88, 0xb5], 12); // 802.1Q, VLAN 7
    device.write(frame);
    await device.drain(); // write() sends at the end of the turn, or before drain() answers
    const received = s.kernel.interfaces.get(device.name)!.received;
    expect(received.map((f) => f.length)).toEqual([16388]);
  });

  it('on kernels without net.link.fake.max_mtu (10.13, 10.14), uses the fixed ceiling', async () => {
    const s = sim({ maxMtuSysctl: null });
    const device = await open(s, { mtu: 9000 });
    expect(device.mtu).toBe(9000);
    expect(s.kernel.calls.some((c) => c.startsWith('sysctl'))).toBe(false);
  });

  it('explains a ceiling the kernel cannot raise, and leaves nothing behind', async () => {
    const old = sim({ maxMtuSysctl: null, jumboClusters: false });
    await rejects(open(old, { mtu: 9000 }), TapErrorCode.MTU_UNSUPPORTED, /fixes the feth MTU ceiling/);
    expectNothingLeft(old);
    const noJumbo = sim({ jumboClusters: false });
    await rejects(open(noJumbo, { mtu: 9000 }), TapErrorCode.MTU_UNSUPPORTED, /16 KiB mbuf clusters/);
    expectNothingLeft(noJumbo);
  });

  it('notices when another program lowers the ceiling between raising it and creating the pair', async () => {
    const s = sim();
    const create = s.kernel.createInterface.bind(s.kernel);
    s.kernel.createInterface = (name: string) => {
      s.kernel.setMaxMtuSysctl(2048);
      create(name);
    };
    await rejects(open(s, { mtu: 9000 }), TapErrorCode.MTU_UNSUPPORTED, /lowered by another program/);
    expectNothingLeft(s);
  });

  it('refuses an MTU whose frames the granted BPF buffer could not hold', async () => {
    const s = sim({ bpfMaxBuffer: 1024 });
    await rejects(open(s), TapErrorCode.MTU_UNSUPPORTED, /BPF buffer of 1024 bytes/);
    expectNothingLeft(s);
  });
});

describe('failures', () => {
  it('says root is needed, and creates nothing, when not root', async () => {
    const s = sim({ root: false });
    await rejects(open(s), TapErrorCode.PERMISSION_DENIED, /needs root/);
    await rejects(open(s, { mtu: 9000 }), TapErrorCode.PERMISSION_DENIED, /net\.link\.fake\.max_mtu/);
    expectNothingLeft(s);
  });

  it('undoes everything when a later step fails (no BPF device free)', async () => {
    const s = sim({ bpfDevices: 0 });
    await rejects(open(s), TapErrorCode.SYSTEM, /every \/dev\/bpf device is in use/);
    expectNothingLeft(s);
  });

  it('maps peering failures: EBUSY when another program peered the new member first', async () => {
    const s = sim();
    const create = s.kernel.createInterface.bind(s.kernel);
    s.kernel.createInterface = (name: string) => {
      create(name);
      if (name === 'feth10000') {
        create('feth9');
        s.kernel.setPeer('feth9', 'feth10000');
      }
    };
    await rejects(open(s, { name: 'feth10000' }), TapErrorCode.NAME_IN_USE, /already peered/);
    expectNothingLeft(s, ['feth9']);
  });

  it('maps peering failures: ENXIO when the member vanished', async () => {
    const s = sim();
    const create = s.kernel.createInterface.bind(s.kernel);
    s.kernel.createInterface = (name: string) => {
      create(name);
      if (name === 'feth20000') s.kernel.destroyInterface('feth10000');
    };
    await rejects(open(s), TapErrorCode.DEVICE_GONE, /peer interface does not exist/);
    expectNothingLeft(s);
  });

  it('reports a teardown that failed, and keeps the record so cleanup can retry', async () => {
    const s = sim();
    const device = await open(s);
    const destroy = s.kernel.destroyInterface.bind(s.kernel);
    s.kernel.destroyInterface = (name: string) => {
      if (name === 'feth20000') throw sysError('EBUSY', 'ioctl', 'SIOCIFDESTROY', name);
      destroy(name);
    };
    await rejects(device.close(), TapErrorCode.NAME_IN_USE, /not fully removed/);
    expect(s.runtime.stateFiles()).toEqual(['feth10000.json']);
    expect(s.kernel.feths()).toEqual(['feth20000']);
    expect(s.exitCleanup.size).toBe(0);
  });
});
