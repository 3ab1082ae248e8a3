/**
 * Runs one stored delivery: loads the stored message (same bytes, same
 * charset; an HL7 message, or a JSON event given to steps as `body`), finds
 * the route and, in its plan (core/routes/plan.ts), the segment of the
 * delivery's step, and runs it with the variables captured at receive time.
 *
 * Deliveries of one message share one decoded and parsed copy (ParsedCache):
 * a 4.5 MB message with five deliveries was read, decoded and parsed five
 * times, each time stalling the event loop for tens of ms (issue 11).
 */
import { decodeHl7Yielding, Hl7Message, parseHl7Yielding } from '../hl7/index.js';
import { hbError } from '../errors.js';
import { yieldIfBig } from '../cooperative.js';
import { runSegment } from '../routes/run.js';
import { rewrittenInDelivery, rewrittenText } from '../routes/rewrite.js';
import { parseHl7 } from '../hl7/message.js';
import type { RouteTable } from '../routes/matcher.js';
import type { Logger, StepInput, StepResult } from '../sdk.js';
import type { DeliveryJob } from '../store/types.js';

/** Default bound of ParsedCache: raw bytes of the messages it holds (their parsed form takes several times as much). */
export const PARSED_CACHE_BYTES = 32 * 1024 * 1024;
/**
 * Default bound on the number of messages it holds. Without a bound 32 MB of
 * 1 KB messages kept some 30,000 parsed messages (the memory bench went from
 * 150 MB to 333 MB after draining). An entry seeded at ingest with its number
 * of deliveries is dropped when the last of them succeeded, so under a backlog
 * (deliveries claimed long after their accept, issue 15's e2e bench) the
 * cache holds the messages still waiting, and after a drain it is empty.
 */
export const PARSED_CACHE_ENTRIES = 2048;

/**
 * A small LRU of parsed stored messages, keyed by store message id and
 * bounded by the total size of their raw bodies and by a number of entries. A stored body never changes,
 * so an entry stays right until it is evicted. Concurrent deliveries of one
 * message wait for the same load. A message bigger than the whole bound is
 * parsed for each delivery, as before.
 */
export class ParsedCache {
  readonly #max: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<number, { bytes: number; value: Promise<Hl7Message>; uses?: number }>();
  #bytes = 0;
  /** Loads (decode + parse) done, for tests and metrics. */
  loads = 0;

