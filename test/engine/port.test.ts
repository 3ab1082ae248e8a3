/**
 * The ingress port (issue 13): `engine.submit(InboundMessage)` resolves to a
 * structured outcome whose status a source acts on (accepted, duplicate,
 * rejected, failed), with a catalogue code and a PHI-free reason; the ACK is
 * rendered on demand from the outcome (one ACK builder). A real engine with
 * the shipped routes, its real store and the built-in simulators.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { hbError } from '../../core/errors.js';
import { ingest } from '../../core/engine/ingest.js';
import { renderAck } from '../../core/engine/ack.js';
import type { IngestOutcome } from '../../core/sdk.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { idNumber } from '../helpers/ids.js';


function registration(controlId: string, patient: number, type = 'ADT^A04^ADT_A01'): string {
  return [
    `MSH|^~\\&|HIS|H1|HISBRIDGE|GDPLAT|20250312093015||${type}|${controlId}|P|2.5|||||CHN|UNICODE UTF-8`,
    'EVN|A04|20250312093015',
    `PID|1||PT${patient}^^^HOSP^PI~${idNumber(patient)}^^^CHN^NI||测试^患者${patient}||19900101|M`,
    'PV1|1|O',
    'ZCN|Y|30',
    '',
  ].join('\r');
}

/** The shipped gd-ehr-viewer route (on-complete) matches on PV1-7; a staff name with "=" cannot go into the viewer URL. */
function viewerFailure(controlId: string, patient: number, enhanced: boolean): string {
  return registration(controlId, patient)
    .replace('|P|2.5|||||CHN|', enhanced ? '|P|2.5|||AL|NE|CHN|' : '|P|2.5|||||CHN|')
    .replace('PV1|1|O', 'PV1|1|O|||||D0012^李=^建国');
}

function order(controlId: string): string {
  return [
    `MSH|^~\\&|HIS|H1|HISBRIDGE|GDPLAT|20250312100005||ORM^O01^ORM_O01|${controlId}|P|2.4|||||CHN|UNICODE UTF-8`,
    `PID|1||PT900^^^HOSP^PI~${idNumber(900)}^^^CHN^NI||测试^患者||19900101|M`,
    'PV1|1|O|0301||||D0012^李^建国',
    'ORC|NW|ORDP1^HIS||GRP1^HIS|SC||||20250312100000|OP001^王^芳||D0012^李^建国',
    'OBR|1|ORDP1^HIS||LAB0001^血常规^HOSP_LAB|R|20250312100000',
    '',
  ].join('\r');
}

const ackOf = (t: TestEngine, o: IngestOutcome) => parseHl7(decodeHl7(t.engine.renderAck(o), 'utf-8').text);

