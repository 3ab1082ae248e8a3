/**
 * Kafka source against a real-protocol broker (librdkafka's mock cluster or
 * KAFKA_BROKERS): HL7 and JSON records routed to the provincial simulator,
 * poison records dead-lettered with headers while later records flow,
 * offsets committed only after handling.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeHl7, encodeText } from '../../core/hl7/index.js';
import { DLQ_HEADERS } from '../../core/kafka/source.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { KafkaTool, startTestBroker, uniq, until, type TestBroker } from '../helpers/kafka.js';
import { tempFiles } from '../helpers/routes.js';

interface SimCall { op: string; verified: boolean; returnCode?: string; fields?: Record<string, unknown> }

const sample = (name: string) => readFileSync(path.resolve('samples', name));

describe('kafka source', () => {
  let broker: TestBroker;
  let tool: KafkaTool;
  let t: TestEngine;
  const hl7Topic = uniq('his-hl7');
  const jsonTopic = uniq('his-json');
  const group = uniq('hisbridge');

  const calls = async (): Promise<SimCall[]> => ((await (await fetch(`${t.engine.simulators.gdEhr!.url}/__sim/calls`)).json()) as { calls: SimCall[] }).calls;
  const authorized = async (id: string) => (await calls()).filter((c) => c.op === 'authorize' && c.verified && c.fields?.patientIdcard === id);

  beforeAll(async () => {
    broker = await startTestBroker();
    tool = new KafkaTool(broker.brokers);
    const routes = tempFiles({
      'authorize.yaml': [
        'name: kafka-authorize',
        'sources: [kafka-hl7, kafka-json]',
        'match: { events: ["ADT^A04"], when: [{ path: ZCN-1, equals: "Y" }] }',
        'steps:',
        '  - plugin: gd-ehr-authorize',
        'delivery: { retry: { max: 3, initial: 100ms, maxDelay: 200ms } }',
      ].join('\n') + '\n',
      'json-body.yaml': [
        'name: kafka-json-body',
        'sources: [kafka-json]',
        // A JSON event is no HL7 message: its fields are body.<path> (the whole envelope), its type the envelope's eventType.
        'match: { events: ["ADT^A31"], when: [{ path: body.body.note, equals: "x|y^z" }, { path: PID-3.1, exists: false }] }',
        'steps:',
        '  - plugin: gd-ehr-authorize',
        '    config: { consent: false, idNumber: "${body.patient.idNumber}", patientName: "${body.patient.name}", patientId: "${body.patient.id}" }',
      ].join('\n') + '\n',
      'sync.yaml': [
        'name: kafka-sync',
        'sources: [kafka-hl7]',
        'match: { events: ["ADT^A05"] }',
        'ack: on-complete',
        'steps:',
        '  - plugin: gd-ehr-authorize',
        '    config: { consent: false }',
      ].join('\n') + '\n',
    });
    t = await startEngine({
      routesDir: routes,
      siteYaml: [
        'kafka:',
        `  brokers: [${broker.brokers.join(', ')}]`,
        `  groupId: ${group}`,
        '  retry: { max: 30, initial: 100ms, maxDelay: 300ms }',
        '  topics:',
        `    - { name: ${hl7Topic}, source: kafka-hl7, format: hl7, charset: gb18030 }`,
        `    - { name: ${jsonTopic}, source: kafka-json, format: json }`,
      ].join('\n') + '\n',
    });
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    await tool?.close();
    await broker?.stop();
  });

  it('is ready only once it joined the group, and reports its partitions', async () => {
    expect((await fetch(`${t.httpUrl}/readyz`)).status).toBe(200);
    const h = (await (await fetch(`${t.httpUrl}/healthz`)).json()) as { kafka?: { connected: boolean; assigned: Record<string, number[]> } };
    expect(h.kafka?.connected).toBe(true);
    expect(Object.keys(h.kafka!.assigned).sort()).toEqual([hl7Topic, jsonTopic].sort());
  });

  it('routes a raw GB18030 HL7 record to the provincial simulator with the right ID number and name', async () => {
    const raw = sample('01-adt-a04-registration-consent.hl7');
    await tool.produce(hl7Topic, [{ key: 'P000100001', value: raw }]);
    const got = await until(() => authorized('440106199003152314'), (c) => c.length >= 1);
    expect(got).toHaveLength(1);
    expect(got[0]!.fields!.patientName).toBe('张三丰');
  });

  it('routes a JSON envelope carrying HL7 (UTF-8 in JSON, GB18030 per MSH-18) and one carrying a JSON body', async () => {
    const text = decodeHl7(sample('03-adt-a01-admission-consent.hl7'), 'gb18030').text;
    const asA04 = text.replace('ADT^A01', 'ADT^A04').replace(/\|([^|\r]*)\|P\|2\.5/, '|KJSON-HL7-1|P|2.5').replace(/\d{17}[\dX](\^\^\^[A-Z]*\^NI)/, '440106198001010012$1');
    await tool.produce(jsonTopic, [
      { key: 'a', value: JSON.stringify({ specVersion: '1', eventId: 'KJSON-HL7-1', eventType: 'ADT^A04', source: { system: 'HIS' }, occurredAt: '2025-03-12T09:30:15+08:00', hl7: asA04 }) },
      {
        key: 'b',
        value: JSON.stringify({
          specVersion: '1', eventId: 'KJSON-BODY-1', eventType: 'ADT^A31', source: { system: 'HIS', facility: 'H4413020001' }, occurredAt: '2025-03-12T09:30:15+08:00',
          patient: { id: 'P9', idNumber: '440106198512120029', name: '欧阳娜' }, body: { note: 'x|y^z' },
        }),
      },
    ]);
    const a = await until(() => authorized('440106198001010012'), (c) => c.length >= 1);
    expect(a).toHaveLength(1);
    const b = await until(() => authorized('440106198512120029'), (c) => c.length >= 1);
    expect(b).toHaveLength(1);
    expect(b[0]!.fields!.patientName).toBe('欧阳娜');
  });

  it('dead-letters unparsable HL7 and an invalid envelope with their headers, and later records still flow', async () => {
    await tool.produce(hl7Topic, [{ key: 'poison', value: 'this is not HL7 at all' }]);
    await tool.produce(jsonTopic, [{ key: 'poison', value: JSON.stringify({ specVersion: '1', eventId: 'BAD1', eventType: 'nonsense', source: { system: 'HIS' }, occurredAt: '2025-03-12T09:30:15Z', body: {} }) }]);
    const later = encodeText(decodeHl7(sample('01-adt-a04-registration-consent.hl7'), 'gb18030').text.replace('HIS202503120001', 'KAFKA-LATER-1').replace('440106199003152314', '440106197001010010'), 'gb18030');
    await tool.produce(hl7Topic, [{ key: 'poison', value: later }]);
    expect(await until(() => authorized('440106197001010010'), (c) => c.length >= 1)).toHaveLength(1);

    const dlq = await tool.read(`${hl7Topic}.dlq`, (r) => r.length >= 1);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.value.toString()).toBe('this is not HL7 at all');
    expect(dlq[0]!.key).toBe('poison');
    expect(dlq[0]!.headers[DLQ_HEADERS.code]).toMatch(/^HL7_E_/);
    expect(dlq[0]!.headers[DLQ_HEADERS.reason]).toMatch(/MSH/);
    expect(dlq[0]!.headers[DLQ_HEADERS.topic]).toBe(hl7Topic);
    expect(Number(dlq[0]!.headers[DLQ_HEADERS.offset])).toBeGreaterThanOrEqual(0);
    expect(dlq[0]!.headers[DLQ_HEADERS.partition]).toMatch(/^\d+$/);
    expect(dlq[0]!.headers[DLQ_HEADERS.attempts]).toBe('1');

    const jdlq = await tool.read(`${jsonTopic}.dlq`, (r) => r.length >= 1);
    expect(jdlq).toHaveLength(1);
    expect(jdlq[0]!.headers[DLQ_HEADERS.code]).toBe('KAFKA_E_PAYLOAD');
    expect(jdlq[0]!.headers[DLQ_HEADERS.reason]).toContain('eventType');
  });

  it('commits an offset only after the record was handled: an on-complete route failing with 503 holds the offset until it succeeds', async () => {
    const sim = t.engine.simulators.gdEhr!.url;
    const id = '440106196001010014';
    await (await fetch(`${sim}/__sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 503, patientIdcard: id, count: 6 }) })).arrayBuffer();
    const text = decodeHl7(sample('01-adt-a04-registration-consent.hl7'), 'gb18030').text.replace('ADT^A04', 'ADT^A05').replace('HIS202503120001', 'KAFKA-SYNC-1').replace('440106199003152314', id);
    // Partition 0 explicitly, so the committed offset to watch is known.
    const before = (await tool.ends(hl7Topic))[0] ?? 0;
    await tool.produce(hl7Topic, [{ key: 'sync', value: encodeText(text, 'gb18030'), partition: 0 }]);
    // While the simulator answers 503 the record is retried and its offset stays uncommitted.
    const failedCalls = await until(async () => (await calls()).filter((c) => c.fields?.patientIdcard === id).length, (n) => n >= 3);
    expect(failedCalls).toBeGreaterThanOrEqual(3);
    expect((await tool.committed(group, hl7Topic))[0] ?? -1).toBeLessThanOrEqual(before);
    const ok = await until(() => authorized(id), (c) => c.some((x) => x.returnCode === '1'));
    expect(ok.some((x) => x.returnCode === '1')).toBe(true);
    const committed = await until(async () => (await tool.committed(group, hl7Topic))[0] ?? -1, (o) => o === before + 1);
    expect(committed).toBe(before + 1);
  });

  it('every partition ends fully committed, and logs carry no names or ID numbers', async () => {
    const ends = await tool.ends(hl7Topic);
    const committed = await until(() => tool.committed(group, hl7Topic), (c) => Object.entries(ends).every(([p, e]) => e === 0 || c[Number(p)] === e));
    for (const [p, e] of Object.entries(ends)) if (e > 0) expect(committed[Number(p)]).toBe(e);
    const logs = t.logs.join('\n');
    for (const s of ['440106199003152314', '张三丰', '欧阳娜', '440106198512120029', 'this is not HL7']) expect(logs).not.toContain(s);
    expect(logs).toContain('kafka: record dead-lettered');
  });
});
