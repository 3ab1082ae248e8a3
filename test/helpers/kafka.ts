/**
 * Kafka for the tests: a broker (librdkafka's mock cluster through kcat, or
 * KAFKA_BROKERS), and an independent kafkajs client to produce records and
 * read topics back. Never skips: without a broker the suite fails saying how
 * to get one (core/kafka/broker.ts).
 */
import { Kafka, Partitioners, logLevel, type Admin, type Producer } from 'kafkajs';
import { startTestBroker, type TestBroker } from '../../core/kafka/broker.js';

export { startTestBroker, type TestBroker };

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer;
  headers: Record<string, string>;
}

/** A unique topic/group name per test: the mock cluster keeps state for the whole file. */
export function uniq(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

export class KafkaTool {
  readonly kafka: Kafka;
  #producer?: Producer;
  #admin?: Admin;

  constructor(brokers: string[]) {
    this.kafka = new Kafka({ brokers, clientId: 'hisbridge-test', logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100 } });
  }

  async produce(topic: string, records: { key?: string | null; value: string | Buffer; partition?: number }[]): Promise<void> {
    if (!this.#producer) {
      this.#producer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
      await this.#producer.connect();
    }
    await this.#producer.send({ topic, acks: -1, messages: records.map((r) => ({ key: r.key ?? null, value: r.value, ...(r.partition !== undefined ? { partition: r.partition } : {}) })) });
  }

  /** Committed offsets of a group per partition (-1 when nothing committed). */
  async committed(groupId: string, topic: string): Promise<Record<number, number>> {
    const admin = await this.#adminClient();
    const res = await admin.fetchOffsets({ groupId, topics: [topic] });
    return Object.fromEntries(res[0]!.partitions.map((p) => [p.partition, Number(p.offset)]));
  }

  /** End offsets (next offset to be written) per partition. */
  async ends(topic: string): Promise<Record<number, number>> {
    const admin = await this.#adminClient();
    const res = await admin.fetchTopicOffsets(topic);
    return Object.fromEntries(res.map((p) => [p.partition, Number(p.high)]));
  }

  async #adminClient(): Promise<Admin> {
    if (!this.#admin) {
      this.#admin = this.kafka.admin();
      await this.#admin.connect();
    }
    return this.#admin;
  }

  /** Reads a topic from the beginning until `until(records)` holds or the time is up; returns what was read. */
  async read(topic: string, until: (r: ReadRecord[]) => boolean, timeoutMs = 20_000): Promise<ReadRecord[]> {
    const out: ReadRecord[] = [];
    const consumer = this.kafka.consumer({ groupId: uniq('reader'), maxWaitTimeInMs: 200 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) if (v !== undefined) headers[k] = String(Array.isArray(v) ? v[0] : v);
          out.push({ partition, offset: message.offset, key: message.key ? message.key.toString() : null, value: message.value ?? Buffer.alloc(0), headers });
        },
      });
      const end = Date.now() + timeoutMs;
      while (!until(out) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      return out;
    } finally {
      await consumer.disconnect();
    }
  }

  async close(): Promise<void> {
    await this.#producer?.disconnect().catch(() => undefined);
    await this.#admin?.disconnect().catch(() => undefined);
  }
}

/** Polls `fn` until `ok` holds or `ms` passed; returns the last value. */
export async function until<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}
