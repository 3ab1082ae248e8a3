/**
 * The Kafka source: reads the configured topics in the site's consumer group
 * and hands every record to the engine's ingress port (`submit`), and decides
 * from the structured outcome: accepted or duplicate: commit; rejected:
 * dead-letter with the outcome's code and reason; failed: retry with back-off,
 * then dead-letter. It builds and reads no ACK. Run by plugins/source-kafka.
 *
 * Contract (docs/kafka.md):
 * - an offset is resolved only when its record and every earlier record of
 *   the partition were accepted (AA/CA: durably stored, or fully handled for
 *   on-complete routes) or written to the dead-letter topic; resolved offsets
 *   are committed after each batch. A crash re-delivers the uncommitted tail;
 *   the store's duplicate check (MSH-3/4 + MSH-10 + content) keeps it from
 *   being dispatched twice on this instance, and the idempotency key of each
 *   call (message key, route, step: docs/delivery.md) is the same on any
 *   instance, so a remote that honours it acts once.
 * - records sharing a key are handled in offset order; other keys of the same
 *   partition run alongside (up to maxInFlight). A record about to be accepted
 *   hands its key over once its commit is queued (InboundMessage.pipeline), so
 *   the key's records share one group commit; a failed commit breaks the key's
 *   chain (the store refuses the later ones) and anything not accepted waits
 *   for the key's earlier records before its retry or dead-letter.
 * - a record that can never succeed goes to `<topic>.dlq` with headers and is
 *   committed; one refused for a passing reason is retried with back-off,
 *   then dead-lettered: a partition is never blocked for good.
 * - when the engine's back-pressure controller says pause, every topic is
 *   paused and the batch in hand waits before its next record; on resume
 *   both go on.
 */
import { hbError, toHisbridgeError, type HisbridgeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FlowControl, InboundMessage, IngestOutcome, Submit } from '../sdk.js';
import type { KafkaBatch, KafkaClient, KafkaConsumerHandle, KafkaProducerHandle, KafkaRecord } from './client.js';
import type { KafkaConfig, KafkaTopicConfig } from './config.js';
import { decodeHl7Value, decodeJsonValue } from './envelope.js';
import { messagesOf, splitBlock } from '../hl7/batch.js';

/** What the source does with a record it could not commit. */
type Refusal = { kind: 'dead' | 'retry'; code: string; reason: string; route: string };

/** The decision for one outcome: undefined to commit. */
function decide(o: IngestOutcome): Refusal | undefined {
  if (o.status === 'accepted' || o.status === 'duplicate') return undefined;
  const route = o.routes.find((r) => r.outcome === 'failed' && r.errorCode === o.code)?.route ?? '';
  return { kind: o.status === 'rejected' ? 'dead' : 'retry', code: o.code, reason: o.reason, route };
}

/** A record refused before the port (bad envelope, empty value). */
function payloadRefusal(err: HisbridgeError): Refusal {
  return { kind: 'dead', code: err.code, reason: err.message, route: '' };
}

/** The per-topic options handed to the port with each message. */
interface TopicInput {
  source: string;
  defaultCharset: string;
  noRoute: 'AA' | 'AR';
  invalidBytes: 'reject' | 'replace';
}

export interface KafkaSourceDeps {
  config: KafkaConfig;
  client: KafkaClient;
  /** The engine's ingress port: resolves after the durable commit or the refusal; never rejects. */
  submit: Submit;
  /** The engine's back-pressure controller. */
  flow: FlowControl;
  log: Logger;
  /**
   * Reports a partition's lag in records (end offset minus the next offset to
   * handle) when a batch arrives and each time its resolved offset advances.
   * The engine feeds `hisbridge_kafka_lag` with it.
   */
  onLag?(topic: string, partition: number, lag: number): void;
}

