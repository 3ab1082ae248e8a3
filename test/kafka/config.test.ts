/**
 * The `kafka:` site section through the real loader (schema, ${env:},
 * inline-secret check) and the decoding of record values (JSON events, HL7).
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { decodeHl7Value, decodeJsonValue, parseEvent } from '../../core/kafka/envelope.js';
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

  it('hands a JSON-bodied event over as a JSON event: the record bytes unchanged, eventType as its type, source and eventId as its identity', () => {
    const value = Buffer.from(JSON.stringify(ev));
    const d = decodeJsonValue(value);
    if (d instanceof Error) throw d;
    expect(d.format).toBe('json');
    if (d.format !== 'json') return;
    expect(d.bytes.equals(value)).toBe(true);
    expect(d.event).toBe('ORU^R01');
    expect(d.identity).toEqual({ app: 'LIS', facility: 'H1', id: 'E1' });
    // No synthetic HL7: the bytes are the envelope, not an MSH.
    expect(d.bytes.subarray(0, 3).toString()).not.toBe('MSH');
    const noFacility = decodeJsonValue(Buffer.from(JSON.stringify({ ...ev, source: { system: 'LIS' } })));
    if (noFacility instanceof Error || noFacility.format !== 'json') throw new Error('expected a JSON event');
    expect(noFacility.identity).toEqual({ app: 'LIS', facility: '', id: 'E1' });
  });

  it('encodes an embedded HL7 message in the charset its MSH-18 names', () => {
    const hl7 = 'MSH|^~\\&|HIS|H1|X|Y|20250101||ADT^A04|C1|P|2.5|||||CHN|GB 18030-2000\nPID|1||P1^^^H^PI||张^三\n';
    const d = decodeJsonValue(Buffer.from(JSON.stringify({ ...ev, body: undefined, hl7 })));
    if (d instanceof Error) throw d;
    expect(d.format).toBe('hl7');
    if (d.format !== 'hl7') return;
    expect(d.defaultCharset).toBe('utf-8');
    expect(d.bytes.includes(Buffer.from('张', 'utf8'))).toBe(false);
    expect(parseHl7(decodeHl7(d.bytes, 'utf-8').text).get('PID-5.1')).toBe('张');
  });

  it('passes an HL7 topic value through as HL7 with the topic charset, LF made CR and an MLLP envelope stripped', () => {
    const d = decodeHl7Value(Buffer.from('\x0bMSH|^~\\&|HIS|H1\nPID|1\n\x1c\r'), 'gb18030');
    if (d instanceof Error) throw d;
    expect(d).toEqual({ format: 'hl7', bytes: Buffer.from('MSH|^~\\&|HIS|H1\rPID|1\r'), defaultCharset: 'gb18030' });
    expect((decodeHl7Value(Buffer.alloc(0), 'utf-8') as Error).message).toMatch(/empty record value/);
  });

  it('rejects envelopes with both or neither body, a bad event type, or non-JSON, naming the field', () => {
    const msg = (v: unknown) => (parseEvent(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v))) as Error).message;
    expect(msg({ ...ev, hl7: 'MSH|^~\\&|A' })).toMatch(/KAFKA|payload/i);
    expect(msg({ ...ev, body: undefined })).toMatch(/payload/);
    expect(msg({ ...ev, eventType: 'oops' })).toContain('eventType');
    expect(msg('{not json')).toContain('not JSON');
  });
});
