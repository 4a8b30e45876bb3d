/**
 * Shared test helpers for tapkit's own tests: the privileged-test switch, network namespaces that
 * clean up after themselves, and small process utilities. Vitest only; not published.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, afterEach, expect, it } from 'vitest';
import { CYCLE_ENV, CYCLE_NODE_ARGS, type CycleFigures } from './cycles.js';

export type { CycleFigures } from './cycles.js';

const execFileAsync = promisify(execFile);

function privilegeProblem(): string | undefined {
  if (process.platform !== 'linux') return `needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'needs root (CAP_NET_ADMIN and ip netns)';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  if (!['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some((p) => existsSync(p)))
    return 'needs iproute2 (ip)';
  return undefined;
}

/** Why privileged tests cannot run here, or undefined when they can. */
export const PRIVILEGE_PROBLEM = privilegeProblem();

/**
 * `it` for tests that need root and /dev/net/tun (or whatever `problem` says is missing).
 * Without them the test is skipped with the reason, unless TAPKIT_REQUIRE_PRIVILEGED=1, where it
 * fails instead.
 */
export function itPrivileged(
  name: string,
  body: () => Promise<void> | void,
  timeout?: number,
  problem: string | undefined = PRIVILEGE_PROBLEM,
): void {
  if (problem === undefined) {
    it(name, body, timeout);
  } else if (process.env['TAPKIT_REQUIRE_PRIVILEGED'] === '1') {
    it(name, () => {
      throw new Error(`privileged test cannot run (TAPKIT_REQUIRE_PRIVILEGED=1): ${problem}`);
    });
  } else {
    it.skip(`${name} [skipped: ${problem}]`, body);
  }
}

/** Runs a command; rejects with its stderr on a non-zero exit. */
export async function run(file: string, args: readonly string[], timeoutMs = 20_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync(file, args, { timeout: timeoutMs, encoding: 'utf8' });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

let counter = 0;

/** An interface name unique to this process and call: `tk<pid><n>`, at most 15 characters. */
export function uniqueName(prefix = 'tk'): string {
  return `${prefix}${process.pid.toString(36)}x${(counter++).toString(36)}`;
}

/** Names of the interfaces in this network namespace. */
export function interfaces(): string[] {
  return readdirSync('/sys/class/net');
}

/** How many fds this process has open. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** A network namespace this test run made; deleted by {@link useCleanup}'s hooks. */
export class Netns {
  constructor(readonly name: string) {}

  exec(file: string, args: readonly string[], timeoutMs?: number): Promise<string> {
    return run('ip', ['netns', 'exec', this.name, file, ...args], timeoutMs);
  }

  /** `ip` inside the namespace. */
  ip(...args: string[]): Promise<string> {
    return run('ip', ['-n', this.name, ...args]);
  }

  /** Starts a long-running process inside the namespace (stopped by the cleanup hooks). */
  spawn(file: string, args: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, file, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(() => stopChild(child));
    return child;
  }
}

type Cleanup = () => Promise<void> | void;
const cleanups: Cleanup[] = [];

/** Registers a cleanup to run after the current test, pass or fail. */
export function onCleanup(cleanup: Cleanup): void {
  cleanups.push(cleanup);
}

async function runCleanups(): Promise<void> {
  const errors: unknown[] = [];
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
}

/** Installs afterEach/afterAll hooks that run the registered cleanups. Call once per file. */
export function useCleanup(): void {
  afterEach(runCleanups);
  afterAll(runCleanups);
}

let netnsCounter = 0;

/** Creates a fresh network namespace `tapkit-test-<pid>-<n>` with lo up, deleted after the test. */
export async function createNetns(): Promise<Netns> {
  const name = `tapkit-test-${process.pid}-${netnsCounter++}`;
  await run('ip', ['netns', 'add', name]);
  cleanups.push(() => deleteNetns(name));
  const ns = new Netns(name);
  await ns.ip('link', 'set', 'lo', 'up');
  return ns;
}

async function deleteNetns(name: string): Promise<void> {
  // Processes still inside would keep it alive: kill them first.
  try {
    const pids = (await run('ip', ['netns', 'pids', name])).split(/\s+/).filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
  } catch {
    // no such namespace
  }
  await run('ip', ['netns', 'del', name]).catch(() => undefined);
}

/** Deletes namespaces left by earlier runs whose process is gone (a crashed run). */
export async function sweepStaleNamespaces(): Promise<void> {
  if (!existsSync('/run/netns')) return;
  for (const name of readdirSync('/run/netns')) {
    const match = /^tapkit-test-(\d+)-\d+$/.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) await deleteNetns(name);
  }
}

