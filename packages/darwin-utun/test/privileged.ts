/**
 * Privileged tests on Linux: who may run them, network namespaces and interface names of
 * their own, and cleanup that runs after every test, pass or fail.
 *
 * Without root, /dev/net/tun, iproute2 or linux-tap's addon the tests are skipped with the
 * reason — unless TAPKIT_REQUIRE_PRIVILEGED=1, where they fail instead.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, afterEach, it } from 'vitest';

const execFileAsync = promisify(execFile);

const IP_PATHS = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'];

async function findProblem(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'needs root (CAP_NET_ADMIN, ip netns)';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  if (!IP_PATHS.some((p) => existsSync(p))) return 'needs iproute2 (ip)';
  try {
    const { probeLinuxTap } = await import('@tapkit/linux-tap');
    const probe = await probeLinuxTap();
    if (!probe.available) return `needs linux-tap: ${probe.reason}`;
  } catch (error) {
    return `needs @tapkit/linux-tap built (${String(error)})`;
  }
  return undefined;
}

/** Why privileged Linux tests cannot run here, or undefined when they can. */
export const PRIVILEGE_PROBLEM = await findProblem();

/** `it` for a test that needs root on Linux: skipped with the reason, or failed when required. */
export function itPrivileged(name: string, body: () => Promise<void> | void, timeout?: number): void {
  const problem = PRIVILEGE_PROBLEM;
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

/** Runs a command; rejects with its output on a non-zero exit. */
export async function run(file: string, args: readonly string[], timeoutMs = 20_000): Promise<string> {
  try {
    const { stdout } = await execFileAsync(file, args, { timeout: timeoutMs, encoding: 'utf8' });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

/** A network namespace a test made. */
export class Netns {
  constructor(
    readonly name: string,
    private readonly context: PrivilegedContext,
  ) {}

  exec(file: string, args: readonly string[], timeoutMs?: number): Promise<string> {
    return run('ip', ['netns', 'exec', this.name, file, ...args], timeoutMs);
  }

  ip(...args: string[]): Promise<string> {
    return run('ip', ['-n', this.name, ...args]);
  }

  /** Starts a long-running process inside; it is killed by the cleanup. */
  spawn(file: string, args: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, file, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.context.onCleanup(() => stopChild(child));
    return child;
  }
}

type Cleanup = () => Promise<void> | void;

const NETNS_PATTERN = /^tapkit-utun-(\d+)-\d+$/;

/**
 * One test file's privileged resources: namespaces `tapkit-utun-<pid>-<n>`, interface names
 * `tku<pid>x<n>` (base 36, at most 15 characters), and the cleanups that remove them after
 * each test. Create one per file, at the top.
 */
export class PrivilegedContext {
  readonly #cleanups: Cleanup[] = [];
  #namespaces = 0;
  #names = 0;

  constructor() {
    afterEach(() => this.#runCleanups());
    afterAll(() => this.#runCleanups());
  }

  onCleanup(cleanup: Cleanup): void {
    this.#cleanups.push(cleanup);
  }

  async #runCleanups(): Promise<void> {
    const errors: unknown[] = [];
    while (this.#cleanups.length > 0) {
      try {
        await this.#cleanups.pop()!();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }

  /** A fresh interface name. */
  interfaceName(): string {
    return `tku${process.pid.toString(36)}x${(this.#names++).toString(36)}`;
  }

  /** A fresh namespace with lo up, deleted (with every process in it) after the test. */
  async netns(): Promise<Netns> {
    const name = `tapkit-utun-${process.pid}-${this.#namespaces++}`;
    await run('ip', ['netns', 'add', name]);
    this.onCleanup(() => deleteNetns(name));
    const ns = new Netns(name, this);
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }
}

async function deleteNetns(name: string): Promise<void> {
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

/** Deletes namespaces left by earlier runs of these tests whose process is gone. */
export async function sweepStaleNamespaces(): Promise<void> {
  if (!existsSync('/run/netns')) return;
  for (const name of readdirSync('/run/netns')) {
    const pid = Number(NETNS_PATTERN.exec(name)?.[1] ?? NaN);
    if (Number.isNaN(pid)) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) await deleteNetns(name);
  }
}

/** Ends a child process and waits for it. */
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
