/**
 * A newcomer's first hour, as the README tells it: on a clean copy of the repository (the files
 * git knows, as a clone has them), `npm ci && npm run demo`, then `npx tapkit doctor`, then every
 * TypeScript snippet of the README and the guides, run as written: types stripped and nothing
 * else (no `await using` lowering), on the oldest Node.js the packages support (`engines`: the
 * official build of that version, from the npm registry). A snippet that does not run fails.
 * Snippets that open a real device run as root in a network namespace of their own.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetns, itPrivileged, useCleanup } from '@tapkit/test-support';
import { registryNode } from '@tapkit/test-support/binaries';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

useCleanup();

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The Node.js floor, `>=20.19` in package.json's engines, as a version: 20.19.0. */
const FLOOR = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }
).engines.node
  .replace(/^>=\s*/, '')
  .split('.')
  .concat('0', '0')
  .slice(0, 3)
  .join('.');
/** That Node.js, where the registry has it for this machine; else the one running the tests. */
const floorNode = () => (process.arch === 'x64' ? registryNode(ROOT, 'x64', FLOOR) : process.execPath);
/** The documents a newcomer reads, whose snippets must run. (macOS backends' READMEs need a Mac.) */
const DOCUMENTS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
  'packages/core/README.md',
  'packages/mock/README.md',
  'packages/tapkit/README.md',
];

interface Snippet {
  readonly name: string;
  readonly code: string;
  /** It opens a real device (not on the mock): root, in a namespace. */
  readonly realDevice: boolean;
}

function snippets(): Snippet[] {
  const out: Snippet[] = [];
  for (const file of DOCUMENTS) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    let n = 0;
    for (const match of text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
      const code = match[1]!;
      const line = text.slice(0, match.index).split('\n').length;
      out.push({
        name: `${file}:${line} (snippet ${++n})`,
        code,
        realDevice: /\bopenTap\(|\blinuxTap\b/.test(code) && !/backend: 'mock'/.test(code),
      });
    }
  }
  return out;
}

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(file: string, args: readonly string[], cwd: string, timeout = 600_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout, maxBuffer: 64 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) || 1 : 0, stdout, stderr }),
    );
  });
}

/** The clean copy: the files git tracks (as changed in this working tree) and untracked ones it does not ignore. */
const copy = mkdtempSync(join(tmpdir(), 'tapkit-first-hour-'));
afterAll(() => rmSync(copy, { recursive: true, force: true }));

describe("a newcomer's first hour", () => {
  it('npm ci && npm run demo on a clean copy of the repository', async () => {
    const listed = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], ROOT);
    expect(listed.code).toBe(0);
    for (const file of listed.stdout.split('\0').filter(Boolean)) {
      mkdirSync(dirname(join(copy, file)), { recursive: true });
      try {
        cpSync(join(ROOT, file), join(copy, file));
      } catch {
        // listed but deleted in this working tree
      }
    }
    const ci = await run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], copy);
    expect(ci.code, ci.stderr).toBe(0);
    const demo = await run('npm', ['run', 'demo'], copy);
    expect(demo.code, demo.stdout + demo.stderr).toBe(0);
    expect(demo.stdout).toMatch(/4 transmitted, 4 received, 0% loss/);
  }, 900_000);

  it('then npx tapkit doctor', async () => {
    const doctor = await run('npx', ['--no-install', 'tapkit', 'doctor'], copy, 60_000);
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    expect(doctor.stdout).toMatch(/^tapkit doctor: linux/m);
    expect(doctor.stdout).toMatch(/available\s+mock/);
  });

  it(`runs the snippets on Node.js ${FLOOR}, the oldest the packages support`, async () => {
    const version = await run(floorNode(), ['--version'], ROOT, 60_000);
    expect(version.stdout.trim()).toBe(process.arch === 'x64' ? `v${FLOOR}` : process.version);
  }, 120_000);

  for (const snippet of snippets()) {
    const body = async () => {
      const dir = join(copy, 'first-hour', snippet.name.replace(/[^\w.-]+/g, '_'));
      mkdirSync(dir, { recursive: true });
      const js = ts.transpileModule(snippet.code, {
        compilerOptions: {
          target: ts.ScriptTarget.ESNext,
          module: ts.ModuleKind.ESNext,
          verbatimModuleSyntax: true,
        },
      }).outputText;
      const file = join(dir, 'snippet.mjs');
      writeFileSync(file, js);
      let result: Result;
      if (snippet.realDevice) {
        const ns = await createNetns();
        result = await run('ip', ['netns', 'exec', ns.name, floorNode(), file], dir, 60_000);
      } else {
        result = await run(floorNode(), [file], dir, 60_000);
      }
      expect(result.code, `${snippet.name} failed:\n${result.stderr}\n--- as run:\n${js}`).toBe(0);
    };
    if (snippet.realDevice) itPrivileged(`runs ${snippet.name} as written`, body, 90_000);
    else it(`runs ${snippet.name} as written`, body, 90_000);
  }
});