describe('ingress port: outcome status', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine();
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('accepted: committed with AA, code OK, no reason; the ACK is rendered from the outcome on demand', async () => {
    const o = await t.engine.submit({ source: 'mllp', bytes: Buffer.from(registration('PORTOK01', 1)) });
    expect(o.status).toBe('accepted');
    expect(o.code).toBe('OK');
    expect(o.reason).toBe('');
    expect(o.reply.code).toBe('AA');
    expect(o.messageId).toBeGreaterThan(0);
    expect(o.controlId).toBe('PORTOK01');
    expect(o.type).toBe('ADT^A04');
    expect(o.routes.some((r) => r.outcome === 'queued')).toBe(true);
    // The public outcome carries no ACK bytes or text.
    expect(JSON.stringify(o)).not.toMatch(/MSH|MSA/);
    const a = ackOf(t, o);
    expect(a.get('MSA-1')).toBe('AA');
    expect(a.get('MSA-2')).toBe('PORTOK01');
  });

  it('duplicate: the same message again is answered as before and not dispatched again', async () => {
    const bytes = Buffer.from(registration('PORTDUP01', 2));
    const first = await t.engine.submit({ source: 'mllp', bytes });
    const again = await t.engine.submit({ source: 'mllp', bytes });
    expect(first.status).toBe('accepted');
    expect(again.status).toBe('duplicate');
    expect(again.code).toBe('DUPLICATE');
    expect(again.messageId).toBe(first.messageId);
    expect(again.reply.code).toBe('AA');
    expect(again.routes).toEqual([]);
  });

  it('rejected: bytes that are not HL7, with the parse code and an AE naming it', async () => {
    const o = await t.engine.submit({ source: 'mllp', bytes: Buffer.from('this is not HL7\r') });
    expect(o.status).toBe('rejected');
    expect(o.code).toMatch(/^HL7_E_/);
    expect(o.reason).not.toBe('');
    expect(o.type).toBeUndefined();
    expect(o.reply.code).toBe('AE');
    expect(o.reply.error?.hl7Code).toMatch(/^10[0-2]$/);
  });

  it('rejected: invalid bytes, with ERR-3 102 and ERR-2 naming segment, sequence and field', async () => {
    const text = registration('PORTBAD01', 3).replace('PV1|1|O', 'PID|2||X\rPV1|1|O');
    // The second PID's field 5 gets a byte that is never valid UTF-8.
    const bytes = Buffer.concat([Buffer.from(text.slice(0, text.indexOf('PID|2||X') + 8)), Buffer.from('||\xff', 'latin1'), Buffer.from(text.slice(text.indexOf('PID|2||X') + 8))]);
    const o = await t.engine.submit({ source: 'mllp', bytes });
    expect(o.status).toBe('rejected');
    expect(o.code).toBe('HL7_E_INVALID_BYTES');
    expect(o.reply.error).toMatchObject({ hl7Code: '102', location: 'PID^2^5' });
    const a = ackOf(t, o);
    expect(a.get('ERR-2')).toBe('PID^2^5');
    expect(a.get('ERR-3.1')).toBe('102');
    expect(a.get('MSA-2')).toBe('PORTBAD01');
  });

  it('rejected: no route under noRoute AR (AR, ENGINE_E_NO_ROUTE); accepted under the default AA', async () => {
    const bytes = Buffer.from(registration('PORTNR01', 4, 'ZZZ^Z01'));
    const ar = await t.engine.submit({ source: 'mllp', bytes, noRoute: 'AR' });
    expect(ar.status).toBe('rejected');
    expect(ar.code).toBe('ENGINE_E_NO_ROUTE');
    expect(ar.reply.code).toBe('AR');
    expect(ar.reply.error?.hl7Code).toBe('200');
    const aa = await t.engine.submit({ source: 'mllp', bytes: Buffer.from(registration('PORTNR02', 4, 'ZZZ^Z01')) });
    expect(aa.status).toBe('accepted');
    expect(aa.routes).toEqual([]);
  });

  it('rejected: a permanent on-complete failure in original mode (AE, the step\'s code, the failed route named)', async () => {
    const o = await t.engine.submit({ source: 'mllp', bytes: Buffer.from(viewerFailure('PORTVIEW01', 5, false)) });
    expect(o.status).toBe('rejected');
    expect(o.reply.code).toBe('AE');
    const failed = o.routes.find((r) => r.outcome === 'failed');
    expect(failed).toBeDefined();
    expect(o.code).toBe(failed!.errorCode);
    expect(o.reason).toBe(failed!.detail);
    expect(o.reason).not.toContain(idNumber(5));
  });

  it('accepted: the same failure in enhanced mode is committed with CA and an ERR', async () => {
    const o = await t.engine.submit({ source: 'mllp', bytes: Buffer.from(viewerFailure('PORTVIEW02', 6, true)) });
    expect(o.status).toBe('accepted');
    expect(o.reply.code).toBe('CA');
    expect(o.reply.error?.hl7Code).toBeTruthy();
    expect(o.code).not.toBe('OK');
  });

  it('failed: a retryable on-complete failure (the platform answers 500) is offered again; the resend is accepted', async () => {
    await fetch(`${t.engine.simulators.recognition!.url}/__sim/faults`, { method: 'POST', body: JSON.stringify({ op: 'prescriptionCheck', status: 500, count: 1 }) });
    const bytes = Buffer.from(order('PORTORD01'));
    const o = await t.engine.submit({ source: 'mllp', bytes });
    expect(o.status).toBe('failed');
    expect(o.reply.code).toBe('AE');
    expect(o.routes.some((r) => r.outcome === 'failed' && r.errorCode === o.code)).toBe(true);
    const again = await t.engine.submit({ source: 'mllp', bytes });
    expect(again.status).toBe('accepted');
  });

  it('failed: back-pressure under overload reject (ENGINE_E_BACKPRESSURE), nothing stored, CE in enhanced mode', async () => {
    const text = registration('PORTBP01', 7).replace('|P|2.5|||||CHN|', '|P|2.5|||AL|NE|CHN|');
    const r = await ingest({ source: 'mllp', bytes: Buffer.from(text) }, {
      routes: () => t.engine.routes,
      store: t.engine.store,
      log: t.engine.log,
      idempotencyWindowMs: 60_000,
      gate: () => hbError('ENGINE_E_BACKPRESSURE', { pending: 99 }),
      signal: new AbortController().signal,
    });
    expect(r.outcome.status).toBe('failed');
    expect(r.outcome.code).toBe('ENGINE_E_BACKPRESSURE');
    expect(r.outcome.reply.code).toBe('CE');
    expect(r.outcome.messageId).toBeUndefined();
    expect(r.queued).toBe(false);
    expect(t.engine.store.findDuplicate('HIS', 'H1', 'PORTBP01', 60_000)).toBeUndefined();
  });

  it('a JSON event is read as JSON, never turned into HL7: accepted, then a duplicate; no identity: rejected ENGINE_E_JSON', async () => {
    const bytes = Buffer.from(JSON.stringify({ patient: { id: 'P1' }, consent: 'Y' }));
    const o = await t.engine.submit({ source: 'mllp', format: 'json', bytes, event: 'patient.registered', identity: { app: 'APP', id: 'EV1' } });
    expect(o.status).toBe('accepted');
    expect(o.type).toBe('patient.registered');
    const stored = t.engine.store.getMessage(o.messageId!);
    expect(stored?.format).toBe('json');
    expect(stored?.raw?.equals(bytes)).toBe(true);
    const again = await t.engine.submit({ source: 'mllp', format: 'json', bytes, event: 'patient.registered', identity: { app: 'APP', id: 'EV1' } });
    expect(again.status).toBe('duplicate');
    expect(again.messageId).toBe(o.messageId);
    const bad = await t.engine.submit({ source: 'mllp', format: 'json', bytes, event: 'patient.registered' });
    expect(bad.status).toBe('rejected');
    expect(bad.code).toBe('ENGINE_E_JSON');
  });
});

