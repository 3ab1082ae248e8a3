/**
 * Ordering through the real engine (store, delivery workers, the route's
 * orderingKey): a cancellation sent right after its report, while the upload
 * is failing and being retried, is applied only after the upload succeeded.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessEngine } from '../../core/cli/route-test/inproc.js';
import { settle } from '../../core/cli/route-test/settle.js';
import { silentLogger } from '../../core/log.js';
import type { RecognitionSimulator } from '../../plugins/recognition/simulator.js';
import { recognitionRegistry, sampleBytes } from './harness.js';

const ROUTES = path.resolve(import.meta.dirname, '../../routes');
let run: InProcessEngine | undefined;
afterEach(async () => {
  await run?.close();
  run = undefined;
});

describe('recognition ordering through the engine', () => {
  it('a revoke never overtakes its upload, even while the upload is retried', async () => {
    run = await startInProcess({ registry: recognitionRegistry(), routes: [path.join(ROUTES, 'recognition-lab.yaml')], fastRetries: true, log: silentLogger() });
    const sim = run.engine.simulators.recognition as RecognitionSimulator;
    await fetch(`${sim.url}/__sim/faults`, { method: 'POST', body: JSON.stringify({ op: 'labReport', status: 503, count: 3 }) });
    const upload = await run.engine.ingest(sampleBytes('15'), run.listener);
    const revoke = await run.engine.ingest(sampleBytes('17'), run.listener);
    expect([upload.code, revoke.code]).toEqual(['AA', 'AA']);
    const finals = [...(await settle(run.engine.store, upload, 20_000)), ...(await settle(run.engine.store, revoke, 20_000))];
    expect(finals.map((f) => f.outcome)).toEqual(['ok', 'ok']);
    const ops = sim.calls.filter((c) => c.op !== 'token').map((c) => `${c.op}:${c.result}`);
    expect(ops).toEqual(['labReport:fault', 'labReport:fault', 'labReport:fault', 'labReport:ok', 'labPdf:ok', 'labRevoke:ok']);
    expect(sim.state.reports.get('lab:LIS20250312000123')).toMatchObject({ status: 'revoked', versions: 1 });
  });
});
