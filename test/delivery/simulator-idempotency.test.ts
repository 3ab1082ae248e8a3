/**
 * The built-in simulators honour the `idempotency-key` header (real HTTP
 * servers, real plugin clients): a repeated key that succeeded before gets
 * the first answer without a second effect; a failure is not remembered, so
 * the retry acts. The recognition client sends one key per call of a step,
 * so the several calls of one step are not mistaken for repeats.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import upload from '../../plugins/recognition-upload/index.js';
import type { StoredReport } from '../../plugins/recognition/sim-state.js';
import { callKey } from '../../plugins/recognition/client.js';
import { authorize } from '../../plugins/gd-ehr/client.js';
import { startGdEhrSimulator, type GdEhrSimulator } from '../../plugins/gd-ehr/simulator.js';
import { DEMO_SITE, readSite } from '../../plugins/gd-ehr/site.js';
import { createHttpClient } from '../../core/http/client.js';
import { silentLogger } from '../../core/log.js';
import { callCtx, sampleInput, startHarness, type Harness } from '../recognition/harness.js';

describe('recognition simulator: idempotency keys', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h.close());

  const report = async () => ((await h.simGet<{ reports: Record<string, StoredReport> }>('/__sim/state')).reports['lab:LIS20250312000123'])!;

  it('a step run again with the same key (a retry after a lost answer) changes nothing: revoke, upload and PDF are answered from the first results', async () => {
    const p = await h.instance(upload, { kind: 'lab' });
    await p.process(sampleInput('15'), callCtx({ idempotencyKey: 'k-final' }));
    await p.process(sampleInput('16'), callCtx({ idempotencyKey: 'k-correct' }));
    expect(await report()).toMatchObject({ status: 'active', versions: 2 });
    const before = h.sim.calls.length;
    const again = await p.process(sampleInput('16'), callCtx({ idempotencyKey: 'k-correct' }));
    expect(again.outcome).toBe('ok');
    const repeat = h.sim.calls.slice(before);
    expect(repeat.map((c) => c.op)).toEqual(['labRevoke', 'labReport', 'labPdf']);
    expect(repeat.every((c) => c.replayed === true && c.result === 'ok')).toBe(true);
    expect(await report()).toMatchObject({ status: 'active', versions: 2 });
    // Without the key's memory the same step acts: another key is another effect.
    await p.process(sampleInput('16'), callCtx({ idempotencyKey: 'k-other' }));
    expect((await report()).versions).toBe(3);
  });

  it('the calls of one step get distinct keys (one per dictionary entry), each stable across a retry', async () => {
    const p = await h.instance(upload, { kind: 'staff' });
    await p.process(sampleInput('11'), callCtx({ idempotencyKey: 'k-staff' }));
    const first = h.sim.calls.filter((c) => c.op === 'staff');
    expect(first.length).toBeGreaterThan(1);
    expect(new Set(first.map((c) => c.idempotencyKey)).size).toBe(first.length);
    expect(first.every((c) => !c.replayed)).toBe(true);
    // Derived from the step's key, the operation and the payload as sent (with the default field names, what the simulator received).
    expect(first[0]!.idempotencyKey).toBe(callKey('k-staff', 'staff', first[0]!.body));
    await p.process(sampleInput('11'), callCtx({ idempotencyKey: 'k-staff' }));
    const second = h.sim.calls.filter((c) => c.op === 'staff').slice(first.length);
    expect(second.map((c) => c.idempotencyKey)).toEqual(first.map((c) => c.idempotencyKey));
    expect(second.every((c) => c.replayed === true)).toBe(true);
  });

  it('a failed call is not remembered: the retry with the same key is acted on', async () => {
    const p = await h.instance(upload, { kind: 'lab' });
    await h.simPost('/__sim/faults', { op: 'labReport', status: 503, count: 1 });
    await expect(p.process(sampleInput('15'), callCtx({ idempotencyKey: 'k-retry' }))).rejects.toMatchObject({ retryable: true });
    await p.process(sampleInput('15'), callCtx({ idempotencyKey: 'k-retry' }));
    const uploads = h.sim.calls.filter((c) => c.op === 'labReport');
    expect(uploads.map((c) => [c.result, c.replayed === true])).toEqual([['fault', false], ['ok', false]]);
    expect(await report()).toMatchObject({ versions: 1 });
  });
});

describe('gd-ehr simulator: idempotency keys', () => {
  let sim: GdEhrSimulator;
  const http = createHttpClient();
  beforeEach(async () => {
    sim = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site: {}, log: silentLogger() });
  });
  afterEach(async () => sim.close());

  const site = () => readSite({ ...DEMO_SITE, authUrl: `${sim.url}/ebus/jiankangdangan/gdehr/dhccApi/codeAuthRec/save`, viewerUrl: `${sim.url}/gdehr/privilege/getPrivilege` }, ['paasId', 'paasToken', 'sm4Key', 'appId', 'orgCode', 'callSysCode']);
  const req = { idNumber: '440106199001011234', patientName: '测试', status: '1' as const, authDays: 30 };

  it('authorizes once per key; a failed attempt (503, returnCode 0) is not remembered', async () => {
    sim.addFault({ status: 503, count: 1 });
    await expect(authorize(http, site(), req, { idempotencyKey: 'a1' })).rejects.toMatchObject({ retryable: true });
    sim.addFault({ returnCode0: true, count: 1 });
    await expect(authorize(http, site(), req, { idempotencyKey: 'a1' })).rejects.toBeTruthy();
    const ok = await authorize(http, site(), req, { idempotencyKey: 'a1' });
    expect(ok.returnCode).toBe('1');
    const again = await authorize(http, site(), req, { idempotencyKey: 'a1' });
    expect(again.returnCode).toBe('1');
    await authorize(http, site(), req, { idempotencyKey: 'a2' });
    const calls = sim.calls.map((c) => ({ key: c.idempotencyKey, status: c.httpStatus, code: c.returnCode, replayed: c.replayed === true }));
    expect(calls).toEqual([
      { key: 'a1', status: 503, code: undefined, replayed: false },
      { key: 'a1', status: 200, code: '0', replayed: false },
      { key: 'a1', status: 200, code: '1', replayed: false },
      { key: 'a1', status: 200, code: '1', replayed: true },
      { key: 'a2', status: 200, code: '1', replayed: false },
    ]);
  });

  it('remembers a bounded number of keys, dropping the least recently used', async () => {
    await sim.close();
    sim = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site: {}, log: silentLogger(), idempotencyCap: 2 });
    for (const k of ['k1', 'k2', 'k1', 'k3', 'k1', 'k2']) await authorize(http, site(), req, { idempotencyKey: k });
    // k1 k2 remembered; k1 used again (most recent); k3 pushes out k2; k1 still there; k2 acts again.
    expect(sim.calls.map((c) => `${c.idempotencyKey}:${c.replayed ? 'replayed' : 'acted'}`)).toEqual([
      'k1:acted', 'k2:acted', 'k1:replayed', 'k3:acted', 'k1:replayed', 'k2:acted',
    ]);
  });
});
