/**
 * Coalesces concurrent publishes into one produce request per topic, in
 * call order, so a busy route does not pay one broker round trip per record
 * while one request in flight keeps every key's order.
 */
import type { KafkaProducerHandle, OutgoingRecord } from '../../core/sdk.js';

interface Pending {
  record: OutgoingRecord;
  resolve(): void;
  reject(e: unknown): void;
}

export class Publisher {
  readonly #producer: KafkaProducerHandle;
  readonly #topic: string;
  readonly #maxBatch: number;
  #connected?: Promise<void>;
  #queue: Pending[] = [];
  #sending = false;

  constructor(producer: KafkaProducerHandle, topic: string, maxBatch = 500) {
    this.#producer = producer;
    this.#topic = topic;
    this.#maxBatch = maxBatch;
  }

  get idempotent(): boolean {
    return this.#producer.idempotent;
  }

  /** Resolves when the broker acknowledged the record (acks=-1). */
  publish(record: OutgoingRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ record, resolve, reject });
      if (!this.#sending) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#sending = true;
    try {
      while (this.#queue.length) {
        const batch = this.#queue.splice(0, this.#maxBatch);
        try {
          // A failed connect is retried by the next publish, not remembered.
          this.#connected ??= this.#producer.connect().catch((e) => {
            this.#connected = undefined;
            throw e;
          });
          await this.#connected;
          await this.#producer.send(this.#topic, batch.map((p) => p.record));
          batch.forEach((p) => p.resolve());
        } catch (e) {
          batch.forEach((p) => p.reject(e));
        }
      }
    } finally {
      this.#sending = false;
    }
  }

  async close(): Promise<void> {
    if (this.#connected) await this.#producer.disconnect().catch(() => undefined);
  }
}
