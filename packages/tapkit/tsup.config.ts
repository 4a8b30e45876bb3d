import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.config.base.js';

// Backends are optional dependencies, loaded at run time from their own packages (their native
// addons are found relative to them): never bundle them. tsup leaves `dependencies` out of the
// bundle by itself, but not `optionalDependencies`.
const external = ['@tapkit/linux-tap', '@tapkit/darwin-feth', '@tapkit/darwin-utun'];

export default defineConfig([
  packageConfig(
    { index: 'src/index.ts' },
    {
      external,
      // backends.ts tells the builds apart by `import.meta`, which esbuild empties in the CJS
      // build: that is intended, so no warning.
      esbuildOptions(options) {
        options.logOverride = { ...options.logOverride, 'empty-import-meta': 'silent' };
      },
    },
  ),
  // The CLI is an ESM executable only.
  packageConfig(
    { cli: 'src/cli.ts' },
    { format: ['esm'], dts: false, clean: false, banner: { js: '#!/usr/bin/env node' }, external },
  ),
]);
