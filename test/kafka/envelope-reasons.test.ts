/**
 * A refused JSON envelope is dead-lettered with a reason an engineer can act
 * on. Found by the issue 13 acceptance probe: a top level that is not an
 * object, and an envelope with both `hl7` and `body`, were dead-lettered with
 * "(envelope) must NOT be valid" (the schema's oneOf speaking), and one with
 * neither with "must have required property 'hl7'" (as if body were not allowed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEvent } from '../../core/kafka/envelope.js';
import { DLQ_HEADERS } from '../../core/kafka/source.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { KafkaTool, startTestBroker, uniq, type TestBroker } from '../helpers/kafka.js';
import { tempFiles } from '../helpers/routes.js';

const HEAD = { specVersion: '1', eventId: 'E1', eventType: 'ADT^A04', source: { system: 'HIS', facility: 'H1' }, occurredAt: '2025-03-12T09:30:15Z' };
const reasonOf = (v: string) => {
  const r = parseEvent(Buffer.from(v));
  return 'code' in r ? (r as { message: string }).message : 'accepted';
};

describe('kafka envelope refusal reasons', () => {
  it('says what is wrong with the top level and with hl7/body, in words', () => {
    expect(reasonOf('[1,2,3]')).toBe('bad Kafka payload: the value must be a JSON object (the event envelope), not an array (schemas/kafka-event.schema.json)');
    expect(reasonOf('null')).toContain('must be a JSON object (the event envelope), not null');
    expect(reasonOf('"x"')).toContain('not a string');
    expect(reasonOf('42')).toContain('not a number');
    expect(reasonOf(JSON.stringify({ ...HEAD, hl7: 'MSH|^~\\&|', body: {} }))).toContain('the envelope carries both hl7 and body: it needs exactly one of them');
    expect(reasonOf(JSON.stringify(HEAD))).toContain('the envelope carries neither hl7 nor body: it needs exactly one of them');
    // The schema still speaks for everything else, naming the field.
    expect(reasonOf(JSON.stringify({ ...HEAD, eventId: undefined, body: {} }))).toContain("must have required property 'eventId'");
    expect(reasonOf(JSON.stringify({ ...HEAD, body: [] }))).toContain('body must be object');
    expect(reasonOf(JSON.stringify({ ...HEAD, body: { consent: 'Y' } }))).toBe('accepted');
  });

  describe('through a broker', () => {
    let broker: TestBroker;
    let tool: KafkaTool;
    let t: TestEngine;
    const topic = uniq('his-json-reasons');

    beforeAll(async () => {
      broker = await startTestBroker();
      tool = new KafkaTool(broker.brokers);
      const routes = tempFiles({ 'log.yaml': 'name: log-all\nsources: [kafka-json]\nmatch: { events: ["ADT^A04"] }\nsteps:\n  - log: { message: "event ${body.eventId}" }\n' });
      t = await startEngine({
        routesDir: routes,
        siteYaml: ['kafka:', `  brokers: [${broker.brokers.join(', ')}]`, `  groupId: ${uniq('g')}`, '  topics:', `    - { name: ${topic}, source: kafka-json, format: json }`].join('\n') + '\n',
      });
    }, 60_000);

    afterAll(async () => {
      await t?.stop();
      await tool?.close();
      await broker?.stop();
    });

    it('dead-letters each with its reason in the headers', async () => {
      await tool.produce(topic, [
        { key: 'a', value: '[1,2,3]', partition: 0 },
        { key: 'b', value: JSON.stringify({ ...HEAD, eventId: 'E2', hl7: 'MSH|^~\\&|', body: {} }), partition: 0 },
        { key: 'c', value: JSON.stringify({ ...HEAD, eventId: 'E3' }), partition: 0 },
      ]);
      const dlq = await tool.read(`${topic}.dlq`, (r) => r.length >= 3);
      const byKey = Object.fromEntries(dlq.map((r) => [r.key, r.headers[DLQ_HEADERS.reason]]));
      expect(dlq.every((r) => r.headers[DLQ_HEADERS.code] === 'KAFKA_E_PAYLOAD')).toBe(true);
      expect(byKey.a).toContain('the value must be a JSON object (the event envelope), not an array');
      expect(byKey.b).toContain('both hl7 and body');
      expect(byKey.c).toContain('neither hl7 nor body');
    }, 60_000);
  });
});
