// Helpers for the examples' tests: run an example inside a network namespace and wait for it.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Netns } from '@tapkit/test-support';
import { decodeFrame, type DecodedFrame, type TapDevice } from 'tapkit';

/** A running example: its process and everything it printed so far. */
export interface Running {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Sends SIGTERM and resolves with the output once it has exited. */
  readonly stop: () => Promise<string>;
}

/**
 * Starts `examples/<example>` with tsx inside `ns` and waits for the line it prints when ready.
 * The process is killed by the namespace cleanup if the test does not stop it.
 */
export async function startExample(
  ns: Netns,
  example: string,
  args: string[],
  timeoutMs = 10_000,
): Promise<Running> {
  const main = fileURLToPath(new URL(`./${example}`, import.meta.url));
  const child = ns.spawn(process.execPath, ['--import', 'tsx', main, ...args]);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${example} not ready in ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    const check = () => {
      if (/^ready /m.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${example} exited before it was ready:\n${output}`));
    });
  });
  return {
    child,
    output: () => output,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      return output;
    },
  };
}

/** The JSON after `stats ` in an example's output. */
export function statsOf<T>(output: string): T {
  const line = /^stats (.*)$/m.exec(output)?.[1];
  if (line === undefined) throw new Error(`no stats line in:\n${output}`);
  return JSON.parse(line) as T;
}

/** Reads frames from `device` until `match` accepts one; fails after `timeoutMs`. */
export async function readUntil(
  device: TapDevice,
  match: (frame: DecodedFrame) => boolean,
  timeoutMs = 2000,
): Promise<DecodedFrame> {
  const signal = AbortSignal.timeout(timeoutMs);
  for (;;) {
    const decoded = decodeFrame(await device.read({ signal }));
    if (match(decoded)) return decoded;
  }
}
