/**
 * Scenario 7, memory: RSS of the engine process idle, after a load of
 * ADT messages (100,000; quick 10,000) once their deliveries have drained,
 * with 10,000 deliveries pending while the provincial simulator answers 503
 * (its fault injection), and after it recovers and everything drains. One run
 * (RSS is a state, not a rate). The route is the gd-ehr authorization, so
 * the plugin, SM4 and the gateway signature are part of the working set.
 */
import { engineUnavailable } from '../lib/engine.js';
import { authRoute, startGdEhrRig, type GdEhrRig } from '../lib/gdehr.js';
import { closedLoop } from '../lib/load.js';
import { MessageFactory } from '../lib/messages.js';
import { entry, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { runTag } from './mllp-setup.js';

const PENDING = { name: 'memory-10k-pending', scenario: 7, title: 'Engine RSS with 10,000 deliveries pending (provincial simulator answers 503)', unit: 'MB', target: '< 250 MB' };
const DRAINED = { name: 'memory-drained-vs-idle', scenario: 7, title: 'Engine RSS after the backlog drained, vs idle', unit: 'MB', target: '<= 1.2 x idle' };

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Pause before each RSS reading so freed memory and finished work show. */
const SETTLE_MS = 1500;

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  const missing = engineUnavailable();
  if (missing) return [unavailable(PENDING, 'not-available', missing), unavailable(DRAINED, 'not-available', missing)];
  const load = ctx.quick ? 10_000 : 100_000;
  const backlog = 10_000;
  let rig: GdEhrRig | undefined;
  const rss: Record<string, number> = {};
  const notes: string[] = [];
  try {
    // Retries short enough that the backlog drains within seconds of recovery.
    rig = await startGdEhrRig({ route: authRoute('{ max: 1000, initial: 1s, maxDelay: 3s }') });
    const { engine } = rig;
    await settle(SETTLE_MS);
    rss.idle = engine.child.rssMb();
    ctx.say(`memory: idle ${rss.idle} MB; sending ${load} messages`);

    const r1 = await closedLoop(engine.mllp, { connections: 8, messages: load, factory: new MessageFactory('adt', runTag()), maxMs: 300_000 });
    if (r1.acked < load || r1.rejected) notes.push(`load: ${r1.acked}/${load} acked, ${r1.rejected} not AA`);
    const left = await engine.waitPending((n) => n === 0, 120_000);
    if (left !== 0) notes.push(`load: ${left} deliveries still pending after 120 s`);
    await settle(SETTLE_MS);
    rss.afterLoad = engine.child.rssMb();

    ctx.say(`memory: after load ${rss.afterLoad} MB; remote down, queueing ${backlog}`);
    await rig.reset(); // drops the simulator's record of the load phase
    await rig.fault({ status: 503 });
    const r2 = await closedLoop(engine.mllp, { connections: 8, messages: backlog, factory: new MessageFactory('adt', runTag()), maxMs: 120_000 });
    if (r2.acked < backlog || r2.rejected) notes.push(`backlog: ${r2.acked}/${backlog} acked, ${r2.rejected} not AA`);
    const pending = await engine.waitPending((n) => n >= backlog, 30_000);
    if (!(pending >= backlog)) notes.push(`backlog: only ${pending} pending`);
    await settle(SETTLE_MS);
    rss.pending = engine.child.rssMb();
    rss.pendingDeliveries = await engine.pending();

    ctx.say(`memory: ${rss.pendingDeliveries} pending, ${rss.pending} MB; remote back, draining`);
    await rig.reset();
    const t0 = Date.now();
    const after = await engine.waitPending((n) => n === 0, 180_000);
    rss.drainSeconds = Math.round((Date.now() - t0) / 100) / 10;
    if (after !== 0) notes.push(`drain: ${after} deliveries still pending after 180 s`);
    await settle(SETTLE_MS);
    rss.drained = engine.child.rssMb();
  } catch (e) {
    notes.push(reason(e));
  } finally {
    await rig?.close();
  }
  const details = { loadMessages: load, backlog, rssMb: rss };
  const note = notes.length ? { note: notes.join('; ') } : {};
  return [
    entry({ ...PENDING, better: 'lower', met: rss.pending !== undefined ? rss.pending < 250 : null, details, ...note }, { hisbridge: rss.pending !== undefined ? [rss.pending] : [] }),
    entry({ ...DRAINED, better: 'lower', met: rss.drained !== undefined && rss.idle !== undefined ? rss.drained <= 1.2 * rss.idle : null, details, ...note },
      {
        hisbridge: rss.drained !== undefined ? [rss.drained] : [],
        // after-load is the leak check: the same working set before and after the backlog came and went.
        baselines: { ...(rss.idle !== undefined ? { idle: [rss.idle] } : {}), ...(rss.afterLoad !== undefined ? { 'after-load': [rss.afterLoad] } : {}) },
      }),
  ];
}
