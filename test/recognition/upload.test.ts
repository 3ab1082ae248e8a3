import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isHisbridgeError } from '../../core/errors.js';
import upload from '../../plugins/recognition-upload/index.js';
import type { StoredReport } from '../../plugins/recognition/sim-state.js';
import { callCtx, inputFrom, MemoryState, sampleInput, sampleText, startHarness, type Harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => h.close());

type State = {
  patients: Record<string, Record<string, unknown>>;
  departments: Record<string, Record<string, unknown>>;
  staff: Record<string, Record<string, unknown>>;
  reports: Record<string, StoredReport>;
};
const state = () => h.simGet<State>('/__sim/state');
const pdfOf = (text: string) => /\^application\^pdf\^Base64\^([A-Za-z0-9+/=]+)/.exec(text)![1]!;

describe('recognition-upload: HIS data', () => {
  it('uploads a new patient (ADT^A28, GBK without MSH-18) field by field', async () => {
    const p = await h.instance(upload, { kind: 'patient' });
    const r = await p.process(sampleInput('06'), callCtx());
    expect(r.outcome).toBe('ok');
    const s = await state();
    expect(s.patients.P000100003).toEqual({
      patientId: 'P000100003', name: '王小明', idNumber: '440305197811021174', idType: '01', sex: 'M', birthDate: '19781102',
      phone: '13800000003', address: '广东省深圳市南山区示例大道3号', nation: '01', updatedAt: '20250312150102',
    });
    expect(h.audits.at(-1)).toMatchObject({ plugin: 'recognition-upload', operation: 'patient', result: 'ok', patientId: 'P000100003', orgCode: 'H4413020001' });
  });

  it('keeps a GBK name whose bytes contain ^ and | intact (ADT^A31 區億華)', async () => {
    const p = await h.instance(upload, { kind: 'patient' });
    await p.process(sampleInput('09'), callCtx());
    const s = await state();
    const [pat] = Object.values(s.patients);
    expect(pat!.name).toBe('區億華');
  });

  it('uploads each department of MFN^M05 with its action', async () => {
    const p = await h.instance(upload, { kind: 'department' });
    const r = await p.process(sampleInput('10'), callCtx());
    expect(r.output).toMatchObject({ actions: ['add', 'update', 'delete'], calls: 3 });
    const s = await state();
    expect(s.departments['0302']).toMatchObject({ action: 'add', deptCode: '0302', deptName: '呼吸内科门诊', deptType: '门诊', parentCode: '03', serviceType: '门诊', deleted: false });
    expect(s.departments['0510']).toMatchObject({ action: 'update', deptName: '心血管内科病区（原心内一区）', serviceType: '住院' });
    expect(s.departments['0399']).toMatchObject({ deleted: true });
  });

  it('uploads each staff member of MFN^M02 with its action', async () => {
    const p = await h.instance(upload, { kind: 'staff' });
    await p.process(sampleInput('11'), callCtx());
    const s = await state();
    expect(s.staff.D0025).toMatchObject({ action: 'add', staffNo: 'D0025', name: '陈静', idNumber: '440106198602140628', sex: 'F', staffType: '医生', title: '主治医师', deptCode: '0302', licenseNo: '110440000000025', active: true });
    expect(s.staff.D0012).toMatchObject({ action: 'update', title: '主任医师' });
    expect(s.staff.D0099).toMatchObject({ deleted: true });
  });
});

