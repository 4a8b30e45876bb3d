/**
 * The macOS binary this package ships: one universal bundle (x86_64 + arm64), cross-built on
 * Linux by `npm run prebuilds` (scripts/prebuilds.mjs) with gyp's Release flags for macOS, our
 * sources with -Werror, every ABI fact pinned by tapkit/darwin_sdk.h's static_asserts. What is
 * checked here is what can be without a Mac: it is the right kind of file for both
 * architectures and macOS versions, node-gyp-build picks it on both kinds of Mac, and it links
 * only against what every Mac and every Node has. Running it is for the macOS workflows.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect } from 'vitest';
import { itPrivileged } from '@tapkit/test-support';
import { CROSS_BUILD_PROBLEM, macosAddonProblems, prebuildFor } from '@tapkit/test-support/binaries';

const PREBUILDS = fileURLToPath(new URL('../prebuilds', import.meta.url));
const FILE = `${PREBUILDS}/darwin-x64+arm64/@tapkit+darwin-feth.node`;

describe('darwin-feth prebuild', () => {
  itPrivileged(
    'is what node-gyp-build loads on Intel and Apple silicon Macs',
    () => {
      expect(prebuildFor(PREBUILDS, 'darwin', 'x64', 'glibc')).toBe(FILE);
      expect(prebuildFor(PREBUILDS, 'darwin', 'arm64', 'glibc')).toBe(FILE);
    },
    undefined,
    CROSS_BUILD_PROBLEM,
  );

  itPrivileged(
    'is a bundle for macOS 10.13+ on x86_64 and 11.0+ on arm64 that imports only Node, libSystem and libc++',
    () => {
      expect(macosAddonProblems(FILE, { x86_64: '10.13', arm64: '11.0' })).toEqual([]);
    },
    60_000,
    CROSS_BUILD_PROBLEM,
  );
});
