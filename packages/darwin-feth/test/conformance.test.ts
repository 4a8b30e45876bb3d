import { afterAll, describe, expect, it } from 'vitest';
import { conformanceSuite } from '@tapkit/core/testing';
import { simulated } from './helpers.js';

// The core conformance suite over the simulated darwin kernel. open(): a darwin-feth device
// alone. openPair(): two devices whose user-facing members are bridged, as `ifconfig bridge0
// addm feth1xxxx addm feth1yyyy` would: a frame written on one goes out of its I/O member,
// arrives on its user-facing member, crosses the bridge, leaves the other user-facing member
// and is read by BPF on the other I/O member. The kernel chatters (a frame when a member comes
// up), as a real stack does.
const sim = simulated({ chatter: true });

conformanceSuite(
  { describe, it },
  {
    name: 'darwin-feth (simulated kernel)',
    backend: 'darwin-feth',
    open: (options) => sim.open(options),
    openPair: async () => {
      const a = await sim.open();
      const b = await sim.open();
      sim.kernel.bridge(a.name, b.name);
      return [a, b] as const;
    },
    // The simulated kernel has no IP stack to answer for the device's addresses; on a Mac the
    // OS does, which feth.darwin.test.ts checks.
    answers: [],
  },
);

describe('after the conformance suite', () => {
  afterAll(() => sim.runtime.remove());

  it('left no interface, fd, state file or exit cleanup behind', () => {
    expect(sim.kernel.feths()).toEqual([]);
    expect(sim.kernel.bpfOpen).toBe(0);
    expect(sim.runtime.stateFiles()).toEqual([]);
    expect(sim.exitCleanup.size).toBe(0);
    expect(sim.proc.listenerCount('exit')).toBe(0);
  });
});
