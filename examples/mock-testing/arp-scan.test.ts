// Example: testing network code in CI with @tapkit/mock — no privileges, no real network,
// deterministic faults, and fake timers so that a slow CI machine cannot change the outcome.
import { createMockNetwork } from '@tapkit/mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { arpScan, type ScanOptions } from './arp-scan.js';
import { formatMac, type TapDevice } from '@tapkit/core';

// The mock runs on timers and immediates only: under fake timers, "wait 100 ms for answers"
// means 100 ms of simulated time, after every frame in flight has been delivered.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

async function scan(device: TapDevice, options: ScanOptions) {
  const result = arpScan(device, options);
  await vi.runAllTimersAsync();
  return result;
}

describe('arpScan (example: testing with @tapkit/mock)', () => {
  it('finds exactly the hosts that are up', async () => {
    await using net = createMockNetwork({ seed: 7 });
    const a = net.addHost({ ipv4: '10.0.0.20/24' });
    const b = net.addHost({ ipv4: '10.0.0.30/24' });
    await using dev = await net.open({ name: 'scan0' });
    const found = await scan(dev, { self: '10.0.0.1', hosts: range(2, 254) });
    expect(found).toEqual(
      new Map([
        ['10.0.0.20', formatMac(a.mac)],
        ['10.0.0.30', formatMac(b.mac)],
      ]),
    );
  });

  it('misses hosts on a lossy link the same way every run (seeded faults)', async () => {
    const scanLossy = async () => {
      await using net = createMockNetwork({ seed: 42 });
      for (let i = 10; i < 60; i++) net.addHost({ ipv4: `10.0.0.${i}/24` });
      net.setFaults({ loss: 0.2 });
      await using dev = await net.open();
      return [...(await scan(dev, { self: '10.0.0.1', hosts: range(2, 254) })).keys()].sort();
    };
    const first = await scanLossy();
    expect(first.length).toBeGreaterThan(20);
    expect(first.length).toBeLessThan(50); // some requests or replies were lost…
    expect(await scanLossy()).toEqual(first); // …and the same ones every time
  });
});

function* range(from: number, to: number): Iterable<number> {
  for (let i = from; i <= to; i++) yield i;
}
