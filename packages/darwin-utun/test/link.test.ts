/**
 * darwin-utun following its interface through the routing socket, over the simulated system
 * (which sends RTM_IFINFO / RTM_NEWADDR / RTM_DELADDR in xnu's layout when it is changed, by the
 * device or by "someone else" calling it directly, as ifconfig would), and removeAddress.
 */
import { describe, expect, it } from 'vitest';
import { TapErrorCode, type LinkChange, type TapDevice } from '@tapkit/core';
import { createSimulatedUtunSystem, darwinUtun, type SimulatedUtunSystem } from '../src/index.js';
import { ip4, ip6, settle } from './helpers.js';

async function open(
  options: { addresses?: string[]; mtu?: number } = {},
): Promise<{ dev: TapDevice; system: SimulatedUtunSystem; changes: LinkChange[] }> {
  const system = createSimulatedUtunSystem();
  const dev = await darwinUtun.open({ system, addresses: ['10.9.0.1/24'], ...options });
  const changes: LinkChange[] = [];
  dev.on('link', (change) => changes.push(change));
  return { dev, system, changes };
}

describe('darwin-utun: following changes made by others (simulated routing socket)', () => {
  it("follows 'ifconfig utunN mtu', checking writes against the new MTU", async () => {
    const { dev, system, changes } = await open();
    try {
      system.setMtu(dev.name, 1300);
      await settle();
      expect(dev.mtu).toBe(1300);
      expect(changes).toEqual([{ mtu: { from: 1500, to: 1300 } }]);
      expect(() => dev.write(new Uint8Array(1315))).toThrow(
        expect.objectContaining({ code: TapErrorCode.FRAME_TOO_LARGE }),
      );
      system.setMtu(dev.name, 9000);
      await settle();
      expect(dev.mtu).toBe(9000);
      expect(changes).toHaveLength(2);
    } finally {
      await dev.close();
    }
  });

  it('follows down/up and addresses added and removed by others; the shim answers for the new prefix', async () => {
    const { dev, system, changes } = await open();
    try {
      system.setUp(dev.name, false);
      await settle();
      expect(dev.up).toBe(false);
      system.setUp(dev.name, true);
      system.addAddress(dev.name, 4, ip4('10.20.0.1'), 16);
      system.addAddress(dev.name, 6, ip6('fd00:20::1'), 64);
      await settle();
      expect(dev.addresses).toEqual(['10.9.0.1/24', '10.20.0.1/16', 'fd00:20::1/64']);
      system.removeAddress(dev.name, 4, ip4('10.9.0.1'), 24);
      await settle();
      expect(dev.addresses).toEqual(['10.20.0.1/16', 'fd00:20::1/64']);
      expect(changes).toEqual([
        { up: { from: true, to: false } },
        {
          up: { from: false, to: true },
          addresses: { added: ['10.20.0.1/16', 'fd00:20::1/64'], removed: [] },
        },
        { addresses: { added: [], removed: ['10.9.0.1/24'] } },
      ]);
    } finally {
      await dev.close();
    }
  });

  it('ignores other interfaces and malformed messages; goes on after lost messages (ENOBUFS)', async () => {
    const { dev, system, changes } = await open();
    const other = await darwinUtun.open({ system });
    try {
      system.setMtu(other.name, 1280);
      system.injectRouteBytes(Uint8Array.of(0xff, 0xff, 5, 14));
      system.overflowRoutes();
      await settle();
      expect(changes).toEqual([]);
      system.setMtu(dev.name, 1400);
      await settle();
      expect(changes).toEqual([{ mtu: { from: 1500, to: 1400 } }]);
    } finally {
      await other.close();
      await dev.close();
    }
  });

  it('ends the device when its index names no interface any more', async () => {
    const system = createSimulatedUtunSystem();
    let gone = false;
    const dev = await darwinUtun.open({
      system: {
        ...bound(system),
        interfaceName: (index: number) => (gone ? undefined : system.interfaceName(index)),
      },
    });
    const closed = new Promise<unknown>((resolve) => dev.once('close', resolve));
    gone = true;
    system.setUp(dev.name, false); // the RTM_IFINFO of its going
    expect(await closed).toMatchObject({ code: TapErrorCode.DEVICE_GONE });
    await dev.close();
  });

  it('removes addresses (SIOCDIFADDR / SIOCDIFADDR_IN6); a missing one is ERR_TAP_INVALID_ARGUMENT', async () => {
    const { dev, system, changes } = await open({ addresses: ['10.9.0.1/24', 'fd00:9::1/64'] });
    try {
      await dev.removeAddress('fd00:9::1/64');
      expect(system.interface(dev.name)!.addresses).toEqual(['10.9.0.1/24']);
      expect(dev.addresses).toEqual(['10.9.0.1/24']);
      await expect(dev.removeAddress('fd00:9::1/64')).rejects.toMatchObject({
        code: TapErrorCode.INVALID_ARGUMENT,
        backend: 'darwin-utun',
        syscall: 'ioctl',
      });
      await settle();
      expect(changes).toEqual([{ addresses: { added: [], removed: ['fd00:9::1/64'] } }]);
    } finally {
      await dev.close();
    }
  });

  it('without a routing socket in the system, opens and works as before (nothing followed)', async () => {
    const system = createSimulatedUtunSystem();
    const plain = {
      osInterface: false,
      openUtun: system.openUtun.bind(system),
      setMtu: system.setMtu.bind(system),
      setUp: system.setUp.bind(system),
      addAddress: system.addAddress.bind(system),
    };
    const dev = await darwinUtun.open({ system: plain });
    try {
      await dev.setMtu(1400);
      expect(dev.mtu).toBe(1400);
      await expect(dev.removeAddress('10.9.0.1/24')).rejects.toMatchObject({
        code: TapErrorCode.UNSUPPORTED_OPERATION,
      });
    } finally {
      await dev.close();
    }
  });
});

/** The system's methods bound, so that one can be replaced. */
function bound(system: SimulatedUtunSystem) {
  return {
    osInterface: false,
    openUtun: system.openUtun.bind(system),
    setMtu: system.setMtu.bind(system),
    setUp: system.setUp.bind(system),
    addAddress: system.addAddress.bind(system),
    removeAddress: system.removeAddress.bind(system),
    watchRoutes: system.watchRoutes.bind(system),
    interfaceIndex: system.interfaceIndex.bind(system),
    interfaceName: system.interfaceName.bind(system),
  };
}
