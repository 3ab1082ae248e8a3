/**
 * Back-pressure: past the store's high-water mark the Kafka source pauses its
 * topics (records wait in Kafka, none is refused); below 80% it resumes.
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
      `MSH|^~\\&|HIS|H1|HISBRIDGE|GDEHR|20250312093015||ADT^A04^ADT_A01|BP-${i}|P|2.5|||||CHN|UNICODE UTF-8`,
      `PID|1||P${i}^^^HOSP^PI~${idNumberOf(i)}^^^CHN^NI||测试^${i}`,
    ].join('\r') + '\r',
  };
}

describe('kafka source back-pressure', () => {
  let broker: TestBroker;
  let tool: KafkaTool;
  let t: TestEngine;
  const topic = uniq('bp');
  const health = async () => (await (await fetch(`${t.httpUrl}/healthz`)).json()) as Health;

  beforeAll(async () => {
    broker = await startTestBroker();
    tool = new KafkaTool(broker.brokers);
    const routes = tempFiles({
      'authorize.yaml': 'name: bp\nsources: [kafka]\nmatch: { events: ["ADT^A04"] }\nsteps:\n  - plugin: gd-ehr-authorize\n    config: { consent: false }\ndelivery: { retry: { max: 1000, initial: 100ms, maxDelay: 200ms } }\n',
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

  it('pauses while the platform is down and pending deliveries pile up, and resumes and finishes once it is back', async () => {
    const sim = t.engine.simulators.gdEhr!.url;
    await (await fetch(`${sim}/__sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 503 }) })).arrayBuffer();
    const n = 40;
    await tool.produce(topic, Array.from({ length: n }, (_, i) => record(i)));
    const paused = await until(health, (h) => h.kafka.paused, 20_000);
    expect(paused.kafka.paused).toBe(true);
    // Paused: the source stops taking records well short of the topic, instead of refusing them.
    await new Promise((r) => setTimeout(r, 1500));
    const held = await health();
    expect(held.kafka.paused).toBe(true);
    expect(held.kafka.handled).toBeLessThan(n);
    await (await fetch(`${sim}/__sim/reset`, { method: 'POST' })).arrayBuffer();
    const done = await until(health, (h) => h.kafka.handled >= n && h.pendingDeliveries === 0, 30_000);
    expect(done.kafka.handled).toBe(n);
    expect(done.kafka.paused).toBe(false);
    expect(t.logs.join('\n')).toContain('back-pressure: kafka topics paused');
  }, 60_000);
});