/**
 * Moves a device into a namespace, gives it addresses there (IPv6 ones without duplicate
 * address detection, so they are usable at once) and brings it up. The fd stays ours.
 */
export async function moveInto(ns: Netns, name: string, ...cidrs: string[]): Promise<void> {
  await run('ip', ['link', 'set', 'dev', name, 'netns', ns.name]);
  for (const cidr of cidrs) {
    await ns.ip('addr', 'add', cidr, 'dev', name, ...(cidr.includes(':') ? ['nodad'] : []));
  }
  await ns.ip('link', 'set', 'dev', name, 'up');
}

/** Ends a child and waits for it. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

/** Polls `check` until it is true or `timeoutMs` passes. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what: string | (() => string) = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** mulberry32: a tiny seeded generator of numbers in [0, 1), so that fuzz runs reproduce. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}

/**
 * Runs a fixture that measures cycles with `measureCycles` (from `@tapkit/test-support/cycles`)
 * in a node set up for it (through tsx; in `ns` when given) and returns its figures: the last
 * line it prints.
 */
export async function runCycleFixture(
  file: string,
  args: readonly string[],
  ns?: Netns,
  timeoutMs = 280_000,
): Promise<CycleFigures> {
  const env = Object.entries(CYCLE_ENV).map(([key, value]) => `${key}=${value}`);
  const command = [...env, process.execPath, ...CYCLE_NODE_ARGS, '--import', 'tsx', file, ...args];
  const out =
    ns === undefined ? await run('env', command, timeoutMs) : await ns.exec('env', command, timeoutMs);
  return JSON.parse(out.trim().split('\n').at(-1)!) as CycleFigures;
}

/**
 * What "no leak" means in tapkit's leak tests, per cycle after GC: the heap grows by less than
 * 1 KiB (the fine measure), RSS by less than 8 KiB (32 KiB for runs under 1,000 cycles, whose
 * second half is too short to measure RSS finer: it moves by megabytes on its own), and the fd
 * count is back where it was. A device kept alive after close costs 5 KB of heap and 20 KB to
 * 125 KB of RSS: every such leak fails.
 */
export function expectNoLeak(figures: CycleFigures): void {
  const { mode } = figures;
  expect(figures.fdsAfter, `${mode}: fds`).toBe(figures.fdsBefore);
  expect(figures.heapPerCycle, `${mode}: heap growth per cycle`).toBeLessThan(1024);
  expect(figures.rssPerCycle, `${mode}: RSS growth per cycle`).toBeLessThan(
    figures.cycles >= 1000 ? 8192 : 32768,
  );
}

/**
 * A leak test per mode: `cycles` cycles of `fixture` (which measures with measureCycles; run by
 * runCycleFixture with `args`, then the cycle count and the mode) leave no leak (expectNoLeak).
 */
export function itLeaksNothing(
  fixture: string,
  what: string,
  cycles: number,
  modes: readonly string[],
  args: readonly string[] = [],
): void {
  for (const mode of modes) {
    it(`${cycles.toLocaleString('en')} ${what} (${mode}) leave no memory or fds behind`, async () => {
      const figures = await runCycleFixture(fixture, [...args, String(cycles), mode]);
      expect(figures.cycles).toBe(cycles);
      expectNoLeak(figures);
    }, 120_000);
  }
}
