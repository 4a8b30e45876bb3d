/**
 * darwin-feth's setters over the simulated kernel: what its ioctl configuration can change on an
 * open device, and what it cannot (said with a code, never ignored).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { TapErrorCode, type LinkChange } from '@tapkit/core';
import { simulated } from './helpers.js';

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

  it('refuses removeAddress with ERR_TAP_UNSUPPORTED_OPERATION naming the backend', async () => {
    const dev = await sim.open({ addresses: ['10.9.2.1/24'] });
    try {
      await expect(dev.removeAddress('10.9.2.1/24')).rejects.toMatchObject({
        code: TapErrorCode.UNSUPPORTED_OPERATION,
        backend: 'darwin-feth',
      });
      expect(dev.addresses).toEqual(['10.9.2.1/24']);
    } finally {
      await dev.close();
    }
  });
});
