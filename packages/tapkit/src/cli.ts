/**
 * The `tapkit` command line.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { isTapError } from '@tapkit/core';
import { runDemo } from './demo.js';

const USAGE = `Usage: tapkit <command> [options]

Commands:
  demo [--backend <name>] [--count <n>] [--pcap <file>]
        Open a device (default backend: mock), resolve a peer with ARP, ping it,
        print round-trip times and stats, and write the exchange to a pcap file.
  help  Show this text.
`;

/** Exit codes: 0 success, 1 the command failed, 2 bad usage. */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'demo') {
    process.stderr.write(`tapkit: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  let values: { backend?: string; count?: string; pcap?: string };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { backend: { type: 'string' }, count: { type: 'string' }, pcap: { type: 'string' } },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`tapkit demo: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const count = values.count === undefined ? 4 : Number(values.count);
  if (!Number.isInteger(count) || count < 1 || count > 10_000) {
    process.stderr.write(`tapkit demo: --count must be an integer from 1 to 10000\n`);
    return 2;
  }
  const result = await runDemo({
    count,
    ...(values.backend !== undefined && { backend: values.backend }),
    ...(values.pcap !== undefined && { pcapPath: values.pcap }),
  });
  return result.rttMs.length > 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const code = isTapError(error) ? ` [${error.code}]` : '';
    process.stderr.write(`tapkit: ${(error as Error).message ?? String(error)}${code}\n`);
    process.exitCode = 1;
  },
);
