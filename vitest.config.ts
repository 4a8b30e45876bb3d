import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/**/*.test.ts', 'bench/**/*.test.ts'],
    // Tests of real macOS devices (`*.darwin.test.ts`) run only on macOS (the macOS workflows);
    // elsewhere they are not collected at all, rather than reported as skipped.
    exclude: ['**/node_modules/**', ...(process.platform === 'darwin' ? [] : ['**/*.darwin.test.ts'])],
    // Real-device tests create interfaces and namespaces: forks keep each file in its own process.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
