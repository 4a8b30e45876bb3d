/**
 * Test helpers: the shared ones (@tapkit/test-support: the privileged-test switch, namespaces that
 * clean up after themselves, process utilities) and this package's fixtures.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isTapError, type TapDevice, type TapError } from '@tapkit/core';
import { createNetns, moveInto, onCleanup, run, waitFor, type Netns } from '@tapkit/test-support';
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

/**
 * TCP through a relay: an HTTP server in `server` (every address, on `port`) serves 8 MiB of
 * random bytes, and curl in `client` fetches them from each URL; each copy must arrive intact.
 * Logs the rate; returns the payload's length.
 */
export async function fetchThroughRelay(
  client: Netns,
  server: Netns,
  port: number,
  urls: readonly string[],
  label: string,
): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tapkit-tcp-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const payload = randomBytes(8 * 1024 * 1024);
  writeFileSync(join(dir, 'in'), payload);
  server.spawn('python3', ['-m', 'http.server', String(port), '--bind', '::', '--directory', dir]);
  await waitFor(
    async () => (await server.exec('ss', ['-ltn'])).includes(`:${port}`),
    10_000,
    'server listening',
  );
  for (const url of urls) {
    const started = performance.now();
    await client.exec('curl', ['-sSfg', '--max-time', '30', '-o', join(dir, 'out'), url], 40_000);
    const seconds = (performance.now() - started) / 1000;
    expect(readFileSync(join(dir, 'out')).equals(payload)).toBe(true);
    const mbits = (payload.length * 8) / seconds / 1e6;
    console.log(`${label}: 8 MiB from ${url} in ${seconds.toFixed(2)} s (${mbits.toFixed(0)} Mbit/s)`);
  }
  return payload.length;
}

/** Whether every frame `from` read, `to` wrote (or dropped: it was written while its link was down). */
export const forwarded = (from: TapDevice, to: TapDevice): boolean =>
  to.stats().txFrames + (to.stats().drops['interfaceDown'] ?? 0) === from.stats().rxFrames;

/**
 * Moves devices `a` and `b` into two fresh namespaces as `<subnet>.1/24` and `<subnet>.2/24`,
 * whatever joins them (a relay, a tunnel), then checks that ping (3 of 3) and TCP (8 MiB over
 * HTTP on `port`, byte for byte, see fetchThroughRelay) cross from the first to the second.
 * Returns the payload's length.
 */
export async function pingAndFetchAcross(
  a: TapDevice,
  b: TapDevice,
  subnet: string,
  port: number,
  label: string,
): Promise<number> {
  const [nsA, nsB] = [await createNetns(), await createNetns()];
  // Cleanups run last first: the devices close before their namespaces go (which would end them
  // as gone, and the pipes between them with an error).
  onCleanup(() => Promise.all([a.close(), b.close()]).then(() => undefined));
  await moveInto(nsA, a.name, `${subnet}.1/24`);
  await moveInto(nsB, b.name, `${subnet}.2/24`);
  expect(await nsA.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', `${subnet}.2`])).toMatch(/3 received/);
  return fetchThroughRelay(nsA, nsB, port, [`http://${subnet}.2:${port}/in`], label);
}
