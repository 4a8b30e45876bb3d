// The packages as users get them: packed as they are published (scripts/pack-packages.mjs),
// installed from the tarballs into fresh projects outside the workspace, and used through
// `import`, `require`, the `tapkit` bin and TypeScript. npm installs the tarballs from disk;
// their one outside dependency (node-gyp-build) comes from npm's cache, filled by the
// workspace's own `npm ci` (--prefer-offline: the registry only if it is not there).
import { execFile, execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PLATFORM_BACKENDS } from '@tapkit/core';
import { PRIVILEGE_PROBLEM, createNetns, itPrivileged, useCleanup } from '@tapkit/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
useCleanup();

interface Packed {
  readonly name: string;
  readonly version: string;
  readonly tarball: string;
  readonly files: readonly string[];
  readonly os?: readonly string[];
}

let work: string;
let packed: Packed[];
const tarball = (name: string) => packed.find((p) => p.name === name)!.tarball;

/** The prebuilds each native package's tarball carries (see scripts/prebuilds.mjs). */
const PREBUILDS: Record<string, string[]> = {
  '@tapkit/linux-tap': ['linux-arm64', 'linux-x64'].flatMap((dir) =>
    ['glibc', 'musl'].map((libc) => `prebuilds/${dir}/@tapkit+linux-tap.${libc}.node`),
  ),
  '@tapkit/darwin-feth': ['prebuilds/darwin-x64+arm64/@tapkit+darwin-feth.node'],
  '@tapkit/darwin-utun': ['prebuilds/darwin-x64+arm64/@tapkit+darwin-utun.node'],
};

