/**
 * Removing a process's feth pairs when it ends: on normal exit (the 'exit' event: the loop
 * drained, process.exit(), an uncaught exception) and on SIGINT, SIGTERM and SIGHUP.
 *
 * Signals are handled without taking them from the program. Merely listening for a signal
 * stops Node's default action (terminate), so:
 * - when tapkit's listener is the only one, the program relied on the default: tapkit removes
 *   its pairs, stops listening (which restores the default action) and raises the signal again,
 *   so the process ends as it would have, with the same signal status;
 * - when the program has listeners of its own, it has chosen what a signal means (perhaps to
 *   keep running): tapkit does nothing then; if the program exits, the 'exit' listener cleans.
 * SIGKILL and crashes of the runtime cannot be caught: the pairs stay, recorded in the runtime
 * directory, and the next open (or `tapkit cleanup`) removes them.
 *
 * The listeners are process-wide, so their registry is too: one object per JavaScript realm,
 * kept on `globalThis` under the registered symbol {@link EXIT_CLEANUP_KEY}, shared by every
 * copy of this package loaded in it (ESM and CJS builds side by side), installed when the first
 * pair opens and removed when the last one closes. A worker thread has its own realm and
 * registry; workers receive no signals, and their 'exit' event covers worker exit only.
 *
 * @module
 */

/** The registered symbol the process-wide registry lives under on `globalThis`. */
export const EXIT_CLEANUP_KEY: unique symbol = Symbol.for('tapkit.darwin-feth.exitCleanup');

/** The signals after which pairs are removed (when tapkit is the only listener). */
export const CLEANUP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** A registry of synchronous cleanups to run when the process ends. */
export interface ExitCleanup {
  /** Adds a cleanup; returns the function that removes it again (idempotent). */
  add(cleanup: () => void): () => void;
  /** How many cleanups are registered. */
  readonly size: number;
}

/** The part of `process` the registry uses (a fake one in tests). */
export interface ProcessHooks {
  readonly pid: number;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown;
  listenerCount(event: string): number;
  kill(pid: number, signal: string): unknown;
}

/** Runs registered cleanups on exit and on signals, as described in the module comment. */
export class ProcessExitCleanup implements ExitCleanup {
  readonly #process: ProcessHooks;
  readonly #cleanups = new Set<() => void>();
  #installed = false;

  readonly #onExit = () => this.#runAll();
  readonly #onSignal = new Map(
    CLEANUP_SIGNALS.map((signal) => [signal, () => this.#signalled(signal)] as const),
  );

  constructor(proc: ProcessHooks) {
    this.#process = proc;
  }

  get size(): number {
    return this.#cleanups.size;
  }

  add(cleanup: () => void): () => void {
    // A fresh function per registration, so the same cleanup added twice is removed once each.
    const entry = () => cleanup();
    this.#cleanups.add(entry);
    this.#install();
    return () => {
      if (this.#cleanups.delete(entry) && this.#cleanups.size === 0) this.#uninstall();
    };
  }

  #signalled(signal: string): void {
    // Another listener: the program decides what this signal means. Leave it alone.
    if (this.#process.listenerCount(signal) > 1) return;
    this.#runAll();
    this.#uninstall();
    this.#process.kill(this.#process.pid, signal);
  }

  #runAll(): void {
    const cleanups = [...this.#cleanups];
    this.#cleanups.clear();
    for (const cleanup of cleanups) {
      try {
        cleanup();
      } catch {
        // Nothing can be reported while the process ends; the pair's state file stays and the
        // next open or `tapkit cleanup` retries.
      }
    }
  }

  #install(): void {
    if (this.#installed) return;
    this.#installed = true;
    this.#process.on('exit', this.#onExit);
    for (const [signal, listener] of this.#onSignal) this.#process.on(signal, listener);
  }

  #uninstall(): void {
    if (!this.#installed) return;
    this.#installed = false;
    this.#process.removeListener('exit', this.#onExit);
    for (const [signal, listener] of this.#onSignal) this.#process.removeListener(signal, listener);
  }
}

function isExitCleanup(value: unknown): value is ExitCleanup {
  const v = value as Partial<ExitCleanup> | null;
  return typeof v === 'object' && v !== null && typeof v.add === 'function';
}

/** The registry of this realm, created on first use (see the module comment). */
export function processExitCleanup(): ExitCleanup {
  const holder = globalThis as { [EXIT_CLEANUP_KEY]?: unknown };
  const existing = holder[EXIT_CLEANUP_KEY];
  if (isExitCleanup(existing)) return existing;
  const created = new ProcessExitCleanup(process);
  Object.defineProperty(holder, EXIT_CLEANUP_KEY, { value: created, configurable: true });
  return created;
}
