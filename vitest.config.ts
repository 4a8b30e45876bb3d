import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/**/*.test.ts', 'bench/**/*.test.ts'],
    // Real-device tests share the kernel's interface table; keep files in one process pool
    // but let vitest isolate them.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
