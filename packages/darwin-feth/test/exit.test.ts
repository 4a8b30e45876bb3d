import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CLEANUP_KEY, ProcessExitCleanup, processExitCleanup } from '../src/exit.js';
import { FakeProcess } from './helpers.js';

describe('ProcessExitCleanup', () => {
  it('listens only while something is registered', () => {
    const proc = new FakeProcess();
    const registry = new ProcessExitCleanup(proc);
    expect(proc.listenerCount('exit')).toBe(0);
    const remove = registry.add(() => undefined);
    const removeOther = registry.add(() => undefined);
    for (const event of ['exit', 'SIGINT', 'SIGTERM', 'SIGHUP']) expect(proc.listenerCount(event)).toBe(1);
    remove();
    remove(); // idempotent
    expect(proc.listenerCount('exit')).toBe(1);
    removeOther();
    for (const event of ['exit', 'SIGINT', 'SIGTERM', 'SIGHUP']) expect(proc.listenerCount(event)).toBe(0);
  });

  it('runs every cleanup on exit, even when one throws', () => {
    const proc = new FakeProcess();
    const registry = new ProcessExitCleanup(proc);
    const ran: string[] = [];
    registry.add(() => ran.push('a'));
    registry.add(() => {
      throw new Error('b failed');
    });
    registry.add(() => ran.push('c'));
    proc.emit('exit', 0);
    expect(ran).toEqual(['a', 'c']);
    expect(registry.size).toBe(0);
    expect(proc.killed).toEqual([]);
  });

  it('on a signal nobody else listens to: cleans up, stops listening, raises the signal again', () => {
    const proc = new FakeProcess();
    const registry = new ProcessExitCleanup(proc);
    const ran: string[] = [];
    registry.add(() => ran.push('pair'));
    proc.emit('SIGTERM');
    expect(ran).toEqual(['pair']);
    expect(proc.listenerCount('SIGTERM')).toBe(0);
    expect(proc.listenerCount('exit')).toBe(0);
    expect(proc.killed).toEqual(['SIGTERM']);
  });

  it('on a signal the program listens to: does nothing (the program decides)', () => {
    const proc = new FakeProcess();
    const registry = new ProcessExitCleanup(proc);
    const ran: string[] = [];
    registry.add(() => ran.push('pair'));
    proc.on('SIGINT', () => ran.push('program'));
    proc.emit('SIGINT');
    expect(ran).toEqual(['program']);
    expect(proc.killed).toEqual([]);
    expect(registry.size).toBe(1);
    proc.emit('exit', 0); // …and if the program then exits, the pair goes
    expect(ran).toEqual(['program', 'pair']);
  });

  it('keeps one registry per realm on globalThis under a registered symbol', () => {
    expect(EXIT_CLEANUP_KEY).toBe(Symbol.for('tapkit.darwin-feth.exitCleanup'));
    const registry = processExitCleanup();
    expect(processExitCleanup()).toBe(registry);
    expect((globalThis as Record<symbol, unknown>)[EXIT_CLEANUP_KEY]).toBe(registry);
  });
});

describe('a real process ending with an open device (simulated kernel)', () => {
  const here = fileURLToPath(new URL('.', import.meta.url));
  let work: string;
  let bundle: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tapkit-feth-exit-'));
    bundle = join(work, 'child.mjs');
    await build({
      entryPoints: [join(here, 'fixtures', 'child.ts')],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'silent',
    });
  });

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  function run(
    mode: string,
    signal?: NodeJS.Signals,
  ): Promise<{ code: number | null; signal: string | null; lines: string[]; stateFiles: string[] }> {
    const runtimeDir = mkdtempSync(join(work, 'run-'));
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [bundle, mode, runtimeDir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let sent = false;
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        if (signal && !sent && out.includes('opened')) {
          sent = true;
          child.kill(signal);
        }
      });
      child.stderr.resume();
      child.once('error', reject);
      child.once('exit', (code, sig) => {
        let stateFiles: string[] = [];
        try {
          stateFiles = readdirSync(join(runtimeDir, 'darwin-feth'));
        } catch {
          // never created
        }
        resolve({ code, signal: sig, lines: out.trim().split('\n'), stateFiles });
      });
    });
  }

  const removed = ['opened feth10000', 'destroyed feth20000', 'destroyed feth10000'];

  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)(
    'on %s, removes the pair and still dies of the signal',
    async (signal) => {
      const result = await run('signal', signal);
      expect(result).toMatchObject({ code: null, signal, lines: removed, stateFiles: [] });
    },
  );

  it('leaves a signal the program handles to the program (which here closes and exits)', async () => {
    const result = await run('own-listener', 'SIGTERM');
    expect(result).toMatchObject({
      code: 0,
      signal: null,
      lines: [
        'opened feth10000',
        'the program handles SIGTERM itself',
        'destroyed feth20000',
        'destroyed feth10000',
        'closed',
      ],
      stateFiles: [],
    });
  });

  it.each([
    ['process.exit()', 'exit', 3],
    ['an uncaught exception', 'throw', 1],
    ['an empty event loop after unref()', 'unref', 0],
  ])('removes the pair on %s', async (_, mode, code) => {
    const result = await run(mode);
    expect(result).toMatchObject({ code, signal: null, lines: removed, stateFiles: [] });
  });
});
