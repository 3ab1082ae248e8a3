/**
 * Issue 15 row 5: the Kafka source pipelines the records of one key into a
 * shared group commit (InboundMessage.pipeline, Store AcceptOrder) while
 * keeping the key's order when a commit fails:
 * - the store refuses every later accept of a key once one of its accepts
 *   failed to commit, in the same transaction or a later one;
 * - the source hands a key over to its next record once the record's commit
 *   is queued (both records in one commit), and a record that was not
 *   accepted waits for the key's earlier records before it is retried, so
 *   the key's records are committed in offset order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { KafkaBatch, KafkaClient, KafkaRecord } from '../../core/kafka/client.js';
import { parseKafkaConfig } from '../../core/kafka/config.js';
import { KafkaSource } from '../../core/kafka/source.js';
import { silentLogger } from '../../core/log.js';
import type { InboundMessage, IngestOutcome } from '../../core/sdk.js';
import { Store } from '../../core/store/sqlite.js';
import type { NewMessage } from '../../core/store/types.js';

function message(controlId: string): NewMessage {
  const raw = Buffer.from(`MSH|^~\\&|HIS|H1|HB|H1|20260101000000||ADT^A04|${controlId}|P|2.5\rPID|1||P1\r`);
  return {
    source: 'kafka', raw, charset: 'utf-8', sendingApp: 'HIS', sendingFacility: 'H1', type: 'ADT^A04',
    controlId, receivedAt: Date.now(), ackCode: 'AA',
  };
}

describe('pipelined accepts of one key (Store AcceptOrder)', () => {
  it('refuses the accepts queued behind one of their key that failed to commit, in the same commit and later ones', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hb-pipeline-'));
    const store = Store.open(dir, {});
    try {
      const chain = { broken: false };
      const queued: string[] = [];
      const order = (id: string) => ({ chain, queued: () => queued.push(id) });
      // A delivery without a retry policy cannot be written: this accept fails, alone as in its batch.
      const bad = { route: 'r', step: 0, plugin: 'http', vars: {} } as never;
      const first = store.accept(message('PIPE1'), [bad], order('PIPE1'));
      const second = store.accept(message('PIPE2'), [], order('PIPE2'));
      const other = store.accept(message('PIPE3'), []);
      expect(queued).toEqual(['PIPE1', 'PIPE2']);
      await expect(first).rejects.toThrow();
      await expect(second).rejects.toMatchObject({ code: 'STORE_E_IO' });
      // Another key's message in the same commit is not affected.
      expect((await other).duplicate).toBeFalsy();
      // A later commit still refuses the broken key.
      await expect(store.accept(message('PIPE4'), [], order('PIPE4'))).rejects.toMatchObject({ code: 'STORE_E_IO' });
      expect(store.findDuplicate('HIS', 'H1', 'PIPE2', 60_000)).toBeUndefined();
      expect(store.findDuplicate('HIS', 'H1', 'PIPE4', 60_000)).toBeUndefined();
      expect(store.findDuplicate('HIS', 'H1', 'PIPE3', 60_000)).toBeDefined();
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A port standing in for the engine: queues each message, commits the queue a turn later, fails chosen messages once. */
function fakePort(failOnce: Set<string>) {
  const committed: string[] = [];
  const submitted: string[] = [];
  let queue: { id: string; msg: InboundMessage; resolve(o: IngestOutcome): void }[] = [];
  let commits = 0;
  const outcome = (status: IngestOutcome['status'], code = 'OK'): IngestOutcome => ({ status, code, reason: code === 'OK' ? '' : code, routes: [], reply: { code: status === 'accepted' ? 'AA' : 'AE' } });
  const flush = () => {
    const ops = queue;
    queue = [];
    if (ops.length) commits++;
    for (const op of ops) {
      const chain = op.msg.pipeline?.chain;
      if (chain?.broken) {
        op.resolve(outcome('failed', 'STORE_E_IO'));
      } else if (failOnce.delete(op.id)) {
        if (chain) chain.broken = true;
        op.resolve(outcome('failed', 'STORE_E_IO'));
      } else {
        committed.push(op.id);
        op.resolve(outcome('accepted'));
      }
    }
  };
  const submit = async (msg: InboundMessage): Promise<IngestOutcome> => {
    const id = /\|ADT\^A04\|([^|]+)\|/.exec(msg.bytes.toString('latin1'))![1]!;
    submitted.push(id);
    await Promise.resolve();
    return new Promise<IngestOutcome>((resolve) => {
      queue.push({ id, msg, resolve });
      msg.pipeline?.queued();
      if (queue.length === 1) setImmediate(flush);
    });
  };
  return { submit, committed, submitted, commits: () => commits };
}

