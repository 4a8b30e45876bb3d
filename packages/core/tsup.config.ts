import { defineConfig } from 'tsup';
import { packageConfig } from '../../tsup.config.base.js';

export default defineConfig(packageConfig({ index: 'src/index.ts', testing: 'src/testing/index.ts' }));
