import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../core/http/server.js';
import { silentLogger } from '../../core/log.js';
import upload from '../../plugins/recognition-upload/index.js';
import check from '../../plugins/recognition-check/index.js';
import extension from '../../plugins/recognition/index.js';
import { callCtx, sampleInput, startHarness, type Harness } from './harness.js';

let h: Harness;
let api: HttpServer;

beforeEach(async () => {
  h = await startHarness();
  const endpoints = await extension.endpoints!(h.ctx());
  api = await startHttpServer({ host: '127.0.0.1', port: 0, log: silentLogger(), endpoints });
  // The platform knows the sample patients once the HIS has uploaded them.
  const p = await h.instance(upload, { kind: 'patient' });
  for (const s of ['07', '09']) await p.process(sampleInput(s), callCtx());
});
afterEach(async () => {
  await api.close();
  await h.close();
});

async function get(path: string): Promise<{ status: number; body: any; headers: Headers; bytes: Buffer }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await fetch(api.url + path);
  const bytes = Buffer.from(await r.arrayBuffer());
  const json = r.headers.get('content-type')?.includes('json') ? JSON.parse(bytes.toString('utf8')) : undefined;
  return { status: r.status, body: json, headers: r.headers, bytes };
}

async function post(path: string, body: unknown): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await fetch(api.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

const order = { orderNo: 'ORD-WS-1', patientId: 'P000100001', staffNo: 'D0012', items: [{ itemCode: 'LAB0001', itemName: '血常规' }, { itemCode: 'LAB0099', itemName: '凝血四项' }] };

describe('workstation endpoints', () => {
  it('summary: green with the count and a list URL when there are recognizable results', async () => {
    const r = await get('/api/recognition/summary?patientId=P000100001');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ count: 2, icon: 'green', listUrl: expect.stringContaining(h.sim.url) });
    expect(r.body.items.map((i: { itemCode: string }) => i.itemCode)).toEqual(['LAB0001', 'LAB0007']);
    expect(h.audits.at(-1)).toMatchObject({ plugin: 'recognition', operation: 'workstation-summary', result: 'ok', patientId: 'P000100001' });
  });

  it('summary: grey with count 0 when nothing is recognizable', async () => {
    const r = await get('/api/recognition/summary?patientId=P000100005');
    expect(r.body).toEqual({ count: 0, icon: 'grey', listUrl: '', items: [] });
  });

  it('summary: unknown patient → 200 grey, count 0 (issue 12); missing patientId → 400', async () => {
    const r = await get('/api/recognition/summary?patientId=P999999999');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ count: 0, icon: 'grey', listUrl: '', items: [], patientKnown: false });
    const m = await get('/api/recognition/summary');
    expect([m.status, m.body.code]).toEqual([400, 'RECOG_E_BAD_REQUEST']);
    expect(m.body.message).toContain('patientId');
    expect(h.audits.at(-1)).toMatchObject({ operation: 'workstation-summary', result: 'HTTP 400', detail: 'RECOG_E_BAD_REQUEST' });
  });

  it('check → duplicates and mustDecide; decision → recorded and forwarded; a second decision → 409', async () => {
    const c = await post('/api/recognition/check', order);
    expect(c.status).toBe(200);
    expect(c.body.mustDecide).toBe(true);
    expect(c.body.duplicates).toEqual([expect.objectContaining({ itemCode: 'LAB0001', recognizable: true, priorReportId: 'EXT-LAB-0001', institution: '示例市中心医院' })]);
    expect(c.body.items[1]).toMatchObject({ itemCode: 'LAB0099', recognizable: false });
    const d = await post('/api/recognition/decision', { orderNo: 'ORD-WS-1', itemCode: 'LAB0001', decision: 'recognize', reason: '一周内已检', staffNo: 'D0012' });
    expect(d).toMatchObject({ status: 200, body: { recorded: true, priorReportId: 'EXT-LAB-0001' } });
    const s = await h.simGet<{ decisions: Record<string, unknown>[] }>('/__sim/state');
    expect(s.decisions).toEqual([expect.objectContaining({ orderNo: 'ORD-WS-1', itemCode: 'LAB0001', decision: 'recognize', reason: '一周内已检', staffNo: 'D0012', priorReportId: 'EXT-LAB-0001' })]);
    expect(h.audits.some((a) => a.operation === 'workstation-decision' && a.result === 'ok' && a.staffNo === 'D0012' && a.patientId === 'P000100001')).toBe(true);
    const again = await post('/api/recognition/decision', { orderNo: 'ORD-WS-1', itemCode: 'LAB0001', decision: 'recognize', staffNo: 'D0012' });
    expect([again.status, again.body.code]).toEqual([409, 'RECOG_E_NO_PENDING_CHECK']);
  });

  it('a decision may follow a check made by the ORM route (shared pending checks)', async () => {
    const p = await h.instance(check, {});
    await p.process(sampleInput('12'), callCtx());
    const d = await post('/api/recognition/decision', { orderNo: 'ORD20250312001', itemCode: 'LAB0001', decision: 'not-recognize', reason: '病情变化', staffNo: 'D0012' });
    expect(d.status).toBe(200);
  });

  it('bad input: empty items, missing fields, decision without a pending check, bad decision value', async () => {
    const empty = await post('/api/recognition/check', { ...order, items: [] });
    expect([empty.status, empty.body.code]).toEqual([400, 'RECOG_E_NO_ITEMS']);
    const noPatient = await post('/api/recognition/check', { orderNo: 'X', items: order.items });
    expect([noPatient.status, noPatient.body.code]).toEqual([400, 'RECOG_E_BAD_REQUEST']);
    const noCode = await post('/api/recognition/check', { ...order, items: [{ itemName: 'x' }] });
    expect(noCode.body.message).toContain('items[0].itemCode');
    const unknown = await post('/api/recognition/check', { ...order, patientId: 'P999999999' });
    expect([unknown.status, unknown.body.code]).toEqual([404, 'RECOG_E_UNKNOWN_PATIENT']);
    const none = await post('/api/recognition/decision', { orderNo: 'NOPE', itemCode: 'LAB0001', decision: 'recognize', staffNo: 'D0012' });
    expect([none.status, none.body.code]).toEqual([409, 'RECOG_E_NO_PENDING_CHECK']);
    const badValue = await post('/api/recognition/decision', { orderNo: 'ORD-WS-1', itemCode: 'LAB0001', decision: 'maybe', staffNo: 'D0012' });
    expect([badValue.status, badValue.body.code]).toEqual([400, 'RECOG_E_BAD_REQUEST']);
    expect(h.sim.calls.filter((c) => c.op === 'decision')).toHaveLength(0);
  });

  it('report download: the recognized report as PDF bytes (or JSON), unknown → 404', async () => {
    const r = await get('/api/recognition/report/EXT-LAB-0001');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/pdf');
    expect(r.bytes.subarray(0, 5).toString()).toBe('%PDF-');
    const j = await get('/api/recognition/report/EXT-LAB-0001?format=json');
    expect(Buffer.from(j.body.content, 'base64').equals(r.bytes)).toBe(true);
    const u = await get('/api/recognition/report/NOPE-1');
    expect([u.status, u.body.code]).toEqual([404, 'RECOG_E_UNKNOWN_REPORT']);
  });

  it('a platform outage answers 503 with a catalogued code', async () => {
    await h.simPost('/__sim/faults', { op: 'list', status: 500 });
    const r = await get('/api/recognition/summary?patientId=P000100001');
    expect([r.status, r.body.code]).toEqual([503, 'HTTP_E_STATUS_RETRYABLE']);
  });
});
