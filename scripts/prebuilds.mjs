#!/usr/bin/env node
// Builds a native package's prebuilds for every platform it ships, on this linux-x64 machine:
//   cd packages/<name> && node ../../scripts/prebuilds.mjs      (npm run prebuilds)
// The targets are the package's `tapkit.prebuilds` list. Each is configured by node-gyp from the
// package's own binding.gyp (`-f make-mac` for macOS, so the flags are gyp's Release flags for
// that OS) and compiled by the cross toolchain (scripts/cross), our sources with -Werror. Output,
// laid out for node-gyp-build:
//   prebuilds/darwin-x64+arm64/<pkg>.node          one universal Mach-O bundle
//   prebuilds/linux-<arch>/<pkg>.<glibc|musl>.node  glibc 2.17+ or musl, libc++ linked in
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TARGETS, llvmTool, toolchainProblem } from './cross/toolchain.mjs';

const DRIVER = fileURLToPath(new URL('cross/driver.mjs', import.meta.url));
const pkgDir = process.cwd();
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const targetNames = pkg.tapkit?.prebuilds ?? [];
const fileStem = pkg.name.replace('/', '+');

if (targetNames.length === 0) {
  console.error(`${pkg.name}: no "tapkit.prebuilds" targets in package.json`);
  process.exit(1);
}
// Only linux-x64 runs the cross toolchain; elsewhere (a developer's Mac) there is nothing to do,
// and the prebuild tests say they were skipped and why.
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(
    `${pkg.name}: prebuilds are cross-built on linux-x64; skipped on ${process.platform}-${process.arch}`,
  );
  process.exit(0);
}
const problem = toolchainProblem();
if (problem !== undefined) {
  console.error(`${pkg.name}: cannot build prebuilds: ${problem}`);
  process.exit(1);
}

/** Runs a command, its output prefixed; rejects on failure with the output's tail. */
function run(file, args, options = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolvePromise(output);
      else reject(new Error(`${file} ${args.join(' ')} failed (exit ${code}):\n${output.slice(-6000)}`));
    });
  });
}

/**
 * node-gyp: npm's own (npm runs scripts with its path in npm_config_node_gyp, and installs it
 * beside itself), else PATH's.
 */
function nodeGyp(args) {
  const besideNpm = resolve(
    dirname(process.execPath),
    '..',
    'lib',
    'node_modules',
    'npm',
    'node_modules',
    'node-gyp',
    'bin',
    'node-gyp.js',
  );
  const bundled = process.env.npm_config_node_gyp ?? (existsSync(besideNpm) ? besideNpm : undefined);
  return bundled ? [process.execPath, [bundled, ...args]] : ['node-gyp', args];
}

/** The directory with this Node's headers (include/node/common.gypi), so nothing is downloaded. */
function nodeDir() {
  const dir = resolve(dirname(process.execPath), '..');
  if (existsSync(join(dir, 'include', 'node', 'common.gypi'))) return dir;
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  throw new Error(`Node's headers are not in ${dir}/include/node; set npm_config_nodedir`);
}

/**
 * The package's binding.gyp with its paths made relative to `stage`, so node-gyp can configure it
 * from a directory of its own per target (it always writes to ./build).
 */
function stagedBindingGyp(stage) {
  const gyp = JSON.parse(readFileSync(join(pkgDir, 'binding.gyp'), 'utf8'));
  const absolute = (p) => (p.startsWith('<') || isAbsolute(p) ? p : relative(stage, join(pkgDir, p)));
  const visit = (node) => {
    if (Array.isArray(node)) return node.map(visit);
    if (node === null || typeof node !== 'object') return node;
    return Object.fromEntries(
      Object.entries(node).map(([key, value]) => [
        key,
        key === 'sources' || key === 'include_dirs' ? value.map(absolute) : visit(value),
      ]),
    );
  };
  return visit(gyp);
}

/**
 * A stand-in `xcodebuild` that only tells gyp's Xcode emulation which Xcode the flags are for
 * (the one of the macOS 13 SDK whose headers Zig has); gyp asks for nothing else.
 */
function fakeXcode() {
  const dir = join(pkgDir, 'build-cross', 'bin');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'xcodebuild'), '#!/bin/sh\necho "Xcode 14.3.1"\necho "Build version 14E300c"\n', {
    mode: 0o755,
  });
  return dir;
}

/** Configures and builds one target; returns the path of the built addon. */
async function buildTarget(name) {
  const target = TARGETS[name];
  if (target === undefined) throw new Error(`unknown prebuild target ${name}`);
  const stage = join(pkgDir, 'build-cross', name);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  writeFileSync(join(stage, 'binding.gyp'), JSON.stringify(stagedBindingGyp(stage), null, 2));
  const format = target.platform === 'darwin' ? 'make-mac' : 'make';
  const [gypFile, gypArgs] = nodeGyp([
    'configure',
    `--nodedir=${nodeDir()}`,
    `--arch=${target.arch}`,
    '--',
    '-f',
    format,
  ]);
  await run(gypFile, gypArgs, {
    cwd: stage,
    env: { ...process.env, PATH: `${fakeXcode()}${delimiter}${process.env.PATH}` },
  });
  const driver = `${process.execPath} ${DRIVER} ${name}`;
  await run('make', ['-C', join(stage, 'build'), 'BUILDTYPE=Release', 'V=1'], {
    env: { ...process.env, CC: driver, CXX: driver, LINK: driver, CXXFLAGS: '-Werror', CFLAGS: '-Werror' },
  });
  const gyp = JSON.parse(readFileSync(join(pkgDir, 'binding.gyp'), 'utf8'));
  return join(stage, 'build', 'Release', `${gyp.targets[0].target_name}.node`);
}

async function main() {
  const started = Date.now();
  const built = new Map();
  // Two at a time: this is a 2-core machine, and Zig builds libc++ once per Linux target.
  const queue = [...targetNames];
  await Promise.all(
    [0, 1].map(async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        built.set(name, await buildTarget(name));
        console.log(`${pkg.name}: built ${name}`);
      }
    }),
  );
  rmSync(join(pkgDir, 'prebuilds'), { recursive: true, force: true });
  const darwin = targetNames.filter((n) => TARGETS[n].platform === 'darwin');
  if (darwin.length > 0) {
    const dir = join(pkgDir, 'prebuilds', `darwin-${darwin.map((n) => TARGETS[n].arch).join('+')}`);
    mkdirSync(dir, { recursive: true });
    const inputs = darwin.map((n) => built.get(n));
    await run(llvmTool('llvm-lipo'), ['-create', ...inputs, '-output', join(dir, `${fileStem}.node`)]);
  }
  for (const name of targetNames.filter((n) => TARGETS[n].platform === 'linux')) {
    const { arch, libc } = TARGETS[name];
    const dir = join(pkgDir, 'prebuilds', `linux-${arch}`);
    mkdirSync(dir, { recursive: true });
    copyFileSync(built.get(name), join(dir, `${fileStem}.${libc}.node`));
  }
  console.log(
    `${pkg.name}: prebuilds for ${targetNames.join(', ')} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
}

main().catch((error) => {
  console.error(`${pkg.name}: ${error.message}`);
  process.exit(1);
});
