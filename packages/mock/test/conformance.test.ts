import { describe, it } from 'vitest';
import { conformanceSuite } from '@tapkit/core/testing';
import { backend, createMockNetwork } from '../src/index.js';

// open(): the package-level backend, so each device is alone on a private network.
// openPair(): two devices on one fresh network.
conformanceSuite(
  { describe, it },
  {
    name: 'mock',
    backend: 'mock',
    open: (options) => backend.open(options),
    openPair: async () => {
      const network = createMockNetwork();
      return [await network.open(), await network.open()] as const;
    },
    openModule: new URL('fixtures/open-device.mjs', import.meta.url).href,
  },
);
