import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import guard from '../../plugins/sensitive-guard/index.js';
import upload from '../../plugins/recognition-upload/index.js';
import { compileSensitiveList, DEFAULT_SENSITIVE_CODES, DEFAULT_SENSITIVE_COMBINATIONS } from '../../plugins/recognition/sensitive.js';
import { parseHl7 } from '../../core/hl7/index.js';
import { Ajv } from 'ajv';
import type { StoredReport } from '../../plugins/recognition/sim-state.js';
import { callCtx, inputFrom, MemoryState, sampleInput, sampleText, startHarness, type Harness } from './harness.js';

describe('sensitive list', () => {
  const list = compileSensitiveList([...DEFAULT_SENSITIVE_CODES, 'LAB0402', 'HIV*']);
  it.each([
    ['F20', true], ['F29.9', true], ['F31.2', true], ['F32', false], ['A15.0', true], ['A19', true], ['A20', false],
    ['B20', true], ['B24', true], ['B25', false], ['Z21', true], ['Z210', true], ['Z22', false], ['f25.1', true],
    ['LAB0402', true], ['LAB0401', false], ['HIV-AB', true], ['', false],
  ])('%s → %s', (code, hit) => {
    expect(list.test(code)).toBe(hit);
  });
});

describe('sensitive combinations (issue 12: the two combined disorders of the national list of six)', () => {
  const list = compileSensitiveList(DEFAULT_SENSITIVE_CODES, DEFAULT_SENSITIVE_COMBINATIONS);
  const msg = (...codes: string[]) => parseHl7(['MSH|^~\\&|LIS|H1|HB|H2|20250101||ORU^R01|C1|P|2.5', 'PID|1||P1^^^^PI', ...codes.map((c, i) => `DG1|${i + 1}||${c}^^ICD10`), 'OBR|1|O1|R1|LAB0001^x'].join('\r'));
  it.each([
    [['F06.2', 'G40.9'], ['F06.2', 'G40.9']],
    [['F06.2'], []],
    [['G40.9'], []],
    [['F06.8', 'G40.0'], ['F06.8', 'G40.0']],
    [['F062', 'G409'], ['F062', 'G409']],
    [['F71', 'F06.0'], ['F71', 'F06.0']],
    [['F70.1', 'F32.3'], ['F70.1', 'F32.3']],
    [['F79', 'F33.300'], ['F79', 'F33.300']],
    [['F71', 'F06.3'], []],
    [['F71', 'F32.2'], []],
    [['F71'], []],
    [['F71', 'F20.0'], ['F71', 'F20.0']],
    [['F20.0'], ['F20.0']],
    [['F07.0', 'G40.1'], []],
  ])('%j → %j', (codes, hits) => {
    expect(list.scan(msg(...codes))).toEqual(hits);
  });

  it('subcategory entries and ranges; malformed ones fail at load', () => {
    const l = compileSensitiveList(['F06.0-F06.2', 'F32.3']);
    expect(['F06.0', 'F061', 'F06.2', 'F06.200x001', 'F32.3', 'F323', 'F32.30'].map((c) => l.test(c))).toEqual([true, true, true, true, true, true, true]);
    expect(['F06.3', 'F06', 'F32.2', 'F32', 'F3230'.slice(0, 3), 'XF32.3'].map((c) => l.test(c))).toEqual([false, false, false, false, false, false]);
    expect(() => compileSensitiveList(['F06.2-F06.0'])).toThrow(/low to high/);
    expect(() => compileSensitiveList(['F06.0-F07.2'])).toThrow(/within one category/);
    expect(() => compileSensitiveList([], [{ all: ['F06'] }])).toThrow(/at least two conditions/);
    expect(() => compileSensitiveList([], [{ name: 'x', all: ['F06', []] }])).toThrow(/"x" condition #2 is empty/);
  });

  it('the step schema accepts combinations and refuses malformed ones', () => {
    const validate = new Ajv({ strict: false }).compile(guard.configSchema!);
    expect(validate({ combinations: [{ name: 'epilepsy', all: ['F06', 'G40*'] }, { all: ['F70-F79', ['F20-F29', 'F06.0-F06.2']] }] })).toBe(true);
    expect(validate({ combinations: [{ all: ['F06'] }] })).toBe(false);
    expect(validate({ combinations: [{ all: ['F06', 7] }] })).toBe(false);
    expect(validate({ combinations: [{ any: ['F06', 'G40'] }] })).toBe(false);
    expect(validate({ combinations: [{ all: ['F06', []] }] })).toBe(false);
  });
});

describe('sensitive-guard', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h.close());

  it('withholds a tuberculosis report (DG1-3 A15.0): skipped, stop, audited and counted; nothing reaches the platform', async () => {
    const st = new MemoryState();
    const g = await h.instance(guard, {}, st);
    const r = await g.process(sampleInput('22'), callCtx());
    expect(r).toMatchObject({ outcome: 'skipped', detail: 'withheld: sensitive', output: { stop: true, sensitive: true, codes: 1, withheldTotal: 1 } });
    expect(h.audits).toEqual([expect.objectContaining({ plugin: 'sensitive-guard', operation: 'withhold', result: 'skipped', patientId: 'P000100006', messageId: 'LIS202503140022', detail: 'withheld: sensitive (1 code)' })]);
    // The audit text never carries the diagnosis code itself.
    expect(JSON.stringify(h.audits)).not.toContain('A15');
    await g.process(sampleInput('23'), callCtx());
    expect(st.map.get('count:withhold')).toBe(2);
    expect(h.sim.calls).toHaveLength(0);
  });

  it('withholds an HIV report (DG1-3 B20) even when the diagnosis segment is missing, by its configured test codes', async () => {
    const g = await h.instance(guard, { codes: ['HIV*'] });
    expect((await g.process(sampleInput('23'), callCtx())).outcome).toBe('skipped');
    const noDg1 = sampleText('23').split('\r').filter((l) => !l.startsWith('DG1|')).join('\r');
    const r = await g.process(inputFrom(noDg1), callCtx());
    expect(r).toMatchObject({ outcome: 'skipped', output: { stop: true } });
    const defaultsOnly = await h.instance(guard, {});
    expect((await defaultsOnly.process(inputFrom(noDg1), callCtx())).outcome).toBe('ok');
  });

  it('lets an ordinary report through and reads recognition.sensitiveCodes from the site', async () => {
    const g = await h.instance(guard, {});
    const r = await g.process(sampleInput('15'), callCtx());
    expect(r).toEqual({ outcome: 'ok', output: { sensitive: false, mask: false } });
    expect(h.audits).toHaveLength(0);
    h.site.sensitiveCodes = ['LAB0001'];
    const site = await h.instance(guard, {});
    expect((await site.process(sampleInput('15'), callCtx())).outcome).toBe('skipped');
  });

  it('mask: the upload goes out without identity, PDF or birth date, flagged sensitive', async () => {
    const g = await h.instance(guard, { action: 'mask' });
    const input = sampleInput('22');
    const r = await g.process(input, callCtx());
    expect(r).toMatchObject({ outcome: 'ok', output: { sensitive: true, mask: true } });
    input.vars.sensitive = r.output;
    const u = await h.instance(upload, { kind: 'lab' });
    const out = await u.process(input, callCtx());
    expect(out.output).toMatchObject({ masked: true, pdf: false, calls: 1 });
    const s = await h.simGet<{ reports: Record<string, StoredReport> }>('/__sim/state');
    const rep = s.reports['lab:LIS20250314000201']!;
    expect(rep.data).toMatchObject({ sensitive: true, patient: { patientId: 'P000100006', name: '黄**', sex: 'M' } });
    expect(JSON.stringify(rep.data)).not.toContain('440111195809120736');
    expect(rep.pdf).toBeUndefined();
    expect(h.audits[0]).toMatchObject({ plugin: 'sensitive-guard', operation: 'mask', result: 'ok' });
  });

  it('the cancellation of a withheld report is withheld too, even without the diagnosis', async () => {
    const g = await h.instance(guard, {});
    await g.process(sampleInput('22'), callCtx());
    const cancel = sampleText('22')
      .split('\r')
      .filter((l) => l && !l.startsWith('DG1|') && !l.startsWith('OBX|'))
      .map((l) => (l.startsWith('OBR|') ? l.replace('|LAB|F|', '|LAB|X|') : l))
      .join('\r');
    const r = await g.process(inputFrom(cancel), callCtx());
    expect(r).toMatchObject({ outcome: 'skipped', output: { stop: true } });
    expect(h.audits.at(-1)!.detail).toBe('withheld: sensitive (report withheld before)');
    const other = await g.process(sampleInput('17'), callCtx());
    expect(other.outcome).toBe('ok');
  });

  it('refuses an empty list at load', async () => {
    await expect(h.instance(guard, { replaceDefaults: true })).rejects.toThrow(/empty/);
  });
});
