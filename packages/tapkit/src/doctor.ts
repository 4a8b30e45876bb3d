/**
 * `tapkit doctor`: can tapkit open a device here, with which backend, and if not, why not and
 * what to do. Each backend is loaded and probed exactly as `openTap()` would.
 *
 * @module
 */
import { createRequire } from 'node:module';
import { release } from 'node:os';
import {
  KNOWN_BACKENDS,
  PLATFORM_BACKENDS,
  TapErrorCode,
  isTapError,
  type BackendLoader,
} from '@tapkit/core';
import { loadBackend } from './backends.js';

/** One backend, as doctor found it. */
export interface BackendReport {
  readonly name: string;
  readonly package: string;
  /** The package's version, when it is installed. */
  readonly version?: string;
  readonly installed: boolean;
  readonly available: boolean;
  /** The TapError code that says why not. */
  readonly code?: string;
  readonly reason?: string;
  /** What to do about it. */
  readonly fix?: readonly string[];
}

/** What `tapkit doctor` reports (also its `--json` output). */
export interface DoctorReport {
  readonly platform: string;
  readonly arch: string;
  /** `uname -r`. */
  readonly osRelease: string;
  readonly node: string;
  /** Linux: `glibc <version>` or `musl`. */
  readonly libc?: string;
  readonly uid?: number;
  /** `TAPKIT_BACKEND`, when set. */
  readonly forcedBackend?: string;
  readonly backends: readonly BackendReport[];
  /** The backend `openTap()` without a `backend` option would use; undefined when none can open. */
  readonly selected?: string;
  /** Why nothing can be opened, when `selected` is undefined. */
  readonly problem?: string;
}

/** How doctor looks. For tests; the defaults are this process. */
export interface DoctorContext {
  readonly platform?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly load?: BackendLoader;
  /** The installed version of a package, undefined when it is not installed. */
  readonly versionOf?: (pkg: string) => string | undefined;
}

const here = createRequire(import.meta.url);

function installedVersion(pkg: string): string | undefined {
  try {
    return (here(`${pkg}/package.json`) as { version?: string }).version ?? '?';
  } catch {
    return undefined;
  }
}

function libc(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header;
  return header?.glibcVersionRuntime ? `glibc ${header.glibcVersionRuntime}` : 'musl';
}

/** What to do about a backend that is not available. */
export function fixFor(
  name: string,
  code: string | undefined,
  installed: boolean,
  platform: string,
): string[] {
  const pkg = KNOWN_BACKENDS[name] ?? name;
  switch (code) {
    case TapErrorCode.BACKEND_NOT_INSTALLED:
      return installed
        ? [
            `${pkg} is installed but its native addon did not load. Reinstall on this machine (prebuilds cover ` +
              'Linux x64/arm64 with glibc or musl, and macOS x64/arm64); node_modules copied from another OS or ' +
              'CPU will not work.',
            `Elsewhere, build it: cd node_modules/${pkg} && npx node-gyp rebuild (needs a C++ compiler, make, python3).`,
          ]
        : [
            `Install it: npm install ${pkg}.`,
            "If you installed 'tapkit', optional dependencies were left out: do not install with --omit=optional " +
              '(or NODE_ENV/npm config omitting them), and run npm install on this OS rather than copying node_modules ' +
              'from another.',
          ];
    case TapErrorCode.PERMISSION_DENIED:
      return platform === 'linux'
        ? [
            'Run as root, or give node CAP_NET_ADMIN: sudo setcap cap_net_admin+ep "$(readlink -f "$(which node)")".',
            'Or have root prepare a persistent device for your user and attach to it (docs/permissions.md).',
            'In a container: --cap-add NET_ADMIN --device /dev/net/tun.',
          ]
        : ['Run as root (sudo): feth, BPF, NDRV and utun all need it on macOS.'];
    case TapErrorCode.KERNEL_SUPPORT_MISSING:
      return platform === 'linux'
        ? [
            "Load the tun module: sudo modprobe tun (and add 'tun' to /etc/modules-load.d/ to keep it).",
            'In a container, pass the device in: --device /dev/net/tun.',
          ]
        : ['This macOS lacks what the backend needs; darwin-utun works where feth does not.'];
    case TapErrorCode.UNSUPPORTED_PLATFORM:
      return [`This backend does not run on ${platform}; use backend 'mock' for an in-memory device.`];
    default:
      return code === undefined ? [] : ['See docs/troubleshooting.md for this error code.'];
  }
}

async function inspect(name: string, context: Required<DoctorContext>): Promise<BackendReport> {
  const pkg = KNOWN_BACKENDS[name] ?? name;
  const version = context.versionOf(pkg);
  const installed = version !== undefined;
  const base = { name, package: pkg, installed, ...(version !== undefined && { version }) };
  let code: string;
  let reason: string;
  try {
    const backend = await context.load(name);
    const probe = await backend.probe();
    if (probe.available) return { ...base, available: true };
    code = probe.error.code;
    reason = probe.reason;
    if (probe.fix !== undefined) return { ...base, available: false, code, reason, fix: [...probe.fix] };
  } catch (error) {
    code = isTapError(error) ? error.code : TapErrorCode.SYSTEM;
    reason = (error as Error).message ?? String(error);
  }
  return { ...base, available: false, code, reason, fix: fixFor(name, code, installed, context.platform) };
}

/** Runs the checks. Never throws for a backend's sake: each one's failure is in its report. */
export async function runDoctor(options: DoctorContext = {}): Promise<DoctorReport> {
  const context: Required<DoctorContext> = {
    platform: options.platform ?? process.platform,
    env: options.env ?? process.env,
    load: options.load ?? loadBackend,
    versionOf: options.versionOf ?? installedVersion,
  };
  const forced = context.env['TAPKIT_BACKEND']?.trim() || undefined;
  const names = [...(PLATFORM_BACKENDS[context.platform] ?? [])];
  if (forced !== undefined && !names.includes(forced) && Object.hasOwn(KNOWN_BACKENDS, forced))
    names.push(forced);
  if (!names.includes('mock')) names.push('mock');
  const backends: BackendReport[] = [];
  for (const name of names) backends.push(await inspect(name, context));

  let selected: string | undefined;
  let problem: string | undefined;
  if (forced !== undefined) {
    const report = backends.find((b) => b.name === forced);
    if (!report)
      problem = `TAPKIT_BACKEND=${forced} is not a backend tapkit knows (${Object.keys(KNOWN_BACKENDS).join(', ')})`;
    else if (report.available) selected = forced;
    else problem = `TAPKIT_BACKEND=${forced}, and ${forced} cannot open a device here`;
  } else {
    const platformList = PLATFORM_BACKENDS[context.platform] ?? [];
    selected = backends.find((b) => platformList.includes(b.name) && b.available)?.name;
    if (selected === undefined) {
      problem =
        platformList.length === 0
          ? `tapkit has no backend for ${context.platform}; only 'mock' (in memory) works here`
          : `no backend for ${context.platform} can open a device here (${platformList.join(', ')}); see the fixes above`;
    }
  }
  const uid = process.getuid?.();
  const libcName = context.platform === process.platform ? libc() : undefined;
  return {
    platform: context.platform,
    arch: process.arch,
    osRelease: release(),
    node: process.versions.node,
    ...(libcName !== undefined && { libc: libcName }),
    ...(uid !== undefined && { uid }),
    ...(forced !== undefined && { forcedBackend: forced }),
    backends,
    ...(selected !== undefined && { selected }),
    ...(problem !== undefined && { problem }),
  };
}
