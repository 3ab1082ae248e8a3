/**
 * One back-pressure controller for every source (issue 13): past the store's
 * high-water mark the engine's FlowController tells every source to pause
 * (MLLP stops reading its sockets, Kafka pauses its topics), and below 80% of
 * the mark to resume. No source polls the store. The HTTP and file sources
 * join the end-to-end test at merge.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlowController } from '../../core/engine/flow.js';
import { silentLogger } from '../../core/log.js';
import { MllpClient } from '../../core/mllp/client.js';
import { parseHl7 } from '../../core/hl7/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { KafkaTool, startTestBroker, uniq, until, type TestBroker } from '../helpers/kafka.js';
import { tempFiles } from '../helpers/routes.js';
import { idNumberOf } from '../../bench/lib/messages.js';

describe('FlowController', () => {
  it('pauses at the mark, stays paused down to 80%, resumes below it, and tells every subscriber once per change', () => {
    let pending = 0;
    const flow = new FlowController({ pending: () => pending, highWaterMark: 10, overload: 'pause', log: silentLogger() });
    const a: boolean[] = [];
    const b: boolean[] = [];
    flow.onChange((p) => a.push(p));
    const off = flow.onChange((p) => b.push(p));
    for (const n of [5, 9, 10, 12, 9, 8]) {
      pending = n;
      flow.check();
    }
    expect(flow.paused).toBe(true);
    pending = 7;
    flow.check();
    expect(flow.paused).toBe(false);
    off();
    pending = 10;
    flow.check();
    expect(a).toEqual([true, false, true]);
    expect(b).toEqual([true, false]);
  });

  it('never pauses under overload: reject (the port refuses instead)', () => {
    const flow = new FlowController({ pending: () => 1000, highWaterMark: 10, overload: 'reject', log: silentLogger() });
    flow.check();
    expect(flow.paused).toBe(false);
  });
});

function hl7(id: string, i: number): string {
  return [
    `MSH|^~\\&|HIS|H1|HISBRIDGE|GDEHR|20250312093015||ADT^A04^ADT_A01|${id}|P|2.5|||||CHN|UNICODE UTF-8`,
    `PID|1||P${i}^^^HOSP^PI~${idNumberOf(i)}^^^CHN^NI||测试^${i}`,
  ].join('\r') + '\r';
}

interface Health { paused: boolean; pendingDeliveries: number; kafka: { paused: boolean; handled: number } }

describe('back-pressure pauses MLLP and Kafka through the one controller', () => {
  let broker: TestBroker;
  let tool: KafkaTool;
  let t: TestEngine;
  const topic = uniq('flow');

  beforeAll(async () => {
    broker = await startTestBroker();
    tool = new KafkaTool(broker.brokers);
    const routes = tempFiles({
      'authorize.yaml': 'name: bp\nmatch: { events: ["ADT^A04"] }\nsteps:\n  - plugin: gd-ehr-authorize\n    config: { consent: false }\ndelivery: { retry: { max: 1000, initial: 100ms, maxDelay: 200ms } }\n',
    });
    t = await startEngine({
      routesDir: routes,
      siteYaml: `store: { highWaterMark: 5, overload: pause }\nkafka:\n  brokers: [${broker.brokers.join(', ')}]\n  groupId: ${uniq('g')}\n  maxInFlight: 1\n  topics: [{ name: ${topic} }]\n`,
    });
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    await tool?.close();
    await broker?.stop();
  });

  it('both pause past the mark, hold their input, and both resume and finish once deliveries drain', async () => {
    const health = () => t.engine.health() as unknown as Health;
    const sim = t.engine.simulators.gdEhr!.url;
    await (await fetch(`${sim}/__sim/faults`, { method: 'POST', body: JSON.stringify({ status: 503 }) })).arrayBuffer();
    const changes: boolean[] = [];
    t.engine.flow.onChange((p) => changes.push(p));

    // MLLP fills the store up to the mark (5 pending deliveries, one per message).
    const client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 60_000 });
    for (let i = 0; i < 5; i++) expect(parseHl7((await client.send(hl7(`FLOWM${i}`, i))).toString('utf8')).get('MSA-1')).toBe('AA');
    expect(t.engine.flow.paused).toBe(true);

    // Kafka, started with records waiting, holds them while paused.
    const n = 10;
    await tool.produce(topic, Array.from({ length: n }, (_, i) => ({ key: `K${i}`, value: hl7(`FLOWK${i}`, 100 + i) })));
    const h1 = await until(async () => health(), (h) => h.kafka.paused, 20_000);
    expect(h1.paused).toBe(true);
    expect(h1.kafka.paused).toBe(true);

    // The MLLP socket is not read: a message sent now gets no answer while paused.
    let answered = false;
    const late = client.send(hl7('FLOWLATE', 50)).then((b) => {
      answered = true;
      return b;
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(answered).toBe(false);
    expect(t.engine.listeners[0]!.server.stats().pausedConnections).toBeGreaterThanOrEqual(1);
    expect(health().kafka.handled).toBeLessThan(n);

    // The platform comes back: deliveries drain, one resume reaches both.
    await (await fetch(`${sim}/__sim/reset`, { method: 'POST' })).arrayBuffer();
    expect(parseHl7((await late).toString('utf8')).get('MSA-1')).toBe('AA');
    const done = await until(async () => health(), (h) => h.kafka.handled >= n && h.pendingDeliveries === 0, 40_000);
    expect(done.kafka.handled).toBe(n);
    expect(done.kafka.paused).toBe(false);
    expect(done.paused).toBe(false);
    expect(changes[0]).toBe(true);
    expect(changes).toContain(false);
    const logs = t.logs.join('\n');
    expect(logs).toContain('back-pressure: sources paused');
    expect(logs).toContain('back-pressure: kafka topics paused');
    client.close();
  }, 120_000);
});
