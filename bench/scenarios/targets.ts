/**
 * The targets of issue 15, measured in paired trials (baseline and engine
 * alternately, one ratio per pair, median of the pair ratios) with the CPU
 * per message of the process under test next to wall-clock throughput:
 *   1 e2e       consented registrations over 8 MLLP connections, durable FULL
 *               ACK, one provincial authorization (SM4 + signature) delivered
 *               to the simulator in another process, counted until every
 *               authorization arrived; vs the echo + node-hl7-client server.
 *   2 ingress   the same load on a log-only route (no delivery), FULL.
 *   4 latency   p99 ACK latency at 2,000 msg/s offered for 10 s vs raw echo.
 *   6 memory    RSS after draining a 10,000-delivery backlog, over 3 cycles.
 * Row 3 (SQL and WAL per message) is in sql.ts, row 5 (Kafka) in kafka.ts.
 */
import { cpuMeter } from '../lib/cpu.js';
import { engineUnavailable, ingressRoute, startEngine, type EngineHandle } from '../lib/engine.js';
import { authRoute, startGdEhrRig, type GdEhrRig } from '../lib/gdehr.js';
import { closedLoop, fixedRate, type Target } from '../lib/load.js';
import { MessageFactory } from '../lib/messages.js';
import { median, runPairs, type Trial } from '../lib/pairs.js';
import { entry, pairedEntry, pairOf, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { startBaseline, startSink, type BaselineServer, type Sink } from '../lib/servers.js';
import { round } from '../lib/stats.js';
import { runTag } from './mllp-setup.js';

const PARSE = 'echo+node-hl7-client';
const RAW = 'raw-echo';
const CONNECTIONS = 8;

/** Pairs per row: at least 5 in full mode (--trials may raise it), 3 in quick mode. */
export function pairCount(ctx: Context): number {
  return ctx.quick ? Math.min(ctx.trials, 3) : Math.max(ctx.trials, 5);
}

const fail = (notes: string[]) => (side: string, i: number, e: unknown) => notes.push(`pair ${i + 1} ${side}: ${reason(e)}`);

/** A closed-loop trial against a baseline server, with the server's CPU per message. */
async function baselineTrial(b: BaselineServer, n: number): Promise<Trial> {
  const meter = cpuMeter(b.child.pid);
  const r = await closedLoop(b.target, { connections: CONNECTIONS, messages: n, factory: new MessageFactory('adt', runTag()), maxMs: 60_000 });
  const cpu = meter.stop(r.acked);
  if (r.acked < n || r.rejected || r.errors) throw new Error(`${b.kind}: ${r.acked}/${n} acked, ${r.rejected} not AA, ${r.errors} errors`);
  return { value: r.msgPerSec, cpuUsPerMsg: round(cpu, 1), extra: { p99Ms: r.latency.p99 } };
}

async function warm(t: Target): Promise<void> {
  await closedLoop(t, { connections: 2, messages: 400, factory: new MessageFactory('adt', `W${t.port}${runTag()}`), maxMs: 20_000 });
}

/** Waits until the simulator counts `n` verified authorizations (bounded); returns the time of the last one (ms epoch) or NaN. */
async function waitAuthorized(rig: GdEhrRig, n: number, timeoutMs: number): Promise<{ count: number; last: number }> {
  const end = Date.now() + timeoutMs;
  let count = 0;
  let last = NaN;
  while (Date.now() < end) {
    const ok = (await rig.calls()).filter((c) => c.op === 'authorize' && c.verified && c.returnCode === '1');
    count = ok.length;
    if (count >= n) {
      last = Math.max(...ok.map((c) => c.at));
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { count, last };
}

const E2E = { name: 'e2e-cpu', scenario: 1, title: 'End-to-end: consented ADT^A04 over 8 MLLP connections, FULL, one gd-ehr authorization (SM4 + signature) each, counted until every one arrived at the simulator', unit: 'msg/s', target: 'CPU/msg <= 1.0 x echo+node-hl7-client and ACK msg/s >= 1.3 x' };

export async function e2e(ctx: Context): Promise<ScenarioResult[]> {
  const missing = engineUnavailable();
  if (missing) return [unavailable(E2E, 'not-available', missing)];
  const n = ctx.quick ? 500 : 2000;
  const notes: string[] = [];
  let rig: GdEhrRig | undefined;
  let base: BaselineServer | undefined;
  try {
    rig = await startGdEhrRig({ route: authRoute() });
    base = await startBaseline(PARSE);
    await warm(base.target);
    await warm(rig.engine.mllp);
    await waitAuthorized(rig, 400, 30_000);
    await rig.engine.waitPending((p) => p === 0, 30_000);
    ctx.say(`e2e: ${n} registrations x ${pairCount(ctx)} pairs`);
    const r = rig;
    const b = base;
    const pairs = await runPairs(pairCount(ctx), {
      baseline: () => baselineTrial(b, n),
      engine: async () => {
        await r.reset();
        const meter = cpuMeter(r.engine.child.pid);
        const t0 = Date.now();
        const load = await closedLoop(r.engine.mllp, { connections: CONNECTIONS, messages: n, factory: new MessageFactory('adt', runTag()), maxMs: 90_000 });
        const done = await waitAuthorized(r, n, 120_000);
        const cpu = meter.stop(n);
        await r.engine.waitPending((p) => p === 0, 30_000);
        if (load.acked < n || load.rejected || load.errors) throw new Error(`${load.acked}/${n} acked, ${load.rejected} not AA${load.firstRejection ? ` (${load.firstRejection})` : ''}, ${load.errors} errors`);
        if (done.count < n) throw new Error(`only ${done.count}/${n} authorizations arrived within 120 s`);
        return { value: load.msgPerSec, cpuUsPerMsg: round(cpu, 1), extra: { deliveredPerSec: round(n / ((done.last - t0) / 1000), 0), p99Ms: load.latency.p99 } };
      },
    }, fail(notes));
    const res = pairedEntry({ ...E2E, better: 'higher', ...(notes.length ? { note: notes.join('; ') } : {}) }, PARSE, pairs);
    const cpu = pairOf(res, 'CPU us/msg');
    const thr = pairOf(res, 'msg/s');
    res.met = cpu?.ratios.length && thr?.ratios.length ? cpu.median <= 1.0 && thr.median >= 1.3 : null;
    res.details = { messagesPerTrial: n, connections: CONNECTIONS, deliveredPerSec: pairs.map((p) => p.engine.extra?.deliveredPerSec), ackP99Ms: pairs.map((p) => p.engine.extra?.p99Ms) };
    return [res];
  } catch (e) {
    return [unavailable(E2E, 'failed', reason(e))];
  } finally {
    await Promise.allSettled([rig?.close(), base?.child.stop()]);
  }
}

/** Row 2's route: every ADT acknowledged on receipt and logged, nothing delivered. */
export const LOG_ROUTE = [
  'name: bench-log-only',
  'sources: [mllp]',
  'match:',
  '  events: ["ADT^*"]',
  'ack: on-receive',
  'steps:',
  '  - log: { message: "ingress ${msg.controlId}" }',
].join('\n') + '\n';

const INGRESS = { name: 'ingress-log-only', scenario: 2, title: 'Ingress alone: ~1 KB ADT^A04 over 8 MLLP connections, log-only route, FULL', unit: 'msg/s', target: '>= 2 x echo+node-hl7-client msg/s' };

export async function ingress(ctx: Context): Promise<ScenarioResult[]> {
  const missing = engineUnavailable();
  if (missing) return [unavailable(INGRESS, 'not-available', missing)];
  const n = ctx.quick ? 1000 : 5000;
  const notes: string[] = [];
  let engine: EngineHandle | undefined;
  let base: BaselineServer | undefined;
  try {
    engine = await startEngine({ routes: { 'log.yaml': LOG_ROUTE } });
    base = await startBaseline(PARSE);
    await warm(base.target);
    await warm(engine.mllp);
    ctx.say(`ingress: ${n} messages x ${pairCount(ctx)} pairs`);
    const e = engine;
    const b = base;
    const pairs = await runPairs(pairCount(ctx), {
      baseline: () => baselineTrial(b, n),
      engine: async () => {
        const meter = cpuMeter(e.child.pid);
        const r = await closedLoop(e.mllp, { connections: CONNECTIONS, messages: n, factory: new MessageFactory('adt', runTag()), maxMs: 60_000 });
        const cpu = meter.stop(r.acked);
        if (r.acked < n || r.rejected || r.errors) throw new Error(`${r.acked}/${n} acked, ${r.rejected} not AA${r.firstRejection ? ` (${r.firstRejection})` : ''}, ${r.errors} errors`);
        return { value: r.msgPerSec, cpuUsPerMsg: round(cpu, 1), extra: { p99Ms: r.latency.p99 } };
      },
    }, fail(notes));
    const res = pairedEntry({ ...INGRESS, better: 'higher', ...(notes.length ? { note: notes.join('; ') } : {}) }, PARSE, pairs);
    const thr = pairOf(res, 'msg/s');
    res.met = thr?.ratios.length ? thr.median >= 2 : null;
    res.details = { messagesPerTrial: n, connections: CONNECTIONS, ackP99Ms: pairs.map((p) => p.engine.extra?.p99Ms) };
    return [res];
  } catch (e) {
    return [unavailable(INGRESS, 'failed', reason(e))];
  } finally {
    await Promise.allSettled([engine?.stop(), base?.child.stop()]);
  }
}

const RATE = 2000;
const LATENCY = { name: 'latency-2000mps-p99', scenario: 4, title: `p99 ACK latency at ${RATE} msg/s offered over 8 connections, ~1 KB ADT, one HTTP delivery each to a sink in another process`, unit: 'ms', target: 'p99 <= 2 x raw-echo p99, rate sustained' };

export async function latency(ctx: Context): Promise<ScenarioResult[]> {
  const missing = engineUnavailable();
  if (missing) return [unavailable(LATENCY, 'not-available', missing)];
  const durationMs = ctx.quick ? 2_000 : 10_000;
  const notes: string[] = [];
  let engine: EngineHandle | undefined;
  let base: BaselineServer | undefined;
  let sink: Sink | undefined;
  try {
    sink = await startSink();
    engine = await startEngine({ routes: { 'ingress.yaml': ingressRoute(sink.url) } });
    base = await startBaseline(RAW);
    await warm(base.target);
    await warm(engine.mllp);
    await engine.waitPending((p) => p === 0, 30_000);
    ctx.say(`latency: ${RATE} msg/s x ${durationMs / 1000} s x ${pairCount(ctx)} pairs`);
    const e = engine;
    const b = base;
    const trial = async (t: Target, pid: number): Promise<Trial> => {
      const meter = cpuMeter(pid);
      const r = await fixedRate(t, { connections: CONNECTIONS, rate: RATE, durationMs, factory: new MessageFactory('adt', runTag()) });
      return { value: r.latency.p99, cpuUsPerMsg: round(meter.stop(r.acked), 1), extra: { sustained: r.sustained, achieved: r.msgPerSec, answered: `${r.acked}/${r.scheduled}`, p50: r.latency.p50, max: r.latency.max } };
    };
    const pairs = await runPairs(pairCount(ctx), {
      baseline: () => trial(b.target, b.child.pid),
      engine: async () => {
        const t = await trial(e.mllp, e.child.pid);
        await e.waitPending((p) => p === 0, 60_000);
        return t;
      },
    }, fail(notes));
    const res = pairedEntry({ ...LATENCY, better: 'lower', ...(notes.length ? { note: notes.join('; ') } : {}) }, RAW, pairs);
    const sustained = pairs.map((p) => p.engine.extra?.sustained === true);
    const p99 = pairOf(res, 'ms');
    res.met = p99?.ratios.length ? p99.median <= 2 && sustained.every(Boolean) : null;
    res.details = { offeredPerSec: RATE, durationMs, connections: CONNECTIONS, engine: pairs.map((p) => p.engine.extra), rawEcho: pairs.map((p) => p.baseline.extra) };
    if (!sustained.every(Boolean)) res.note = [res.note, `rate not sustained in ${sustained.filter((s) => !s).length}/${sustained.length} engine trials`].filter(Boolean).join('; ');
    return [res];
  } catch (e) {
    return [unavailable(LATENCY, 'failed', reason(e))];
  } finally {
    await Promise.allSettled([engine?.stop(), base?.child.stop(), sink?.child.stop()]);
  }
}

const MEMORY = { name: 'memory-drain-cycles', scenario: 6, title: 'Engine RSS after draining a backlog of pending gd-ehr authorizations (simulator answering 503, then recovering), 3 cycles, vs idle', unit: 'MB', target: '<= 1.2 x idle, or flat over 3 cycles' };
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Met when the last drained RSS is within 1.2x idle, or the drained RSS did not grow by more than 5% from the first cycle to the last. */
export function memoryMet(idle: number, drained: readonly number[]): boolean | null {
  if (!Number.isFinite(idle) || drained.length < 1 || !drained.every(Number.isFinite)) return null;
  const last = drained[drained.length - 1]!;
  const flat = drained.length >= 3 && last <= 1.05 * drained[0]!;
  return last <= 1.2 * idle || flat;
}

/** The engine's V8 heap in use, from its /metrics (NaN when it cannot be read). */
async function heapUsedMb(httpUrl: string): Promise<number> {
  try {
    const text = await (await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const m = /^hisbridge_nodejs_heap_size_used_bytes (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
    return m ? round(Number(m[1]) / 1048576, 1) : NaN;
  } catch {
    return NaN;
  }
}

export async function memory(ctx: Context): Promise<ScenarioResult[]> {
  const missing = engineUnavailable();
  if (missing) return [unavailable(MEMORY, 'not-available', missing)];
  const backlog = ctx.quick ? 1000 : 10_000;
  // HB_BENCH_MEMORY_CYCLES: more cycles, to tell a heap that settles from one that keeps growing.
  const cycles = Math.max(3, Number(process.env.HB_BENCH_MEMORY_CYCLES) || 3);
  const notes: string[] = [];
  const drained: number[] = [];
  const heapUsed: number[] = [];
  const pendingRss: number[] = [];
  let idle = NaN;
  let rig: GdEhrRig | undefined;
  try {
    rig = await startGdEhrRig({ route: authRoute('{ max: 1000, initial: 1s, maxDelay: 2s }') });
    const { engine } = rig;
    await settle(1500);
    idle = engine.child.rssMb();
    for (let c = 0; c < cycles; c++) {
      ctx.say(`memory cycle ${c + 1}/${cycles}: ${backlog} pending behind a failing simulator`);
      await rig.reset();
      await rig.fault({ status: 503 });
      const r = await closedLoop(engine.mllp, { connections: CONNECTIONS, messages: backlog, factory: new MessageFactory('adt', runTag()), maxMs: 120_000 });
      if (r.acked < backlog || r.rejected) notes.push(`cycle ${c + 1}: ${r.acked}/${backlog} acked, ${r.rejected} not AA`);
      const p = await engine.waitPending((k) => k >= backlog, 30_000);
      if (!(p >= backlog)) notes.push(`cycle ${c + 1}: only ${p} pending`);
      pendingRss.push(engine.child.rssMb());
      await rig.reset();
      const left = await engine.waitPending((k) => k === 0, 180_000);
      if (left !== 0) notes.push(`cycle ${c + 1}: ${left} still pending after 180 s`);
      await settle(1500);
      drained.push(engine.child.rssMb());
      heapUsed.push(await heapUsedMb(engine.httpUrl));
    }
  } catch (e) {
    notes.push(reason(e));
  } finally {
    await rig?.close();
  }
  if (drained.length) notes.unshift(`drained after each cycle: ${drained.join(', ')} MB (idle ${idle} MB); V8 heap used then: ${heapUsed.join(', ')} MB`);
  const res = entry({ ...MEMORY, better: 'lower', met: memoryMet(idle, drained), ...(notes.length ? { note: notes.join('; ') } : {}) }, { hisbridge: drained, baselines: Number.isFinite(idle) ? { idle: [idle] } : {} });
  res.details = { backlog, cycles, idleMb: idle, pendingMb: pendingRss, drainedMb: drained, heapUsedMb: heapUsed, lastDrainedOverIdle: Number.isFinite(idle) && drained.length ? round(drained[drained.length - 1]! / idle, 3) : null, growthFirstToLastCycle: drained.length >= 2 ? round(drained[drained.length - 1]! / drained[0]!, 3) : null, medianDrainedMb: median(drained) };
  return [res];
}