/** Header names on dead-lettered records. */
export const DLQ_HEADERS = {
  code: 'hisbridge-error-code',
  reason: 'hisbridge-reason',
  route: 'hisbridge-route',
  topic: 'hisbridge-original-topic',
  partition: 'hisbridge-original-partition',
  offset: 'hisbridge-original-offset',
  attempts: 'hisbridge-attempts',
  at: 'hisbridge-failed-at',
} as const;

export interface KafkaSourceStatus {
  connected: boolean;
  paused: boolean;
  assigned: Record<string, number[]>;
  handled: number;
  deadLettered: number;
}

/** Stops waiting on the first of a delay or an abort. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

class Stopping extends Error {}

/** One record's turn within its key: handed over when its commit is queued (or it finished), finished after its retries and dead-letter. */
class KeyTurn {
  readonly handedOver: Promise<void>;
  readonly finished: Promise<void>;
  readonly handOver: () => void;
  #finish!: () => void;
  constructor(readonly chain: { broken: boolean }) {
    let h!: () => void;
    this.handedOver = new Promise<void>((r) => (h = r));
    this.handOver = h;
    this.finished = new Promise<void>((r) => (this.#finish = r));
  }
  finish(): void {
    this.handOver();
    this.#finish();
  }
}

/** A record's turn and the previous record of its key (undefined for the key's first record in the batch). */
interface RecordOrder {
  turn: KeyTurn;
  prev: KeyTurn | undefined;
}

export class KafkaSource {
  readonly #d: KafkaSourceDeps;
  readonly #topics: Map<string, KafkaTopicConfig & { input: TopicInput }>;
  readonly #abort = new AbortController();
  #consumer?: KafkaConsumerHandle;
  #producer?: KafkaProducerHandle;
  #unsubscribe?: () => void;
  #status: KafkaSourceStatus = { connected: false, paused: false, assigned: {}, handled: 0, deadLettered: 0 };

  constructor(deps: KafkaSourceDeps) {
    this.#d = deps;
    this.#topics = new Map(deps.config.topics.map((t) => [t.name, { ...t, input: { source: t.source, defaultCharset: t.format === 'json' ? 'utf-8' : t.charset, noRoute: t.noRoute, invalidBytes: t.invalidBytes } }]));
  }

  /** Source names routes may list in `sources:`. */
  static sourceNames(config: KafkaConfig | undefined): string[] {
    return [...new Set((config?.topics ?? []).map((t) => t.source))];
  }

  get status(): KafkaSourceStatus {
    return { ...this.#status, assigned: { ...this.#status.assigned } };
  }

  /** Ready once the group was joined (an instance with no partitions assigned is ready too). */
  get ready(): boolean {
    return this.#status.connected;
  }

  /** Connects the producer (for the dead-letter topics) and the consumer, joins the group and starts reading. */
  async start(): Promise<void> {
    this.#producer = this.#d.client.producer();
    await this.#producer.connect();
    this.#status.paused = this.#d.flow.paused;
    this.#unsubscribe = this.#d.flow.onChange((p) => this.#onFlow(p));
    await this.#startConsumer();
  }

  async #startConsumer(): Promise<void> {
    const { config, client, log } = this.#d;
    const consumer = client.consumer({ groupId: config.groupId, sessionTimeoutMs: config.sessionTimeoutMs });
    this.#consumer = consumer;
    consumer.onAssignment((assigned) => {
      this.#status.connected = true;
      this.#status.assigned = assigned;
      log.info({ group: config.groupId, assigned }, 'kafka: partitions assigned');
    });
    consumer.onFatal((err) => {
      this.#status.connected = false;
      this.#status.assigned = {};
      if (this.#abort.signal.aborted) return;
      // The client gives up on errors it deems permanent (e.g. a SyncGroup refused during a rebalance
      // race); a source that stops reading silently is worse than one that rejoins.
      log.error({ group: config.groupId, error: err.name }, 'kafka: consumer failed; rejoining the group');
      this.#rejoin(2000);
    });
    await consumer.connect();
    await consumer.subscribe([...this.#topics.keys()], config.fromBeginning);
    await consumer.run((b) => this.#onBatch(b), { partitionsConcurrently: config.partitionsConcurrently });
    if (this.#status.paused) consumer.pause([...this.#topics.keys()]);
  }

  /** Stops fetching, lets in-flight records finish (their offsets are committed), leaves the group. */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#abort.abort();
    await this.#consumer?.disconnect().catch((e: Error) => this.#d.log.warn({ error: e.name }, 'kafka: consumer disconnect failed'));
    await this.#producer?.disconnect().catch(() => undefined);
    this.#status.connected = false;
  }

  #rejoin(delayMs: number): void {
    setTimeout(() => {
      if (this.#abort.signal.aborted) return;
      this.#startConsumer().catch((e: Error) => {
        this.#d.log.error({ group: this.#d.config.groupId, error: e.name }, 'kafka: rejoin failed; trying again');
        this.#rejoin(Math.min(delayMs * 2, 30_000));
      });
    }, delayMs).unref();
  }

  /** The engine's back-pressure controller changed its mind. */
  #onFlow(paused: boolean): void {
    if (paused === this.#status.paused) return;
    const topics = [...this.#topics.keys()];
    this.#status.paused = paused;
    if (paused) {
      this.#consumer?.pause(topics);
      this.#d.log.warn({ topics: topics.length }, 'back-pressure: kafka topics paused');
    } else {
      this.#consumer?.resume(topics);
      this.#d.log.info({ topics: topics.length }, 'back-pressure released: kafka topics resumed');
    }
  }

  async #onBatch(b: KafkaBatch): Promise<void> {
    const topic = this.#topics.get(b.topic);
    if (!topic || b.records.length === 0) return;
    const n = b.records.length;
    const done = new Array<boolean>(n).fill(false);
    let next = 0;
    // The records of this batch and any fetched after it are waiting: while paused the lag stays visible.
    this.#reportLag(b, BigInt(b.records[0]!.offset));
    // Offsets advance only over a contiguous run of finished records.
    const advance = () => {
      const from = next;
      while (next < n && done[next]) next++;
      if (next > from) {
        b.resolveOffset(b.records[next - 1]!.offset);
        this.#reportLag(b, BigInt(b.records[next - 1]!.offset) + 1n);
      }
    };
    // Per key: the previous record's hand-over (its commit queued, or it finished) and its end (retries and dead-letter included).
    const keys = new Map<string, KeyTurn>();
    let slots = this.#d.config.maxInFlight;
    const waiting: (() => void)[] = [];
    const acquire = () => (slots > 0 ? (slots--, Promise.resolve()) : new Promise<void>((r) => waiting.push(r)));
    const release = () => {
      const w = waiting.shift();
      if (w) w();
      else slots++;
    };
    let firstError: unknown;
    const all = b.records.map(async (r, i) => {
      const key = r.key ? r.key.toString('latin1') : '';
      const prev = keys.get(key);
      const turn = new KeyTurn(prev?.chain ?? { broken: false });
      keys.set(key, turn);
      try {
        if (prev) await prev.handedOver;
        if (firstError !== undefined) return;
        await acquire();
        try {
          if (!b.isActive() || this.#abort.signal.aborted) throw new Stopping();
          await this.#handle(topic, r, b, { turn, prev });
          done[i] = true;
          advance();
        } catch (e) {
          firstError ??= e;
        } finally {
          release();
        }
      } finally {
        turn.finish();
      }
    });
    // Long batches: stay in the group, and commit what is resolved so far so a crash re-delivers little.
    const beat = setInterval(() => {
      void b.heartbeat().catch(() => undefined);
      if (next > 0) void b.commit().catch(() => undefined);
    }, 1000);
    try {
      await Promise.all(all);
    } finally {
      clearInterval(beat);
    }
    if (next > 0) await b.commit();
    if (firstError !== undefined && !(firstError instanceof Stopping)) {
      // kafkajs re-fetches from the last resolved offset: unresolved records come again; duplicates are caught by idempotency.
      throw firstError;
    }
  }

  /** Lag from the batch's high watermark; records produced since the fetch show up with the next batch. */
  #reportLag(b: KafkaBatch, nextOffset: bigint): void {
    if (!this.#d.onLag) return;
    let hw: bigint;
    try {
      hw = BigInt(b.highWatermark);
    } catch {
      return;
    }
    const lag = hw > nextOffset ? Number(hw - nextOffset) : 0;
    try {
      this.#d.onLag(b.topic, b.partition, lag);
    } catch (e) {
      this.#d.log.warn({ topic: b.topic, partition: b.partition, error: (e as Error).name }, 'kafka: lag report failed');
    }
  }

  async #handle(topic: KafkaTopicConfig & { input: TopicInput }, r: KafkaRecord, b: KafkaBatch, order: RecordOrder): Promise<void> {
    // A JSON envelope is parsed whole: one over maxEventBytes is dead-lettered before it is read.
    if (topic.format === 'json' && r.value && r.value.length > topic.maxEventBytes) {
      await order.prev?.finished;
      return this.#deadLetter(topic, r, payloadRefusal(hbError('ENGINE_E_EVENT_TOO_LARGE', { bytes: r.value.length, limit: topic.maxEventBytes })), 1);
    }
    const decoded = topic.format === 'json' ? decodeJsonValue(r.value) : decodeHl7Value(r.value, topic.charset);
    if (decoded instanceof Error) {
      await order.prev?.finished;
      return this.#deadLetter(topic, r, payloadRefusal(decoded), 1);
    }
    if (decoded.format === 'json') {
      // A JSON event goes to the port as JSON: routes read it as `body.<path>`, never as synthetic HL7.
      return this.#submitWithRetry(topic, r, b, [{ source: topic.input.source, format: 'json', bytes: decoded.bytes, event: decoded.event, identity: decoded.identity }], order);
    }
    // A record holding several messages or a batch: the listener's splitter; each message in order, none dropped.
    const split = splitBlock(decoded.bytes);
    const frames = split.units.length === 1 && split.units[0]!.kind === 'message' ? [split.units[0]!.bytes] : messagesOf(split);
    const where = { topic: r.topic, partition: r.partition, offset: r.offset };
    if (frames.length !== 1 || split.units.length !== 1 || split.units[0]!.kind !== 'message') {
      // A record of several messages (or none) is handled whole after the key's earlier records: no pipelining.
      await order.prev?.finished;
      if (frames.length === 0) {
        // An empty batch (BHS, BTS 0): nothing to process, nothing lost.
        this.#d.log.warn({ ...where, code: 'HL7_W_BATCH_TRAILER' }, 'kafka: record holds a batch without messages; committed');
        this.#status.handled++;
        return;
      }
      if (topic.multiMessageBlocks === 'reject') {
        const e = hbError('HL7_E_MULTI_MESSAGE_BLOCK', { count: frames.length });
        return this.#deadLetter(topic, r, payloadRefusal(e), 1);
      }
      for (const u of split.units) if (u.kind === 'batch') for (const p of u.batch.problems) this.#d.log.warn({ ...where, code: 'HL7_W_BATCH_TRAILER', problem: p }, `kafka: ${hbError('HL7_W_BATCH_TRAILER', { detail: p }).message}`);
      if (split.strayLines) this.#d.log.warn({ ...where, lines: split.strayLines }, 'kafka: lines outside any message ignored');
      this.#d.log.info({ ...where, messages: frames.length }, 'kafka: record holds several messages: each processed on its own');
    }
    const defaultCharset = decoded.defaultCharset;
    return this.#submitWithRetry(topic, r, b, frames.map((f) => ({ ...topic.input, defaultCharset, bytes: f })), order);
  }

  /**
   * Submits a record's messages in order; retries a passing refusal with back-off, dead-letters the record otherwise.
   * A record of one message is pipelined: its first attempt hands the key over to the next record as soon as its
   * commit is queued (InboundMessage.pipeline). Anything but a clean accept (a retry, a dead-letter) waits until the
   * key's earlier records are finished, so retries and dead-letters keep the key's order.
   */
  async #submitWithRetry(topic: KafkaTopicConfig & { input: TopicInput }, r: KafkaRecord, b: KafkaBatch, messages: InboundMessage[], order: RecordOrder): Promise<void> {
    const { retry } = this.#d.config;
    const where = { topic: r.topic, partition: r.partition, offset: r.offset };
    const frames = messages;
    // Behind a key whose chain broke (an earlier record failed to commit), records go one by one again.
    let pipelined = frames.length === 1 && !order.turn.chain.broken;
    if (!pipelined) await order.prev?.finished;
    for (let k = 0; k < frames.length; k++) {
      for (let attempt = 1; ; attempt++) {
        // Pausing the consumer only stops the next fetch: the batch in hand waits here too.
        while (this.#status.paused && b.isActive() && !this.#abort.signal.aborted) await sleep(100, this.#abort.signal);
        if (!b.isActive() || this.#abort.signal.aborted) throw new Stopping();
        const inbound: InboundMessage = pipelined ? { ...frames[k]!, pipeline: { chain: order.turn.chain, queued: order.turn.handOver } } : frames[k]!;
        const v = decide(await this.#d.submit(inbound));
        if (!v) break;
        if (pipelined) {
          // Not accepted: the key's earlier records finish first (their retries and dead-letters come before this one's).
          pipelined = false;
          await order.prev?.finished;
          if (!b.isActive() || this.#abort.signal.aborted) throw new Stopping();
        }
        if (v.kind === 'dead' || attempt >= retry.max) {
          // The whole record goes to the dead-letter topic: on replay the messages already accepted are re-acknowledged as duplicates.
          return this.#deadLetter(topic, r, frames.length > 1 ? { ...v, reason: `message ${k + 1} of ${frames.length}: ${v.reason}` } : v, attempt);
        }
        this.#d.log.warn({ ...where, code: v.code, attempt, ...(frames.length > 1 ? { message: k + 1 } : {}) }, 'kafka: record not accepted, will retry');
        await sleep(Math.min(retry.maxDelayMs, retry.initialMs * 2 ** (attempt - 1)), this.#abort.signal);
      }
    }
    this.#status.handled++;
  }

  async #deadLetter(topic: KafkaTopicConfig, r: KafkaRecord, v: Refusal, attempts: number): Promise<void> {
    const headers: Record<string, string | Buffer> = {};
    for (const [k, val] of Object.entries(r.headers)) if (val !== undefined) headers[k] = val;
    Object.assign(headers, {
      [DLQ_HEADERS.code]: v.code,
      [DLQ_HEADERS.reason]: v.reason.slice(0, 500),
      [DLQ_HEADERS.route]: v.route,
      [DLQ_HEADERS.topic]: r.topic,
      [DLQ_HEADERS.partition]: String(r.partition),
      [DLQ_HEADERS.offset]: r.offset,
      [DLQ_HEADERS.attempts]: String(attempts),
      [DLQ_HEADERS.at]: new Date().toISOString(),
    });
    try {
      await this.#producer!.send(topic.dlqTopic, [{ key: r.key, value: r.value ?? Buffer.alloc(0), headers }]);
    } catch (e) {
      const err = toHisbridgeError(e);
      throw hbError('KAFKA_E_DEAD_LETTER', { topic: topic.dlqTopic, detail: err.message }, { cause: e });
    }
    this.#status.deadLettered++;
    this.#d.log.warn({ topic: r.topic, partition: r.partition, offset: r.offset, dlq: topic.dlqTopic, code: v.code, route: v.route || undefined, attempts }, 'kafka: record dead-lettered');
  }
}
