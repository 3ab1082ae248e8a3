/**
 * Delivery workers: claim due deliveries from the store, run them through the
 * engine's runner with an AbortSignal, and record the outcome. Concurrency is
 * bounded overall, and per plugin by `perPluginConcurrency` (the engine
 * passes each plugin's declared `concurrency`, overridden by the site's
 * `delivery.pluginConcurrency`: core/engine/plugin-host.ts); ordering keys are
 * enforced by the store (only the head of a key is ever claimed), so this
 * loop stays simple.
 *
 * Retry or dead letter is decided by the thrown error alone: its `retryable`
 * (from its catalogue, core or a plugin family's). Anything thrown that is not
 * a HisbridgeError becomes the retryable ENGINE_E_INTERNAL (toHisbridgeError):
 * plugins raise a non-retryable code or `permanentError` for "never retry"
 * (docs/delivery.md, "Errors raised by plugins").
 */
import { toHisbridgeError } from '../errors.js';
import { scrubText } from '../mask.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/sqlite.js';
import type { ClaimedDelivery, DeliveryRunner } from '../store/types.js';

export type SettledOutcome = 'done' | 'skipped' | 'retry' | 'dead' | 'released';

export interface DeliveryWorkerOptions {
  /** Deliveries running at once (default 16). */
  concurrency?: number;
  /** How often due deliveries (retries whose time came) are looked for, in ms (default 200). */
  pollMs?: number;
  log: Logger;
  /** Upper bound of concurrent deliveries per plugin name; a plugin at its bound is skipped when claiming, the others go on. */
  perPluginConcurrency?: Record<string, number>;
  /** Routes whose deliveries are held (paused by an operator, issue 18): read at every claim. */
  skipRoutes?(): readonly string[];
  /** Called once per attempt when its outcome is committed (metrics). */
  onSettled?(job: ClaimedDelivery, outcome: SettledOutcome, latencyMs: number, errorCode?: string): void;
}

interface Running {
  job: ClaimedDelivery;
  abort: AbortController;
  done: Promise<void>;
  released: boolean;
}

export class DeliveryWorker {
  readonly #store: Store;
  readonly #runner: DeliveryRunner;
  readonly #opts: DeliveryWorkerOptions;
  readonly #concurrency: number;
  readonly #running = new Map<number, Running>();
  readonly #perPlugin = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #kicked = false;
  /** Claim on the next kick even when the store knows of nothing due (start, after a failed claim). */
  #rescan = true;
  /** Slots taken at accept (Store.attachIntake) for deliveries whose commit has not been handed over yet. */
  #reserved = 0;
  #started = false;
  #stopping = false;

  constructor(store: Store, runner: DeliveryRunner, opts: DeliveryWorkerOptions) {
    this.#store = store;
    this.#runner = runner;
    this.#opts = opts;
    this.#concurrency = Math.max(1, opts.concurrency ?? 16);
  }

