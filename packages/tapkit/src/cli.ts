/**
 * The `tapkit` command line.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { TapError, TapErrorCode, isTapError } from '@tapkit/core';
import { runDemo } from './demo.js';
import { runDoctor } from './doctor.js';
import { formatCleanup, formatDoctor, formatList } from './format.js';
import { cleanupDarwin, cleanupLinux } from './system/cleanup.js';
import { listDarwinInterfaces } from './system/darwin.js';
import { listLinuxInterfaces } from './system/linux.js';
import type { CleanupResult, InterfaceList } from './system/types.js';

/** What the exit status means; `tapkit help` prints the same table. */
const EXIT = {
  OK: 0,
  /** The command failed (the message says why), or the demo got no answer. */
  FAILED: 1,
  USAGE: 2,
  /** doctor: no backend can open a device here. */
  NOT_READY: 3,
  /** cleanup: something that should be removed could not be (e.g. not root). */
  INCOMPLETE: 4,
} as const;

const USAGE = `Usage: tapkit <command> [options]

Commands:
  doctor [--json]
        Platform, each backend's availability (and why not), what to do about it,
        and which backend openTap() would use.
  list [--json]
        This system's network interfaces (on Linux: this network namespace): kind
        (physical, tap, tun, veth, bridge, feth, utun…), addresses, whether tapkit
        made them, and which processes hold tun/tap devices.
  cleanup [--dry-run] [--json]
        Remove interfaces tapkit made whose owner process is gone, and nothing else.
        Linux: persistent devices marked as tapkit's with an owner; macOS: feth pairs.
        Usually needs root.
  demo [--backend <name>] [--count <n>] [--pcap <file>]
        Open a device (default backend: mock), resolve a peer with ARP, ping it,
        print round-trip times and stats, and write the exchange to a pcap file.
  help  Show this text.

--json prints the report as JSON on stdout (errors too: {"error": {code, message}}).

Exit status:
  0  success
  1  the command failed (the message says why), or the demo got no reply
  2  bad usage
  3  doctor: no backend can open a device here
  4  cleanup: some interfaces could not be removed (the report says which and why)
`;

type Output = (text: string) => void;
const out: Output = (text) => process.stdout.write(text);
const err: Output = (text) => process.stderr.write(text);

class UsageError extends Error {}

function parse<T extends Record<string, { type: 'string' | 'boolean' }>>(
  command: string,
  args: string[],
  options: T,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(`tapkit ${command}: ${(error as Error).message}`);
  }
}

function unsupported(what: string): TapError {
  return new TapError(
    TapErrorCode.UNSUPPORTED_PLATFORM,
    `tapkit ${what} works on Linux and macOS, not ${process.platform}`,
  );
}

async function list(): Promise<InterfaceList> {
  if (process.platform === 'linux') return listLinuxInterfaces();
  if (process.platform === 'darwin') return listDarwinInterfaces();
  throw unsupported('list');
}

async function cleanup(dryRun: boolean): Promise<CleanupResult> {
  if (process.platform === 'linux') return cleanupLinux({ dryRun });
  if (process.platform === 'darwin') return cleanupDarwin({ dryRun });
  throw unsupported('cleanup');
}

async function demo(rest: string[]): Promise<number> {
  let values: { backend?: string; count?: string; pcap?: string };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: { backend: { type: 'string' }, count: { type: 'string' }, pcap: { type: 'string' } },
      strict: true,
    }));
  } catch (error) {
    err(`tapkit demo: ${(error as Error).message}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
  const count = values.count === undefined ? 4 : Number(values.count);
  if (!Number.isInteger(count) || count < 1 || count > 10_000) {
    err(`tapkit demo: --count must be an integer from 1 to 10000\n`);
    return EXIT.USAGE;
  }
  const result = await runDemo({
    count,
    ...(values.backend !== undefined && { backend: values.backend }),
    ...(values.pcap !== undefined && { pcapPath: values.pcap }),
  });
  return result.rttMs.length > 0 ? EXIT.OK : EXIT.FAILED;
}

/** Runs a report command: JSON or human output, and the exit code the report calls for. */
async function report(command: string, rest: string[]): Promise<number> {
  const flags = parse(command, rest, {
    json: { type: 'boolean' },
    ...(command === 'cleanup' && { 'dry-run': { type: 'boolean' } }),
  }) as { json?: boolean; 'dry-run'?: boolean };
  const json = flags.json === true;
  try {
    if (command === 'doctor') {
      const result = await runDoctor();
      out(json ? JSON.stringify(result, null, 2) + '\n' : formatDoctor(result));
      return result.selected !== undefined ? EXIT.OK : EXIT.NOT_READY;
    }
    if (command === 'list') {
      const result = await list();
      out(json ? JSON.stringify(result, null, 2) + '\n' : formatList(result));
      return EXIT.OK;
    }
    const result = await cleanup(flags['dry-run'] === true);
    out(json ? JSON.stringify(result, null, 2) + '\n' : formatCleanup(result));
    return result.failed.length > 0 ? EXIT.INCOMPLETE : EXIT.OK;
  } catch (error) {
    if (!json) throw error;
    const code = isTapError(error) ? error.code : 'ERR_TAP_SYSTEM';
    out(
      JSON.stringify({ error: { code, message: (error as Error).message ?? String(error) } }, null, 2) + '\n',
    );
    return EXIT.FAILED;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    out(USAGE);
    return command === undefined ? EXIT.USAGE : EXIT.OK;
  }
  try {
    switch (command) {
      case 'demo':
        return await demo(rest);
      case 'doctor':
      case 'list':
      case 'cleanup':
        return await report(command, rest);
      default:
        err(`tapkit: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
        return EXIT.USAGE;
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(`${error.message}\n\n${USAGE}`);
    return EXIT.USAGE;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const code = isTapError(error) ? ` [${error.code}]` : '';
    err(`tapkit: ${(error as Error).message ?? String(error)}${code}\n`);
    process.exitCode = EXIT.FAILED;
  },
);
