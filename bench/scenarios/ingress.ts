/**
 * Scenario 1, MLLP ingress: msg/s and ACK latency of the engine (durable
 * store, ingress route, ACK after commit) next to the raw echo server and
 * the echo + node-hl7-client baseline, at 1 and 8 connections with ~1 KB
 * ADT and ~50 KB ORU messages. Trials alternate between the servers.
 */
import { closedLoop, type LoadResult } from '../lib/load.js';
import { MessageFactory, type MessageKind } from '../lib/messages.js';
import { entry, reason, type Context, type ScenarioResult } from '../lib/result.js';
import { spread } from '../lib/stats.js';
import { runTag, startRig } from './mllp-setup.js';

const RAW = 'raw-echo';
const PARSE = 'echo+node-hl7-client';
/** The engine with synchronous NORMAL: shown beside the default (FULL) so the cost of power-cut durability is visible. */
const NORMAL = 'hisbridge-sync-normal';

interface Config {
  kind: MessageKind;
  connections: number;
}

const CONFIGS: Config[] = [
  { kind: 'adt', connections: 1 },
  { kind: 'adt', connections: 8 },
  { kind: 'oru', connections: 1 },
  { kind: 'oru', connections: 8 },
];

function messagesFor(c: Config, quick: boolean): number {
  if (c.kind === 'adt') return quick ? 1000 : 5000;
  return quick ? 300 : 1000;
}

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  const rig = await startRig(['raw-echo', 'echo+node-hl7-client'], ctx.say, { normal: true });
  const out: ScenarioResult[] = [];
  try {
    for (const c of CONFIGS) {
      const name = `ingress-${c.kind}-${c.connections}conn`;
      const size = c.kind === 'adt' ? '~1 KB ADT^A04' : '~50 KB ORU^R01 (PDF)';
      const n = messagesFor(c, ctx.quick);
      ctx.say(`${name}: ${n} messages x ${ctx.trials} trials`);
      const values: Record<string, number[]> = { hisbridge: [], [RAW]: [], [PARSE]: [], [NORMAL]: [] };
      const lat: Record<string, LoadResult['latency'][]> = { hisbridge: [], [RAW]: [], [PARSE]: [], [NORMAL]: [] };
      const notes: string[] = [];
      for (let t = 0; t < ctx.trials; t++) {
        const contenders = [
          ...rig.baselines.map((b) => ({ key: b.kind as string, target: b.target })),
          ...(rig.engine ? [{ key: 'hisbridge', target: rig.engine.mllp }] : []),
          ...(rig.engineNormal ? [{ key: NORMAL, target: rig.engineNormal.mllp }] : []),
        ];
        for (const k of contenders) {
          try {
            const engine = k.key === 'hisbridge' ? rig.engine : k.key === NORMAL ? rig.engineNormal : undefined;
            const before = engine ? await rig.sink!.count() : 0;
            const r = await closedLoop(k.target, { connections: c.connections, messages: n, factory: new MessageFactory(c.kind, runTag()), maxMs: 60_000 });
            // Let the engine drain its deliveries so they do not steal CPU from the next server's trial.
            const left = engine ? await engine.waitPending((p) => p === 0, 60_000) : 0;
            const delivered = engine ? (await rig.sink!.count()) - before : n;
            if (r.errors || r.rejected || r.acked < n) {
              notes.push(`${k.key} trial ${t + 1}: ${r.acked}/${n} acked, ${r.rejected} not AA${r.firstRejection ? ` (${r.firstRejection})` : ''}, ${r.errors} transport errors; trial not counted`);
            } else if (delivered < n) {
              // An ACK without a delivery would mean the figure measures something else (duplicates, no route).
              notes.push(`${k.key} trial ${t + 1}: ${n} acked but ${delivered} delivered (${left} pending); trial not counted`);
            } else {
              values[k.key]!.push(r.msgPerSec);
              lat[k.key]!.push(r.latency);
            }
          } catch (e) {
            notes.push(`${k.key} trial ${t + 1}: ${reason(e)}`);
          }
        }
      }
      if (rig.engineNote && rig.engine) notes.push(rig.engineNote);
      const median = (k: string) => (values[k]!.length ? spread(values[k]!).median : NaN);
      const hb = median('hisbridge');
      const isTarget = c.kind === 'adt' && c.connections === 8;
      const met = isTarget && values.hisbridge!.length ? hb >= 0.4 * median(RAW) && hb >= 1.5 * median(PARSE) : null;
      if (!rig.engine) notes.unshift(`hisbridge not measured: ${rig.engineNote ?? 'engine unavailable'}`);
      out.push(entry({
        name,
        scenario: 11,
        title: `MLLP ingress, ${size}, ${c.connections} connection${c.connections > 1 ? 's' : ''}, ACK after commit`,
        unit: 'msg/s',
        better: 'higher',
        target: isTarget ? '>= 0.4 x raw-echo and >= 1.5 x echo+node-hl7-client' : 'reported (no target)',
        met,
        ...(rig.engine ? {} : { status: 'not-available' as const }),
        ...(notes.length ? { note: notes.join('; ') } : {}),
        details: {
          messagesPerTrial: n,
          latencyMs: Object.fromEntries(Object.entries(lat).filter(([, v]) => v.length).map(([k, v]) => [k, {
            p50: spread(v.map((x) => x.p50)).median,
            p99: spread(v.map((x) => x.p99)).median,
            max: spread(v.map((x) => x.max)).max,
          }])),
        },
      }, { hisbridge: values.hisbridge!, baselines: { [RAW]: values[RAW]!, [PARSE]: values[PARSE]!, ...(values[NORMAL]!.length ? { [NORMAL]: values[NORMAL]! } : {}) } }));
    }
  } finally {
    await rig.close();
  }
  return out;
}

export const meta = { name: 'ingress-matrix', scenario: 11, title: 'MLLP ingress' };
