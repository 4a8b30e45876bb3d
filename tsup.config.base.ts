import type { Options } from 'tsup';

/** The one build shape every package shares: ESM + CJS with declarations, for Node >= 20.19. */
export function packageConfig(entry: Record<string, string>, overrides: Options = {}): Options {
  return {
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    platform: 'node',
    splitting: false,
    ...overrides,
  };
}