async function run(file: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  try {
    const { stdout } = await execFileAsync(file, args, {
      cwd,
      env: { ...process.env, ...env },
      timeout: 60_000,
      maxBuffer: 16 << 20,
    });
    return stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** A fresh project depending on `tapkit`, every @tapkit package resolved to a local tarball. */
async function project(
  name: string,
  overrides: Record<string, string> = {},
  flags: string[] = [],
  env: Record<string, string> = {},
) {
  const dir = join(work, name);
  mkdirSync(dir);
  const local = Object.fromEntries(
    packed.filter((p) => p.name !== 'tapkit').map((p) => [p.name, `file:${overrides[p.name] ?? p.tarball}`]),
  );
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name,
      private: true,
      dependencies: { tapkit: `file:${tarball('tapkit')}` },
      overrides: local,
    }),
  );
  await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', ...flags], dir, env);
  return dir;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tapkit-pack-'));
  const out = await run(
    process.execPath,
    [join(ROOT, 'scripts/pack-packages.mjs'), '--out', join(work, 'tarballs'), '--json'],
    ROOT,
  );
  packed = JSON.parse(out) as Packed[];
}, 60_000);
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the published packages', () => {
  it('each pack only what they need: dist, native sources, README, LICENSE', () => {
    expect(packed.map((p) => p.name)).toEqual([
      '@tapkit/core',
      '@tapkit/mock',
      '@tapkit/linux-tap',
      '@tapkit/darwin-feth',
      '@tapkit/darwin-utun',
      'tapkit',
    ]);
    for (const p of packed) {
      const native = p.files.includes('binding.gyp');
      const allowed = native
        ? /^(package\.json|README\.md|LICENSE|binding\.gyp|dist\/.+|native\/[\w.-]+\.(cc|h)|native\/common\/tapkit\/[\w.-]+\.h|prebuilds\/[\w+.-]+\/[\w@+.-]+\.node)$/
        : /^(package\.json|README\.md|LICENSE|bin\/tapkit\.js|dist\/.+)$/;
      expect(
        p.files.filter((f) => !allowed.test(f)),
        p.name,
      ).toEqual([]);
      for (const required of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.cjs'])
        expect(p.files, `${p.name} ships ${required}`).toContain(required);
      // A native package builds from its tarball alone: the shared headers (native-common/ in the
      // repository) ride along in native/common/, where binding.gyp looks outside the workspace.
      if (native) {
        for (const header of readdirSync(join(ROOT, 'native-common', 'tapkit')))
          expect(p.files, `${p.name} ships ${header}`).toContain(`native/common/tapkit/${header}`);
        // Every platform's binary, so that no user needs a compiler (scripts/prebuilds.mjs).
        expect(
          p.files.filter((f) => f.startsWith('prebuilds/')),
          p.name,
        ).toEqual(PREBUILDS[p.name]);
      }

      const manifest = JSON.parse(
        readFileSync(join(ROOT, 'packages', p.name.replace(/^@tapkit\//, ''), 'package.json'), 'utf8'),
      ) as Record<string, unknown>;
      expect(manifest['engines'], p.name).toEqual({ node: '>=20.19' });
      expect(manifest['license'], p.name).toBe('MIT');
      // Every export target is in the tarball, types first in each condition.
      const exports = manifest['exports'] as Record<string, string | Record<string, Record<string, string>>>;
      for (const [subpath, target] of Object.entries(exports)) {
        if (typeof target === 'string') {
          expect(p.files, `${p.name} ${subpath}`).toContain(target.replace(/^\.\//, ''));
          continue;
        }
        for (const condition of ['import', 'require']) {
          const entry = target[condition]!;
          expect(Object.keys(entry), `${p.name} ${subpath} ${condition}`).toEqual(['types', 'default']);
          for (const file of Object.values(entry)) expect(p.files).toContain(file.replace(/^\.\//, ''));
        }
      }
      // Platform fields are in the tarballs only: in the workspace they would break npm install.
      for (const field of ['os', 'cpu', 'libc'])
        expect(manifest[field], `${p.name} ${field}`).toBeUndefined();
    }
    expect(packed.filter((p) => p.os).map((p) => [p.name, p.os])).toEqual([
      ['@tapkit/linux-tap', ['linux']],
      ['@tapkit/darwin-feth', ['darwin']],
      ['@tapkit/darwin-utun', ['darwin']],
    ]);
    expect(packed.find((p) => p.name === 'tapkit')!.files).toEqual(
      expect.arrayContaining(['bin/tapkit.js', 'dist/cli.js']),
    );
  });

  it('install from the tarballs and run the demo through import, require, the bin and TypeScript', async () => {
    const app = await project('app');
    const installed = (name: string) => existsSync(join(app, 'node_modules', name, 'package.json'));
    // Only this platform's backends were installed; the tarballs' `os` fields decided.
    for (const p of packed.filter((p) => p.os))
      expect(installed(p.name), p.name).toBe(p.os!.includes(process.platform));

    writeFileSync(
      join(app, 'esm.mjs'),
      `import { runDemo, openTap } from 'tapkit';
const result = await runDemo({ count: 2, intervalMs: 1, pcapPath: 'esm.pcap', print: () => {} });
const device = await openTap({ backend: 'mock' }); // loaded by name, from tapkit's dependencies
console.log(JSON.stringify({ replies: result.rttMs.length, packets: result.pcapPackets, loaded: device.backend }));
await device.close();
`,
    );
    expect(JSON.parse(await run(process.execPath, ['esm.mjs'], app))).toEqual({
      replies: 2,
      packets: 6,
      loaded: 'mock',
    });

    writeFileSync(
      join(app, 'cjs.cjs'),
      `const { runDemo, isTapError } = require('tapkit');
runDemo({ count: 2, intervalMs: 1, pcapPath: 'cjs.pcap', print: () => {} }).then((result) => {
  const cjs = Object.keys(require.cache).some((f) => f.endsWith('/tapkit/dist/index.cjs'));
  console.log(JSON.stringify({ replies: result.rttMs.length, cjs, isTapError: typeof isTapError }));
});
`,
    );
    expect(JSON.parse(await run(process.execPath, ['cjs.cjs'], app))).toEqual({
      replies: 2,
      cjs: true,
      isTapError: 'function',
    });

    const bin = join(app, 'node_modules', '.bin', 'tapkit');
    expect(await run(bin, ['demo', '--count', '2', '--pcap', 'bin.pcap'], app)).toContain(
      '2 transmitted, 2 received, 0% loss',
    );
    const doctor = JSON.parse(await run(bin, ['doctor', '--json'], app, { TAPKIT_BACKEND: 'mock' })) as {
      backends: { name: string; installed: boolean; version?: string }[];
    };
    for (const name of PLATFORM_BACKENDS[process.platform] ?? [])
      expect(doctor.backends.find((b) => b.name === name)).toMatchObject({
        installed: true,
        version: '0.1.0',
      });

    // The types resolve for ESM and CommonJS consumers, and the shipped declarations check.
    writeFileSync(
      join(app, 'esm.mts'),
      `import { openTap, isTapError, createMockNetwork, runDemo, type TapDevice, type DemoResult } from 'tapkit';
const device: TapDevice = await openTap({ backend: 'mock' });
const result: DemoResult = await runDemo({ count: 1 });
export const ok: boolean = isTapError(new Error()) || device.mtu > 0 || result.sent > 0 || !!createMockNetwork;
`,
    );
    writeFileSync(
      join(app, 'cjs.cts'),
      `import tapkit = require('tapkit');
export const device: Promise<tapkit.TapDevice> = tapkit.openTap({ backend: 'mock' });
`,
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules/@types')],
        },
        files: ['esm.mts', 'cjs.cts'],
      }),
    );
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', '.'], app);

    // Where only tapkit can see a backend (pnpm without hoisting, Yarn PnP), tapkit's openTap
    // still loads it; core's own loader, from where core is, cannot.
    mkdirSync(join(app, 'node_modules/tapkit/node_modules/@tapkit'), { recursive: true });
    renameSync(
      join(app, 'node_modules/@tapkit/mock'),
      join(app, 'node_modules/tapkit/node_modules/@tapkit/mock'),
    );
    writeFileSync(
      join(app, 'isolated.mjs'),
      `import { openTap } from 'tapkit';
import { openTap as coreOpenTap } from '@tapkit/core';
const device = await openTap({ backend: 'mock' });
await device.close();
const core = await coreOpenTap({ backend: 'mock' }).then(() => 'opened', (error) => error.code);
console.log(JSON.stringify({ tapkit: device.backend, core }));
`,
    );
    writeFileSync(
      join(app, 'isolated.cjs'),
      `require('tapkit').openTap({ backend: 'mock' }).then(async (device) => {
  await device.close();
  console.log(JSON.stringify({ tapkit: device.backend }));
});
`,
    );
    expect(JSON.parse(await run(process.execPath, ['isolated.mjs'], app))).toEqual({
      tapkit: 'mock',
      core: 'ERR_TAP_BACKEND_NOT_INSTALLED',
    });
    expect(JSON.parse(await run(process.execPath, ['isolated.cjs'], app))).toEqual({ tapkit: 'mock' });
  }, 60_000);

  it('without optional dependencies, say which backend is missing and how to fix it', async () => {
    const app = await project('omit', {}, ['--omit=optional']);
    const backends = PLATFORM_BACKENDS[process.platform] ?? [];
    for (const name of backends) expect(existsSync(join(app, 'node_modules/@tapkit', name))).toBe(false);

    const doctor = await execFileAsync(join(app, 'node_modules/.bin/tapkit'), ['doctor', '--json'], {
      cwd: app,
    }).then(
      () => {
        throw new Error('doctor should exit 3');
      },
      (error: { code: number; stdout: string }) => error,
    );
    expect(doctor.code).toBe(3);
    const report = JSON.parse(doctor.stdout) as {
      backends: { name: string; code?: string; fix?: string[] }[];
    };
    for (const name of backends) {
      const backend = report.backends.find((b) => b.name === name)!;
      expect(backend.code).toBe('ERR_TAP_BACKEND_NOT_INSTALLED');
      expect(backend.fix!.join(' ')).toContain('--omit=optional');
    }

    // The error openTap() gives names each missing package and both likely causes.
    writeFileSync(
      join(app, 'open.mjs'),
      `import { openTap } from 'tapkit';
openTap().catch((error) => console.log(JSON.stringify({ code: error.code, causes: error.errors.map((e) => e.message) })));
`,
    );
    const failure = JSON.parse(await run(process.execPath, ['open.mjs'], app)) as {
      code: string;
      causes: string[];
    };
    expect(failure.code).toBe(backends.length > 0 ? 'ERR_TAP_NO_BACKEND' : 'ERR_TAP_UNSUPPORTED_PLATFORM');
    for (const cause of failure.causes)
      expect(cause).toMatch(/npm install @tapkit\/.*--omit=optional.*another/);
  }, 60_000);

  itPrivileged(
    'install linux-tap with no compiler on PATH: its linux-x64 prebuild loads and runs the demo',
    async () => {
      // PATH holds node and npm only: no cc, c++, make or python for node-gyp to find.
      const bin = join(work, 'no-compiler-bin');
      mkdirSync(bin);
      symlinkSync(process.execPath, join(bin, 'node'));
      symlinkSync(
        execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim(),
        join(bin, 'npm'),
      );
      const env = { PATH: bin };
      for (const compiler of ['cc', 'c++', 'g++', 'make', 'python3'])
        await expect(run('/bin/sh', ['-c', `command -v ${compiler}`], work, env)).rejects.toThrow();

      const app = await project('native', {}, [], env);
      const linuxTap = join(app, 'node_modules/@tapkit/linux-tap');
      expect(existsSync(join(linuxTap, 'build'))).toBe(false);
      const loaded = await run(
        process.execPath,
        ['-p', `require('node-gyp-build').resolve(${JSON.stringify(linuxTap)})`],
        app,
        env,
      );
      expect(loaded.trim()).toBe(
        join(linuxTap, `prebuilds/linux-${process.arch}/@tapkit+linux-tap.glibc.node`),
      );

      const ns = await createNetns();
      const out = await ns.exec('env', [
        `PATH=${bin}`,
        join(app, 'node_modules/.bin/tapkit'),
        ...['demo', '--backend', 'linux-tap', '--count', '2', '--pcap', '/dev/null'],
      ]);
      expect(out).toContain('linux-tap device tapkit-demo');
      expect(out).toContain('2 transmitted, 2 received, 0% loss');
    },
    120_000,
    process.arch === 'x64' ? PRIVILEGE_PROBLEM : `the x64 prebuild is for x64 (this is ${process.arch})`,
  );
});
