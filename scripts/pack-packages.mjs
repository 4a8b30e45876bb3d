#!/usr/bin/env node
// Packs the public packages the way they are published, with their per-platform metadata.
//
//   node scripts/pack-packages.mjs --out <dir> [--json]
//       npm pack every public package into <dir>; the backends' tarballs get `os` in their
//       package.json (see PLATFORM_FIELDS). The workspace manifests are not touched.
//   node scripts/pack-packages.mjs --write-platform-fields
//       Writes the same fields into the workspace manifests. For the release job only, right
//       before `changeset publish`, in a throwaway checkout: never commit the result.
//
// Why not in the workspace manifests: a workspace package with `"os": ["darwin"]` makes
// `npm install` of the whole workspace fail on Linux with EBADPLATFORM. Why not a prepack
// script: `npm publish` re-reads package.json after packing (postpack would already have undone
// it), so the registry's metadata — which is what npm checks before installing an optional
// dependency — would not carry `os` even though the tarball did.
//
// The backends' tarballs also get the shared native headers: native-common/ (the repository's
// single copy of errors.h and napi_config.h) goes to native/common/ inside each, where their
// binding.gyp looks for it (its "../../native-common" only exists in the workspace), so node-gyp
// can compile a package from its tarball alone. Only in the tarball: never copied into the
// workspace packages.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The native headers the backends share, and where in a backend's tarball they go. */
export const NATIVE_COMMON = join(ROOT, 'native-common');
export const NATIVE_COMMON_IN_PACKAGE = join('native', 'common');

/** The published packages, by workspace directory. */
export const PUBLIC_PACKAGES = ['core', 'mock', 'linux-tap', 'darwin-feth', 'darwin-utun', 'tapkit'];

/**
 * Per-platform fields. Each backend ships one package for its OS, with prebuilds for every CPU
 * and libc inside (node-gyp-build picks the right one at run time), so only `os` is set: a
 * `cpu` or `libc` field would only turn "no prebuild for this machine" — which the addon
 * loader explains — into a silently skipped optional dependency.
 */
export const PLATFORM_FIELDS = {
  '@tapkit/linux-tap': { os: ['linux'] },
  '@tapkit/darwin-feth': { os: ['darwin'] },
  '@tapkit/darwin-utun': { os: ['darwin'] },
};

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function manifestPath(dir) {
  return join(ROOT, 'packages', dir, 'package.json');
}

function withPlatformFields(manifest) {
  const fields = PLATFORM_FIELDS[manifest.name];
  return fields ? { ...manifest, ...fields } : manifest;
}

/** npm pack `dirs` into `out` (one npm run for all: npm starts slowly); returns npm's summaries. */
function npmPack(dirs, out, { ignoreScripts = false } = {}) {
  const flags = ignoreScripts ? ['--ignore-scripts'] : [];
  const json = execFileSync(npm, ['pack', ...dirs, '--pack-destination', out, '--json', ...flags], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(json);
}

/** Packs every public package into `out`; returns one summary per tarball. */
export function packAll(out) {
  mkdirSync(out, { recursive: true });
  const packed = npmPack(
    PUBLIC_PACKAGES.map((dir) => join(ROOT, 'packages', dir)),
    out,
  );
  // The backends: unpack, add the platform fields and the shared native headers, pack again
  // (over the first tarball), so the tarball is otherwise exactly npm's.
  const scratch = mkdtempSync(join(tmpdir(), 'tapkit-repack-'));
  const repacked = new Map();
  try {
    const dirs = [];
    for (const p of packed.filter((p) => PLATFORM_FIELDS[p.name])) {
      const dir = join(scratch, p.filename.replace(/\.tgz$/, ''));
      mkdirSync(dir);
      execFileSync('tar', ['-xzf', join(out, p.filename), '-C', dir]);
      const file = join(dir, 'package', 'package.json');
      const manifest = withPlatformFields(JSON.parse(readFileSync(file, 'utf8')));
      writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n');
      if (p.files.some((f) => f.path === 'binding.gyp')) {
        cpSync(NATIVE_COMMON, join(dir, 'package', NATIVE_COMMON_IN_PACKAGE), {
          recursive: true,
          // The headers only: native-common/test/ holds sanitized test programs, not shipped.
          filter: (source) => source !== join(NATIVE_COMMON, 'test'),
        });
      }
      dirs.push(join(dir, 'package'));
    }
    // The packages' own lifecycle scripts ran in the first pack; not again, out of context.
    if (dirs.length > 0) {
      for (const p of npmPack(dirs, out, { ignoreScripts: true })) repacked.set(p.name, p);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return packed
    .map((first) => repacked.get(first.name) ?? first)
    .map((p) => ({
      name: p.name,
      version: p.version,
      tarball: join(out, p.filename),
      files: p.files.map((f) => f.path).sort(),
      ...PLATFORM_FIELDS[p.name],
    }));
}

/** Writes the platform fields into the workspace manifests (release job only). */
export function writePlatformFields() {
  for (const dir of PUBLIC_PACKAGES) {
    const file = manifestPath(dir);
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    if (!PLATFORM_FIELDS[manifest.name]) continue;
    writeFileSync(file, JSON.stringify(withPlatformFields(manifest), null, 2) + '\n');
    console.log(`${manifest.name}: ${JSON.stringify(PLATFORM_FIELDS[manifest.name])}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      json: { type: 'boolean' },
      'write-platform-fields': { type: 'boolean' },
    },
  });
  if (values['write-platform-fields']) {
    writePlatformFields();
  } else if (values.out) {
    const results = packAll(resolve(values.out));
    if (values.json) console.log(JSON.stringify(results, null, 2));
    else for (const r of results) console.log(`${r.tarball}  (${r.files.length} files)`);
  } else {
    console.error('usage: pack-packages.mjs --out <dir> [--json] | --write-platform-fields');
    process.exit(2);
  }
}