  /** Deliveries running right now. */
  get inFlight(): number {
    return this.#running.size;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    // The poll claims whatever is due, known or not: retries whose time came, and changes made by another
    // process (a CLI requeue or replay). Between polls the store's due count says when to look.
    this.#timer = setInterval(() => this.#cycle(true), Math.max(10, this.#opts.pollMs ?? 200));
    this.#timer.unref();
    // Deliveries accepted while there is room start at their commit, without a claim query.
    this.#store.attachIntake({
      take: (plugin, route) => {
        if (!this.#mayStart(plugin, route)) return false;
        this.#reserved++;
        this.#perPlugin.set(plugin, (this.#perPlugin.get(plugin) ?? 0) + 1);
        return true;
      },
      giveBack: (plugin) => this.#unreserve(plugin),
      start: (job) => {
        this.#unreserve(job.plugin);
        if (this.#stopping) {
          // Committed in flight as the worker stopped: give it back unstarted (or recover() does at the next start).
          setImmediate(() => {
            try {
              this.#store.release([job.id], { unstarted: true });
            } catch {
              // The store is closed: the next start recovers it.
            }
          });
          return;
        }
        this.#run(job);
      },
    });
    this.#rescan = true;
    this.kick();
  }

  #unreserve(plugin: string): void {
    this.#reserved = Math.max(0, this.#reserved - 1);
    this.#perPlugin.set(plugin, Math.max(0, (this.#perPlugin.get(plugin) ?? 1) - 1));
  }

  /**
   * The one place that decides whether a delivery of `plugin` on `route` may
   * start now: claims (#cycle) and starts at accept (Store.attachIntake) both
   * ask it.
   */
  #mayStart(plugin: string, route: string): boolean {
    if (this.#stopping || !this.#started) return false;
    // A route an operator paused (issue 18): its deliveries stay pending until it is resumed.
    if (this.#opts.skipRoutes && this.#opts.skipRoutes().includes(route)) return false;
    if (this.#running.size + this.#reserved >= this.#concurrency) return false;
    const limit = this.#opts.perPluginConcurrency?.[plugin];
    return limit === undefined || (this.#perPlugin.get(plugin) ?? 0) < limit;
  }

  /** Look for work now (called by the engine right after an accept, and after every settled attempt). */
  kick(): void {
    if (!this.#started || this.#stopping || this.#kicked) return;
    // Nothing due that a claim could find (deliveries accepted with room started at their commit): no query.
    if (!this.#rescan && !this.#store.hasDue()) return;
    this.#kicked = true;
    setImmediate(() => {
      this.#kicked = false;
      this.#cycle(false);
    });
  }

  /**
   * Stops claiming, waits up to `graceMs` for running deliveries, then aborts
   * the rest and gives them back to the store as pending (their attempt is not
   * counted), so the next start runs them again.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#store.attachIntake(undefined);
    if (this.#running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
    await Promise.race([Promise.allSettled([...this.#running.values()].map((r) => r.done)), timeout]);
    clearTimeout(timer);
    const left = [...this.#running.values()];
    if (left.length === 0) return;
    for (const r of left) {
      r.released = true;
      r.abort.abort();
    }
    try {
      const n = this.#store.release(left.map((r) => r.job.id));
      this.#opts.log.warn({ released: n }, 'shutdown: unfinished deliveries released back to pending');
      for (const r of left) this.#opts.onSettled?.(r.job, 'released', 0);
    } catch (e) {
      this.#opts.log.error({ code: toHisbridgeError(e).code }, 'shutdown: could not release deliveries; they are recovered on next start');
    }
  }

  #cycle(force: boolean): void {
    if (this.#stopping) return;
    if (!force && !this.#rescan && !this.#store.hasDue()) return;
    const free = this.#concurrency - this.#running.size - this.#reserved;
    if (free <= 0) return;
    const limits = this.#opts.perPluginConcurrency ?? {};
    const full = Object.keys(limits).filter((p) => (this.#perPlugin.get(p) ?? 0) >= limits[p]!);
    // Each plugin's room, counting the rows this claim takes: a row beyond it stays pending instead of being
    // claimed and released again.
    // The overall room is looked at again per row: the accepts the claim's transaction writes first may have
    // reserved slots at accept (Store.attachIntake) since `free` was computed.
    const taken = new Map<string, number>();
    let takenAll = 0;
    const take = (plugin: string): boolean => {
      if (this.#running.size + this.#reserved + takenAll >= this.#concurrency) return false;
      const limit = limits[plugin];
      const n = taken.get(plugin) ?? 0;
      if (limit !== undefined && (this.#perPlugin.get(plugin) ?? 0) + n >= limit) return false;
      taken.set(plugin, n + 1);
      takenAll++;
      return true;
    };
    let jobs: ClaimedDelivery[];
    try {
      jobs = this.#store.claimDue(Date.now(), free, full, this.#opts.skipRoutes?.() ?? [], take);
      this.#rescan = false;
    } catch (e) {
      this.#rescan = true;
      this.#opts.log.error({ code: toHisbridgeError(e).code }, 'claiming deliveries failed; retrying on next poll');
      return;
    }
    const extra: number[] = [];
    for (const job of jobs) {
      // One claim may return more of a plugin than it has slots left: give those back.
      if (!this.#mayStart(job.plugin, job.route)) extra.push(job.id);
      else this.#run(job);
    }
    if (!extra.length) return;
    try {
      this.#store.release(extra, { unstarted: true });
    } catch (e) {
      this.#opts.log.error({ code: toHisbridgeError(e).code }, 'releasing over-claimed deliveries failed; they are recovered on next start');
    }
  }

  #run(job: ClaimedDelivery): void {
    const abort = new AbortController();
    this.#perPlugin.set(job.plugin, (this.#perPlugin.get(job.plugin) ?? 0) + 1);
    const entry: Running = { job, abort, released: false, done: Promise.resolve() };
    this.#running.set(job.id, entry);
    entry.done = this.#attempt(entry).finally(() => {
      this.#running.delete(job.id);
      this.#perPlugin.set(job.plugin, (this.#perPlugin.get(job.plugin) ?? 1) - 1);
      this.kick();
    });
  }

  async #attempt(entry: Running): Promise<void> {
    const { job } = entry;
    const log = this.#opts.log;
    const where = { delivery: job.id, route: job.route, step: job.step, plugin: job.plugin, msgId: job.message.controlId, attempt: job.attempt };
    const started = performance.now();
    let failure;
    let result;
    try {
      result = await this.#runner({ ...job, signal: entry.abort.signal });
    } catch (e) {
      failure = toHisbridgeError(e);
    }
    const latencyMs = Math.round(performance.now() - started);
    if (entry.released) return;
    try {
      if (result) {
        await this.#store.complete(job.id, result, { latencyMs });
        const outcome = result.outcome === 'skipped' ? 'skipped' : 'done';
        log.info({ ...where, outcome, latencyMs, ...(result.detail ? { detail: scrubText(result.detail) } : {}) }, 'delivery settled');
        this.#opts.onSettled?.(job, outcome, latencyMs);
        return;
      }
      const err = failure!;
      const reason = scrubText(err.message);
      const state = await this.#store.fail(
        job.id,
        { code: err.code, reason, retryable: err.retryable, ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) },
        { latencyMs },
      );
      if (state === 'ignored') return;
      const outcome = state === 'dead' ? 'dead' : 'retry';
      (state === 'dead' ? log.error.bind(log) : log.warn.bind(log))({ ...where, outcome, code: err.code, retryable: err.retryable, latencyMs, reason }, state === 'dead' ? 'delivery dead-lettered' : 'delivery failed; retry scheduled');
      this.#opts.onSettled?.(job, outcome, latencyMs, err.code);
    } catch (e) {
      // The attempt's outcome could not be written: the delivery stays in flight and is recovered on next start.
      log.error({ ...where, code: toHisbridgeError(e).code }, 'recording the delivery outcome failed');
    }
  }
}
