/**
 * The Linux binaries this package ships, cross-built by `npm run prebuilds` (scripts/prebuilds.mjs)
 * for x64 and arm64, glibc 2.17+ and musl, libc++ linked in: what each links against and exports,
 * that node-gyp-build picks the right one for each kind of machine, and that the one for this
 * machine loads from a package as npm installs it (no build directory) and works.
 * (The arm64 one is run under qemu-user by arm64.test.ts; the pack test installs and runs the
 * x64 one with no compiler on PATH.)
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, vi } from 'vitest';
import { itPrivileged } from '@tapkit/test-support';
import {
  CROSS_BUILD_PROBLEM,
  elfFacts,
  nodeExportedFunctions,
  prebuildFor,
} from '@tapkit/test-support/binaries';
import { loadAddon } from '../src/addon.js';
import { PACKAGE_ROOT } from './helpers.js';

const require = createRequire(import.meta.url);
const PREBUILDS = join(PACKAGE_ROOT, 'prebuilds');
const MACHINE = { x64: 'Advanced Micro Devices X86-64', arm64: 'AArch64' } as const;
const NEEDED = { glibc: ['libc.so.6', 'libdl.so.2', 'libpthread.so.0'], musl: ['libc.so'] } as const;

describe('linux-tap prebuilds', () => {
  for (const arch of ['x64', 'arm64'] as const) {
    for (const libc of ['glibc', 'musl'] as const) {
      itPrivileged(
        `linux-${arch} ${libc}: picked by node-gyp-build, stripped, exports only N-API's entry points`,
        () => {
          const file = join(PREBUILDS, `linux-${arch}`, `@tapkit+linux-tap.${libc}.node`);
          expect(prebuildFor(PREBUILDS, 'linux', arch, libc)).toBe(file);
          const facts = elfFacts(file);
          expect(facts.machine).toBe(MACHINE[arch]);
          expect(facts.stripped).toBe(true);
          expect([...facts.needed].sort()).toEqual(NEEDED[libc]);
          // Debian 11 and Ubuntu 20.04 have glibc 2.31; these ask for 2.17 at most.
          if (libc === 'glibc') expect(Number(facts.newestGlibc?.split('.')[1])).toBeLessThanOrEqual(17);
          else expect(facts.newestGlibc).toBeUndefined();
          expect(facts.exports.sort()).toEqual([
            'napi_register_module_v1',
            'node_api_module_get_api_version_v1',
          ]);
          // Node's functions are left to the process; C++ comes with the binary (no libstdc++).
          const node = nodeExportedFunctions();
          const fromNode = facts.imports.filter((s) => /^(napi|node_api|uv)_/.test(s));
          expect(fromNode.filter((s) => !node.has(s))).toEqual([]);
          expect(facts.imports.filter((s) => s.startsWith('_Z'))).toEqual([]);
        },
        60_000,
        CROSS_BUILD_PROBLEM,
      );
    }
  }

  itPrivileged(
    "this machine's prebuild loads where no build directory exists, and works",
    async () => {
      const root = mkdtempSync(join(tmpdir(), 'tapkit-prebuild-'));
      try {
        // A package as npm installs it: package.json and prebuilds/, nothing compiled.
        writeFileSync(join(root, 'package.json'), readFileSync(join(PACKAGE_ROOT, 'package.json')));
        cpSync(PREBUILDS, join(root, 'prebuilds'), { recursive: true });
        const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
        const path = nodeGypBuild.resolve(root);
        expect(path).toBe(join(root, 'prebuilds', `linux-${process.arch}`, '@tapkit+linux-tap.glibc.node'));
        const addon = loadAddon({ TAPKIT_LINUX_ADDON: path });
        // A frame written on one end of a frame-preserving fd pair arrives whole on the other.
        const [a, b] = addon.seqpacketPair();
        const offsets = new Uint32Array(5);
        let received: Uint8Array | undefined;
        const options = (fd: number) => ({
          fd,
          batchFrames: 4,
          offsets,
          frameReserve: 1518,
          slabBytes: 1 << 16,
          onRead(slab: ArrayBuffer) {
            received = new Uint8Array(slab, offsets[0], offsets[1]! - offsets[0]!).slice();
          },
          onDrain() {},
          onError() {},
        });
        const [reader, writer] = [new addon.TapHandle(options(a)), new addon.TapHandle(options(b))];
        try {
          reader.resume();
          const frame = Uint8Array.from({ length: 60 }, (_, i) => i);
          expect(writer.write(frame)).toBe(0);
          await vi.waitFor(() => expect(received).toEqual(frame), { timeout: 10_000 });
          // A C++ exception thrown and caught inside the binary (libc++ is linked in) reaches JS.
          expect(() => new addon.TapHandle({ ...options(a), batchFrames: 0 })).toThrow(RangeError);
        } finally {
          reader.close();
          writer.close();
        }
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
    undefined,
    CROSS_BUILD_PROBLEM,
  );
});
