import { describe, expect, it } from 'vitest';
import { createTapDevice } from '../src/engine.js';
import { TapErrorCode } from '../src/errors.js';
import type { InterfaceAddress, LinkChange } from '../src/types.js';
import { FakePort, code, thrownCode } from './fake-port.js';

function frameOf(length: number): Uint8Array {
  const frame = new Uint8Array(length);
  frame[12] = 0x08; // IPv4
  return frame;
}

function watch(): { changes: LinkChange[]; port: FakePort; device: ReturnType<typeof createTapDevice> } {
  const port = new FakePort();
  const device = createTapDevice(port, { backend: 'fake', up: true, addresses: ['10.0.0.1/24'] });
  const changes: LinkChange[] = [];
  device.on('link', (change) => changes.push(change));
  return { changes, port, device };
}

describe('engine: live link state', () => {
  it('starts from what the open asked for, where the port does not say', () => {
    const { device } = watch();
    expect(device.up).toBe(true);
    expect(device.addresses).toEqual(['10.0.0.1/24']);
    expect(device.name).toBe('fake0');
  });

  it('follows what the port reports, with one event saying what changed, and none for no change', () => {
    const { changes, port, device } = watch();
    port.sink.link({ name: 'renamed', mtu: 9000, up: false, addresses: ['10.0.0.1/24', 'fd00::1/64'] });
    expect(changes).toEqual([
      {
        name: { from: 'fake0', to: 'renamed' },
        mtu: { from: 1500, to: 9000 },
        up: { from: true, to: false },
        addresses: { added: ['fd00::1/64'], removed: [] },
      },
    ]);
    expect([device.name, device.mtu, device.up, device.addresses]).toEqual([
      'renamed',
      9000,
      false,
      ['10.0.0.1/24', 'fd00::1/64'],
    ]);
    port.sink.link({ mtu: 9000, addresses: ['fd00::1/64', '10.0.0.1/24'] });
    expect(changes).toHaveLength(1);
    port.sink.link({ addresses: ['fd00::1/64'] });
    expect(changes[1]).toEqual({ addresses: { added: [], removed: ['10.0.0.1/24'] } });
  });

  it('checks writes against the current MTU', () => {
    const { port, device } = watch();
    expect(device.write(frameOf(1514))).toBe(true);
    expect(thrownCode(() => device.write(frameOf(1515)))).toBe(TapErrorCode.FRAME_TOO_LARGE);
    port.sink.link({ mtu: 9000 });
    expect(device.write(frameOf(9014))).toBe(true);
    port.sink.link({ mtu: 1300 });
    expect(thrownCode(() => device.write(frameOf(1514)))).toBe(TapErrorCode.FRAME_TOO_LARGE);
    expect(thrownCode(() => device.writeBatch([frameOf(1314), frameOf(1315)]))).toBe(
      TapErrorCode.FRAME_TOO_LARGE,
    );
    expect(device.write(frameOf(1314))).toBe(true);
  });

  it('rejects every setter with ERR_TAP_UNSUPPORTED_OPERATION naming the backend when the port has none', async () => {
    const { changes, device } = watch();
    for (const call of [
      () => device.setMtu(1400),
      () => device.setUp(false),
      () => device.addAddress('10.0.0.2/24'),
      () => device.removeAddress('10.0.0.1/24'),
    ]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: TapErrorCode.UNSUPPORTED_OPERATION, backend: 'fake' });
    }
    expect(device.mtu).toBe(1500);
    expect(changes).toEqual([]);
  });

  it('passes checked arguments to the port and records the change once it is done', async () => {
    const { changes, port, device } = watch();
    const calls: unknown[] = [];
    Object.assign(port, {
      setMtu: (mtu: number) => void calls.push(['mtu', mtu]),
      setUp: (up: boolean) => Promise.resolve(void calls.push(['up', up])),
      addAddress: (a: InterfaceAddress, o: { dad: boolean }) => void calls.push(['add', a.cidr, o.dad]),
      removeAddress: (a: InterfaceAddress) => void calls.push(['remove', a.cidr]),
    });
    await device.setMtu(9000);
    await device.setUp(false);
    await device.addAddress('FD00:0::2/64');
    await device.addAddress('10.0.0.2/24', { dad: true });
    await device.removeAddress('10.0.0.1/24');
    expect(calls).toEqual([
      ['mtu', 9000],
      ['up', false],
      ['add', 'fd00::2/64', false],
      ['add', '10.0.0.2/24', true],
      ['remove', '10.0.0.1/24'],
    ]);
    expect(changes).toEqual([
      { mtu: { from: 1500, to: 9000 } },
      { up: { from: true, to: false } },
      { addresses: { added: ['fd00::2/64'], removed: [] } },
      { addresses: { added: ['10.0.0.2/24'], removed: [] } },
      { addresses: { added: [], removed: ['10.0.0.1/24'] } },
    ]);
    expect(device.addresses).toEqual(['fd00::2/64', '10.0.0.2/24']);
  });

  it("keeps what the port reported while a setter was in flight (an admin's change is not undone)", async () => {
    const { port, device } = watch();
    let finish = (): void => undefined;
    Object.assign(port, {
      addAddress: () => new Promise<void>((resolve) => (finish = resolve)),
      removeAddress: () => new Promise<void>((resolve) => (finish = resolve)),
    });
    const adding = device.addAddress('10.0.0.2/24');
    port.sink.link({ addresses: ['10.0.0.1/24', '10.0.0.9/24'] }); // added by someone else meanwhile
    finish();
    await adding;
    expect(device.addresses).toEqual(['10.0.0.1/24', '10.0.0.9/24', '10.0.0.2/24']);
    const removing = device.removeAddress('10.0.0.1/24');
    port.sink.link({ addresses: ['10.0.0.1/24', '10.0.0.2/24'] }); // 10.0.0.9 removed meanwhile
    finish();
    await removing;
    expect(device.addresses).toEqual(['10.0.0.2/24']);
  });

  it('keeps the state when the port refuses, and rejects bad arguments and a closed device', async () => {
    const { changes, port, device } = watch();
    Object.assign(port, {
      setMtu: () => Promise.reject(Object.assign(new Error('no'), { code: 'ERR_TAP_SYSTEM' })),
    });
    await expect(device.setMtu(1400)).rejects.toThrow('no');
    expect(device.mtu).toBe(1500);
    expect(await code(device.setMtu(1400.5))).toBe(TapErrorCode.INVALID_OPTION);
    expect(await code(device.setMtu(9001))).toBe(TapErrorCode.MTU_UNSUPPORTED);
    expect(await code(device.addAddress('10.0.0.300/24'))).toBe(TapErrorCode.INVALID_OPTION);
    expect(await code(device.addAddress('10.0.0.3/24', { dad: 1 as unknown as boolean }))).toBe(
      TapErrorCode.INVALID_ARGUMENT,
    );
    await device.close();
    expect(await code(device.setUp(true))).toBe(TapErrorCode.CLOSED);
    port.sink.link({ mtu: 9000 }); // after close: ignored
    expect(changes).toEqual([]);
  });
});
