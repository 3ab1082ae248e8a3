/**
 * The READ stage for JSON events (core/engine/read-json.ts): good events give
 * the duplicate-check identity, a canonical content digest and the StepInput;
 * every kind of bad input is refused with ENGINE_E_JSON, never a crash, and
 * the reason names no value from the event.
 */
import { describe, expect, it } from 'vitest';
import { performance } from 'node:perf_hooks';
import { readJson } from '../../core/engine/read-json.js';
import { jsonContentDigest } from '../../core/store/identity.js';
import type { InboundMessage } from '../../core/sdk.js';

const envelope = {
  specVersion: '1', eventId: 'E-1', eventType: 'ADT^A04', source: { system: 'HIS', facility: 'H1' }, occurredAt: '2025-03-12T09:30:15+08:00',
  patient: { id: 'P000123', idNumber: '440106199003152314', name: '欧阳娜' }, body: { consent: 'Y' },
};
const inbound = (bytes: Buffer | string, over: Partial<InboundMessage> = {}): InboundMessage => ({
  source: 'kafka-json', format: 'json', bytes: typeof bytes === 'string' ? Buffer.from(bytes) : bytes,
  event: 'ADT^A04', identity: { app: 'HIS', facility: 'H1', id: 'E-1' }, ...over,
});

async function refused(m: InboundMessage): Promise<{ code: string; reason: string }> {
  const r = await readJson(m);
  if (r.ok) throw new Error('expected a refusal');
  expect(r.outcome.status).toBe('rejected');
  expect(r.outcome.routes).toEqual([]);
  expect(r.outcome.reply.code).toBe('AE');
  // No value from the event in the reason.
  for (const v of ['440106199003152314', '欧阳娜', 'P000123']) expect(r.outcome.reason).not.toContain(v);
  return { code: r.outcome.code, reason: r.outcome.reason };
}

