/**
 * darwin-feth's setters over the simulated kernel: what its ioctl configuration can change on an
 * open device, and what it cannot (said with a code, never ignored).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { TapErrorCode, type LinkChange } from '@tapkit/core';
import { parseIPv4Address as ip4, parseIPv6Address as ip6 } from '@tapkit/core';
import { settle, simulated } from './helpers.js';

const sim = simulated();
afterAll(() => sim.runtime.remove());

const info = (name: string) => sim.kernel.listInterfaces().find((i) => i.name === name)!;

describe('darwin-feth: changing an open device', () => {
  it('lowers the MTU of both members and checks writes against it; refuses to go above the open MTU', async () => {
    const dev = await sim.open({ mtu: 2000 });
    try {
      const changes: LinkChange[] = [];
      dev.on('link', (change) => changes.push(change));
      await dev.setMtu(1400);
      const io = sim.kernel.feths().find((n) => n !== dev.name)!;
      expect([info(dev.name).mtu, info(io).mtu]).toEqual([1400, 1400]);
      expect(changes).toEqual([{ mtu: { from: 2000, to: 1400 } }]);
      expect(() => dev.write(new Uint8Array(1415))).toThrow(
        expect.objectContaining({ code: TapErrorCode.FRAME_TOO_LARGE }),
      );
      await expect(dev.setMtu(2001)).rejects.toMatchObject({
        code: TapErrorCode.MTU_UNSUPPORTED,
        message: /mtu: 2001/,
      });
      await dev.setMtu(2000);
      expect(info(dev.name).mtu).toBe(2000);
    } finally {
      await dev.close();
    }
  });

  it('brings the device down and up, and adds addresses (an IPv4 one brings it up, as on macOS)', async () => {
    const dev = await sim.open();
    try {
      await dev.setUp(false);
      expect([info(dev.name).up, dev.up]).toEqual([false, false]);
      const changes: LinkChange[] = [];
      dev.on('link', (change) => changes.push(change));
      await dev.addAddress('10.9.1.1/24');
      expect(sim.kernel.calls).toContain(`addr ${dev.name} 10.9.1.1/24`);
      expect(dev.addresses).toEqual(['10.9.1.1/24']);
      expect(dev.up).toBe(true);
      expect(changes).toEqual([
        { up: { from: false, to: true } },
        { addresses: { added: ['10.9.1.1/24'], removed: [] } },
      ]);
    } finally {
      await dev.close();
    }
  });

  it('removes addresses (SIOCDIFADDR / SIOCDIFADDR_IN6); one that is not there is ERR_TAP_INVALID_ARGUMENT', async () => {
    const dev = await sim.open({ addresses: ['10.9.2.1/24', 'fd00:9::1/64'] });
    try {
      const changes: LinkChange[] = [];
      dev.on('link', (change) => changes.push(change));
      await dev.removeAddress('10.9.2.1/24');
      await dev.removeAddress('fd00:9::1/64');
      expect(sim.kernel.interfaces.get(dev.name)!.addresses).toEqual([]);
      expect(dev.addresses).toEqual([]);
      expect(changes).toEqual([
        { addresses: { added: [], removed: ['10.9.2.1/24'] } },
        { addresses: { added: [], removed: ['fd00:9::1/64'] } },
      ]);
      await expect(dev.removeAddress('10.9.2.1/24')).rejects.toMatchObject({
        code: TapErrorCode.INVALID_ARGUMENT,
        backend: 'darwin-feth',
        syscall: 'ioctl',
        message: /no such address/,
      });
      await settle();
      expect(changes).toHaveLength(2); // the routing messages of its own changes add no event
    } finally {
      await dev.close();
    }
  });
});

describe('darwin-feth: following changes made by others (routing socket, simulated kernel)', () => {
  it("follows 'ifconfig … mtu', checking writes against the new MTU, up to the open MTU's buffers", async () => {
    const dev = await sim.open({ mtu: 9000 });
    try {
      const changes: LinkChange[] = [];
      dev.on('link', (change) => changes.push(change));
      sim.kernel.setMtu(dev.name, 1400); // someone else
      await settle();
      expect(dev.mtu).toBe(1400);
      expect(changes).toEqual([{ mtu: { from: 9000, to: 1400 } }]);
      expect(() => dev.write(new Uint8Array(1415))).toThrow(
        expect.objectContaining({ code: TapErrorCode.FRAME_TOO_LARGE }),
      );
      expect(dev.write(new Uint8Array(1414))).toBe(true);
      sim.kernel.setMtu(dev.name, 9000);
      await settle();
      expect(dev.mtu).toBe(9000);
      expect(dev.write(new Uint8Array(9014))).toBe(true);
      expect(changes).toHaveLength(2);
    } finally {
      await dev.close();
    }
  });

  it('keeps writes within the open MTU when someone raises the MTU above it', async () => {
    const dev = await sim.open({ mtu: 1500 });
    try {
      sim.kernel.setMtu(dev.name, 2000);
      await settle();
      expect(dev.mtu).toBe(2000);
      expect(() => dev.write(new Uint8Array(1519))).toThrow(
        expect.objectContaining({ code: TapErrorCode.FRAME_TOO_LARGE }),
      );
      expect(dev.write(new Uint8Array(1518))).toBe(true);
    } finally {
      await dev.close();
    }
  });

  it('follows down/up and addresses added and removed by others; other interfaces are ignored', async () => {
    const dev = await sim.open({ addresses: ['10.9.3.1/24'] });
    try {
      const changes: LinkChange[] = [];
      dev.on('link', (change) => changes.push(change));
      sim.kernel.setUp(dev.name, false);
      await settle();
      expect(dev.up).toBe(false);
      sim.kernel.setUp(dev.name, true);
      sim.kernel.addAddress(dev.name, 6, ip6('fd00:3::5'), 64);
      sim.kernel.addAddress(dev.name, 4, ip4('10.9.4.1'), 16);
      sim.kernel.setMtu('en0', 1280); // not this device
      sim.kernel.addAddress('en0', 4, ip4('192.168.7.7'), 24);
      await settle();
      expect(dev.up).toBe(true);
      expect(dev.addresses).toEqual(['10.9.3.1/24', 'fd00:3::5/64', '10.9.4.1/16']);
      sim.kernel.removeAddress(dev.name, 4, ip4('10.9.3.1'), 24);
      await settle();
      expect(dev.addresses).toEqual(['fd00:3::5/64', '10.9.4.1/16']);
      expect(changes).toEqual([
        { up: { from: true, to: false } },
        { up: { from: false, to: true }, addresses: { added: ['fd00:3::5/64', '10.9.4.1/16'], removed: [] } },
        { addresses: { added: [], removed: ['10.9.3.1/24'] } },
      ]);
    } finally {
      await dev.close();
    }
  });

  it('follows a rename (the index stays), and destroys the member under its new name at close', async () => {
    const dev = await sim.open();
    sim.kernel.renameInterface(dev.name, 'feth31000');
    await settle();
    expect(dev.name).toBe('feth31000');
    await dev.close();
    expect(sim.kernel.interfaces.has('feth31000')).toBe(false);
    expect(sim.kernel.feths()).toEqual([]);
  });

  it('reads the state again when routing messages were lost (ENOBUFS), and goes on following', async () => {
    const dev = await sim.open();
    try {
      const changes: LinkChange[] = [];
      dev.on('link', (change) => changes.push(change));
      sim.kernel.setMtu(dev.name, 1300);
      sim.kernel.overflowRoutes(); // the message of that change is lost
      await settle();
      expect(dev.mtu).toBe(1300);
      sim.kernel.setUp(dev.name, false);
      await settle();
      expect(changes).toEqual([{ mtu: { from: 1500, to: 1300 } }, { up: { from: true, to: false } }]);
    } finally {
      await dev.close();
    }
  });

  it('ends the device when its interface is destroyed, and closes its routing socket', async () => {
    const watchers = sim.kernel.routeWatchers;
    const dev = await sim.open();
    expect(sim.kernel.routeWatchers).toBe(watchers + 1);
    const closed = new Promise<unknown>((resolve) => dev.once('close', resolve));
    sim.kernel.destroyInterface(dev.name); // someone else
    const error = await closed;
    expect(error).toMatchObject({ code: TapErrorCode.DEVICE_GONE });
    expect(sim.kernel.routeWatchers).toBe(watchers);
    await dev.close();
  });

  it('ignores malformed routing messages', async () => {
    const dev = await sim.open();
    try {
      const changes: LinkChange[] = [];
      dev.on('link', (change) => changes.push(change));
      // A watcher of its own hears what the device hears; feed every watcher garbage.
      sim.kernel.injectRouteBytes(Uint8Array.of(0xff, 0xff, 5, 14, 1, 2, 3));
      sim.kernel.injectRouteBytes(Uint8Array.of(40, 0, 5, 14, ...new Uint8Array(36)));
      await settle();
      expect(changes).toEqual([]);
      sim.kernel.setMtu(dev.name, 1400);
      await settle();
      expect(dev.mtu).toBe(1400);
    } finally {
      await dev.close();
    }
  });
});
