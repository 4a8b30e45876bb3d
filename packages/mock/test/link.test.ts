/**
 * Live link state on the mock: the network's admin verbs (what `ip link` / `ip addr` do) and the
 * device's own setters change its interface, and the device follows with `link` events.
 */
import { TapErrorCode, buildUdpFrame, type LinkChange, type TapDevice } from '@tapkit/core';
import { describe, expect, it } from 'vitest';
import { createMockNetwork } from '../src/index.js';
import { settle } from './helpers.js';

const frameOf = (device: TapDevice, length: number): Uint8Array => {
  const frame = buildUdpFrame({
    srcMac: Uint8Array.of(2, 0, 0, 0, 0, 0x42),
    dstMac: Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
    src: Uint8Array.of(10, 0, 0, 42),
    dst: Uint8Array.of(10, 0, 0, 255),
    srcPort: 1,
    dstPort: 2,
    payload: new Uint8Array(length - 42),
  });
  expect(frame.length).toBe(length);
  void device;
  return frame;
};

function watch(device: TapDevice): LinkChange[] {
  const changes: LinkChange[] = [];
  device.on('link', (change) => changes.push(change));
  return changes;
}

describe('mock: live link state', () => {
  it('follows admin MTU changes: writes are checked against the current MTU', async () => {
    await using net = createMockNetwork();
    const dev = await net.open({ name: 'm0' });
    const changes = watch(dev);
    net.setMtu('m0', 9000);
    expect(changes).toEqual([{ mtu: { from: 1500, to: 9000 } }]);
    expect(dev.mtu).toBe(9000);
    expect(dev.write(frameOf(dev, 9014))).toBe(true);
    net.setMtu('m0', 1300);
    expect(() => dev.write(frameOf(dev, 1514))).toThrow(
      expect.objectContaining({ code: TapErrorCode.FRAME_TOO_LARGE }),
    );
    expect(net.ports().find((p) => p.name === 'm0')?.mtu).toBe(1300);
    await dev.close();
  });

  it('follows a rename; a taken name is NAME_IN_USE and changes nothing', async () => {
    await using net = createMockNetwork();
    const dev = await net.open({ name: 'm0' });
    await net.open({ name: 'm1' });
    const changes = watch(dev);
    expect(() => net.rename('m0', 'm1')).toThrow(expect.objectContaining({ code: TapErrorCode.NAME_IN_USE }));
    net.rename('m0', 'renamed');
    expect(dev.name).toBe('renamed');
    expect(changes).toEqual([{ name: { from: 'm0', to: 'renamed' } }]);
    expect(net.ports().map((p) => p.name)).toEqual(['renamed', 'm0:os', 'm1', 'm1:os']);
    expect(() => net.setMtu('m0', 1400)).toThrow(
      expect.objectContaining({ code: TapErrorCode.INVALID_ARGUMENT }),
    );
  });

  it('down, a device neither sends nor receives; up again, it does', async () => {
    await using net = createMockNetwork();
    const a = await net.open({ name: 'a' });
    const b = await net.open({ name: 'b' });
    const changes = watch(b);
    net.setUp('b', false);
    expect(b.up).toBe(false);
    expect(changes).toEqual([{ up: { from: true, to: false } }]);
    a.write(frameOf(a, 100)); // to b: dropped on the way out to a down interface
    b.write(frameOf(b, 100)); // from b: not sent
    expect(b.stats()).toMatchObject({ txFrames: 0, drops: { interfaceDown: 1 } });
    await settle(); // a's frame goes to its port at the end of this turn, the switch forwards it later
    expect(net.stats().drops['linkDown']).toBeGreaterThanOrEqual(1);
    await b.setUp(true);
    expect(changes[1]).toEqual({ up: { from: false, to: true } });
    a.write(frameOf(a, 101));
    expect((await b.read()).length).toBe(101);
  });

  it('adds and removes addresses: the station answers for them, and the device follows', async () => {
    await using net = createMockNetwork();
    const dev = await net.open({ name: 'm0', addresses: ['10.0.0.1/24'] });
    const host = net.addHost({ ipv4: '10.0.0.9/24', ipv6: 'fd00::9/64' });
    const changes = watch(dev);
    net.addAddress('m0', '10.0.0.2/24');
    await dev.addAddress('fd00::2/64');
    expect(dev.addresses).toEqual(['10.0.0.1/24', '10.0.0.2/24', 'fd00::2/64']);
    expect(await host.ping('10.0.0.2')).toMatchObject({ from: '10.0.0.2' });
    expect(await host.ping('fd00::2')).toMatchObject({ from: 'fd00::2' });
    expect(() => net.addAddress('m0', '10.0.0.2/24')).toThrow(
      expect.objectContaining({ code: TapErrorCode.INVALID_ARGUMENT }),
    );
    await dev.removeAddress('10.0.0.2/24');
    await expect(dev.removeAddress('10.0.0.2/24')).rejects.toMatchObject({
      code: TapErrorCode.INVALID_ARGUMENT,
    });
    await expect(host.ping('10.0.0.2', { timeoutMs: 50 })).rejects.toMatchObject({
      code: TapErrorCode.ABORTED,
    });
    expect(changes).toEqual([
      { addresses: { added: ['10.0.0.2/24'], removed: [] } },
      { addresses: { added: ['fd00::2/64'], removed: [] } },
      { addresses: { added: [], removed: ['10.0.0.2/24'] } },
    ]);
  });

  it('refuses admin verbs on hosts, bad arguments, and a closed network', async () => {
    const net = createMockNetwork();
    const host = net.addHost({ name: 'h' });
    await net.open({ name: 'm0' });
    expect(() => net.setMtu(host.name, 1400)).toThrow(
      expect.objectContaining({ code: TapErrorCode.INVALID_ARGUMENT }),
    );
    expect(() => net.setMtu('m0', 10)).toThrow(
      expect.objectContaining({ code: TapErrorCode.MTU_UNSUPPORTED }),
    );
    expect(() => net.rename('m0', 'bad name')).toThrow(
      expect.objectContaining({ code: TapErrorCode.INVALID_OPTION }),
    );
    expect(() => net.addAddress('m0', '10.0.0.1')).toThrow(
      expect.objectContaining({ code: TapErrorCode.INVALID_OPTION }),
    );
    expect(() => net.setUp('nope', true)).toThrow(
      expect.objectContaining({ code: TapErrorCode.INVALID_ARGUMENT }),
    );
    await net.close();
    expect(() => net.setUp('m0', false)).toThrow(expect.objectContaining({ code: TapErrorCode.CLOSED }));
  });
});
