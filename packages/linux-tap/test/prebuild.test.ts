/**
 * The prebuilt addon (`npm run prebuildify`): stripped, N-API only, and what node-gyp-build
 * loads from an installed package that has no build directory. No privileges needed.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../src/addon.js';
import { PACKAGE_ROOT } from './helpers.js';

const require = createRequire(import.meta.url);
const PLATFORM = `${process.platform}-${process.arch}`;
const dir = join(PACKAGE_ROOT, 'prebuilds', PLATFORM);

/**
 * The prebuilds to check: those `npm run prebuildify` made, or else one laid out the same way
 * from the addon the build compiled (stripped like prebuildify does), so that the loading path
 * is always tested.
 */
function prebuildsDir(): string {
  if (existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.node')))
    return join(PACKAGE_ROOT, 'prebuilds');
  const made = mkdtempSync(join(tmpdir(), 'tapkit-prebuilds-'));
  mkdirSync(join(made, PLATFORM));
  const target = join(made, PLATFORM, '@tapkit+linux-tap.glibc.node');
  copyFileSync(join(PACKAGE_ROOT, 'build', 'Release', 'tapkit_linux.node'), target);
  execFileSync('strip', [target]);
  return made;
}

describe('linux-tap prebuilds', () => {
  it('are stripped and load through node-gyp-build where no build directory exists', () => {
    const source = prebuildsDir();
    const prebuilds = readdirSync(join(source, PLATFORM)).filter((f) => f.endsWith('.node'));
    expect(prebuilds).toHaveLength(1); // --napi: one file serves every Node version
    const binary = readFileSync(join(source, PLATFORM, prebuilds[0]!));
    expect(binary.includes('.symtab')).toBe(false);
    // A package as npm installs it: package.json and prebuilds/, nothing compiled.
    const root = mkdtempSync(join(tmpdir(), 'tapkit-prebuild-'));
    try {
      writeFileSync(join(root, 'package.json'), readFileSync(join(PACKAGE_ROOT, 'package.json')));
      cpSync(source, join(root, 'prebuilds'), { recursive: true });
      const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
      const path = nodeGypBuild.resolve(root);
      expect(path).toBe(join(root, 'prebuilds', PLATFORM, prebuilds[0]!));
      const addon = loadAddon({ TAPKIT_LINUX_ADDON: path });
      const [a, b] = addon.seqpacketPair();
      for (const fd of [a, b]) {
        const handle = new addon.TapHandle({
          fd,
          batchFrames: 1,
          offsets: new Uint32Array(2),
          frameReserve: 1518,
          slabBytes: 4096,
          onRead() {},
          onDrain() {},
          onError() {},
        });
        handle.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
      if (source !== join(PACKAGE_ROOT, 'prebuilds')) rmSync(source, { recursive: true, force: true });
    }
  });
});
