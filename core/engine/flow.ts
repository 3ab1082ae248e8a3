/**
 * Back-pressure, one controller for every source (issue 13). Past the store's
 * high-water mark (with `overload: pause`) it tells every subscriber to
 * pause; below 80% of the mark it tells them to resume. The engine calls
 * `check()` after each commit that queued deliveries and after each delivery
 * settles; one timer here also catches changes made by another process (a
 * replay). No source reads the store's pending count itself.
 */
import type { FlowControl, Logger } from '../sdk.js';

export interface FlowOptions {
  /** Pending deliveries now (the store's cached count: cheap). */
  pending(): number;
  highWaterMark: number;
  overload: 'pause' | 'reject';
  log: Logger;
  /** The single safety-net timer's period; default 100 ms. */
  intervalMs?: number;
}

export class FlowController implements FlowControl {
  readonly #o: FlowOptions;
  readonly #subs = new Set<(paused: boolean) => void>();
  #paused = false;
  #timer?: NodeJS.Timeout;

  constructor(opts: FlowOptions) {
    this.#o = opts;
  }

  get paused(): boolean {
    return this.#paused;
  }

  onChange(listener: (paused: boolean) => void): () => void {
    this.#subs.add(listener);
    return () => {
      this.#subs.delete(listener);
    };
  }

  /** Starts the safety-net timer. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.check(), this.#o.intervalMs ?? 100);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Compares the pending count with the mark (80% hysteresis) and notifies on a change. */
  check(): void {
    if (this.#o.overload !== 'pause') return;
    const pending = this.#o.pending();
    const high = this.#o.highWaterMark;
    if (!this.#paused && pending >= high) {
      this.#set(true);
      this.#o.log.warn({ pending, highWaterMark: high }, 'back-pressure: sources paused');
    } else if (this.#paused && pending < high * 0.8) {
      this.#set(false);
      this.#o.log.info({ pending }, 'back-pressure released: sources resumed');
    }
  }

  #set(paused: boolean): void {
    this.#paused = paused;
    for (const s of [...this.#subs]) {
      try {
        s(paused);
      } catch (e) {
        this.#o.log.error({ err: { message: (e as Error).message } }, 'back-pressure subscriber failed');
      }
    }
  }
}

/**
 * Resolves when `flow` is not paused: at once when it is not, else on the
 * next resume. Also resolves when `signal` aborts (a source closing), so a
 * loop waiting here sees its stop. Unsubscribes either way.
 */
export function untilResumed(flow: FlowControl, signal: AbortSignal): Promise<void> {
  if (!flow.paused || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const finish = (): void => {
      off();
      signal.removeEventListener('abort', finish);
      resolve();
    };
    const off = flow.onChange((paused) => {
      if (!paused) finish();
    });
    signal.addEventListener('abort', finish, { once: true });
  });
}
