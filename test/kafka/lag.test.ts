/**
 * The `hisbridge_kafka_lag` gauge: per topic and partition, above zero while
 * records wait (back-pressure holds the source), zero once it caught up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { KafkaTool, startTestBroker, uniq, until, type TestBroker } from '../helpers/kafka.js';
import { tempFiles } from '../helpers/routes.js';
import { idNumberOf } from '../../bench/lib/messages.js';

interface Health { pendingDeliveries: number; kafka: { paused: boolean; handled: number } }

function record(i: number): { key: string; value: string } {
  return {
    key: `P${i}`,
    value: [
      `MSH|^~\\&|HIS|H1|HISBRIDGE|GDEHR|20250312093015||ADT^A04^ADT_A01|LAG-${i}|P|2.5|||||CHN|UNICODE UTF-8`,
      `PID|1||P${i}^^^HOSP^PI~${idNumberOf(i)}^^^CHN^NI||测试^${i}`,
    ].join('\r') + '\r',
  };
}

describe('kafka lag metric', () => {
  let broker: TestBroker;
  let tool: KafkaTool;
  let t: TestEngine;
  const topic = uniq('lag');
  const health = async () => (await (await fetch(`${t.httpUrl}/healthz`)).json()) as Health;
  /** The gauge's values for our topic, by partition. */
  const lags = async (): Promise<Record<number, number>> => {
    const text = await (await fetch(`${t.httpUrl}/metrics`)).text();
    const out: Record<number, number> = {};
    for (const line of text.split('\n')) {
      if (!line.startsWith('hisbridge_kafka_lag{')) continue;
      const labels = line.slice(line.indexOf('{') + 1, line.indexOf('}'));
      if (!labels.includes(`topic="${topic}"`)) continue;
      const partition = Number(/partition="(\d+)"/.exec(labels)![1]);
      out[partition] = Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return out;
  };
  const total = (l: Record<number, number>) => Object.values(l).reduce((a, b) => a + b, 0);

  beforeAll(async () => {
    broker = await startTestBroker();
    tool = new KafkaTool(broker.brokers);
    const routes = tempFiles({
      'authorize.yaml': 'name: lag\nsources: [kafka]\nmatch: { events: ["ADT^A04"] }\nsteps:\n  - plugin: gd-ehr-authorize\n    config: { consent: false }\ndelivery: { retry: { max: 1000, initial: 100ms, maxDelay: 200ms } }\n',
    });
    t = await startEngine({
      routesDir: routes,
      siteYaml: `store: { highWaterMark: 5 }\nkafka:\n  brokers: [${broker.brokers.join(', ')}]\n  groupId: ${uniq('g')}\n  maxInFlight: 1\n  topics: [{ name: ${topic} }]\n`,
    });
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    await tool?.close();
    await broker?.stop();
  });

  it('is above zero while back-pressure holds records, and zero on every partition once consumed', async () => {
    const sim = t.engine.simulators.gdEhr!.url;
    await (await fetch(`${sim}/__sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 503 }) })).arrayBuffer();
    const n = 40;
    await tool.produce(topic, Array.from({ length: n }, (_, i) => record(i)));
    const paused = await until(health, (h) => h.kafka.paused, 20_000);
    expect(paused.kafka.paused).toBe(true);
    const held = await until(lags, (l) => total(l) > 0, 5_000);
    expect(total(held)).toBeGreaterThan(0);
    // The lag never claims more waiting records than were produced.
    expect(total(held)).toBeLessThanOrEqual(n);

    await (await fetch(`${sim}/__sim/reset`, { method: 'POST' })).arrayBuffer();
    const done = await until(health, (h) => h.kafka.handled >= n && h.pendingDeliveries === 0, 30_000);
    expect(done.kafka.handled).toBe(n);
    const ends = await tool.ends(topic);
    const used = Object.keys(ends).map(Number).filter((p) => ends[p]! > 0);
    const caughtUp = await until(lags, (l) => used.every((p) => l[p] === 0), 5_000);
    expect(used.length).toBeGreaterThan(0);
    for (const p of used) expect(caughtUp[p]).toBe(0);
  }, 60_000);
});
