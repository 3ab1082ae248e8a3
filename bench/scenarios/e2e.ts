/**
 * Scenario 3, end-to-end delivery: ADT^A04 registrations with consent go
 * through the engine (durable store, delivery worker, gd-ehr-authorize with
 * SM4 and the gateway signature) to the provincial simulator over HTTP.
 * Figures: successful deliveries/s from the first send to the last remote
 * success, and p99 from send to remote success (the simulator's clock and
 * ours are the same machine's). Baseline: the same authorization calls made
 * directly by a client with the engine's delivery concurrency, which is the
 * ceiling the simulator allows.
 */
import { engineUnavailable } from '../lib/engine.js';
import { startGdEhrRig, type GdEhrRig, type SimCall } from '../lib/gdehr.js';
import { closedLoop } from '../lib/load.js';
import { idNumberOf, indexOfIdNumber, MessageFactory } from '../lib/messages.js';
import { entry, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { percentile, round, spread } from '../lib/stats.js';
import { runTag } from './mllp-setup.js';

const BASE = { name: 'e2e-gd-ehr-authorize', scenario: 3, title: 'End-to-end: MLLP -> store -> gd-ehr-authorize (SM4 + signature) -> provincial simulator', unit: 'deliveries/s', target: 'reported (no target)' };
/** The engine's default delivery concurrency, used by the direct baseline too. */
const CONCURRENCY = 16;

/** Waits until `n` verified successes are recorded (bounded); returns them. */
async function waitSuccesses(rig: GdEhrRig, n: number, timeoutMs: number): Promise<SimCall[]> {
  const end = Date.now() + timeoutMs;
  let ok: SimCall[] = [];
  while (Date.now() < end) {
    ok = (await rig.calls()).filter((c) => c.op === 'authorize' && c.verified && c.returnCode === '1');
    if (ok.length >= n) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return ok;
}

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  const missing = engineUnavailable();
  if (missing) return [unavailable(BASE, 'not-available', missing)];
  const n = ctx.quick ? 500 : 2000;
  let rig: GdEhrRig | undefined;
  const notes: string[] = [];
  const rate: Record<string, number[]> = { hisbridge: [], 'direct-client': [] };
  const p99s: number[] = [];
  try {
    rig = await startGdEhrRig();
    const { engine } = rig;
    const gd = await import('../../plugins/gd-ehr/index.js');
    const { createHttpClient } = await import('../../core/http/client.js');
    const site = gd.readSite(rig.section);
    const http = createHttpClient();
    ctx.say(`e2e: ${n} registrations x ${ctx.trials} trials`);
    for (let t = 0; t < ctx.trials; t++) {
      // Baseline: the same calls straight from a client, CONCURRENCY in flight.
      await rig.reset();
      let next = 0;
      const d0 = Date.now();
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < n) {
          const i = next++;
          try {
            await gd.authorize(http, site, { idNumber: idNumberOf(i), patientName: '测试患者', status: '1' });
          } catch {
            // counted below from the simulator's view
          }
        }
      }));
      const direct = (await rig.calls()).filter((c) => c.verified && c.returnCode === '1').length;
      if (direct === n) rate['direct-client']!.push(round(n / ((Date.now() - d0) / 1000), 0));
      else notes.push(`direct-client trial ${t + 1}: ${direct}/${n} succeeded`);

      await rig.reset();
      const factory = new MessageFactory('adt', runTag());
      const sentAt = new Float64Array(n);
      const r = await closedLoop(engine.mllp, { connections: 8, messages: n, factory, onSend: (i) => { sentAt[i] = Date.now(); }, maxMs: 60_000 });
      if (r.acked < n || r.rejected) notes.push(`hisbridge trial ${t + 1}: ${r.acked}/${n} acked, ${r.rejected} not AA${r.firstRejection ? ` (${r.firstRejection})` : ''}`);
      const ok = await waitSuccesses(rig, n, 90_000);
      if (ok.length < n) {
        notes.push(`hisbridge trial ${t + 1}: only ${ok.length}/${n} deliveries succeeded at the simulator within 90 s`);
        continue;
      }
      const lat = ok.map((c) => c.at - sentAt[indexOfIdNumber(String(c.fields?.patientIdcard ?? ''))]!).filter(Number.isFinite).sort((a, b) => a - b);
      const last = Math.max(...ok.map((c) => c.at));
      rate.hisbridge!.push(round(n / ((last - sentAt[0]!) / 1000), 0));
      p99s.push(percentile(lat, 99));
      await engine.waitPending((p) => p === 0, 30_000);
    }
    http.close();
  } catch (e) {
    notes.push(reason(e));
  } finally {
    await rig?.close();
  }
  return [entry({
    ...BASE,
    better: 'higher',
    ...(notes.length ? { note: notes.join('; ') } : {}),
    details: { deliveriesPerTrial: n, deliveryConcurrency: CONCURRENCY, p99ReceiveToSuccessMs: p99s.length ? spread(p99s) : null },
  }, { hisbridge: rate.hisbridge!, baselines: { 'direct-client': rate['direct-client']! } })];
}
