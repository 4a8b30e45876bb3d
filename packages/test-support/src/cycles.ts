/**
 * Leak measurement for fixtures (child processes): no vitest here. A fixture runs its cycles
 * through {@link measureCycles} and prints the figures; the test runs it with
 * {@link CYCLE_NODE_ARGS} and {@link CYCLE_ENV} and checks them with `expectNoLeak`.
 */
import { readdirSync } from 'node:fs';
import { setImmediate as tick } from 'node:timers/promises';

/** What one run of cycles measured. */
export interface CycleFigures {
  readonly mode: string;
  readonly cycles: number;
  readonly fdsBefore: number;
  readonly fdsAfter: number;
  /** Heap growth after GC over all the cycles, per cycle. */
  readonly heapPerCycle: number;
  /** RSS growth after GC over the second half (see measureCycles), per cycle. */
  readonly rssPerCycle: number;
}

/**
 * Node's flags for a fixture that measures: GC on demand, and a young generation (and memory
 * reducer) that do not resize themselves between samples.
 */
export const CYCLE_NODE_ARGS = ['--expose-gc', '--max-semi-space-size=1', '--no-memory-reducer'] as const;
/** One malloc arena: several make RSS jump by megabytes as threads come and go. */
export const CYCLE_ENV = { MALLOC_ARENA_MAX: '1' } as const;

const fds = (): number => readdirSync('/proc/self/fd').length;

/** Heap and RSS after full collections (finalizers, which free native handles, run on later turns). */
async function memory(): Promise<{ heap: number; rss: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('measureCycles needs node --expose-gc');
  for (let i = 0; i < 4; i++) {
    gc();
    await tick();
  }
  const { heapUsed, rss } = process.memoryUsage();
  return { heap: heapUsed, rss };
}

/**
 * Runs `cycle(i)` for i = 0…cycles-1, after 100 warm-up cycles (i ≥ cycles) that load what the
 * process keeps for good (addons, compiled code). Heap growth is measured over all the cycles.
 * RSS is sampled through the second half, once the process's allocators have settled, and its
 * growth is the lowest of the last three samples over the lowest of all: memory handed back to
 * the OS once, or taken for a moment (V8 and malloc do both now and then, by megabytes), is not
 * growth, and a leak raises every sample after the first.
 */
export async function measureCycles(
  mode: string,
  cycles: number,
  cycle: (i: number) => Promise<void>,
): Promise<CycleFigures> {
  for (let i = 0; i < 100; i++) await cycle(cycles + i);
  const fdsBefore = fds();
  const before = await memory();
  const half = Math.floor(cycles / 2);
  for (let i = 0; i < half; i++) await cycle(i);
  const samples = [(await memory()).rss];
  const every = Math.ceil((cycles - half) / 8);
  for (let i = half; i < cycles; i++) {
    await cycle(i);
    if ((i - half + 1) % every === 0) samples.push((await memory()).rss);
  }
  const fdsAfter = fds();
  const after = await memory();
  samples.push(after.rss);
  const rssGrowth = Math.min(...samples.slice(-3)) - Math.min(...samples);
  return {
    mode,
    cycles,
    fdsBefore,
    fdsAfter,
    heapPerCycle: Math.round((after.heap - before.heap) / cycles),
    rssPerCycle: Math.round(rssGrowth / (cycles - half)),
  };
}

/** What {@link deviceCycle} uses of a TapDevice. */
interface Device {
  read(): Promise<unknown>;
  pipeTo(destination: never): Promise<void>;
  stats(): { rxFrames: number };
  once(event: 'close', listener: () => void): unknown;
  close(): Promise<void>;
}

/** How a backend's devices are made, removed by the OS, and sent frames by it. */
export interface CycleBackend<D extends Device> {
  /** Opens a device; `role` says which of the cycle's devices it is. */
  open(name: string, role: 'one' | 'a' | 'b', i: number): Promise<D>;
  /** Removes the device's interface as the OS (or an admin) would. */
  remove(device: D): void;
  /** Makes the OS send `device` a frame (or a frame that the OS answers). */
  send(device: D): void;
}

/**
 * One cycle of a leak test, the same for every backend:
 * close:   open, close
 * gone:    open, the interface is removed under the device, which ends by itself
 * traffic: two devices; frames read by JS, then piped from one to the other (in native code
 *          where the backend can), and the pipe ended by closing
 */
export function deviceCycle<D extends Device>(
  mode: string,
  prefix: string,
  backend: CycleBackend<D>,
): (i: number) => Promise<void> {
  return async (i) => {
    const name = `${prefix}${i}`;
    if (mode === 'close') {
      await (await backend.open(name, 'one', i)).close();
    } else if (mode === 'gone') {
      const device = await backend.open(name, 'one', i);
      const closed = new Promise<void>((resolve) => device.once('close', resolve));
      backend.remove(device);
      await closed;
      await device.close();
    } else if (mode === 'traffic') {
      const a = await backend.open(`${name}a`, 'a', i);
      const b = await backend.open(`${name}b`, 'b', i);
      backend.send(a);
      await a.read();
      const piped = a.pipeTo(b as never);
      const received = a.stats().rxFrames;
      backend.send(a);
      while (a.stats().rxFrames === received) await new Promise((resolve) => setTimeout(resolve, 1));
      await Promise.all([a.close(), b.close(), piped]);
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
  };
}
