/**
 * Test helpers: the shared ones (@tapkit/test-support: the privileged-test switch, namespaces that
 * clean up after themselves, process utilities) and this package's fixtures.
 */
import { fileURLToPath } from 'node:url';
import { isTapError, type TapError } from '@tapkit/core';
import { run, type Netns } from '@tapkit/test-support';
import { expect } from 'vitest';

export * from '@tapkit/test-support';

export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

// ETHTOOL_GTSO through SIOCETHTOOL: is TCP segmentation offload on? (ethtool is not a test
// dependency; python3 is.)
const GET_TSO = `
import array, fcntl, socket, struct, sys
value = array.array('I', [0x1e, 0])
request = struct.pack('16sP', sys.argv[1].encode(), value.buffer_info()[0]).ljust(40, b'\\0')
fcntl.ioctl(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0x8946, request)
print(value[1])
`;

/** Whether the kernel will hand the device TSO super-frames (in `ns`, or this namespace). */
export async function tsoEnabled(name: string, ns?: Netns): Promise<boolean> {
  const args = ['-c', GET_TSO, name];
  const out = ns === undefined ? await run('python3', args) : await ns.exec('python3', args);
  return out.trim() === '1';
}

/** Runs a TypeScript fixture in a child node (through tsx), optionally inside a namespace or as another user. */
export function fixtureCommand(fixture: string, args: readonly string[] = []): [string, string[]] {
  return [process.execPath, ['--import', 'tsx', `${FIXTURES}${fixture}`, ...args]];
}

/** Runs `action` and checks that it throws (or rejects with) a TapError with `code`; returns it. */
export async function expectTapError(action: () => unknown, code: string): Promise<TapError> {
  try {
    await action();
  } catch (error) {
    expect(isTapError(error), `expected a TapError, got ${String(error)}`).toBe(true);
    expect((error as TapError).code).toBe(code);
    return error as TapError;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}