describe('ingress port: submitBlock', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine();
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('a batch: one outcome per message and one batch ACK (BHS, an ACK each, BTS with the count)', async () => {
    const batch = ['BHS|^~\\&|HIS|H1|HISBRIDGE|GDPLAT|20250312093015||||BATCH01', registration('PORTB01', 10).trimEnd(), registration('PORTB02', 11).trimEnd(), 'BTS|2', ''].join('\r');
    const b = await t.engine.submitBlock(Buffer.from(batch), { source: 'mllp', defaultCharset: 'utf-8' });
    expect(b.outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted']);
    expect(b.units).toEqual([{ kind: 'batch', messages: 2 }]);
    expect(b.replies).toHaveLength(1);
    const text = b.replies[0]!.toString('utf8');
    expect(text.startsWith('BHS|')).toBe(true);
    expect(text.match(/\rMSA\|AA\|PORTB0[12]/g)).toHaveLength(2);
    expect(text).toMatch(/\rBTS\|2\r$/);
  });

  it('multiMessageBlocks reject: every message rejected with AR and none stored', async () => {
    const block = registration('PORTM01', 12) + registration('PORTM02', 13);
    const b = await t.engine.submitBlock(Buffer.from(block), { source: 'mllp', multiMessageBlocks: 'reject' });
    expect(b.outcomes.map((o) => [o.status, o.code, o.reply.code])).toEqual([
      ['rejected', 'HL7_E_MULTI_MESSAGE_BLOCK', 'AR'],
      ['rejected', 'HL7_E_MULTI_MESSAGE_BLOCK', 'AR'],
    ]);
    expect(b.replies.map((r) => parseHl7(r.toString('utf8')).get('MSA-2'))).toEqual(['PORTM01', 'PORTM02']);
    expect(t.engine.store.findDuplicate('HIS', 'H1', 'PORTM01', 60_000)).toBeUndefined();
  });

  it('before() skips a message (no outcome, no ACK) and after() sees each outcome in order before the next is submitted', async () => {
    const block = registration('PORTH01', 14) + registration('PORTH02', 15) + registration('PORTH03', 16);
    const seen: string[] = [];
    const b = await t.engine.submitBlock(Buffer.from(block), {
      source: 'mllp',
      before: (i) => i !== 0,
      after: async (i, o) => {
        // The next message is not submitted yet: it is not stored.
        if (i === 1) expect(t.engine.store.findDuplicate('HIS', 'H1', 'PORTH03', 60_000)).toBeUndefined();
        seen.push(`${i}:${o.controlId}:${o.status}`);
      },
    });
    expect(seen).toEqual(['1:PORTH02:accepted', '2:PORTH03:accepted']);
    expect(b.outcomes).toHaveLength(2);
    expect(b.replies).toHaveLength(2);
    expect(t.engine.store.findDuplicate('HIS', 'H1', 'PORTH01', 60_000)).toBeUndefined();
  });

  it('failed: shutting down refuses new work (ENGINE_E_SHUTTING_DOWN) without rejecting the promise', async () => {
    const stopping = t.engine.stop(2000);
    const o = await t.engine.submit({ source: 'mllp', bytes: Buffer.from(registration('PORTSD01', 17)) });
    await stopping;
    expect(o.status).toBe('failed');
    expect(o.code).toBe('ENGINE_E_SHUTTING_DOWN');
    expect(o.reply.code).toBe('AE');
  });
});

