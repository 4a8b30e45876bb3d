/**
 * Privileged tests on Linux, on the shared helpers (@tapkit/test-support): namespaces and
 * interface names of their own, cleanup after every test, pass or fail. These tests also need
 * linux-tap's TUN support: without root, /dev/net/tun, iproute2 or linux-tap's addon they are
 * skipped with the reason — unless TAPKIT_REQUIRE_PRIVILEGED=1, where they fail instead.
 */
import {
  PRIVILEGE_PROBLEM as LINUX_PROBLEM,
  createNetns,
  itPrivileged as itWhen,
  onCleanup,
  uniqueName,
  useCleanup,
  type Netns,
} from '@tapkit/test-support';

export { run, stopChild, sweepStaleNamespaces, waitFor, type Netns } from '@tapkit/test-support';

async function findProblem(): Promise<string | undefined> {
  if (LINUX_PROBLEM !== undefined) return LINUX_PROBLEM;
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

/** `it` for a test that needs root on Linux and linux-tap: skipped with the reason, or failed when required. */
export function itPrivileged(name: string, body: () => Promise<void> | void, timeout?: number): void {
  itWhen(name, body, timeout, PRIVILEGE_PROBLEM);
}

/** One test file's privileged resources. Create one per file, at the top. */
export class PrivilegedContext {
  constructor() {
    useCleanup();
  }

  onCleanup(cleanup: () => Promise<void> | void): void {
    onCleanup(cleanup);
  }

  /** A fresh interface name (`tku<pid>x<n>`, at most 15 characters). */
  interfaceName(): string {
    return uniqueName('tku');
  }

  /** A fresh namespace with lo up, deleted (with every process in it) after the test. */
  netns(): Promise<Netns> {
    return createNetns();
  }
}