  constructor(maxBytes = PARSED_CACHE_BYTES, maxEntries = PARSED_CACHE_ENTRIES) {
    this.#max = maxBytes;
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The parsed message `id`, from the cache or from `load` (which is called at most once per cached entry). */
  get(id: number, bytes: number, load: () => Promise<Hl7Message>): Promise<Hl7Message> {
    const hit = this.#entries.get(id);
    if (hit) {
      // Most recently used goes last.
      this.#entries.delete(id);
      this.#entries.set(id, hit);
      return hit.value;
    }
    this.loads++;
    const value = load();
    if (bytes > this.#max) return value;
    this.#entries.set(id, { bytes, value });
    this.#bytes += bytes;
    // A failed load is not kept: the next delivery tries again.
    value.catch(() => this.drop(id));
    for (const [k, e] of this.#entries) {
      if (this.#bytes <= this.#max && this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(k);
      this.#bytes -= e.bytes;
    }
    return value;
  }

  /**
   * The message parsed at ingest, for its `uses` deliveries: each successful
   * one calls used(), and the entry goes after the last (the LRU bounds still
   * apply meanwhile).
   */
  seed(id: number, bytes: number, msg: Hl7Message, uses: number): void {
    void this.get(id, bytes, () => Promise.resolve(msg));
    const e = this.#entries.get(id);
    if (e && uses > 0) e.uses = uses;
  }

  /** A delivery of message `id` succeeded: one use fewer of a seeded entry, dropped at none. */
  used(id: number): void {
    const e = this.#entries.get(id);
    if (!e || e.uses === undefined) return;
    if (--e.uses <= 0) this.drop(id);
  }

  drop(id: number): void {
    const e = this.#entries.get(id);
    if (!e) return;
    this.#entries.delete(id);
    this.#bytes -= e.bytes;
  }
}

/**
 * The shared message as handed to one delivery: reads go to the cached copy;
 * a step that changes the message (set, addSegment) drops it from the cache
 * first, so later deliveries parse the stored bytes afresh.
 */
function shared(msg: Hl7Message, onChange: () => void): Hl7Message {
  return new Proxy(msg, {
    get(target, key) {
      const v: unknown = Reflect.get(target, key, target);
      if (typeof v !== 'function') return v;
      if (key === 'set' || key === 'addSegment') {
        return (...args: unknown[]) => {
          onChange();
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

/**
 * A child logger made only when a step first uses it: most deliveries log
 * nothing through it, and a child per delivery cost 3.7 µs (issue 15).
 */
function lazyChild(log: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  return new Proxy(log, {
    get(_target, key) {
      child ??= log.child(bindings);
      const v: unknown = Reflect.get(child, key, child);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(child) : v;
    },
  });
}

export function createDeliveryRunner(routes: () => RouteTable, log: Logger, cache = new ParsedCache()) {
  async function load(job: DeliveryJob): Promise<Hl7Message> {
    const raw = await job.message.loadRaw();
    if (!raw) throw hbError('ENGINE_E_STEP_FAILED', { step: `${job.route}#${job.step}`, detail: 'the stored message body was removed by retention' }, { retryable: false });
    // A big message gives other work turns while it is decoded (in slices) and before and after its parse (issue 11).
    const { text } = await decodeHl7Yielding(raw, job.message.charset, undefined, job.message.charset);
    await yieldIfBig(raw.length);
    const hl7 = await parseHl7Yielding(text);
    await yieldIfBig(raw.length);
    return hl7;
  }

  /**
   * A stored JSON event (format json): its UTF-8 bytes parsed again for each
   * delivery (no cache: small events parse in microseconds, and no delivery
   * sees another's changes to the body).
   */
  async function loadJson(job: DeliveryJob): Promise<unknown> {
    const raw = await job.message.loadRaw();
    if (!raw) throw hbError('ENGINE_E_STEP_FAILED', { step: `${job.route}#${job.step}`, detail: 'the stored message body was removed by retention' }, { retryable: false });
    await yieldIfBig(raw.length);
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch {
      throw hbError('ENGINE_E_STEP_FAILED', { step: `${job.route}#${job.step}`, detail: 'the stored JSON event cannot be parsed' }, { retryable: false });
    } finally {
      await yieldIfBig(raw.length);
    }
  }

  /** The stored message as steps see it: `hl7` for an HL7 message, `body` for a JSON event. */
  async function loadMessage(job: DeliveryJob): Promise<Pick<StepInput, 'hl7' | 'body'>> {
    if (job.message.format === 'json') return { body: await loadJson(job) };
    // Started at accept: the message parsed at receipt, unchanged since (ingest hands it over only then), instead of the stored bytes parsed again.
    const prepared = job.message.prepared instanceof Hl7Message && job.message.prepared.changes === 0 ? job.message.prepared : undefined;
    const parsed = await cache.get(job.messageId, job.message.rawBytes, prepared ? () => Promise.resolve(prepared) : () => load(job));
    return { hl7: shared(parsed, () => cache.drop(job.messageId)) };
  }

  return async function runDelivery(job: DeliveryJob): Promise<StepResult> {
    const route = routes().get(job.route);
    if (!route) throw hbError('ENGINE_E_STEP_FAILED', { step: `${job.route}#${job.step}`, detail: 'route is no longer loaded' }, { retryable: false });
    const segment = route.plan.segments.get(job.step);
    if (!segment || segment.step.plugin !== job.plugin) {
      throw hbError('ENGINE_E_STEP_FAILED', { step: `${job.route}#${job.step}`, detail: 'the route changed: this step is no longer the same plugin' }, { retryable: false });
    }
    const loaded = await loadMessage(job);
    // An hl7 step before this delivery rewrote the message: the delivery runs on the rewritten copy (the stored one is unchanged).
    const rewritten = rewrittenText(job.vars);
    if (rewritten !== undefined && loaded.hl7) loaded.hl7 = parseHl7(rewritten);
    const input: StepInput = {
      messageId: String(job.messageId),
      controlId: job.message.controlId,
      type: job.message.type,
      source: job.message.source,
      ...loaded,
      vars: { ...job.vars },
    };
    const opts = {
      log: lazyChild(log, { route: route.name, msgId: job.message.controlId, delivery: job.id }),
      signal: job.signal,
      attempt: job.attempt,
      idempotencyKey: () => job.idempotencyKey,
    };
    // The transform steps before the first outbound step run again for each later delivery (core/routes/plan.ts).
    if (segment.prefix) {
      const pre = await runSegment(route, input, segment.prefix, opts);
      if (pre.failed) throw pre.failed.error;
      if (pre.stopped) return { outcome: 'skipped', detail: pre.stopped.detail };
    }
    const seg = await runSegment(route, input, segment.run, opts);
    if (seg.failed) throw seg.failed.error;
    const own = seg.byStep[job.step];
    if (own) {
      // An hl7 step in this delivery's own steps rewrote the message: kept with the delivery for the console.
      const after = rewrittenText(input.vars);
      if (after !== undefined && after !== rewritten) {
        const result = { ...own };
        rewrittenInDelivery.set(result, after);
        cache.used(job.messageId);
        return result;
      }
      cache.used(job.messageId);
      return own;
    }
    cache.used(job.messageId);
    return { outcome: 'skipped', detail: seg.stopped?.detail ?? 'not run' };
  };
}
