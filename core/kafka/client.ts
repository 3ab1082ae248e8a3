/**
 * The thin seam between hisbridge and a Kafka client library. The source and
 * the kafka-publish plugin only use these interfaces; `createKafkaClient`
 * implements them with kafkajs (unmaintained since 2023: keeping it behind
 * this seam lets us move to another client without touching either).
 */
import { readFileSync } from 'node:fs';
import { Kafka, Partitioners, logLevel, type ConsumerConfig, type KafkaConfig as KafkajsConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { Logger } from '../log.js';
import type { KafkaConnection } from './config.js';

/** One consumed record. Values are raw bytes; nothing here is ever logged. */
export interface KafkaRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | undefined>;
}

/** One fetched batch of one topic-partition. */
export interface KafkaBatch {
  topic: string;
  partition: number;
  records: KafkaRecord[];
  /** The partition's end offset (next offset to be written) when the batch was fetched. */
  highWatermark: string;
  /** Marks `offset` (and everything before it) as handled; committed later. */
  resolveOffset(offset: string): void;
  /** Commits resolved offsets now. */
  commit(): Promise<void>;
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping or the partition was taken away (rebalance). */
  isActive(): boolean;
}

export interface OutgoingRecord {
  key?: string | Buffer | null;
  value: string | Buffer;
  headers?: Record<string, string | Buffer>;
}

export interface KafkaConsumerHandle {
  connect(): Promise<void>;
  subscribe(topics: string[], fromBeginning: boolean): Promise<void>;
  /** Starts fetching; batches of different partitions may run concurrently (`partitionsConcurrently`). */
  run(onBatch: (batch: KafkaBatch) => Promise<void>, opts: { partitionsConcurrently: number }): Promise<void>;
  pause(topics: string[]): void;
  resume(topics: string[]): void;
  /** Called after each group join with this member's partitions. */
  onAssignment(cb: (assigned: Record<string, number[]>) => void): void;
  /** Called when the client gives up (no automatic restart left). */
  onFatal(cb: (err: Error) => void): void;
  disconnect(): Promise<void>;
}

export interface KafkaProducerHandle {
  connect(): Promise<void>;
  /** Resolves once the broker acknowledged every record (acks=-1). Records of one call keep their order. */
  send(topic: string, records: OutgoingRecord[]): Promise<void>;
  disconnect(): Promise<void>;
  /** True when the idempotent producer could be used (the broker granted a producer id). */
  readonly idempotent: boolean;
}

export interface KafkaClient {
  consumer(opts: { groupId: string; sessionTimeoutMs: number }): KafkaConsumerHandle;
  producer(): KafkaProducerHandle;
}

function kafkajsLogger(log: Logger) {
  // kafkajs messages carry broker addresses and protocol errors, never record contents.
  return () => ({ level, log: entry }: LogEntry) => {
    const { message, ...rest } = entry;
    const fields = { kafka: entry.logger ?? 'kafkajs', error: typeof rest.error === 'string' ? rest.error : undefined, broker: rest.broker };
    if (level <= logLevel.ERROR) log.error(fields, `kafka: ${message}`);
    else if (level === logLevel.WARN) log.warn(fields, `kafka: ${message}`);
    else log.debug(fields, `kafka: ${message}`);
  };
}

function kafkajsConfig(c: KafkaConnection, log: Logger): KafkajsConfig {
  const ssl = c.ssl === undefined || typeof c.ssl === 'boolean'
    ? c.ssl
    : { ...(c.ssl.ca ? { ca: [readFileSync(c.ssl.ca, 'utf8')] } : {}), ...(c.ssl.rejectUnauthorized !== undefined ? { rejectUnauthorized: c.ssl.rejectUnauthorized } : {}) };
  return {
    clientId: c.clientId,
    brokers: c.brokers,
    connectionTimeout: c.connectionTimeoutMs,
    ...(ssl !== undefined ? { ssl } : {}),
    ...(c.sasl ? { sasl: { mechanism: c.sasl.mechanism, username: c.sasl.username, password: c.sasl.password } as SASLOptions } : {}),
    logLevel: logLevel.WARN,
    logCreator: kafkajsLogger(log),
    retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 },
  };
}

