/**
 * The musl prebuilds load under musl's own dynamic loader (Debian's musl packages; arm64 under
 * qemu-user): a small musl program standing in for Node — it defines the N-API and libuv
 * functions the addon imports, as Node does — dlopens the prebuild with immediate binding, so
 * every symbol it needs from musl, from the libc++ linked into it and from "Node" must resolve,
 * and its static initialisers run; then it calls the module's N-API version entry point. There is
 * no musl build of Node here to run the backend itself (Alpine users: please report).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { itPrivileged } from '@tapkit/test-support';
import { ARM64_PROBLEM, CROSS_BUILD_PROBLEM, elfFacts, zigBinary } from '@tapkit/test-support/binaries';
import { PACKAGE_ROOT } from './helpers.js';

const HOST = `#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char** argv) {
  void* module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!module) { printf("{\\"error\\":\\"%s\\"}\\n", dlerror()); return 1; }
  int (*version)(void) = (int (*)(void))dlsym(module, "node_api_module_get_api_version_v1");
  printf("{\\"napiVersion\\":%d,\\"register\\":%s}\\n", version ? version() : -1,
         dlsym(module, "napi_register_module_v1") ? "true" : "false");
  return 0;
}
`;

const ARCHES = {
  x64: {
    zig: 'x86_64-linux-musl',
    lib: '/usr/lib/x86_64-linux-musl',
    loader: '/lib/ld-musl-x86_64.so.1',
    run: [],
  },
  arm64: {
    zig: 'aarch64-linux-musl',
    lib: '/usr/lib/aarch64-linux-musl',
    loader: '/lib/ld-musl-aarch64.so.1',
    run: ['/usr/bin/qemu-aarch64-static'],
  },
} as const;

function problem(arch: keyof typeof ARCHES): string | undefined {
  const { lib, loader } = ARCHES[arch];
  const base = arch === 'arm64' ? ARM64_PROBLEM : CROSS_BUILD_PROBLEM;
  if (base !== undefined) return base;
  const suffix = arch === 'arm64' ? ':arm64' : '';
  if (!existsSync(loader) || !existsSync(join(lib, 'Scrt1.o')))
    return `needs musl's loader and C runtime (apt-get install musl${suffix} musl-dev${suffix})`;
  return undefined;
}

const work = mkdtempSync(join(tmpdir(), 'tapkit-musl-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface LoadResult {
  napiVersion?: number;
  register?: boolean;
  error?: string;
}

/** Builds the stand-in for Node for `arch`, defining what `addon` imports from Node; runs it on `addon`. */
function load(arch: keyof typeof ARCHES, addon: string): LoadResult {
  const { zig, lib, loader, run } = ARCHES[arch];
  const dir = mkdtempSync(join(work, `${arch}-`));
  const fromNode = elfFacts(addon).imports.filter((s) => /^(napi|node_api|uv)_/.test(s));
  writeFileSync(join(dir, 'host.c'), HOST + fromNode.map((name) => `void ${name}(void) {}\n`).join(''));
  const host = join(dir, 'host');
  execFileSync(zigBinary(), ['cc', '-target', zig, '-fPIE', '-c', `${host}.c`, '-o', `${host}.o`]);
  const crt = (name: string) => join(lib, name);
  execFileSync('/usr/bin/ld.lld-16', [
    ...['-pie', '--export-dynamic', '-dynamic-linker', loader, '-o', host],
    ...[crt('Scrt1.o'), crt('crti.o'), `${host}.o`, `-L${lib}`, '-lc', crt('crtn.o')],
  ]);
  const [file, args]: [string, string[]] = run.length > 0 ? [run[0]!, [host, addon]] : [host, [addon]];
  let output: string;
  try {
    output = execFileSync(file, args, { encoding: 'utf8' });
  } catch (error) {
    output = (error as { stdout: string }).stdout; // it says why in JSON, and exits 1
  }
  return JSON.parse(output) as LoadResult;
}

describe('linux-tap musl prebuilds', () => {
  for (const arch of ['x64', 'arm64'] as const) {
    itPrivileged(
      `linux-${arch} musl: loads under musl's dynamic loader and answers its N-API version`,
      () => {
        const prebuild = (libc: string) =>
          join(PACKAGE_ROOT, 'prebuilds', `linux-${arch}`, `@tapkit+linux-tap.${libc}.node`);
        expect(load(arch, prebuild('musl'))).toEqual({ napiVersion: 8, register: true });
        // The check can fail: the glibc build does not load there (no libc.so.6 under musl).
        expect(load(arch, prebuild('glibc')).error).toMatch(/libc\.so\.6|not found/);
      },
      120_000,
      problem(arch),
    );
  }
});
