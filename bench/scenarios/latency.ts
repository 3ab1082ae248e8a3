/**
 * Scenario 2, latency under fixed load: 1,000 msg/s offered over 8
 * connections (30 s full, 5 s quick); p50/p99/max ACK latency counted from
 * each message's scheduled send time, and whether the offered rate was kept.
 */
import { fixedRate, type FixedRateResult } from '../lib/load.js';
import { MessageFactory } from '../lib/messages.js';
import { entry, reason, type Context, type ScenarioResult } from '../lib/result.js';
import { spread } from '../lib/stats.js';
import { runTag, startRig } from './mllp-setup.js';

const RATE = 1000;
const CONNECTIONS = 8;

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  const durationMs = ctx.quick ? 5_000 : 30_000;
  const rig = await startRig(['raw-echo'], ctx.say);
  const runs: Record<string, FixedRateResult[]> = { hisbridge: [], 'raw-echo': [] };
  const notes: string[] = [];
  try {
    ctx.say(`latency: ${RATE} msg/s x ${durationMs / 1000} s over ${CONNECTIONS} connections`);
    // Each full trial is 30 s per server: three trials keep the full suite under 10 minutes.
    const trials = ctx.quick ? ctx.trials : Math.min(ctx.trials, 3);
    for (let t = 0; t < trials; t++) {
      const contenders = [
        ...rig.baselines.map((b) => ({ key: b.kind as string, target: b.target })),
        ...(rig.engine ? [{ key: 'hisbridge', target: rig.engine.mllp }] : []),
      ];
      for (const k of contenders) {
        try {
          runs[k.key]!.push(await fixedRate(k.target, { connections: CONNECTIONS, rate: RATE, durationMs, factory: new MessageFactory('adt', runTag()) }));
        } catch (e) {
          notes.push(`${k.key} trial ${t + 1}: ${reason(e)}`);
        }
        if (k.key === 'hisbridge' && rig.engine) await rig.engine.waitPending((p) => p === 0, 60_000).catch(() => NaN);
      }
    }
  } finally {
    await rig.close();
  }
  if (!rig.engine) notes.unshift(`hisbridge not measured: ${rig.engineNote ?? 'engine unavailable'}`);
  const hb = runs.hisbridge!;
  const sustained = hb.length > 0 && hb.every((r) => r.sustained);
  for (const [k, rs] of Object.entries(runs)) {
    rs.forEach((r, i) => {
      if (!r.sustained) notes.push(`${k} trial ${i + 1} did not keep up: ${r.acked}/${r.scheduled} answered in ${Math.round(r.elapsedMs)} ms, ${r.rejected} not AA, ${r.errors} errors`);
    });
  }
  const p99 = (rs: FixedRateResult[]) => rs.map((r) => r.latency.p99);
  const res = entry({
    name: 'latency-1000mps-p99',
    scenario: 2,
    title: `ACK latency p99 at ${RATE} msg/s offered, ${CONNECTIONS} connections, ${durationMs / 1000} s, ~1 KB ADT`,
    unit: 'ms',
    better: 'lower',
    target: 'p99 <= 10 ms and the offered rate sustained',
    met: hb.length ? spread(p99(hb)).median <= 10 && sustained : null,
    ...(rig.engine ? {} : { status: 'not-available' as const }),
    ...(notes.length ? { note: notes.join('; ') } : {}),
    details: Object.fromEntries(Object.entries(runs).filter(([, rs]) => rs.length).map(([k, rs]) => [k, {
      p50: spread(rs.map((r) => r.latency.p50)),
      p99: spread(p99(rs)),
      max: spread(rs.map((r) => r.latency.max)),
      achievedMsgPerSec: spread(rs.map((r) => r.msgPerSec)),
      sustained: rs.map((r) => r.sustained),
    }])),
  }, { hisbridge: p99(hb), baselines: { 'raw-echo': p99(runs['raw-echo']!) } });
  return [res];
}