function toRecord(topic: string, partition: number, m: { offset: string; key: Buffer | null; value: Buffer | null; headers?: Record<string, unknown> }): KafkaRecord {
  const headers: Record<string, Buffer | undefined> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    const one = Array.isArray(v) ? v[0] : v;
    headers[k] = one === undefined ? undefined : Buffer.isBuffer(one) ? one : Buffer.from(String(one));
  }
  return { topic, partition, offset: m.offset, key: m.key, value: m.value, headers };
}

/** A KafkaClient backed by kafkajs. Nothing connects until `connect()`. */
export function createKafkaClient(conn: KafkaConnection, log: Logger): KafkaClient {
  const kafka = new Kafka(kafkajsConfig(conn, log));
  return {
    consumer({ groupId, sessionTimeoutMs }) {
      const cfg: ConsumerConfig = { groupId, sessionTimeout: sessionTimeoutMs, heartbeatInterval: Math.min(3000, Math.floor(sessionTimeoutMs / 3)), allowAutoTopicCreation: true, maxWaitTimeInMs: 500 };
      const c = kafka.consumer(cfg);
      let fatal: ((e: Error) => void) | undefined;
      c.on(c.events.CRASH, (ev) => {
        if (!ev.payload.restart) fatal?.(ev.payload.error);
      });
      return {
        connect: () => c.connect(),
        subscribe: (topics, fromBeginning) => c.subscribe({ topics, fromBeginning }),
        run: (onBatch, opts) =>
          c.run({
            // Offsets are resolved by the source only after the engine committed a record; nothing is resolved for us.
            eachBatchAutoResolve: false,
            autoCommit: true,
            autoCommitThreshold: 1,
            autoCommitInterval: 1000,
            partitionsConsumedConcurrently: opts.partitionsConcurrently,
            eachBatch: async (p) => {
              const { topic, partition } = p.batch;
              await onBatch({
                topic,
                partition,
                records: p.batch.messages.map((m) => toRecord(topic, partition, m)),
                highWatermark: p.batch.highWatermark,
                resolveOffset: (o) => p.resolveOffset(o),
                commit: () => p.commitOffsetsIfNecessary(),
                heartbeat: () => p.heartbeat(),
                isActive: () => p.isRunning() && !p.isStale(),
              });
            },
          }),
        pause: (topics) => c.pause(topics.map((topic) => ({ topic }))),
        resume: (topics) => c.resume(topics.map((topic) => ({ topic }))),
        onAssignment: (cb) => {
          c.on(c.events.GROUP_JOIN, (ev) => cb(ev.payload.memberAssignment as Record<string, number[]>));
        },
        onFatal: (cb) => {
          fatal = cb;
        },
        disconnect: () => c.disconnect(),
      };
    },
    producer() {
      let idempotent = true;
      const make = (idem: boolean) => kafka.producer({
        idempotent: idem,
        // One request in flight keeps a key's records in order across retries.
        maxInFlightRequests: 1,
        allowAutoTopicCreation: true,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      let p = make(true);
      return {
        get idempotent() {
          return idempotent;
        },
        async connect() {
          try {
            await p.connect();
          } catch (e) {
            // Brokers that cannot hand out producer ids (librdkafka's mock cluster, old or locked-down
            // clusters) fail the idempotent handshake; ordering still holds with one request in flight.
            const name = (e as Error).name;
            if (name !== 'KafkaJSBrokerNotFound' && !/producer ?id|CLUSTER_AUTHORIZATION/i.test((e as Error).message)) throw e;
            log.warn({ kafka: 'producer', error: name }, 'kafka: idempotent producer not available on this cluster; using acks=-1 with one request in flight');
            await p.disconnect().catch(() => undefined);
            idempotent = false;
            p = make(false);
            await p.connect();
          }
        },
        async send(topic, records) {
          await p.send({
            topic,
            acks: -1,
            messages: records.map((r) => ({ key: r.key ?? null, value: r.value, ...(r.headers ? { headers: r.headers } : {}) })),
          });
        },
        disconnect: () => p.disconnect(),
      };
    },
  };
}
