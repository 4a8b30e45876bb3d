import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.config.base.js';

export default defineConfig([
  packageConfig({ index: 'src/index.ts' }),
  // The CLI is an ESM executable only.
  packageConfig(
    { cli: 'src/cli.ts' },
    { format: ['esm'], dts: false, clean: false, banner: { js: '#!/usr/bin/env node' } },
  ),
]);
