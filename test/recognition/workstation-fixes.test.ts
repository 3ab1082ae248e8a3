/**
 * Recognition workstation fixes (issue 12, seed 004 §2.18-19, §3), through a
 * real engine, its HTTP server and the platform simulator:
 * - a decision after a precise query is recorded at the platform (the
 *   precise query is a lookup; the engine opens the prescription-save check
 *   the decision completes), from the HTTP check and from the ORM route in
 *   precise mode;
 * - the summary of a patient the platform does not know is a grey icon;
 * - a report coded F06.2 + G40.9 (psychotic disorder with epilepsy) is
 *   withheld, F06.2 alone is not.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import type { RecognitionSimulator } from '../../plugins/recognition/simulator.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';

const sample = (name: string) => readFileSync(path.resolve('samples', name));
const ID_ZSF = '440106199003152314'; // synthetic ID number of the sample patient P000100001 (张三丰)

interface SimCall { op: string; body: Record<string, unknown>; result: string }
interface SimState { checks: { checkId: string; orderNo: string; itemCode: string; decided?: string }[]; decisions: Record<string, unknown>[]; reports: Record<string, unknown> }

async function until<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function engineApi(t: () => TestEngine) {
  const sim = () => t().engine.simulators.recognition as RecognitionSimulator;
  return {
    sim,
    /** Platform calls, leaving out token requests and the 401 a reset token gets before its one retry. */
    calls: async () => ((await (await fetch(`${sim().url}/__sim/calls`)).json()) as { calls: SimCall[] }).calls.filter((c) => c.op !== 'token' && c.result !== 'unauthorized'),
    state: async () => (await (await fetch(`${sim().url}/__sim/state`)).json()) as SimState,
    reset: () => fetch(`${sim().url}/__sim/reset`, { method: 'POST' }),
    post: async (p: string, body: unknown) => {
      const r = await fetch(`${t().httpUrl}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, body: (await r.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
    },
    get: async (p: string) => {
      const r = await fetch(`${t().httpUrl}${p}`);
      return { status: r.status, body: (await r.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
    },
  };
}

describe('workstation endpoints on the default engine', () => {
  let t: TestEngine;
  const api = engineApi(() => t);
  beforeAll(async () => {
    t = await startEngine();
  });
  afterAll(() => t?.stop());

  it('precise check → mustDecide → decision recorded at the simulator on the prescription check the engine opened', async () => {
    await api.reset();
    const check = await api.post('/api/recognition/check', {
      orderNo: 'ORD-PRECISE-1', patientId: 'P000100001', idNumber: ID_ZSF, staffNo: 'D0012', mode: 'precise',
      items: [{ itemCode: 'LAB0001', itemName: '血常规' }, { itemCode: 'LAB0099', itemName: '凝血四项' }],
    });
    expect(check.status).toBe(200);
    expect(check.body.mustDecide).toBe(true);
    expect(check.body.duplicates.map((d: { itemCode: string }) => d.itemCode)).toEqual(['LAB0001']);
    // The precise query is a lookup: nothing is open at the platform yet.
    expect((await api.state()).checks).toEqual([]);

    const d = await api.post('/api/recognition/decision', { orderNo: 'ORD-PRECISE-1', itemCode: 'LAB0001', decision: 'recognize', reason: '外院结果可用', staffNo: 'D0012' });
    expect(d.status).toBe(200);
    expect(d.body).toMatchObject({ recorded: true, orderNo: 'ORD-PRECISE-1', itemCode: 'LAB0001', decision: 'recognize', priorReportId: 'EXT-LAB-0001' });

    const st = await api.state();
    expect(st.checks).toHaveLength(1);
    expect(st.checks[0]).toMatchObject({ orderNo: 'ORD-PRECISE-1', itemCode: 'LAB0001', decided: 'recognize' });
    expect(st.decisions).toHaveLength(1);
    expect(st.decisions[0]).toMatchObject({ orderNo: 'ORD-PRECISE-1', itemCode: 'LAB0001', decision: 'recognize', staffNo: 'D0012', checkId: st.checks[0]!.checkId, priorReportId: 'EXT-LAB-0001' });
    const ops = (await api.calls()).map((c) => `${c.op}:${c.result}`);
    expect(ops).toEqual(['precise:ok', 'precise:ok', 'prescriptionCheck:ok', 'decision:ok']);
    // The check for the decision carried only that item, for the same patient.
    const pc = (await api.calls()).find((c) => c.op === 'prescriptionCheck')!;
    expect(pc.body).toMatchObject({ orderNo: 'ORD-PRECISE-1', patientId: 'P000100001', idNumber: ID_ZSF, items: [{ itemCode: 'LAB0001', orderNo: 'ORD-PRECISE-1' }] });

    const again = await api.post('/api/recognition/decision', { orderNo: 'ORD-PRECISE-1', itemCode: 'LAB0001', decision: 'recognize', staffNo: 'D0012' });
    expect([again.status, again.body.code]).toEqual([409, 'RECOG_E_NO_PENDING_CHECK']);
    // The platform's own ID number never reaches the logs.
    expect(t.logs.join('\n')).not.toContain(ID_ZSF);
  });

  it('a precise duplicate that disappeared before the decision answers 409 RECOG_E_NO_LONGER_DUPLICATE and records nothing', async () => {
    await api.reset();
    const check = await api.post('/api/recognition/check', { orderNo: 'ORD-PRECISE-2', patientId: 'P000100001', idNumber: ID_ZSF, staffNo: 'D0012', mode: 'precise', items: [{ itemCode: 'LAB0007' }] });
    expect(check.body.mustDecide).toBe(true);
    // The other institution withdraws its result meanwhile.
    api.sim().state.foreign = api.sim().state.foreign.filter((f) => f.itemCode !== 'LAB0007');
    const d = await api.post('/api/recognition/decision', { orderNo: 'ORD-PRECISE-2', itemCode: 'LAB0007', decision: 'not-recognize', staffNo: 'D0012' });
    expect([d.status, d.body.code]).toEqual([409, 'RECOG_E_NO_LONGER_DUPLICATE']);
    expect((await api.state()).decisions).toEqual([]);
    const again = await api.post('/api/recognition/decision', { orderNo: 'ORD-PRECISE-2', itemCode: 'LAB0007', decision: 'not-recognize', staffNo: 'D0012' });
    expect(again.body.code).toBe('RECOG_E_NO_PENDING_CHECK');
  });

  it('a prescription check → decision still goes straight to the decision (no extra call)', async () => {
    await api.reset();
    const check = await api.post('/api/recognition/check', { orderNo: 'ORD-PC-1', patientId: 'P000100001', idNumber: ID_ZSF, staffNo: 'D0012', items: [{ itemCode: 'LAB0001' }] });
    expect(check.body.mustDecide).toBe(true);
    const d = await api.post('/api/recognition/decision', { orderNo: 'ORD-PC-1', itemCode: 'LAB0001', decision: 'not-recognize', staffNo: 'D0012' });
    expect(d.status).toBe(200);
    expect((await api.calls()).map((c) => c.op)).toEqual(['prescriptionCheck', 'decision']);
  });

  it('summary: a patient the platform does not know, or one without foreign results, is a grey icon with 200', async () => {
    await api.reset();
    const unknown = await api.get('/api/recognition/summary?patientId=P999999999');
    expect(unknown.status).toBe(200);
    expect(unknown.body).toEqual({ count: 0, icon: 'grey', listUrl: '', items: [], patientKnown: false });
    const noResults = await api.get('/api/recognition/summary?patientId=P000100005&idNumber=440106200001010011');
    expect(noResults.status).toBe(200);
    expect(noResults.body).toMatchObject({ count: 0, icon: 'grey', listUrl: '', items: [] });
    const green = await api.get(`/api/recognition/summary?patientId=P000100001&idNumber=${ID_ZSF}`);
    expect(green.body).toMatchObject({ count: 2, icon: 'green' });
    const rows = t.engine.store.queryAudit({}).filter((r) => r.operation === 'workstation-summary');
    expect(rows.slice(-3).map((r) => r.result)).toEqual(['ok', 'ok', 'ok']);
  });
});

describe('ORM route in precise mode, and sensitive combinations, over MLLP', () => {
  let t: TestEngine;
  let client: MllpClient;
  const api = engineApi(() => t);
  const routesDir = mkdtempSync(path.join(tmpdir(), 'hb-recog-precise-'));

  beforeAll(async () => {
    const route = readFileSync(path.resolve('routes/recognition-check.yaml'), 'utf8');
    expect(route).toMatch(/\n      mode: prescription\n/);
    writeFileSync(path.join(routesDir, 'recognition-check.yaml'), route.replace(/\n      mode: prescription\n/, '\n      mode: precise\n'));
    copyFileSync(path.resolve('routes/recognition-lab.yaml'), path.join(routesDir, 'recognition-lab.yaml'));
    t = await startEngine({ routesDir });
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 15_000 });
  });
  afterAll(async () => {
    await client?.close();
    await t?.stop();
    rmSync(routesDir, { recursive: true, force: true });
  });

  const send = async (raw: Buffer) => parseHl7(decodeHl7(await client.send(raw), 'gb18030').text);

  it('a new order checked with precise queries answers ZRC in the ACK, and the doctor\'s decision is recorded at the simulator', async () => {
    const ack = await send(sample('12-orm-o01-new-order-lab-exam.hl7'));
    expect(ack.get('MSA-1')).toBe('AA');
    const zrc = ack.segments('ZRC').map((s) => ({ item: s.get(1), y: s.get(3), orderNo: s.get(8) }));
    expect(zrc).toEqual([{ item: 'LAB0001', y: 'Y', orderNo: 'ORD20250312001' }, { item: 'RIS0101', y: 'N', orderNo: 'ORD20250312002' }]);
    expect((await api.calls()).map((c) => c.op)).toEqual(['precise', 'precise']);

    const d = await api.post('/api/recognition/decision', { orderNo: 'ORD20250312001', itemCode: 'LAB0001', decision: 'not-recognize', reason: '复查', staffNo: 'D0012' });
    expect(d.status).toBe(200);
    const st = await api.state();
    expect(st.decisions).toHaveLength(1);
    expect(st.decisions[0]).toMatchObject({ orderNo: 'ORD20250312001', itemCode: 'LAB0001', decision: 'not-recognize', checkId: st.checks[0]!.checkId });
  });

  /** Sample 22 (a signed lab report) recoded: DG1 codes, a new control id and report id. */
  const recoded = (tag: string, codes: string[]): Buffer => {
    let s = sample('22-oru-r01-lab-sensitive-tuberculosis.hl7').toString('latin1');
    const dg1 = codes.map((c, i) => `DG1|${i + 1}||${c}^^ICD10||20250314101500|W`).join('\r');
    s = s.replace(/DG1\|[^\r]*/, dg1).replace('LIS202503140022', `LIS-${tag}`).replaceAll('LIS20250314000201', `RPT-${tag}`);
    return Buffer.from(s, 'latin1');
  };

  it('withholds a report coded F06.2 + G40.9 (psychotic disorder with epilepsy); F06.2 alone and G40.9 alone are sent', async () => {
    const reports = async () => Object.keys((await api.state()).reports).join(' ');
    for (const [tag, codes] of [['COMBO', ['F06.2', 'G40.9']], ['F06', ['F06.2']], ['G40', ['G40.9']], ['ID-PSY', ['F71', 'F06.0']]] as const) {
      expect((await send(recoded(tag, [...codes]))).get('MSA-1')).toBe('AA');
    }
    // Same patient, one ordering key: once the later reports arrive, the earlier ones were handled.
    const seen = await until(reports, (r) => r.includes('RPT-F06') && r.includes('RPT-G40'));
    expect(seen).toContain('RPT-F06');
    expect(seen).toContain('RPT-G40');
    expect(seen).not.toContain('RPT-COMBO');
    expect(seen).not.toContain('RPT-ID-PSY');
    const withheld = t.engine.store.queryAudit({}).filter((r) => r.plugin === 'sensitive-guard');
    expect(withheld).toHaveLength(2);
    for (const w of withheld) {
      expect(w.result).toBe('skipped');
      expect(w.detail).toBe('withheld: sensitive (2 codes)');
    }
    // The codes stay out of logs and audit text.
    expect(t.logs.filter((l) => l.includes('sensitive')).join('\n')).not.toMatch(/F06\.2|G40\.9/);
  });
});
