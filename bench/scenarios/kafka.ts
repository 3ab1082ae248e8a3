/**
 * Scenario 6, Kafka source throughput: records/s of ~1 KB HL7 ADT^A04
 * through the engine's Kafka source (decode, parse, route match, one local
 * log step, durable store commit, in-order offset commits) next to a raw
 * kafkajs consumer (eachBatch, resolve, commit per batch, no work) reading
 * the same topic on the same broker in the same run. Each trial uses a fresh
 * topic and consumer groups. The broker is KAFKA_BROKERS or librdkafka's mock
 * cluster (kcat); the mock is an in-process C broker, so both figures are
 * bounded by it as well as by the consumers.
 */
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { startTestBroker, type TestBroker } from '../../core/kafka/broker.js';
import { cpuMeter } from '../lib/cpu.js';
import { engineUnavailable, startEngine, type EngineHandle } from '../lib/engine.js';
import { MessageFactory } from '../lib/messages.js';
import { runPairs, type Trial } from '../lib/pairs.js';
import { pairedEntry, pairOf, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { round } from '../lib/stats.js';
import { runTag } from './mllp-setup.js';
import { pairCount } from './targets.js';

const BASE = { name: 'kafka-source', scenario: 5, title: 'Kafka source: ~1 KB ADT^A04 through a one-step route vs raw kafkajs consumer', unit: 'records/s', target: '>= 0.7 x raw-kafkajs-consumer' };
const RAW = 'raw-kafkajs-consumer';

const ROUTE = [
  'name: bench-kafka',
  'sources: [kafka]',
  'match: { events: ["ADT^A04"] }',
  'steps:',
  '  - log: { message: "kafka ${msg.controlId}" }',
].join('\n') + '\n';

export async function produce(kafka: Kafka, topic: string, n: number): Promise<void> {
  const p = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: true });
  await p.connect();
  try {
    const f = new MessageFactory('adt', runTag());
    for (let sent = 0; sent < n; ) {
      const k = Math.min(500, n - sent);
      await p.send({ topic, acks: -1, messages: Array.from({ length: k }, (_, i) => ({ key: `P${(sent + i) % 64}`, value: f.next() })) });
      sent += k;
    }
  } finally {
    await p.disconnect();
  }
}

/** Records/s of a bare consumer group member, from its first record to its n-th. */
async function rawConsumer(kafka: Kafka, topic: string, n: number): Promise<Trial> {
  const c = kafka.consumer({ groupId: `raw-${topic}`, maxWaitTimeInMs: 100 });
  await c.connect();
  let seen = 0;
  let first = 0;
  let last = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  let cpuUs = NaN;
  try {
    await c.subscribe({ topic, fromBeginning: true });
    await c.run({
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
        if (!first) {
          first = performance.now();
          cpu0 = process.cpuUsage();
        }
        for (const m of batch.messages) resolveOffset(m.offset);
        seen += batch.messages.length;
        await commitOffsetsIfNecessary();
        last = performance.now();
        if (seen >= n && cpu0) {
          const d = process.cpuUsage(cpu0);
          cpuUs = d.user + d.system;
        }
      },
    });
    const end = Date.now() + 120_000;
    while (seen < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  } finally {
    await c.disconnect();
  }
  if (seen < n) throw new Error(`raw consumer read ${seen}/${n} records in 120 s`);
  // CPU of the bench process while the consumer ran (it does nothing else then), per record.
  return { value: round(n / ((last - first) / 1000), 0), cpuUsPerMsg: round(cpuUs / n, 1) };
}

/** Records/s of the engine's source, from the first poll that saw progress to the n-th accepted record. */
export async function engineSource(brokers: string[], topic: string, n: number, nodeArgs?: string[]): Promise<Trial & { window: { fromUs: number; toUs: number } }> {
  const engine: EngineHandle = await startEngine({
    ...(nodeArgs ? { nodeArgs } : {}),
    routes: { 'kafka.yaml': ROUTE },
    extraConfig: ['kafka:', `  brokers: [${brokers.join(', ')}]`, `  groupId: hb-${topic}`, `  topics: [{ name: ${topic}, format: hl7, charset: utf-8 }]`].join('\n'),
  });
  try {
    const handled = async () => Number(((await engine.health()).kafka as { handled?: number } | undefined)?.handled ?? NaN);
    let start = 0;
    let fromUs = 0;
    let base = 0;
    let meter: ReturnType<typeof cpuMeter> | undefined;
    const end = Date.now() + 180_000;
    for (;;) {
      const h = await handled();
      if (Number.isNaN(h)) throw new Error('engine /healthz has no kafka status');
      const now = performance.now();
      if (!start && h > 0 && h < n) {
        start = now;
        fromUs = Number(process.hrtime.bigint() / 1000n);
        base = h;
        meter = cpuMeter(engine.child.pid);
      }
      if (h >= n) {
        if (!start) throw new Error('engine handled every record before the first poll: too few records to measure');
        const window = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) };
        return { value: round((n - base) / ((now - start) / 1000), 0), cpuUsPerMsg: round(meter!.stop(n - base), 1), window };
      }
      if (Date.now() > end) throw new Error(`engine handled ${h}/${n} records in 180 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await engine.stop();
  }
}

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  const missing = engineUnavailable();
  if (missing) return [unavailable(BASE, 'not-available', missing)];
  let broker: TestBroker;
  try {
    broker = await startTestBroker();
  } catch (e) {
    return [unavailable(BASE, 'not-available', reason(e))];
  }
  const n = ctx.quick ? 2000 : 15_000;
  const notes: string[] = [`broker: ${broker.kind === 'mock' ? 'librdkafka mock cluster (kcat), 1 broker, 4 partitions' : 'KAFKA_BROKERS'}`];
  const kafka = new Kafka({ brokers: broker.brokers, clientId: 'hisbridge-bench', logLevel: logLevel.NOTHING });
  // One topic per pair, produced before the pair's first half; both halves read all of it with their own group.
  const topics: Promise<string>[] = [];
  const topicOf = (i: number) => (topics[i] ??= (async () => {
    const topic = `bench-${runTag()}-${i}`;
    await produce(kafka, topic, n);
    return topic;
  })());
  let pairs;
  try {
    ctx.say(`kafka: ${n} records x ${pairCount(ctx)} pairs`);
    pairs = await runPairs(pairCount(ctx), {
      baseline: async (i) => rawConsumer(kafka, await topicOf(i), n),
      engine: async (i) => {
        const { window: _window, ...trial } = await engineSource(broker.brokers, await topicOf(i), n);
        return trial;
      },
    }, (side, i, e) => notes.push(`pair ${i + 1} ${side === 'baseline' ? 'raw' : 'hisbridge'}: ${reason(e)}`));
  } finally {
    await broker.stop();
  }
  const res = pairedEntry({ ...BASE, better: 'higher', note: notes.join('; '), details: { recordsPerTrial: n, store: 'engine default (synchronous FULL)', cpuNote: 'raw consumer CPU is the bench process while it consumed' } }, RAW, pairs);
  const thr = pairOf(res, 'records/s');
  res.met = thr?.ratios.length ? thr.median >= 0.7 : null;
  return [res];
}
