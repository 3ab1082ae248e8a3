import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isHisbridgeError } from '../../core/errors.js';
import check from '../../plugins/recognition-check/index.js';
import { callCtx, MemoryState, sampleInput, startHarness, type Harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => h.close());

describe('recognition-check (ORM/OML duplicate-order check)', () => {
  it('ORM^O01 NW: one ZRC per item, a duplicated lab item (Y) and a non-duplicated exam item (N)', async () => {
    const st = new MemoryState();
    const p = await h.instance(check, {}, st);
    const r = await p.process(sampleInput('12'), callCtx());
    expect(r.outcome).toBe('ok');
    const [lab, exam] = r.reply!.segments!;
    expect(lab).toEqual(['ZRC', 'LAB0001', '血常规', 'Y', 'EXT-LAB-0001', '示例市中心医院', expect.stringMatching(/^\d{8}$/), `${h.sim.url}/view/report/EXT-LAB-0001`, 'ORD20250312001']);
    expect(exam).toEqual(['ZRC', 'RIS0101', '胸部CT平扫', 'N', '', '', '', '', 'ORD20250312002']);
    expect(r.output).toMatchObject({ mustDecide: true, duplicates: 1, orderNo: 'GRP20250312001' });
    // One prescription-save call for the order, carrying both items and the patient's ID number.
    const calls = h.sim.calls.filter((c) => c.op === 'prescriptionCheck');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body).toMatchObject({ orderNo: 'GRP20250312001', patientId: 'P000100001', idNumber: '440106199003152314', staffNo: 'D0012', items: [{ itemCode: 'LAB0001', orderNo: 'ORD20250312001' }, { itemCode: 'RIS0101', orderNo: 'ORD20250312002' }] });
    // The duplicate is now waiting for the doctor's decision.
    expect([...st.map.keys()]).toEqual(['pending:ORD20250312001\u0000LAB0001']);
    expect(h.audits.at(-1)).toMatchObject({ plugin: 'recognition-check', operation: 'prescriptionCheck', result: 'ok', patientId: 'P000100001', staffNo: 'D0012' });
  });

  it('OML^O21 NW for another patient finds that patient\'s own duplicate', async () => {
    const p = await h.instance(check, {});
    const r = await p.process(sampleInput('14'), callCtx());
    expect(r.reply!.segments).toEqual([['ZRC', 'LAB0003', '肝功能', 'Y', 'EXT-LAB-0003', '示例市中心医院', expect.any(String), expect.stringContaining('EXT-LAB-0003'), 'ORD20250312004']]);
  });

  it('precise mode asks once per item and gives the same answers', async () => {
    const p = await h.instance(check, { mode: 'precise' });
    const r = await p.process(sampleInput('12'), callCtx());
    expect(r.reply!.segments!.map((s) => s[3])).toEqual(['Y', 'N']);
    expect(h.sim.calls.filter((c) => c.op === 'precise').map((c) => c.body.itemCode)).toEqual(['LAB0001', 'RIS0101']);
  });

  it('a cancel (ORC-1 = CA) has no new item: skipped, no platform call', async () => {
    const p = await h.instance(check, {});
    const r = await p.process(sampleInput('13'), callCtx());
    expect(r).toMatchObject({ outcome: 'skipped', detail: 'no new order items' });
    expect(h.sim.calls).toHaveLength(0);
  });

  it('reply: false leaves the ACK alone but still outputs the items', async () => {
    const p = await h.instance(check, { reply: false });
    const r = await p.process(sampleInput('12'), callCtx());
    expect(r.reply).toBeUndefined();
    expect((r.output!.items as unknown[]).length).toBe(2);
  });

  it('a platform outage fails the check retryably (the on-complete route answers AE)', async () => {
    const p = await h.instance(check, {});
    await h.simPost('/__sim/faults', { op: 'prescriptionCheck', status: 502 });
    const err = await p.process(sampleInput('12'), callCtx()).catch((e: unknown) => e);
    expect(isHisbridgeError(err) && [err.code, err.retryable]).toEqual(['HTTP_E_STATUS_RETRYABLE', true]);
  });
});
