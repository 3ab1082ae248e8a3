import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gatewayHeaders } from '../../core/crypto/signature.js';
import { sm4EncryptHex } from '../../core/crypto/sm4.js';
import type { GdEhrSimulator, SimCall } from '../../plugins/gd-ehr/simulator.js';
import { GUIDE_KEY, http, startSim } from './helpers.js';

let sim: GdEhrSimulator;
let authUrl: string;
beforeAll(async () => {
  const s = await startSim();
  sim = s.sim;
  authUrl = s.site.authUrl as string;
});
afterAll(async () => {
  await sim.close();
  http.close();
});
beforeEach(() => sim.reset());

const body = (over: Record<string, unknown> = {}) => ({
  codeAuthRec: { authDays: 30, patientIdcard: sm4EncryptHex(GUIDE_KEY, '440106199003152314'), patientName: '张三', orgCode: 'TEST001', orgName: '测试医院', status: '1', appId: 'demo-app-0001', ...over },
});

const post = (headers: Record<string, string>, b: unknown = body()) => http.request(authUrl, { method: 'POST', headers, body: b });
const signed = (over: Partial<Parameters<typeof gatewayHeaders>[0]> = {}) => gatewayHeaders({ paasId: 'demo-paasid', paasToken: 'test-token', ...over });

describe('simulator codeAuthRec/save gateway checks', () => {
  it('accepts a correctly signed request', async () => {
    const res = await post(signed());
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ returnCode: '1', returnDesc: '成功' });
  });

  it('rejects a wrong paasid, a stale or future timestamp, a bad signature and a reused nonce', async () => {
    const cases: [Record<string, string>, string][] = [
      [signed({ paasId: 'someone-else' }), 'unknown paasid'],
      [signed({ now: Date.now() - 301_000 }), 'timestamp outside the 300 s window'],
      [signed({ now: Date.now() + 301_000 }), 'timestamp outside the 300 s window'],
      [{ ...signed(), 'x-tif-timestamp': '2025-03-12 09:30:15' }, 'timestamp is not unix seconds'],
      [signed({ paasToken: 'wrong' }), 'bad signature'],
      [{ ...signed(), 'x-tif-signature': signed()['x-tif-signature']!.toLowerCase() }, 'bad signature'],
    ];
    for (const [h, reason] of cases) {
      const res = await post(h);
      expect(res.status, reason).toBe(401);
      expect((res.json as { message: string }).message).toBe(reason);
    }
    const h = signed({ nonce: 'fixed-nonce' });
    expect((await post(h)).status).toBe(200);
    const again = await post(h);
    expect(again.status).toBe(401);
    expect((again.json as { message: string }).message).toBe('nonce reused');
  });

  it('checks the JSON shape with the schema in schemas/', async () => {
    const bad = [
      [{ codeAuthRec: { ...body().codeAuthRec, status: 1 } }, /status/],
      [{ codeAuthRec: { ...body().codeAuthRec, authDays: '30' } }, /authDays/],
      [{ authRec: body().codeAuthRec }, /codeAuthRec|authRec/],
      [{ codeAuthRec: { ...body().codeAuthRec, patientIdcard: '440106199003152314' } }, /patientIdcard/],
    ] as const;
    for (const [b, re] of bad) {
      const res = await post(signed(), b);
      expect(res.status).toBe(400);
      expect((res.json as { message: string }).message).toMatch(re);
    }
    const notJson = await http.request(authUrl, { method: 'POST', headers: { ...signed(), 'content-type': 'application/json' }, body: '{"codeAuthRec":' });
    expect(notJson.status).toBe(400);
  });

  it('refuses, with returnCode 0, a patientIdcard that does not decrypt under the site key', async () => {
    const res = await post(signed(), body({ patientIdcard: sm4EncryptHex('ffffffffffffffffffffffffffffffff', '440106199003152314') }));
    expect(res.json).toEqual({ returnCode: '0', returnDesc: 'patientIdcard 解密失败' });
  });
});

describe('simulator fault control over HTTP', () => {
  it('POST /__sim/faults, GET /__sim/calls, POST /__sim/reset', async () => {
    const add = await http.request(`${sim.url}/__sim/faults`, { method: 'POST', body: [{ status: 502, count: 1 }, { returnCode0: true, returnDesc: '测试失败', count: 1 }] });
    expect(add.json).toEqual({ faults: 2 });
    expect((await post(signed())).status).toBe(502);
    expect((await post(signed())).json).toEqual({ returnCode: '0', returnDesc: '测试失败' });
    expect((await post(signed())).json).toEqual({ returnCode: '1', returnDesc: '成功' });
    const calls = (await http.request(`${sim.url}/__sim/calls`)).json as { calls: SimCall[] };
    expect(calls.calls.map((c) => [c.httpStatus, c.returnCode ?? null, c.fault ?? false])).toEqual([
      [502, null, true],
      [200, '0', true],
      [200, '1', false],
    ]);
    expect(calls.calls[2]!.fields).toMatchObject({ patientIdcard: '440106199003152314', patientName: '张三' });
    await http.request(`${sim.url}/__sim/reset`, { method: 'POST' });
    expect(((await http.request(`${sim.url}/__sim/calls`)).json as { calls: unknown[] }).calls).toEqual([]);
    expect((await http.request(`${sim.url}/__sim/faults`, { method: 'POST', body: 'nope', headers: { 'content-type': 'application/json' } })).status).toBe(400);
  });
});