describe('recognition-upload: lab and exam reports', () => {
  it('uploads a signed lab report: every OBX field by field, then the PDF with identical bytes', async () => {
    const p = await h.instance(upload, { kind: 'lab' });
    const r = await p.process(sampleInput('15'), callCtx());
    expect(r).toMatchObject({ outcome: 'ok', output: { operation: 'upload', reportId: 'LIS20250312000123', pdf: true, calls: 2 } });
    const rep = (await state()).reports['lab:LIS20250312000123']!;
    expect(rep.status).toBe('active');
    const d = rep.data as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(d).toMatchObject({
      orgCode: 'H4413020001', reportId: 'LIS20250312000123', status: 'F', orderNo: 'ORD20250312001', visitNo: 'V20250312001',
      patient: { patientId: 'P000100001', name: '张三丰', idNumber: '440106199003152314', idType: '01', sex: 'M', birthDate: '19900315' },
      item: { code: 'LAB0001', name: '血常规', system: 'HOSP_LAB' }, specimen: '全血', deptCode: '0301', deptName: '内科门诊',
      requestDoctor: { id: 'D0012', name: '李建国' }, reporter: { id: 'T0101', name: '赵敏' }, reviewer: { id: 'T0102', name: '钱磊' },
      requestTime: '20250312100000', collectTime: '20250312101500', reportTime: '20250312113000',
    });
    expect(d.results).toHaveLength(15);
    expect(d.results[0]).toEqual({ seq: 1, code: 'WBC', name: '白细胞计数', valueType: 'NM', value: '11.2', units: '10*9/L', range: '3.5-9.5', abnormalFlag: 'H', status: 'F', observedAt: '20250312112000' });
    expect(d.results[9]).toMatchObject({ code: 'HGB', value: '128', units: 'g/L', range: '130-175', abnormalFlag: 'L' });
    expect(d.results[14]).toMatchObject({ code: 'PLT', value: '356', abnormalFlag: 'H' });
    const sent = Buffer.from(pdfOf(sampleText('15')), 'base64');
    expect(Buffer.from(rep.pdf!, 'base64').equals(sent)).toBe(true);
    expect(sent.subarray(0, 5).toString()).toBe('%PDF-');
  });

  it('revokes after upload (OBR-25 = X) with the NTE reason', async () => {
    const st = new MemoryState();
    const p = await h.instance(upload, { kind: 'lab' }, st);
    await p.process(sampleInput('15'), callCtx());
    const r = await p.process(sampleInput('17'), callCtx());
    expect(r.output).toMatchObject({ operation: 'revoke' });
    const rep = (await state()).reports['lab:LIS20250312000123']!;
    expect(rep.status).toBe('revoked');
    expect(rep.revokeReason).toBe('标本溶血，报告作废，请重新采样');
  });

  it('a correction (OBR-25 = C) revokes then uploads the new version and its new PDF', async () => {
    const p = await h.instance(upload, { kind: 'lab' });
    await p.process(sampleInput('15'), callCtx());
    const before = h.sim.calls.length;
    const r = await p.process(sampleInput('16'), callCtx());
    expect(r.output).toMatchObject({ operation: 'correct', status: 'C', calls: 3 });
    expect(h.sim.calls.slice(before).map((c) => c.op)).toEqual(['labRevoke', 'labReport', 'labPdf']);
    const rep = (await state()).reports['lab:LIS20250312000123']!;
    expect(rep).toMatchObject({ status: 'active', versions: 2 });
    const d = rep.data as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(d.status).toBe('C');
    expect(d.results[9]).toMatchObject({ code: 'HGB', value: '131', status: 'C' });
    expect(Buffer.from(rep.pdf!, 'base64').equals(Buffer.from(pdfOf(sampleText('16')), 'base64'))).toBe(true);
  });

  it('with correction: replace, the corrected report is uploaded over the old one without a revoke', async () => {
    await h.close();
    h = await startHarness({ correction: 'replace' });
    const p = await h.instance(upload, { kind: 'lab' });
    await p.process(sampleInput('15'), callCtx());
    const before = h.sim.calls.length;
    await p.process(sampleInput('16'), callCtx());
    expect(h.sim.calls.slice(before).map((c) => c.op)).toEqual(['labReport', 'labPdf']);
    expect((await state()).reports['lab:LIS20250312000123']).toMatchObject({ status: 'active', versions: 2 });
  });

  it('a revoke arriving before its upload is held back (retryable) and never applied first', async () => {
    const p = await h.instance(upload, { kind: 'lab' });
    const err = await p.process(sampleInput('17'), callCtx()).catch((e: unknown) => e);
    expect(isHisbridgeError(err) && err.code).toBe('RECOG_E_REVOKE_BEFORE_UPLOAD');
    expect(isHisbridgeError(err) && err.retryable).toBe(true);
    expect((await state()).reports['lab:LIS20250312000123']).toBeUndefined();
    await p.process(sampleInput('15'), callCtx());
    const retried = await p.process(sampleInput('17'), callCtx({ attempt: 2 }));
    expect(retried.outcome).toBe('ok');
    expect((await state()).reports['lab:LIS20250312000123']!.status).toBe('revoked');
  });

  it('an upload older than an applied revoke is skipped as superseded', async () => {
    const p = await h.instance(upload, { kind: 'lab' });
    await p.process(sampleInput('15'), callCtx());
    await p.process(sampleInput('17'), callCtx());
    const late = await p.process(sampleInput('16'), callCtx());
    expect(late).toMatchObject({ outcome: 'skipped', output: { superseded: true } });
    expect((await state()).reports['lab:LIS20250312000123']!.status).toBe('revoked');
  });

  it('uploads an exam report: findings and the unescaped impression, PDF; then corrects and revokes it', async () => {
    const p = await h.instance(upload, { kind: 'exam' });
    await p.process(sampleInput('18'), callCtx());
    let rep = (await state()).reports['exam:RIS20250312000456']!;
    const d = rep.data as Record<string, string>;
    expect(d).toMatchObject({ modality: 'CT', status: 'F', item: { code: 'RIS0101', name: '胸部CT平扫', system: 'HOSP_RIS' }, reviewer: { id: 'R0202', name: '吴芳' }, reporter: { id: 'R0201', name: '孙伟' } });
    expect(d.findings).toMatch(/^胸廓对称，气管居中。/);
    expect(d.impression).toContain('层厚1.25mm|螺距0.984|窗宽^窗位 1500^-600');
    expect(d.impression).toContain('纤维灶 & 钙化灶');
    expect(d.impression).toContain('D:\\PACS\\2025\\CT0312');
    expect(d.impression).toContain('3个月~6个月');
    expect(d.impression.split('\n')).toHaveLength(5);
    expect(Buffer.from(rep.pdf!, 'base64').equals(Buffer.from(pdfOf(sampleText('18')), 'base64'))).toBe(true);
    await p.process(sampleInput('19'), callCtx());
    rep = (await state()).reports['exam:RIS20250312000456']!;
    expect(rep.versions).toBe(2);
    expect((rep.data as Record<string, string>).impression).toContain('建议6个月复查');
    await p.process(sampleInput('20'), callCtx());
    expect((await state()).reports['exam:RIS20250312000456']!.status).toBe('revoked');
  });

  it('uploads an exam report document from MDM^T02 (TXA) with its PDF', async () => {
    const p = await h.instance(upload, { kind: 'exam' });
    const r = await p.process(sampleInput('21'), callCtx());
    expect(r.output).toMatchObject({ reportId: 'RIS20250314000789', pdf: true });
    const rep = (await state()).reports['exam:RIS20250314000789']!;
    expect(rep.data).toMatchObject({
      orderNo: 'ORD20250314005', item: { code: 'MR', name: '影像诊断报告' }, patient: { patientId: 'P000100003', name: '王小明' },
      findings: '脑实质内未见异常信号，脑室系统未见扩张，中线结构居中。', impression: '头颅MR平扫未见明显异常。', reporter: { id: 'R0201', name: '孙伟' }, reviewer: { id: 'R0202', name: '吴芳' },
    });
    expect(rep.pdf).toBe(pdfOf(sampleText('21')));
  });

  it('platform outages are retryable, business refusals and bad PDFs are not', async () => {
    const p = await h.instance(upload, { kind: 'lab' });
    await h.simPost('/__sim/faults', { op: 'labReport', status: 503, retryAfter: '2' });
    const e1 = await p.process(sampleInput('15'), callCtx()).catch((e: unknown) => e);
    expect(isHisbridgeError(e1) && [e1.code, e1.retryable, e1.retryAfterMs]).toEqual(['HTTP_E_STATUS_RETRYABLE', true, 2000]);
    await h.simPost('/__sim/faults', { op: 'labReport', businessCode: '3001', message: 'item not in catalogue' });
    const e2 = await p.process(sampleInput('15'), callCtx()).catch((e: unknown) => e);
    expect(isHisbridgeError(e2) && [e2.code, e2.retryable]).toEqual(['RECOG_E_BUSINESS', false]);
    expect((e2 as Error).message).toContain('3001');
    const broken = sampleText('15').replace('^Base64^JVBERi0', '^Base64^QUJDRE');
    const e3 = await p.process(inputFrom(broken), callCtx()).catch((e: unknown) => e);
    expect(isHisbridgeError(e3) && e3.code).toBe('RECOG_E_BAD_PDF');
    expect(h.audits.filter((a) => a.result === 'failed').map((a) => a.detail)).toEqual(['HTTP_E_STATUS_RETRYABLE', 'RECOG_E_BUSINESS 3001']);
  });

  it('the simulator validates payloads against the JSON Schemas', async () => {
    await fetch(`${h.sim.url}/__sim/reset`, { method: 'POST' });
    const tok = (await (await fetch(`${h.sim.url}/api/auth/token`, { method: 'POST', body: JSON.stringify({ username: 'demo-hospital', password: 'demo-password-not-a-secret' }) })).json()) as { data: { token: string } };
    const res = await fetch(`${h.sim.url}/api/lab/report`, { method: 'POST', headers: { authorization: `Bearer ${tok.data.token}` }, body: JSON.stringify({ orgCode: 'X', reportId: 'R1', status: 'Z' }) });
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe('1001');
    expect(body.message).toMatch(/status|patient|item|results/);
  });
});
