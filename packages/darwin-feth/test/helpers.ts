/** Small helpers shared by darwin-feth's tests. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TapBackend, TapDevice } from '@tapkit/core';
import { createDarwinFethBackend, type DarwinFethOptions } from '../src/index.js';
import { ProcessExitCleanup, type ProcessHooks } from '../src/exit.js';
import { SimulatedDarwinKernel, type SimulatedKernelOptions } from './kernel.js';

/** A fresh runtime directory; `remove()` deletes it. */
export function tempRuntimeDir(): { dir: string; stateFiles(): string[]; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tapkit-feth-'));
  return {
    dir,
    stateFiles: () => {
      try {
        return readdirSync(join(dir, 'darwin-feth')).sort();
      } catch {
        return [];
      }
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A process stand-in for exit-cleanup tests: records listeners, kill() is recorded, not sent. */
export class FakeProcess implements ProcessHooks {
  readonly pid = 4242;
  readonly listeners = new Map<string, ((...args: unknown[]) => void)[]>();
  readonly killed: string[] = [];

  on(event: string, listener: (...args: unknown[]) => void): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return this;
  }

  removeListener(event: string, listener: (...args: unknown[]) => void): this {
    this.listeners.set(
      event,
      (this.listeners.get(event) ?? []).filter((l) => l !== listener),
    );
    return this;
  }

  listenerCount(event: string): number {
    return this.listeners.get(event)?.length ?? 0;
  }

  kill(_pid: number, signal: string): boolean {
    this.killed.push(signal);
    return true;
  }

  emit(event: string, ...args: unknown[]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) listener(event, ...args);
  }
}

/** A simulated kernel, a runtime directory and a backend over them, with a private exit registry. */
export function simulated(options: SimulatedKernelOptions = {}): {
  kernel: SimulatedDarwinKernel;
  runtime: ReturnType<typeof tempRuntimeDir>;
  proc: FakeProcess;
  exitCleanup: ProcessExitCleanup;
  backend: TapBackend<DarwinFethOptions>;
  open(options?: DarwinFethOptions): Promise<TapDevice>;
} {
  const kernel = new SimulatedDarwinKernel(options);
  const runtime = tempRuntimeDir();
  const proc = new FakeProcess();
  const exitCleanup = new ProcessExitCleanup(proc);
  const backend = createDarwinFethBackend({ system: kernel, runtimeDir: runtime.dir, exitCleanup });
  return { kernel, runtime, proc, exitCleanup, backend, open: (o) => backend.open(o) };
}

/** A frame of `size` bytes from `src` to `dst`, EtherType 0x88b5 (local experimental), tagged with `seq`. */
export function rawFrame(dst: Uint8Array, src: Uint8Array, seq = 0, size = 64): Uint8Array {
  const f = new Uint8Array(size);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  new DataView(f.buffer).setUint32(14, seq);
  return f;
}

export function seqOf(frame: Uint8Array): number {
  return new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(14);
}

/** Lets setImmediate-driven delivery run a few turns. */
export async function settle(turns = 4): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}
