/**
 * kafka-publish against a real-protocol broker: keyed by patient id with
 * per-patient order kept, the MLLP→Kafka bridge answering AA only once the
 * record is in the log, and AE when the broker cannot take it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { parseEvent, type KafkaEvent } from '../../core/kafka/envelope.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { KafkaTool, startTestBroker, uniq, type TestBroker } from '../helpers/kafka.js';
import { tempFiles } from '../helpers/routes.js';

function adt(controlId: string, patientId: string, trigger = 'A08'): Buffer {
  return Buffer.from(
    [
      `MSH|^~\\&|HIS|H1|HISBRIDGE|KAFKA|20250312093015||ADT^${trigger}^ADT_A01|${controlId}|P|2.5|||||CHN|UNICODE UTF-8`,
      `EVN|${trigger}|20250312093015`,
      `PID|1||${patientId}^^^HOSP^PI||测试^患者||19900101|M`,
    ].join('\r') + '\r',
    'utf8',
  );
}

const ackOf = (b: Buffer) => parseHl7(decodeHl7(b, 'utf-8').text);

describe('kafka-publish', () => {
  let broker: TestBroker;
  let tool: KafkaTool;
  let t: TestEngine;
  let client: MllpClient;
  const bridgeTopic = uniq('bridge');
  const orderTopic = uniq('ordered');

  beforeAll(async () => {
    broker = await startTestBroker();
    tool = new KafkaTool(broker.brokers);
    const routes = tempFiles({
      'bridge.yaml': [
        'name: bridge',
        'sources: [mllp]',
        'match: { events: ["ADT^A04"] }',
        'ack: on-complete',
        'steps:',
        '  - plugin: kafka-publish',
        `    config: { topic: ${bridgeTopic}, format: json }`,
      ].join('\n') + '\n',
      'ordered.yaml': [
        'name: ordered',
        'sources: [mllp]',
        'match: { events: ["ADT^A08"] }',
        'steps:',
        '  - plugin: kafka-publish',
        `    config: { topic: ${orderTopic} }`,
        'delivery:',
        '  orderingKey: ${PID-3[5=PI].1}',
      ].join('\n') + '\n',
    });
    t = await startEngine({ routesDir: routes, siteYaml: `kafka:\n  brokers: "${broker.brokers.join(',')}"\n` });
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 30_000 });
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await t?.stop();
    await tool?.close();
    await broker?.stop();
  });

  it('bridges MLLP to Kafka: each AA arrives only once the record is in the log, as a valid JSON envelope keyed by patient', async () => {
    const total = async () => Object.values(await tool.ends(bridgeTopic).catch(() => ({}))).reduce((a: number, b) => a + (b as number), 0);
    for (let i = 0; i < 5; i++) {
      const a = ackOf(await client.send(adt(`BR-${i}`, `P-BR-${i % 2}`, 'A04')));
      expect(a.get('MSA-1')).toBe('AA');
      // acks=-1: by the time the HIS has its AA the record is below the high watermark.
      expect(await total()).toBe(i + 1);
    }
    const recs = await tool.read(bridgeTopic, (r) => r.length >= 5);
    expect(recs).toHaveLength(5);
    for (const r of recs) {
      const ev = parseEvent(r.value) as KafkaEvent;
      expect(ev.specVersion).toBe('1');
      expect(ev.eventType).toBe('ADT^A04');
      expect(r.key).toBe(ev.patient!.id);
      expect(parseHl7(ev.hl7!).get('PID-5.1')).toBe('测试');
      expect(r.headers['hisbridge-idempotency-key']).toBeTruthy();
    }
  });

  it('keys by patient id: each patient in one partition, in the order the HIS sent them', async () => {
    const patients = ['P-ORD-1', 'P-ORD-2', 'P-ORD-3', 'P-ORD-4'];
    const n = 60;
    for (let i = 0; i < n; i++) {
      const a = ackOf(await client.send(adt(`ORD-${String(i).padStart(3, '0')}`, patients[i % patients.length]!)));
      expect(a.get('MSA-1')).toBe('AA');
    }
    const recs = await tool.read(orderTopic, (r) => r.length >= n);
    expect(recs).toHaveLength(n);
    for (const p of patients) {
      const mine = recs.filter((r) => r.key === p);
      expect(mine).toHaveLength(n / patients.length);
      expect(new Set(mine.map((r) => r.partition)).size).toBe(1);
      const ids = mine.sort((a, b) => Number(a.offset) - Number(b.offset)).map((r) => parseHl7(r.value.toString('utf8')).controlId);
      expect(ids).toEqual([...ids].sort());
    }
  });
});

describe('kafka-publish without a reachable broker', () => {
  it('answers AE to the HIS (never AA) when the broker cannot take the record', async () => {
    const routes = tempFiles({
      'bridge.yaml': 'name: bridge\nmatch: { events: ["ADT^A04"] }\nack: on-complete\nsteps:\n  - plugin: kafka-publish\n    config: { topic: nowhere }\n',
    });
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    const t = await startEngine({ routesDir: routes, siteYaml: 'kafka:\n  brokers: [127.0.0.1:9]\n  connectionTimeout: 300ms\n' });
    try {
      const c = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 55_000 });
      const a = ackOf(await c.send(adt('NOBROKER-1', 'P-X', 'A04')));
      c.close();
      expect(a.get('MSA-1')).toBe('AE');
      expect(a.get('ERR-8') || a.get('MSA-3')).toMatch(/Kafka|kafka/);
    } finally {
      await t.stop();
    }
  }, 60_000);
});
