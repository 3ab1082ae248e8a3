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
import path from 'node:path';
import { startChild, type ChildHandle } from '../lib/child.js';
import { DIST, engineUnavailable, startEngine, type EngineHandle } from '../lib/engine.js';
import { closedLoop } from '../lib/load.js';
import { idNumberOf, indexOfIdNumber, MessageFactory } from '../lib/messages.js';
import { entry, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { percentile, round, spread } from '../lib/stats.js';
import { runTag } from './mllp-setup.js';

const BASE = { name: 'e2e-gd-ehr-authorize', scenario: 3, title: 'End-to-end: MLLP -> store -> gd-ehr-authorize (SM4 + signature) -> provincial simulator', unit: 'deliveries/s', target: 'reported (no target)' };
/** The engine's default delivery concurrency, used by the direct baseline too. */
const CONCURRENCY = 16;

interface SimCall {
  op: string;
  at: number;
  verified: boolean;
  returnCode?: string;
  fields?: { patientIdcard?: string | null };
}

async function simCalls(url: string): Promise<SimCall[]> {
  const res = await fetch(`${url}/__sim/calls`, { signal: AbortSignal.timeout(10_000) });
  return ((await res.json()) as { calls: SimCall[] }).calls;
}

async function simReset(url: string): Promise<void> {
  await (await fetch(`${url}/__sim/reset`, { method: 'POST', signal: AbortSignal.timeout(5000) })).arrayBuffer();
}

function authRoute(): string {
  return [
    'name: bench-gd-ehr-authorize',
    'sources: [mllp]',
    'match:',
    '  events: ["ADT^A04"]',
    'ack: on-receive',
    'steps:',
    '  - plugin: gd-ehr-authorize',
    '    config: { status: "1", consent: { value: "${ZCN-1}", accept: [Y] } }',
    'delivery:',
    '  retry: { max: 5, initial: 200ms, maxDelay: 1s }',
  ].join('\n') + '\n';
}

/** Waits until `n` verified successes are recorded (bounded); returns them. */
async function waitSuccesses(url: string, n: number, timeoutMs: number): Promise<SimCall[]> {
  const end = Date.now() + timeoutMs;
  let ok: SimCall[] = [];
  while (Date.now() < end) {
    ok = (await simCalls(url)).filter((c) => c.op === 'authorize' && c.verified && c.returnCode === '1');
    if (ok.length >= n) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return ok;
}

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  const missing = engineUnavailable();
  if (missing) return [unavailable(BASE, 'not-available', missing)];
  const n = ctx.quick ? 500 : 2000;
  let sim: ChildHandle | undefined;
  let engine: EngineHandle | undefined;
  const notes: string[] = [];
  const rate: Record<string, number[]> = { hisbridge: [], 'direct-client': [] };
  const p99s: number[] = [];
  try {
    sim = await startChild(path.join(DIST, 'bench', 'lib', 'gdehr-sim.js'), [], { ready: /^PORT (\d+)$/, timeoutMs: 15_000 });
    const simUrl = `http://127.0.0.1:${sim.ready[1]}`;
    // Loaded here, not at the top, so a broken plugin build fails this scenario only.
    const gd = await import('../../plugins/gd-ehr/index.js');
    const { createHttpClient } = await import('../../core/http/client.js');
    const section = gd.gdEhrDefaults({ simulatorUrl: simUrl }) as Record<string, unknown>;
    // Secrets go through ${env:} as in a real site config (inline ones are refused).
    const yaml = ['gdEhr:', ...Object.entries(section).filter(([k]) => k !== 'cardTypes').map(([k, v]) =>
      k === 'paasToken' ? '  paasToken: ${env:HB_BENCH_PAASTOKEN}' : k === 'sm4Key' ? '  sm4Key: ${env:HB_BENCH_SM4KEY}' : `  ${k}: ${JSON.stringify(v)}`)].join('\n');
    engine = await startEngine({
      routes: { 'bench-authorize.yaml': authRoute() },
      extraConfig: yaml,
      env: { HB_BENCH_PAASTOKEN: String(section.paasToken), HB_BENCH_SM4KEY: String(section.sm4Key) },
    });
    const site = gd.readSite(section);
    const http = createHttpClient();
    ctx.say(`e2e: ${n} registrations x ${ctx.trials} trials`);
    for (let t = 0; t < ctx.trials; t++) {
      // Baseline: the same calls straight from a client, CONCURRENCY in flight.
      await simReset(simUrl);
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
      const direct = (await simCalls(simUrl)).filter((c) => c.verified && c.returnCode === '1').length;
      if (direct === n) rate['direct-client']!.push(round(n / ((Date.now() - d0) / 1000), 0));
      else notes.push(`direct-client trial ${t + 1}: ${direct}/${n} succeeded`);

      await simReset(simUrl);
      const factory = new MessageFactory('adt', runTag());
      const sentAt = new Float64Array(n);
      const r = await closedLoop(engine.mllp, { connections: 8, messages: n, factory, onSend: (i) => { sentAt[i] = Date.now(); }, maxMs: 60_000 });
      if (r.acked < n || r.rejected) notes.push(`hisbridge trial ${t + 1}: ${r.acked}/${n} acked, ${r.rejected} not AA${r.firstRejection ? ` (${r.firstRejection})` : ''}`);
      const ok = await waitSuccesses(simUrl, n, 90_000);
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
    await Promise.allSettled([engine?.stop(), sim?.stop()]);
  }
  return [entry({
    ...BASE,
    better: 'higher',
    ...(notes.length ? { note: notes.join('; ') } : {}),
    details: { deliveriesPerTrial: n, deliveryConcurrency: CONCURRENCY, p99ReceiveToSuccessMs: p99s.length ? spread(p99s) : null },
  }, { hisbridge: rate.hisbridge!, baselines: { 'direct-client': rate['direct-client']! } })];
}
