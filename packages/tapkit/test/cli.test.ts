// The CLI's own behaviour, without privileges: usage, help and exit codes, and the mock path.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

function tapkit(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the tapkit CLI', () => {
  it('documents its commands and exit codes in help', async () => {
    const help = await tapkit(['help']);
    expect(help.code).toBe(0);
    for (const command of [
      'doctor [--json]',
      'list [--json]',
      'cleanup [--dry-run] [--json]',
      'demo [--backend',
    ])
      expect(help.stdout).toContain(command);
    expect(help.stdout).toMatch(
      /Exit status:\n {2}0 {2}success\n {2}1 .*\n {2}2 {2}bad usage\n {2}3 {2}doctor: .*\n {2}4 {2}cleanup: /,
    );
    expect((await tapkit([])).code).toBe(2);
  });

  it('refuses bad usage with exit code 2', async () => {
    for (const args of [['list', '--dry-run'], ['cleanup', '--force'], ['doctor', 'extra'], ['frobnicate']]) {
      const run = await tapkit(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toContain('Usage: tapkit');
    }
  });

  it('doctor follows TAPKIT_BACKEND, and exits 3 when nothing can open', async () => {
    const mock = await tapkit(['doctor', '--json'], { TAPKIT_BACKEND: 'mock' });
    expect(mock.code).toBe(0);
    expect(JSON.parse(mock.stdout)).toMatchObject({ forcedBackend: 'mock', selected: 'mock' });
    const nope = await tapkit(['doctor'], { TAPKIT_BACKEND: 'nope' });
    expect(nope.code).toBe(3);
    expect(nope.stdout).toContain('TAPKIT_BACKEND=nope is not a backend tapkit knows');
  });
});
