/**
 * The `kafka:` site section through the real loader (schema, ${env:},
 * inline-secret check) and the JSON envelope → HL7 mapping.
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { decodeJsonValue, eventToHl7, parseEvent } from '../../core/kafka/envelope.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { builtinRegistry } from '../../plugins/index.js';
import { tempFiles } from '../helpers/routes.js';

const exts = builtinRegistry().extensions;
const load = (yaml: string, env: NodeJS.ProcessEnv = {}) => loadSiteConfig(path.join(tempFiles({ 'h.yaml': yaml }), 'h.yaml'), exts, {}, env);
const issues = (yaml: string, env: NodeJS.ProcessEnv = {}): string[] => {
  try {
    load(yaml, env);
  } catch (e) {
    if (e instanceof LoadError) return e.issues.map(String);
    throw e;
  }
  return [];
};

describe('kafka site config', () => {
  it('parses brokers from one ${env:} string, SASL with the password from the environment, and fills defaults', () => {
    const c = load('kafka:\n  brokers: ${env:KB}\n  sasl: { mechanism: scram-sha-512, username: hb, password: "${env:KP}" }\n  topics:\n    - { name: his.adt }\n    - { name: his.json, source: kafka-json, format: json, dlqTopic: dead }\n', { KB: 'k1:9092, k2:9092', KP: 's3cret' });
    expect(c.kafka!.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(c.kafka!.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'hb', password: 's3cret' });
    expect(c.kafka!.groupId).toBe('hisbridge');
    expect(c.kafka!.topics[0]).toMatchObject({ name: 'his.adt', source: 'kafka', format: 'hl7', charset: 'gb18030', dlqTopic: 'his.adt.dlq', noRoute: 'AA' });
    expect(c.kafka!.topics[1]).toMatchObject({ source: 'kafka-json', format: 'json', dlqTopic: 'dead' });
  });

  it('refuses an inline SASL password, an unknown format, and a source named like an MLLP listener, with file:line', () => {
    expect(issues('kafka:\n  brokers: [k:9092]\n  sasl: { mechanism: plain, username: u, password: inline }\n').join('\n')).toMatch(/h\.yaml:3:\d+.*password looks like a secret/);
    expect(issues('kafka:\n  brokers: [k:9092]\n  topics: [{ name: t, format: xml }]\n').join('\n')).toMatch(/h\.yaml:3/);
    expect(issues('kafka:\n  brokers: [k:9092]\n  topics: [{ name: t, source: mllp }]\n').join('\n')).toMatch(/also an MLLP listener/);
    expect(load('listeners: [{ name: mllp }]\n').kafka).toBeUndefined();
  });
});

describe('kafka event envelope', () => {
  const ev = { specVersion: '1', eventId: 'E1', eventType: 'ORU^R01', source: { system: 'LIS', facility: 'H1' }, occurredAt: '2025-03-12T09:30:15+08:00', patient: { id: 'P1', idNumber: '440106199003152314', name: '张三丰' }, order: { id: 'O1' }, report: { id: 'R1', status: 'F' }, body: { a: 'x|y^z~w\\v&u' } };

  it('builds an HL7 message from a JSON-bodied event with the ids in their usual fields and the body escaped in ZJB-1', () => {
    const msg = parseHl7(eventToHl7(ev as never));
    expect(msg.type).toBe('ORU^R01');
    expect(msg.controlId).toBe('E1');
    expect(msg.sendingApp).toBe('LIS');
    expect(msg.get('PID-3[5=PI].1')).toBe('P1');
    expect(msg.get('PID-3[5=NI].1')).toBe('440106199003152314');
    expect(msg.get('PID-5.1')).toBe('张三丰');
    expect(msg.get('ORC-2')).toBe('O1');
    expect(msg.get('OBR-3')).toBe('R1');
    expect(msg.get('OBR-25')).toBe('F');
    expect(JSON.parse(msg.get('ZJB-1'))).toEqual(ev.body);
  });

  it('encodes an embedded HL7 message in the charset its MSH-18 names', () => {
    const hl7 = 'MSH|^~\\&|HIS|H1|X|Y|20250101||ADT^A04|C1|P|2.5|||||CHN|GB 18030-2000\nPID|1||P1^^^H^PI||张^三\n';
    const d = decodeJsonValue(Buffer.from(JSON.stringify({ ...ev, body: undefined, hl7 })));
    if (d instanceof Error) throw d;
    expect(d.frame.includes(Buffer.from('张', 'utf8'))).toBe(false);
    expect(parseHl7(decodeHl7(d.frame, 'utf-8').text).get('PID-5.1')).toBe('张');
  });

  it('rejects envelopes with both or neither body, a bad event type, or non-JSON, naming the field', () => {
    const msg = (v: unknown) => (parseEvent(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v))) as Error).message;
    expect(msg({ ...ev, hl7: 'MSH|^~\\&|A' })).toMatch(/KAFKA|payload/i);
    expect(msg({ ...ev, body: undefined })).toMatch(/payload/);
    expect(msg({ ...ev, eventType: 'oops' })).toContain('eventType');
    expect(msg('{not json')).toContain('not JSON');
  });
});
