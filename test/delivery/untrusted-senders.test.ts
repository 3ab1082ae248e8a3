/**
 * Issue 11, observed items 1, 10 and 11, through real MLLP sockets against a
 * real engine with the shipped routes and the built-in simulators:
 * - a reused control id with other content is a new message (AA, stored,
 *   routed, logged at warn with ENGINE_W_CONTROL_ID_REUSED, counted, marked);
 *   the same content (MSH-7 and segment terminators aside) is a duplicate;
 * - the idempotency key a remote receives depends on the message, the route
 *   and the step only, so two engines (two instances) send the same key and
 *   the simulator acts once;
 * - CE/CR only for messages that were not committed: an on-complete failure
 *   gets AE (original mode, and a resend is processed again) or CA with an
 *   ERR (enhanced mode, and a resend gets the same answer).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import path from 'node:path';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';
import { translator } from '../../core/ops/console/i18n.js';
import { messagesPage } from '../../core/ops/console/pages.js';
import { silentLogger } from '../../core/log.js';
import { startGdEhrSimulator, type GdEhrSimulator } from '../../plugins/gd-ehr/simulator.js';
import { GD_EHR_ENV, gdEhrSection } from '../helpers/gd-ehr-site.js';
import { idNumber } from '../helpers/ids.js';

interface GdCall { op: string; verified: boolean; returnCode?: string; replayed?: boolean; idempotencyKey?: string; fields?: Record<string, unknown> }
interface RecCall { op: string; result: string; body: Record<string, unknown> }

const gdCalls = async (t: TestEngine): Promise<GdCall[]> =>
  ((await (await fetch(`${t.engine.simulators.gdEhr!.url}/__sim/calls`)).json()) as { calls: GdCall[] }).calls.filter((c) => c.op === 'authorize');
const recCalls = async (t: TestEngine): Promise<RecCall[]> =>
  ((await (await fetch(`${t.engine.simulators.recognition!.url}/__sim/calls`)).json()) as { calls: RecCall[] }).calls;

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ack = (b: Buffer) => parseHl7(decodeHl7(b, 'utf-8').text);


function registration(controlId: string, patient: number, opts: { ts?: string; sep?: string } = {}): string {
  return [
    `MSH|^~\\&|HIS|H1|HISBRIDGE|GDPLAT|${opts.ts ?? '20250312093015'}||ADT^A04^ADT_A01|${controlId}|P|2.5|||||CHN|UNICODE UTF-8`,
    'EVN|A04|20250312093015',
    `PID|1||PT${patient}^^^HOSP^PI~${idNumber(patient)}^^^CHN^NI||测试^患者${patient}||19900101|M`,
    'PV1|1|O',
    'ZCN|Y|30',
    '',
  ].join(opts.sep ?? '\r');
}

function order(controlId: string, enhanced: boolean, orderNo = 'ORD1'): string {
  return [
    `MSH|^~\\&|HIS|H1|HISBRIDGE|GDPLAT|20250312100005||ORM^O01^ORM_O01|${controlId}|P|2.4|||${enhanced ? 'AL|NE' : '|'}|CHN|UNICODE UTF-8`,
    `PID|1||PT900^^^HOSP^PI~${idNumber(900)}^^^CHN^NI||测试^患者||19900101|M`,
    'PV1|1|O|0301||||D0012^李^建国',
    `ORC|NW|${orderNo}^HIS||GRP1^HIS|SC||||20250312100000|OP001^王^芳||D0012^李^建国`,
    `OBR|1|${orderNo}^HIS||LAB0001^血常规^HOSP_LAB|R|20250312100000`,
    '',
  ].join('\r');
}

function storedRows(t: TestEngine, controlId: string): { id: number; ack_code: string; status: string }[] {
  const db = new Database(path.join(t.dataDir, 'store', 'hisbridge.db'), { readonly: true });
  try {
    return db.prepare('SELECT id, ack_code, status FROM messages WHERE control_id = ? ORDER BY id').all(controlId) as { id: number; ack_code: string; status: string }[];
  } finally {
    db.close();
  }
}

describe('untrusted senders: duplicates, idempotency keys and ACK codes over MLLP', () => {
  let t: TestEngine;
  let client: MllpClient;
  beforeAll(async () => {
    t = await startEngine();
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 10_000 });
  });
  afterAll(async () => {
    client?.close();
    await t?.stop();
  });

  it('a reused control id with different content is a new message: AA, stored, routed, logged, counted and marked', async () => {
    const first = ack(await client.send(registration('REUSE0001', 1)));
    expect(first.get('MSA-1')).toBe('AA');
    await until(() => gdCalls(t), (c) => c.some((x) => x.fields?.patientIdcard === idNumber(1)));
    // A HIS whose counter reset after a restore: same MSH-3, MSH-4, MSH-10, another patient.
    const second = ack(await client.send(registration('REUSE0001', 2)));
    expect(second.get('MSA-1')).toBe('AA');
    expect(second.get('MSA-3')).not.toMatch(/duplicate/);
    const calls = await until(() => gdCalls(t), (c) => c.some((x) => x.fields?.patientIdcard === idNumber(2)));
    expect(calls.filter((x) => x.fields?.patientIdcard === idNumber(2) && x.returnCode === '1')).toHaveLength(1);
    expect(storedRows(t, 'REUSE0001')).toHaveLength(2);

    const warn = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.code === 'ENGINE_W_CONTROL_ID_REUSED');
    expect(warn).toHaveLength(1);
    expect(warn[0]!.level).toBe('warn');
    expect(JSON.stringify(warn)).not.toContain(idNumber(2));

    const metrics = await (await fetch(`${t.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/hisbridge_control_id_reused_total\{listener="mllp"\} 1\b/);

    // The console's message list marks the reused one (and only that one).
    const list = t.engine.store.searchMessages({ controlId: 'REUSE0001', limit: 10 });
    expect(list.map((m) => m.controlIdReused === true)).toEqual([true, false]);
    const page = String(messagesPage(translator('en'), { controlId: 'REUSE0001' }, list, 50));
    const rows = page.split('<tr>').filter((r) => r.includes('/console/messages/'));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain('class="reused"');
    expect(rows[1]).not.toContain('class="reused"');
  });

  it('the same content again (MSH-7 changed, LF instead of CR, trailing empty segments) is a duplicate: first answer, no second dispatch', async () => {
    const a = ack(await client.send(registration('DUP0001', 3)));
    expect(a.get('MSA-1')).toBe('AA');
    await until(() => gdCalls(t), (c) => c.some((x) => x.fields?.patientIdcard === idNumber(3)));
    const resend = registration('DUP0001', 3, { ts: '20250312101500', sep: '\n' }) + '\n\n';
    const b = ack(await client.send(resend));
    expect(b.get('MSA-1')).toBe('AA');
    expect(b.get('MSA-3')).toMatch(/duplicate/);
    await new Promise((r) => setTimeout(r, 400));
    expect((await gdCalls(t)).filter((x) => x.fields?.patientIdcard === idNumber(3))).toHaveLength(1);
    expect(storedRows(t, 'DUP0001')).toHaveLength(1);
  });

  it('two copies in the same store batch: same content stored once, different content stored twice', async () => {
    const c2 = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 10_000 });
    try {
      const same = await Promise.all([client.send(registration('RACE0001', 4)), c2.send(registration('RACE0001', 4, { ts: '20250312093016' }))]);
      expect(same.map((b) => ack(b).get('MSA-1'))).toEqual(['AA', 'AA']);
      expect(storedRows(t, 'RACE0001')).toHaveLength(1);
      const other = await Promise.all([client.send(registration('RACE0002', 5)), c2.send(registration('RACE0002', 6))]);
      expect(other.map((b) => ack(b).get('MSA-3')).filter((x) => /duplicate/.test(x))).toEqual([]);
      expect(storedRows(t, 'RACE0002')).toHaveLength(2);
      const calls = await until(() => gdCalls(t), (c) => [5, 6].every((p) => c.some((x) => x.fields?.patientIdcard === idNumber(p))));
      expect(calls.filter((x) => x.fields?.patientIdcard === idNumber(5) || x.fields?.patientIdcard === idNumber(6))).toHaveLength(2);
    } finally {
      c2.close();
    }
  });

  it('an enhanced-mode order whose on-complete check fails after the commit gets CA with an ERR, never CE; a resend gets the same answer', async () => {
    await fetch(`${t.engine.simulators.recognition!.url}/__sim/faults`, { method: 'POST', body: JSON.stringify({ op: 'prescriptionCheck', status: 500, count: 1 }) });
    const before = (await recCalls(t)).filter((c) => c.op === 'prescriptionCheck').length;
    const a = ack(await client.send(order('ORMCE0001', true)));
    expect(a.get('MSA-1')).toBe('CA');
    expect(a.get('ERR-3.1')).toBe('207');
    expect(a.get('ERR-4')).toBe('E');
    expect(a.get('ERR-8')).toMatch(/500|HTTP/);
    expect(storedRows(t, 'ORMCE0001')).toHaveLength(1);
    // The HIS lost the CA and sends it again: committed, so the same answer and no second check.
    const b = ack(await client.send(order('ORMCE0001', true)));
    expect(b.get('MSA-1')).toBe('CA');
    expect(b.get('ERR-8')).toBe(a.get('ERR-8'));
    expect((await recCalls(t)).filter((c) => c.op === 'prescriptionCheck').length - before).toBe(1);
    expect(storedRows(t, 'ORMCE0001')).toHaveLength(1);
  });

  it('enhanced mode: an on-complete failure next to an on-receive route still commits and delivers the on-receive work (CA means committed)', async () => {
    // PV1-7 makes the shipped gd-ehr-viewer route (on-complete) match; a staff name with "=" cannot go into the viewer URL.
    const msg = (enhanced: boolean, cid: string, patient: number) => registration(cid, patient)
      .replace('|P|2.5|||||CHN|', enhanced ? '|P|2.5|||AL|NE|CHN|' : '|P|2.5|||||CHN|')
      .replace('PV1|1|O', 'PV1|1|O|||||D0012^李=^建国');
    const a = ack(await client.send(msg(true, 'ENHVIEW01', 11)));
    expect(a.get('MSA-1')).toBe('CA');
    expect(a.get('ERR-3.1')).toBeTruthy();
    const calls = await until(() => gdCalls(t), (c) => c.some((x) => x.fields?.patientIdcard === idNumber(11)));
    expect(calls.filter((x) => x.fields?.patientIdcard === idNumber(11) && x.returnCode === '1')).toHaveLength(1);
    // Original mode: AE, nothing but the record is kept; the resend is processed again.
    const b = ack(await client.send(msg(false, 'ORGVIEW01', 12)));
    expect(b.get('MSA-1')).toBe('AE');
    await new Promise((r) => setTimeout(r, 400));
    expect((await gdCalls(t)).filter((x) => x.fields?.patientIdcard === idNumber(12))).toHaveLength(0);
    expect(storedRows(t, 'ORGVIEW01').map((r) => r.ack_code)).toEqual(['AE']);
  });

  it('an original-mode order whose on-complete check fails gets AE, and the resend is processed again (not swallowed as a duplicate)', async () => {
    await fetch(`${t.engine.simulators.recognition!.url}/__sim/faults`, { method: 'POST', body: JSON.stringify({ op: 'prescriptionCheck', status: 500, count: 1 }) });
    const before = (await recCalls(t)).filter((c) => c.op === 'prescriptionCheck').length;
    const a = ack(await client.send(order('ORMAE0001', false, 'ORD2')));
    expect(a.get('MSA-1')).toBe('AE');
    const b = ack(await client.send(order('ORMAE0001', false, 'ORD2')));
    expect(b.get('MSA-1')).toBe('AA');
    expect(b.get('MSA-3')).not.toMatch(/duplicate/);
    expect((await recCalls(t)).filter((c) => c.op === 'prescriptionCheck').length - before).toBe(2);
    expect(storedRows(t, 'ORMAE0001').map((r) => r.ack_code)).toEqual(['AE', 'AA']);
  });

  it('a commit that fails (nothing stored) still gets CE in enhanced mode', async () => {
    // Refused before the commit: back-pressure or shutdown are the not-committed cases; shutdown is the one we can force here.
    const { ingest } = await import('../../core/engine/ingest.js');
    const { HisbridgeError } = await import('../../core/errors.js');
    const r = await ingest({ source: 'mllp', bytes: Buffer.from(order('ORMREF0001', true)), defaultCharset: 'utf-8', noRoute: 'AA' }, {
      routes: () => { throw new Error('not reached'); },
      store: t.engine.store,
      log: t.engine.log,
      idempotencyWindowMs: 60_000,
      gate: () => new HisbridgeError('ENGINE_E_SHUTTING_DOWN', {}),
      signal: new AbortController().signal,
    });
    expect(r.outcome.reply.code).toBe('CE');
    expect(r.outcome.status).toBe('failed');
    expect(r.queued).toBe(false);
    expect(storedRows(t, 'ORMREF0001')).toHaveLength(0);
  });
});

describe('idempotency keys: the same message through two instances', () => {
  let sim: GdEhrSimulator;
  let a: TestEngine;
  let b: TestEngine;
  const env = GD_EHR_ENV;
  beforeAll(async () => {
    sim = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site: {}, log: silentLogger() });
    const routesDir = tempFiles({
      'auth.yaml': 'name: auth\nmatch: { events: [ADT^A04] }\nack: on-receive\nsteps:\n  - plugin: gd-ehr-authorize\n    config: { consent: false }\ndelivery: { retry: { max: 5, initial: 50ms, maxDelay: 200ms } }\n',
    });
    const siteYaml = [
      'simulators: false',
      ...gdEhrSection(sim.url),
    ].join('\n');
    a = await startEngine({ routesDir, siteYaml, env });
    b = await startEngine({ routesDir, siteYaml, env });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await sim?.close();
  });

  it('both instances send the same key (no PHI, no instance in it); the simulator acts once and answers the repeat from the first result', async () => {
    const msg = registration('IDEM0001', 7);
    for (const t of [a, b]) {
      const c = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 10_000 });
      expect(ack(await c.send(msg)).get('MSA-1')).toBe('AA');
      c.close();
    }
    const calls = await until(async () => sim.calls.filter((c) => c.op === 'authorize'), (c) => c.length >= 2);
    expect(calls).toHaveLength(2);
    const keys = calls.map((c) => (c as { idempotencyKey?: string }).idempotencyKey);
    expect(keys[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(calls.every((c) => c.httpStatus === 200 && c.returnCode === '1')).toBe(true);
    // Acted on once: the second answer came from the first result.
    expect(calls.filter((c) => !(c as { replayed?: boolean }).replayed)).toHaveLength(1);
    // Both stores show the delivery done.
    for (const t of [a, b]) {
      const m = await until(async () => t.engine.store.searchMessages({ controlId: 'IDEM0001', limit: 5 }), (l) => l[0]?.status === 'done');
      expect(m[0]!.status).toBe('done');
    }
  });

  it('a different message on the same route gets a different key', async () => {
    const c = await MllpClient.connect('127.0.0.1', a.port, { timeoutMs: 10_000 });
    expect(ack(await c.send(registration('IDEM0002', 8))).get('MSA-1')).toBe('AA');
    // The same control id with another patient: another message, another key.
    expect(ack(await c.send(registration('IDEM0002', 9))).get('MSA-1')).toBe('AA');
    c.close();
    const calls = await until(async () => sim.calls.filter((x) => x.op === 'authorize'), (x) => x.length >= 4);
    const keys = new Set(calls.map((x) => (x as { idempotencyKey?: string }).idempotencyKey));
    expect(keys.size).toBe(3);
    expect(calls.filter((x) => !(x as { replayed?: boolean }).replayed && x.returnCode === '1')).toHaveLength(3);
  });
});