describe('ingress port: a charset declared by the transport', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine();
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('wins over MSH-18: GBK bytes under MSH-18 UNICODE UTF-8, declared gb18030, are read intact and the ACK says GB 18030-2000', async () => {
    const iconv = (await import('iconv-lite')).default;
    const bytes = iconv.encode(registration('PORTCS01', 41), 'gb18030');
    const plain = await t.engine.submit({ source: 'mllp', bytes });
    // Read by its MSH-18 the GBK name is invalid UTF-8: refused, as over MLLP.
    expect(plain.status).toBe('rejected');
    expect(plain.code).toBe('HL7_E_INVALID_BYTES');
    const declared = await t.engine.submit({ source: 'mllp', bytes: iconv.encode(registration('PORTCS02', 42), 'gb18030'), charset: 'gb18030' });
    expect(declared.status).toBe('accepted');
    const stored = t.engine.store.getMessage(declared.messageId!)!;
    expect(stored.charset).toBe('gb18030');
    expect(parseHl7(decodeHl7(stored.raw!, stored.charset, stored.charset).text).get('PID-5.1')).toBe('测试');
    const ack = renderAck(declared);
    const text = decodeHl7(ack, 'gb18030', 'gb18030').text;
    expect(parseHl7(text).get('MSH-18')).toBe('GB 18030-2000');
    expect(parseHl7(text).get('MSA-1')).toBe('AA');
    // Without a declaration the ACK echoes the request's MSH-18.
    const echo = parseHl7(renderAck(plain).toString('utf8'));
    expect(echo.get('MSH-18')).toBe('UNICODE UTF-8');
  });
});

describe('ingress port: the ACK header', () => {
  it('gives every ACK its own 20-character MSH-10 and the current time in MSH-7', () => {
    const outcome: IngestOutcome = { status: 'accepted', code: 'OK', reason: '', routes: [], controlId: 'C1', reply: { code: 'AA' } } as IngestOutcome;
    const before = new Date();
    const ids = new Set<string>();
    let stamp = '';
    for (let i = 0; i < 1000; i++) {
      const msh = renderAck(outcome).toString('utf8').split('\r')[0]!.split('|');
      expect(msh[9]).toMatch(/^[0-9a-f]{20}$/);
      ids.add(msh[9]!);
      stamp = msh[6]!;
    }
    expect(ids.size).toBe(1000);
    // YYYYMMDDHHMMSS+ZZZZ, within a few seconds of now (one timestamp text is shared per second).
    const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})[+-]\d{4}$/.exec(stamp);
    expect(m).not.toBeNull();
    const t = new Date(Number(m![1]), Number(m![2]) - 1, Number(m![3]), Number(m![4]), Number(m![5]), Number(m![6]));
    expect(Math.abs(t.getTime() - before.getTime())).toBeLessThan(5000);
  });
});
