import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../../core/log.js';
import type { AddressInfo } from 'node:net';
import plugin from '../../plugins/gd-ehr-authorize/index.js';
import { HisbridgeError } from '../../core/errors.js';
import type { AuditEntry, PluginInstance, StepInput } from '../../core/sdk.js';
import type { GdEhrSimulator } from '../../plugins/gd-ehr/simulator.js';
import { call, http, makeCtx, sample, startSim } from './helpers.js';
import { rejection as failure } from '../helpers/errors.js';

let sim: GdEhrSimulator;
let site: Record<string, unknown>;

beforeAll(async () => {
  ({ sim, site } = await startSim());
});
afterAll(async () => {
  await sim.close();
});
beforeEach(() => sim.reset());

async function make(config: Parameters<typeof plugin.create>[1] = {}, siteOver: Record<string, unknown> = {}, audit: AuditEntry[] = []): Promise<PluginInstance> {
  return plugin.create(makeCtx({ ...site, ...siteOver }, audit), config);
}


const consented = () => sample('01-adt-a04-registration-consent.hl7');

describe('gd-ehr-authorize against the simulator', () => {
  it('grants on a consented registration: one verified call with the right ID number and name', async () => {
    const audit: AuditEntry[] = [];
    const p = await make({}, {}, audit);
    const r = await p.process(consented(), call('gd-ehr-authorize'));
    expect(r).toEqual({ outcome: 'ok', detail: 'granted', output: { returnCode: '1', returnDesc: '成功' } });
    expect(sim.calls).toHaveLength(1);
    const c = sim.calls[0]!;
    expect(c.verified).toBe(true);
    expect(c.fields).toEqual({ authDays: 30, patientIdcard: '440106199003152314', patientName: '张三丰', orgCode: 'TEST001', orgName: '测试医院', status: '1', appId: 'demo-app-0001' });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ route: 'gd-ehr-authorize', plugin: 'gd-ehr-authorize', operation: 'authorize', orgCode: 'TEST001', patientId: 'P000100001', result: 'ok', messageId: 'HIS202503120001' });
    expect(audit[0]!.latencyMs).toBeGreaterThan(0);
  });

  it('keeps a GBK compound name intact and honours authDays from config', async () => {
    const p = await make({ authDays: 7 });
    await p.process(sample('03-adt-a01-admission-consent.hl7'), call());
    expect(sim.calls[0]!.fields).toMatchObject({ patientName: '欧阳娜娜', patientIdcard: '440113200104182845', authDays: 7 });
  });

  it('skips without a consent marker or with ZCN-1 = N: no call at all', async () => {
    const audit: AuditEntry[] = [];
    const p = await make({}, {}, audit);
    expect(await p.process(sample('02-adt-a04-registration-no-consent.hl7'), call())).toEqual({ outcome: 'skipped', detail: 'no consent' });
    expect(await p.process(sample('01-adt-a04-registration-consent.hl7', (t) => t.replace('ZCN|Y|', 'ZCN|N|')), call())).toEqual({ outcome: 'skipped', detail: 'no consent' });
    expect(sim.calls).toHaveLength(0);
    expect(audit.map((a) => a.result)).toEqual(['skipped', 'skipped']);
  });

  it('accepts a site-specific consent marker', async () => {
    const p = await make({ consent: { value: '${ZCN-4.1}', accept: ['DESK', 'APP'] } });
    expect((await p.process(consented(), call())).outcome).toBe('ok');
  });

  it('withdraws (status "0") without a consent check', async () => {
    const p = await make({ status: '0', consent: false });
    const r = await p.process(sample('08-adt-a08-update-consent-withdrawn.hl7'), call());
    expect(r.detail).toBe('withdrawn');
    expect(sim.calls[0]!.fields).toMatchObject({ status: '0', patientIdcard: '441302199501302086', patientName: '陈美玲' });
  });

  it('takes fields from vars when the route maps them', async () => {
    const p = await make({ idNumber: '${vars.idNumber}', patientName: '${vars.name}', status: '${vars.status}', consent: false });
    const input: StepInput = { ...consented(), vars: { idNumber: '11010519491231002X', name: '李雷', status: '1' } };
    await p.process(input, call());
    expect(sim.calls[0]!.fields).toMatchObject({ patientIdcard: '11010519491231002X', patientName: '李雷' });
  });

  it('a missing ID number is permanent and sends nothing', async () => {
    const audit: AuditEntry[] = [];
    const p = await make({ consent: false }, {}, audit);
    const noNi = sample('02-adt-a04-registration-no-consent.hl7', (t) => t.replace('~440104198507223422^^^CHN^NI', ''));
    const e = await failure(p.process(noNi, call()));
    expect(e.code).toBe('GDEHR_E_NO_ID_NUMBER');
    expect(e.retryable).toBe(false);
    expect(sim.calls).toHaveLength(0);
    expect(audit[0]).toMatchObject({ result: 'failed', detail: 'GDEHR_E_NO_ID_NUMBER' });
  });

  it('a bad rendered status is permanent', async () => {
    const p = await make({ status: '${ZCN-2}' });
    expect((await failure(p.process(consented(), call()))).code).toBe('GDEHR_E_BAD_STATUS');
  });

  it('platform down: retryable HTTP_E_NETWORK', async () => {
    const spare = net.createServer();
    await new Promise<void>((r) => spare.listen(0, '127.0.0.1', r));
    const port = (spare.address() as AddressInfo).port;
    await new Promise((r) => spare.close(r));
    const p = await make({}, { authUrl: `http://127.0.0.1:${port}/ebus/jiankangdangan/gdehr/dhccApi/codeAuthRec/save` });
    const e = await failure(p.process(consented(), call()));
    expect(e.code).toBe('HTTP_E_NETWORK');
    expect(e.retryable).toBe(true);
  });

  it('connection dropped by the platform: retryable HTTP_E_NETWORK', async () => {
    // two: the client retries once on a fresh socket when a kept-alive one is reset
    sim.addFault({ drop: true, count: 2 });
    const e = await failure((await make()).process(consented(), call()));
    expect(e.code).toBe('HTTP_E_NETWORK');
    expect(e.retryable).toBe(true);
  });

  it('503 is retryable; 429 carries Retry-After; other 4xx are permanent', async () => {
    const p = await make();
    sim.addFault({ status: 503, count: 1 });
    const e503 = await failure(p.process(consented(), call()));
    expect([e503.code, e503.retryable]).toEqual(['HTTP_E_STATUS_RETRYABLE', true]);
    sim.addFault({ status: 429, retryAfter: '3', count: 1 });
    const e429 = await failure(p.process(consented(), call()));
    expect([e429.code, e429.retryable, e429.retryAfterMs]).toEqual(['HTTP_E_STATUS_RETRYABLE', true, 3000]);
    sim.addFault({ status: 400, count: 1 });
    const e400 = await failure(p.process(consented(), call()));
    expect([e400.code, e400.retryable]).toEqual(['HTTP_E_STATUS', false]);
    // the faults were for one call each: the next call goes through
    expect((await p.process(consented(), call())).outcome).toBe('ok');
  });

  it('slow platform: retryable HTTP_E_TIMEOUT after gdEhr.timeoutMs', async () => {
    sim.addFault({ delayMs: 1500, count: 1 });
    const e = await failure((await make({}, { timeoutMs: 200 })).process(consented(), call()));
    expect(e.code).toBe('HTTP_E_TIMEOUT');
    expect(e.retryable).toBe(true);
    expect(e.message).toBe('timeout after 200 ms calling gd-ehr authorization');
  });

  it('returnCode "0" is permanent GDEHR_E_BUSINESS with the description, here for one patient only', async () => {
    sim.addFault({ returnCode0: true, returnDesc: '患者不存在', patientIdcard: '440106199003152314' });
    const p = await make();
    const e = await failure(p.process(consented(), call()));
    expect(e.code).toBe('GDEHR_E_BUSINESS');
    expect(e.retryable).toBe(false);
    expect(e.message).toBe('provincial platform refused: returnCode 0 患者不存在');
    expect((await p.process(sample('03-adt-a01-admission-consent.hl7'), call())).outcome).toBe('ok');
  });

  it('a wrong paasToken is detected by the simulator: permanent GDEHR_E_BAD_SIGNATURE', async () => {
    const audit: AuditEntry[] = [];
    const p = await make({}, { paasToken: 'not-the-token' }, audit);
    const e = await failure(p.process(consented(), call()));
    expect(e.code).toBe('GDEHR_E_BAD_SIGNATURE');
    expect(e.retryable).toBe(false);
    expect(sim.calls[0]).toMatchObject({ verified: false, httpStatus: 401, reason: 'bad signature' });
    expect(audit[0]).toMatchObject({ result: 'failed', detail: 'GDEHR_E_BAD_SIGNATURE' });
    expect(e.message).not.toContain('not-the-token');
  });

  it('a wrong SM4 key is refused by the simulator with returnCode 0', async () => {
    const e = await failure((await make({}, { sm4Key: 'ffffffffffffffffffffffffffffffff' })).process(consented(), call()));
    expect(e.code).toBe('GDEHR_E_BUSINESS');
    expect(e.message).toContain('解密失败');
  });

  it('a wrong orgCode or appId is refused with a specific returnDesc', async () => {
    expect((await failure((await make({}, { orgCode: 'OTHER' })).process(consented(), call()))).message).toContain('机构代码不匹配');
    expect((await failure((await make({}, { appId: 'other-app' })).process(consented(), call()))).message).toContain('appId 不匹配');
  });

  it('refuses to start without site credentials or with a bad constant status', async () => {
    await expect(async () => make({}, { paasToken: '' })).rejects.toMatchObject({ code: 'CONFIG_E_SITE_MISSING', message: 'gdEhr.paasToken is not set in hisbridge.yaml' });
    await expect(async () => make({ status: '2' })).rejects.toMatchObject({ code: 'GDEHR_E_BAD_STATUS' });
    await expect(async () => make({}, { sm4Key: 'abc' })).rejects.toMatchObject({ code: 'CRYPTO_E_BAD_KEY' });
    await expect(async () => make({ idNumber: '${PID-3[' })).rejects.toBeInstanceOf(HisbridgeError);
  });

  it('many calls in a row each use a fresh nonce (none is rejected as reused)', async () => {
    const p = await make();
    await Promise.all(Array.from({ length: 20 }, () => p.process(consented(), call())));
    expect(sim.calls.filter((c) => c.verified)).toHaveLength(20);
  });
});

describe('gd-ehr-authorize logging', () => {
  it('writes no ID number, name or secret into log lines, on success or failure', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'debug', destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) });
    const ctx = { ...makeCtx(site), log };
    const p = await plugin.create(ctx, {});
    await p.process(consented(), { ...call(), log });
    sim.addFault({ returnCode0: true, returnDesc: '证件号 440106199003152314 无效', count: 1 });
    await expect(p.process(consented(), { ...call(), log })).rejects.toMatchObject({ message: expect.not.stringContaining('440106199003152314') });
    expect(lines.length).toBeGreaterThan(0);
    const all = lines.join('');
    for (const secret of ['440106199003152314', '张三丰', 'test-token', site.sm4Key as string]) expect(all).not.toContain(secret);
  });
});

afterAll(() => http.close());
