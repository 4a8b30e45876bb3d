/**
 * The link soak, short (bench/link-soak.mjs runs 30 minutes): TCP, UDP floods and ping through a
 * pipeTo relay and a JS-loop relay while an admin flaps their interfaces, changes their MTU and
 * adds and removes addresses every 1.5 s. Every frame is accounted for against the kernel's own
 * counters, each change reaches the devices as one link event, and no fd is left behind.
 */
import { describe, expect } from 'vitest';
import { itPrivileged } from './helpers.js';
import { runLinkSoak } from './fixtures/link-soak.mjs';

describe('linux-tap: link soak', () => {
  itPrivileged(
    'relays mixed traffic through link flaps, MTU and address changes, with every frame accounted for',
    async () => {
      const { figures, problems } = await runLinkSoak({ seconds: 30, changeEvery: 1.5, sampleEvery: 5 });
      expect(problems).toEqual([]);
      expect(figures.changesMade).toBeGreaterThanOrEqual(12); // every kind of change, on both devices
      for (const relay of Object.values(figures.relays)) {
        expect(relay.traffic.tcpBytes).toBeGreaterThan(0);
        expect(relay.traffic.udpDatagrams).toBeGreaterThan(0);
        expect(relay.frames.read).toBeGreaterThan(0);
        // Each kind of change reached each device (the fixture checks the counts match exactly).
        for (const device of relay.link) {
          for (const what of ['mtu', 'up', 'addresses'])
            expect(device.events[what]).toBeGreaterThanOrEqual(2);
        }
      }
    },
    240_000,
  );
});