describe('readJson', () => {
  it('reads a good event: identity, type, patient id, StepInput with the parsed body and no HL7', async () => {
    const r = await readJson(inbound(JSON.stringify(envelope)));
    if (!r.ok) throw new Error(r.outcome.reason);
    expect(r).toMatchObject({ app: 'HIS', facility: 'H1', id: 'E-1', type: 'ADT^A04', charset: 'utf-8', patientId: 'P000123', enhanced: false });
    expect(r.header).toBeUndefined();
    expect(r.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(r.input).toEqual({ messageId: 'kafka-json:E-1', controlId: 'E-1', type: 'ADT^A04', source: 'kafka-json', body: envelope, vars: {} });
    expect(r.input.hl7).toBeUndefined();
  });

  it('takes a missing facility as empty, a UTF-8 byte order mark, and gives no patient id without a string patient.id', async () => {
    const r = await readJson(inbound(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]), { identity: { app: 'LIS', id: 'X' } }));
    if (!r.ok) throw new Error(r.outcome.reason);
    expect(r.facility).toBe('');
    expect(r.patientId).toBe('');
    expect(r.input.body).toEqual({ a: 1 });
    const n = await readJson(inbound('{"patient":{"id":12}}'));
    expect(n.ok && n.patientId).toBe('');
  });

  it('gives the same digest to a resend with other spacing and key order, another to other content', async () => {
    const a = await readJson(inbound(JSON.stringify(envelope)));
    const b = await readJson(inbound(JSON.stringify({ body: envelope.body, patient: { name: '欧阳娜', idNumber: '440106199003152314', id: 'P000123' }, occurredAt: envelope.occurredAt, source: envelope.source, eventType: 'ADT^A04', eventId: 'E-1', specVersion: '1' }, null, 2)));
    const c = await readJson(inbound(JSON.stringify({ ...envelope, body: { consent: 'N' } })));
    if (!a.ok || !b.ok || !c.ok) throw new Error('expected three good events');
    expect(b.digest).toBe(a.digest);
    expect(c.digest).not.toBe(a.digest);
    // Arrays keep their order: it is content.
    expect(await jsonContentDigest({ l: [1, 2] })).not.toBe(await jsonContentDigest({ l: [2, 1] }));
    // A string and a number are not the same content.
    expect(await jsonContentDigest({ v: '1' })).not.toBe(await jsonContentDigest({ v: 1 }));
  });

  it('refuses invalid UTF-8 (a GBK body), naming no bytes', async () => {
    const gbk = Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xd5, 0xc5, 0xc8, 0xfd, 0x22, 0x7d]); // {"n":"张三"} in GBK
    expect(await refused(inbound(gbk))).toEqual({ code: 'ENGINE_E_JSON', reason: 'bad JSON event: the bytes are not valid UTF-8' });
  });

  it('refuses text that is not JSON, giving at most the position', async () => {
    const r = await refused(inbound('{"idNumber":"440106199003152314",'));
    expect(r.code).toBe('ENGINE_E_JSON');
    expect(r.reason).toMatch(/^bad JSON event: not JSON/);
    expect((await refused(inbound('{"patient": 欧阳娜}'))).reason).toMatch(/^bad JSON event: not JSON( \(position \d+\))?$/);
  });

  it('refuses a top level that is not an object', async () => {
    expect((await refused(inbound('[{"a":1}]'))).reason).toBe('bad JSON event: the top level must be an object, not an array');
    expect((await refused(inbound('"440106199003152314"'))).reason).toBe('bad JSON event: the top level must be an object, not a string');
    expect((await refused(inbound('null'))).reason).toBe('bad JSON event: the top level must be an object, not null');
    expect((await refused(inbound('12'))).reason).toBe('bad JSON event: the top level must be an object, not a number');
  });

  it('refuses nesting deeper than 64 levels, also a 1 MB deep nest, and accepts 64', async () => {
    const nest = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    expect((await readJson(inbound(nest(64)))).ok).toBe(true);
    expect((await refused(inbound(nest(65)))).reason).toBe('bad JSON event: nested deeper than 64 levels');
    const arrays = '{"a":' + '['.repeat(500_000) + ']'.repeat(500_000) + '}';
    expect((await refused(inbound(arrays))).reason).toBe('bad JSON event: nested deeper than 64 levels');
  });

  it('refuses a missing or malformed event type and identity', async () => {
    const good = JSON.stringify(envelope);
    expect((await refused(inbound(good, { event: undefined }))).reason).toMatch(/event type is missing/);
    expect((await refused(inbound(good, { event: 'ADT\u0000A04' }))).reason).toMatch(/event type holds a control character/);
    expect((await refused(inbound(good, { identity: undefined }))).reason).toMatch(/has no identity/);
    expect((await refused(inbound(good, { identity: { app: '', id: 'E-1' } }))).reason).toMatch(/identity\.app\) is missing/);
    expect((await refused(inbound(good, { identity: { app: 'HIS', id: '' } }))).reason).toMatch(/identity\.id\) is missing/);
    expect((await refused(inbound(good, { identity: { app: 'HIS', id: 'x'.repeat(200) } }))).reason).toMatch(/longer than 199/);
    expect((await refused(inbound(good, { identity: { app: 'HIS', id: 12 as never } }))).reason).toMatch(/must be text/);
    expect((await refused(inbound(''))).reason).toBe('bad JSON event: the event is empty');
  });

  it('reads a 5 MB event in time linear in its size, giving the event loop turns', async () => {
    const items = Array.from({ length: 48_000 }, (_, i) => ({ code: `C${i}`, name: `检验项目${i}`, value: i * 1.5, flags: ['N', 'H'], note: 'x'.repeat(20) }));
    const big = Buffer.from(JSON.stringify({ ...envelope, body: { items } }));
    const quarter = Buffer.from(JSON.stringify({ ...envelope, body: { items: items.slice(0, 12_000) } }));
    expect(big.length).toBeGreaterThan(5_000_000);
    let turns = 0;
    let stop = false;
    const tick = () => {
      turns++;
      if (!stop) setImmediate(tick);
    };
    setImmediate(tick);
    const t0 = performance.now();
    const r = await readJson(inbound(quarter));
    const tQuarter = performance.now() - t0;
    const t1 = performance.now();
    const r2 = await readJson(inbound(big));
    const tBig = performance.now() - t1;
    stop = true;
    expect(r.ok && r2.ok).toBe(true);
    // Other work got turns while it was read (decode slices, parse, digest slices).
    expect(turns).toBeGreaterThan(10);
    // Linear, with a wide margin for a noisy machine: four times the size, nowhere near sixteen times the time.
    expect(tBig).toBeLessThan(tQuarter * 8 + 500);
  }, 60_000);
});
