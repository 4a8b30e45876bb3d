#!/usr/bin/env node
// The compiler and linker that node-gyp's Makefiles call (as CXX, CC and LINK) in a cross build:
//   node driver.mjs <target> <the arguments gyp gives a compiler or linker>
// A compile (-c) runs the target's compiler with gyp's flags as they are. A link keeps gyp's
// inputs and output: Linux links with `zig c++` exporting only Node's entry points; macOS links a
// Mach-O bundle with ld64.lld against Zig's libSystem and a libc++ stub.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MACOS_SDK, TARGETS, compilerCommand, llvmTool, zigRoot } from './toolchain.mjs';

const [targetName, ...args] = process.argv.slice(2);
const target = TARGETS[targetName];
if (target === undefined) fail(`unknown target ${targetName}`);

function fail(message) {
  console.error(`cross driver: ${message}`);
  process.exit(1);
}

function run(argv) {
  const result = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit' });
  if (result.error) fail(`${argv[0]}: ${result.error.message}`);
  if (result.status !== 0) process.exit(result.status ?? 1);
}

function capture(argv) {
  const result = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) fail(`${argv.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

const [compiler, ...compilerArgs] = compilerCommand(targetName);
if (args.includes('-c')) {
  run([compiler, ...compilerArgs, ...args]);
} else if (target.platform === 'linux') {
  const exportsMap = fileURLToPath(new URL('exports.map', import.meta.url));
  run([compiler, ...compilerArgs, ...args, `-Wl,--version-script=${exportsMap}`, '-s']);
} else {
  linkMacho(args);
}

/**
 * Links a bundle from gyp's `-bundle … -o OUT objects` line: the deployment target from
 * -mmacosx-version-min (arm64 starts at 11.0), `-undefined dynamic_lookup` for Node's own napi_*
 * and uv_* functions (as Xcode links addons), libSystem and libc++ bound two-level.
 */
function linkMacho(argv) {
  const output = argv[argv.indexOf('-o') + 1];
  const objects = argv.filter((a) => a.endsWith('.o'));
  if (!argv.includes('-bundle') || output === undefined || objects.length === 0) {
    fail(`expected a bundle link (-bundle -o OUT objects), got: ${argv.join(' ')}`);
  }
  const requested = argv.find((a) => a.startsWith('-mmacosx-version-min='))?.split('=')[1] ?? '10.13';
  const min = target.arch === 'arm64' && Number.parseFloat(requested) < 11 ? '11.0' : requested;
  const sdk = join(dirname(output), 'sdk');
  mkdirSync(join(sdk, 'usr', 'lib'), { recursive: true });
  copyFileSync(
    join(zigRoot(), 'lib', 'libc', 'darwin', 'libSystem.13.tbd'),
    join(sdk, 'usr', 'lib', 'libSystem.tbd'),
  );
  writeFileSync(join(sdk, 'usr', 'lib', 'libc++.tbd'), libcxxStub(objects));
  run([
    llvmTool('ld64.lld'),
    ...['-arch', target.clangArch, '-platform_version', 'macos', min, MACOS_SDK],
    ...['-bundle', '-undefined', 'dynamic_lookup', '-syslibroot', sdk],
    ...['-o', output, ...objects, '-lc++', '-lSystem'],
  ]);
}

/**
 * A text stub of /usr/lib/libc++.1.dylib listing the C++ runtime symbols these objects use (every
 * undefined C++-mangled symbol, the __cxa_* ABI and the personality routine): our sources'
 * C++ code is all inline or ours, so those can only come from libc++. Which of them the oldest
 * supported macOS has is what libc++'s availability markup in Zig's headers checks at compile time.
 */
function libcxxStub(objects) {
  const undefinedSymbols = capture([
    llvmTool('llvm-nm'),
    '--undefined-only',
    '--just-symbol-name',
    ...objects,
  ])
    .split('\n')
    .map((line) => line.trim())
    .filter((name) => name !== '' && !name.endsWith(':'));
  const cxx = [...new Set(undefinedSymbols)]
    .filter((name) => /^(__Z|___cxa_|___gxx_personality_v0$|___dynamic_cast$)/.test(name))
    .sort();
  const targets = '[ x86_64-macos, arm64-macos ]';
  return [
    '--- !tapi-tbd',
    'tbd-version: 4',
    `targets: ${targets}`,
    "install-name: '/usr/lib/libc++.1.dylib'",
    'current-version: 1.0',
    'compatibility-version: 1.0',
    'exports:',
    `  - targets: ${targets}`,
    `    symbols: [ ${cxx.map((name) => `'${name}'`).join(', ')} ]`,
    '...',
    '',
  ].join('\n');
}