function fakeClient(): KafkaClient & { batch(b: KafkaBatch): Promise<void> } {
  let onBatch: ((b: KafkaBatch) => Promise<void>) | undefined;
  return {
    consumer: () => ({
      connect: async () => undefined,
      subscribe: async () => undefined,
      run: async (cb) => {
        onBatch = cb;
      },
      pause: () => undefined,
      resume: () => undefined,
      onAssignment: () => undefined,
      onFatal: () => undefined,
      disconnect: async () => undefined,
    }),
    producer: () => ({ connect: async () => undefined, send: async () => undefined, disconnect: async () => undefined, idempotent: true }),
    batch: (b) => onBatch!(b),
  };
}

function batchOf(records: { key: string; id: string }[]) {
  const resolved: string[] = [];
  let commits = 0;
  const batch: KafkaBatch = {
    topic: 'his', partition: 0, highWatermark: String(records.length),
    records: records.map((r, i): KafkaRecord => ({
      topic: 'his', partition: 0, offset: String(i), key: Buffer.from(r.key), headers: {},
      value: Buffer.from(`MSH|^~\\&|HIS|H1|HB|H1|20260101000000||ADT^A04|${r.id}|P|2.5\rPID|1||${r.key}\r`),
    })),
    resolveOffset: (o) => void resolved.push(o),
    commit: async () => void commits++,
    heartbeat: async () => undefined,
    isActive: () => true,
  };
  return { batch, resolved, commits: () => commits };
}

async function sourceWith(failOnce: string[]) {
  const port = fakePort(new Set(failOnce));
  const client = fakeClient();
  const config = parseKafkaConfig({ brokers: ['127.0.0.1:1'], topics: [{ name: 'his', charset: 'utf-8' }], retry: { max: 5, initial: '10ms', maxDelay: '20ms' } })!;
  const source = new KafkaSource({ config, client, submit: port.submit, flow: { paused: false, onChange: () => () => undefined }, log: silentLogger() });
  await source.start();
  return { port, client, source };
}

describe('kafka source pipelining', () => {
  it('commits the records of one key together, handing the key over once a commit is queued', async () => {
    const { port, client, source } = await sourceWith([]);
    const records = Array.from({ length: 12 }, (_, i) => ({ key: `K${i % 2}`, id: `M${i}` }));
    const b = batchOf(records);
    await client.batch(b.batch);
    expect(port.committed).toEqual(records.map((r) => r.id));
    // Six records per key, one commit for all of them (one record per key per commit before).
    expect(port.commits()).toBe(1);
    expect(b.resolved.at(-1)).toBe('11');
    expect(b.commits()).toBe(1);
    expect(source.status.handled).toBe(12);
    await source.stop();
  });

  it('keeps the key order when a commit fails: the later records of the key wait and are committed after it', async () => {
    const { port, client, source } = await sourceWith(['A2']);
    const records = [
      { key: 'A', id: 'A1' }, { key: 'A', id: 'A2' }, { key: 'B', id: 'B1' }, { key: 'A', id: 'A3' },
      { key: 'B', id: 'B2' }, { key: 'A', id: 'A4' }, { key: 'B', id: 'B3' },
    ];
    const b = batchOf(records);
    await client.batch(b.batch);
    const ofKey = (k: string) => port.committed.filter((id) => id.startsWith(k));
    expect(ofKey('A')).toEqual(['A1', 'A2', 'A3', 'A4']);
    expect(ofKey('B')).toEqual(['B1', 'B2', 'B3']);
    // A3 and A4 were queued behind A2 in its commit and refused with it; A2 was offered again before them.
    const again = port.submitted.slice(records.length);
    expect(again).toEqual(['A2', 'A3', 'A4']);
    expect(b.resolved.at(-1)).toBe('6');
    expect(source.status.handled).toBe(7);
    await source.stop();
  });
});
