import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.config.base.js';

// shims: the CJS build gets an import.meta.url, which the addon loader resolves paths from.
export default defineConfig(packageConfig({ index: 'src/index.ts' }, { shims: true }));
