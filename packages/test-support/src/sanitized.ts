/**
 * Native units built with sanitizers: a test program from native-common/test/, compiled here
 * with the host's g++ (or clang++) and -fsanitize=address,undefined, so what a darwin addon does
 * with a buffer or a thread (tapkit/bpf_records.h, tapkit/pipe.h: the same code on macOS) is
 * checked on Linux, where it can run. Vitest only; not published.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const NATIVE_COMMON = resolve(fileURLToPath(new URL('../../../native-common', import.meta.url)));

function findCompiler(): string | undefined {
  for (const name of ['g++', 'clang++']) {
    for (const dir of ['/usr/bin', '/usr/local/bin', '/bin']) {
      if (existsSync(join(dir, name))) return join(dir, name);
    }
  }
  return undefined;
}

/** The compiler to use, or why there is none. */
export const SANITIZED_COMPILER = findCompiler();
export const SANITIZED_PROBLEM =
  process.platform !== 'linux'
    ? `sanitized units are built on Linux (this is ${process.platform})`
    : SANITIZED_COMPILER === undefined
      ? 'needs g++ or clang++'
      : undefined;

/**
 * Compiles native-common/test/`source` (with native-common and Node's headers on the include
 * path, -Werror) into a fresh temporary directory; returns the executable's path. `sanitizers`
 * goes to -fsanitize= (`thread` for ThreadSanitizer, which cannot be combined with ASan).
 */
export function buildSanitized(
  source: string,
  extra: readonly string[] = [],
  sanitizers = 'address,undefined',
): string {
  if (SANITIZED_COMPILER === undefined) throw new Error(SANITIZED_PROBLEM);
  const out = join(mkdtempSync(join(tmpdir(), 'tapkit-sanitized-')), source.replace(/\.cc$/, ''));
  const nodeInclude = resolve(dirname(process.execPath), '..', 'include', 'node');
  execFileSync(
    SANITIZED_COMPILER,
    [
      '-std=c++17',
      '-g',
      '-O1',
      '-Wall',
      '-Wextra',
      '-Werror',
      `-fsanitize=${sanitizers}`,
      '-fno-sanitize-recover=all',
      '-fno-omit-frame-pointer',
      `-I${NATIVE_COMMON}`,
      `-I${nodeInclude}`,
      join(NATIVE_COMMON, 'test', source),
      '-o',
      out,
      '-pthread',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return out;
}
