import { fileURLToPath } from 'node:url';
import { createNetns, itPrivileged, useCleanup } from '@tapkit/test-support';
import { describe, expect } from 'vitest';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
useCleanup();

describe('the demo on a real Linux TAP device', () => {
  itPrivileged('pings the kernel through linux-tap inside a namespace of its own', async () => {
    const ns = await createNetns();
    const out = await ns.exec(process.execPath, [
      cli,
      'demo',
      '--backend',
      'linux-tap',
      '--count',
      '3',
      '--pcap',
      '/dev/null',
    ]);
    expect(out).toContain('linux-tap device tapkit-demo');
    expect(out).toMatch(/ARP: 10\.77\.0\.2 is at ([0-9a-f]{2}:){5}[0-9a-f]{2}/);
    expect(out).toContain('3 transmitted, 3 received, 0% loss');
    // The device is gone with the demo: nothing is left in the namespace but lo.
    expect((await ns.ip('-br', 'link')).trim().split('\n')).toHaveLength(1);
  });
});
