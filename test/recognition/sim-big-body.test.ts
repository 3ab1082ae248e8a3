/**
 * The recognition simulator and big bodies (issue 11): it reads bodies up to
 * maxBodyBytes (413 past it), parses and validates a lab report with
 * thousands of results in time slices, names the first bad result by its
 * index, and GET /__sim/reports counts what a report holds. A real HTTP
 * server, called over real HTTP.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startRecognitionSimulator, type RecognitionSimulator } from '../../plugins/recognition/simulator.js';

const sims: RecognitionSimulator[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

async function tokenOf(url: string): Promise<string> {
  const r = await fetch(`${url}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'demo-hospital', password: 'demo-password-not-a-secret' }) });
  const j = (await r.json()) as { data: { token: string } };
  return j.data.token;
}

const report = (reportId: string, n: number) => ({
  orgCode: 'H4413020001', reportId, status: 'F',
  patient: { patientId: 'PSIM0001', name: '测试' },
  item: { code: 'LAB0001', name: '血常规' },
  results: Array.from({ length: n }, (_, i) => ({ seq: i + 1, code: `T${i + 1}`, value: `${i}.5`, units: 'g/L' })),
});

describe('recognition simulator: big bodies', () => {
  it('takes a 20,000-result lab report, counts it in /__sim/reports, and names a bad result by its index', async () => {
    const sim = await startRecognitionSimulator({});
    sims.push(sim);
    const token = await tokenOf(sim.url);
    const post = (body: unknown) => fetch(`${sim.url}/api/lab/report`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
    const ok = await post(report('RSIM1', 20_000));
    expect(await ok.json()).toMatchObject({ code: '0' });
    const { reports } = (await (await fetch(`${sim.url}/__sim/reports`)).json()) as { reports: Record<string, unknown>[] };
    expect(reports).toEqual([expect.objectContaining({ type: 'lab', reportId: 'RSIM1', patientId: 'PSIM0001', status: 'active', resultCount: 20_000, distinctCodes: 20_000 })]);

    const bad = report('RSIM2', 20_000);
    (bad.results[15_000] as Record<string, unknown>).code = '';
    const r = (await (await post(bad)).json()) as { code: string; message: string };
    expect(r.code).toBe('1001');
    expect(r.message).toContain('/results/15000/code');
    expect(sim.calls.at(-1)!.result).toBe('invalid');
  });

  it('answers 413 to a body over maxBodyBytes, without acting on it', async () => {
    const sim = await startRecognitionSimulator({ maxBodyBytes: 4096 });
    sims.push(sim);
    const token = await tokenOf(sim.url);
    const res = await fetch(`${sim.url}/api/lab/report`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(report('RSIM3', 200)) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: '413' });
    expect(sim.state.reports.size).toBe(0);
    expect(sim.calls.at(-1)).toMatchObject({ op: 'labReport', result: 'too-large' });
    await expect(startRecognitionSimulator({ maxBodyBytes: 0 })).rejects.toThrow(/maxBodyBytes/);
  });
});
