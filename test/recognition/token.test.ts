import { afterEach, describe, expect, it } from 'vitest';
import { isHisbridgeError } from '../../core/errors.js';
import { clientFor } from '../../plugins/recognition/hub.js';
import type { SimCall } from '../../plugins/recognition/simulator.js';
import { startHarness, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => h?.close());

const list = { orgCode: 'H4413020001', idNumber: '440106199003152314' };
const tokenCalls = (calls: SimCall[]) => calls.filter((c) => c.op === 'token').length;

describe('recognition token client (real HTTP against the simulator)', () => {
  it('fetches one token for 100 concurrent calls (single-flight) and reuses it', async () => {
    h = await startHarness();
    const client = clientFor(h.ctx(), 'test');
    const answers = await Promise.all(Array.from({ length: 100 }, () => client.call('list', list)));
    expect(answers.every((a) => a.data.count === 2)).toBe(true);
    expect(tokenCalls(h.sim.calls)).toBe(1);
    await client.call('list', list);
    expect(tokenCalls(h.sim.calls)).toBe(1);
    // The token request is audited like every outbound call, without the credentials.
    expect(h.audits.filter((a) => a.operation === 'token')).toEqual([expect.objectContaining({ plugin: 'recognition', result: 'ok', orgCode: 'H4413020001' })]);
    expect(h.audits.filter((a) => a.operation === 'list')).toHaveLength(101);
    expect(JSON.stringify(h.audits)).not.toContain('demo-password');
  });

  it('shares the token between plugins of the same engine, not across engines', async () => {
    h = await startHarness();
    await clientFor(h.ctx(), 'a').call('list', list);
    await clientFor(h.ctx(), 'b').call('list', list);
    expect(tokenCalls(h.sim.calls)).toBe(1);
    await clientFor(h.otherEngine()(), 'c').call('list', list);
    expect(tokenCalls(h.sim.calls)).toBe(2);
  });

  it('fetches a new token when the cached one nears expiry', async () => {
    h = await startHarness({ tokenSkewMs: 0 });
    await h.simPost('/__sim/config', { tokenTtlSeconds: 1 });
    const client = clientFor(h.ctx(), 'test');
    await client.call('list', list);
    await client.call('list', list);
    expect(tokenCalls(h.sim.calls)).toBe(1);
    await new Promise((r) => setTimeout(r, 1100));
    await client.call('list', list);
    expect(tokenCalls(h.sim.calls)).toBe(2);
    // No call was refused: the token was renewed before the platform would reject it.
    expect(h.sim.calls.filter((c) => c.result === 'unauthorized')).toHaveLength(0);
  });

  it('on 401 refreshes the token once and retries; 100 concurrent 401s cause one refresh', async () => {
    h = await startHarness();
    const client = clientFor(h.ctx(), 'test');
    await client.call('list', list);
    await h.simPost('/__sim/tokens/expire', {});
    const answers = await Promise.all(Array.from({ length: 100 }, () => client.call('list', list)));
    expect(answers).toHaveLength(100);
    expect(tokenCalls(h.sim.calls)).toBe(2);
    expect(h.sim.calls.filter((c) => c.result === 'unauthorized').length).toBe(100);
  });

  it('a persistent 401 fails after one refresh instead of looping', async () => {
    h = await startHarness();
    const client = clientFor(h.ctx(), 'test');
    await h.simPost('/__sim/faults', { op: 'list', status: 401, count: 5 });
    const err = await client.call('list', list).catch((e: unknown) => e);
    expect(isHisbridgeError(err) && err.code).toBe('HTTP_E_STATUS');
    expect(h.sim.calls.filter((c) => c.op === 'list')).toHaveLength(2);
    expect(tokenCalls(h.sim.calls)).toBe(2);
  });

  it('wrong credentials are a permanent RECOG_E_AUTH that never shows the password', async () => {
    h = await startHarness();
    const ctx = h.otherEngine({ password: 'wrong-secret-xyz' })();
    const err = await clientFor(ctx, 'test').call('list', list).catch((e: unknown) => e);
    expect(isHisbridgeError(err) && err.code).toBe('RECOG_E_AUTH');
    expect(isHisbridgeError(err) && err.retryable).toBe(false);
    expect(JSON.stringify(err) + String((err as Error).message)).not.toContain('wrong-secret-xyz');
  });

  it('a token endpoint outage is a retryable RECOG_E_AUTH', async () => {
    h = await startHarness();
    await h.simPost('/__sim/faults', { op: 'token', status: 503 });
    const err = await clientFor(h.ctx(), 'test').call('list', list).catch((e: unknown) => e);
    expect(isHisbridgeError(err) && err.code).toBe('RECOG_E_AUTH');
    expect(isHisbridgeError(err) && err.retryable).toBe(true);
  });

  it('honours remapped paths, field names, token header and envelope', async () => {
    const site = {
      paths: { token: '/auth/login', list: '/hr/hrxx/list' },
      fields: { username: 'yhm', password: 'mm', token: 'access_token', idNumber: 'sfzh', count: 'total' },
      tokenHeader: 'X-Token',
      tokenScheme: '',
      response: { codeField: 'status', messageField: 'msg', dataField: 'result', successCodes: ['200'] },
    };
    h = await startHarness(site);
    const answer = await clientFor(h.ctx(), 'test').call('list', list);
    expect(answer.data.count).toBe(2);
    const raw = await fetch(`${h.sim.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ yhm: 'demo-hospital', mm: 'demo-password-not-a-secret' }) });
    const json = (await raw.json()) as Record<string, Record<string, unknown>>;
    expect(json.status).toBe('200');
    expect(typeof json.result!.access_token).toBe('string');
  });
});
