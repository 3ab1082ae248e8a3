/**
 * Scenario 9, a pathological message in flight next to normal traffic
 * (issue 11, "no message blocks the event loop for more than 50 ms"). The
 * engine runs with the shipped routes (routes/*.yaml) against both remote
 * simulators, which run in their own process. Normal traffic: ~1 KB ADT^A04
 * registrations at a fixed rate over 2 connections. Paired trials, alternating:
 *  - baseline: the normal traffic alone;
 *  - hisbridge: the same traffic while a third connection sends, one after
 *    the other, a 1.5 MB ADT^A04 with 100,000 PID-3 repetitions, the same
 *    as an ORU^R01 lab report, and an ORU^R01 with 100,000 OBX segments
 *    (bench/lib/pathological.ts).
 * Figures: the engine's own event-loop delay over the trial (max and p99,
 * from its /metrics, reset at the start of each trial), the normal traffic's
 * ACK latency (p99, max), and for the big messages the time to their ACK and
 * until every delivery settled.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startChild, type ChildHandle } from '../lib/child.js';
import { DIST, engineUnavailable, startEngine, type EngineHandle } from '../lib/engine.js';
import { fixedRate, type FixedRateResult } from '../lib/load.js';
import { MllpSender, ackCode } from '../lib/mllp-sender.js';
import { MessageFactory } from '../lib/messages.js';
import { manyObxSegments, manyPid3Repetitions } from '../lib/pathological.js';
import { entry, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { round, spread } from '../lib/stats.js';
import { runTag } from './mllp-setup.js';

const BASE = { name: 'stall-event-loop-max', scenario: 10, title: 'Event-loop delay with a pathological message in flight next to normal traffic (shipped routes)', unit: 'ms', target: 'max <= 50 ms' };
const RATE = 40;
const CONNECTIONS = 2;
const N = 100_000;

interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
  /** Dead letters so far (see deadLetters); not part of the reported delay. */
  dead?: Record<string, number>;
}

/** The engine's event-loop delay since the previous scrape, in ms (hisbridge_event_loop_delay_seconds). */
async function loopDelay(engine: EngineHandle): Promise<LoopDelay> {
  const text = await (await fetch(`${engine.httpUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const q = (quantile: string): number => {
    const m = new RegExp(`^hisbridge_event_loop_delay_seconds\\{quantile="${quantile.replace('.', '\\.')}"\\} (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error('the engine does not export hisbridge_event_loop_delay_seconds');
    return round(Number(m[1]) * 1000, 1);
  };
  return { p50: q('0.5'), p99: q('0.99'), max: q('1'), dead: deadLetters(text) };
}

/** The shipped route files, as the engine would load them from routes/. */
function shippedRoutes(): Record<string, string> {
  const dir = path.resolve(DIST, '..', 'routes');
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir)) if (f.endsWith('.yaml') && !f.endsWith('.test.yaml')) out[f] = readFileSync(path.join(dir, f), 'utf8');
  return out;
}

/** hisbridge.yaml sections pointing at the simulators; secrets through ${env:} as a real site config must. */
export function siteYaml(sites: Record<string, Record<string, unknown>>): { yaml: string; env: Record<string, string> } {
  const env: Record<string, string> = {};
  const lines: string[] = [];
  for (const [section, values] of Object.entries(sites)) {
    lines.push(`${section}:`);
    for (const [k, v] of Object.entries(values)) {
      if (k === 'cardTypes' || v === undefined) continue;
      if (/^(password|paasToken|sm4Key)$/.test(k)) {
        const name = `HB_BENCH_${section.toUpperCase()}_${k.toUpperCase()}`;
        env[name] = String(v);
        lines.push(`  ${k}: \${env:${name}}`);
      } else lines.push(`  ${k}: ${JSON.stringify(v)}`);
    }
  }
  return { yaml: lines.join('\n'), env };
}

interface BigRun {
  ackMs: number[];
  codes: string[];
  settledMs: number;
  /**
   * Per big message (ADT, ORU, OBX report), ms from its ACK until its effect
   * showed at the recognition simulator (patient upload; lab report; lab
   * report with all N results), or null when it never did within 60 s.
   */
  deliveredMs: (number | null)[];
  /** Dead letters that appeared while the big messages were delivered, as `route/plugin/code` -> count (normal traffic makes none). */
  deadLetters: Record<string, number>;
}

/**
 * hisbridge_dead_letters_total by `route/plugin/code`, from a /metrics text.
 * Read from the same scrapes as the event-loop delay: every scrape resets
 * the engine's since-last-scrape delay histogram, so an extra scrape would
 * cut the measured window short.
 */
function deadLetters(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^hisbridge_dead_letters_total\{([^}]*)\} (\S+)$/gm)) {
    const label = (k: string) => new RegExp(`${k}="([^"]*)"`).exec(m[1]!)?.[1] ?? '';
    out[`${label('route')}/${label('plugin')}/${label('code')}`] = Number(m[2]);
  }
  return out;
}

/** Polls the recognition simulator (its own process) until `seen` says the effect is there; ms from `from`, or null after 60 s. */
async function deliveredAfter(from: number, seen: () => Promise<boolean>): Promise<number | null> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    try {
      if (await seen()) return round(performance.now() - from, 0);
    } catch {
      // The simulator is busy or restarting: ask again.
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return null;
}

async function sendBig(engine: EngineHandle, tag: string, recognitionUrl: string): Promise<BigRun> {
  const sender = await MllpSender.connect(engine.mllp.host, engine.mllp.port, { timeoutMs: 120_000 });
  const run: BigRun = { ackMs: [], codes: [], settledMs: NaN, deliveredMs: [], deadLetters: {} };
  const start = performance.now();
  const get = async (p: string): Promise<Response> => fetch(`${recognitionUrl}${p}`, { signal: AbortSignal.timeout(10_000) });
  const labReport = async (patientId: string, results?: number): Promise<boolean> => {
    const { reports } = (await (await get('/__sim/reports')).json()) as { reports: { type: string; patientId?: string; resultCount?: number }[] };
    return reports.some((r) => r.type === 'lab' && r.patientId === patientId && (results === undefined || r.resultCount === results));
  };
  const effects = [
    async () => (await get(`/__sim/patients/PB${tag}A`)).status === 200,
    () => labReport(`PB${tag}O`),
    () => labReport(`PB${tag}X`, N),
  ];
  const watches: Promise<number | null>[] = [];
  try {
    const messages = [
      manyPid3Repetitions(N, 'ADT^A04', { controlId: `${tag}A`, patientId: `PB${tag}A` }),
      manyPid3Repetitions(N, 'ORU^R01', { controlId: `${tag}O`, patientId: `PB${tag}O` }),
      manyObxSegments(N, { controlId: `${tag}X`, patientId: `PB${tag}X` }),
    ];
    for (const [i, m] of messages.entries()) {
      const body = Buffer.from(m, 'utf8');
      const frame = Buffer.concat([Buffer.from([0x0b]), body, Buffer.from([0x1c, 0x0d])]);
      const t = performance.now();
      run.codes.push(ackCode(await sender.sendFrame(frame)));
      const acked = performance.now();
      run.ackMs.push(round(acked - t, 1));
      watches.push(deliveredAfter(acked, effects[i]!));
    }
  } finally {
    await sender.close();
  }
  run.deliveredMs = await Promise.all(watches);
  await engine.waitPending((p) => p === 0, 120_000);
  run.settledMs = round(performance.now() - start, 0);
  return run;
}

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  const missing = engineUnavailable();
  if (missing) return [unavailable(BASE, 'not-available', missing)];
  const durationMs = ctx.quick ? 4_000 : 10_000;
  const trials = ctx.quick ? Math.min(ctx.trials, 3) : ctx.trials;
  const notes: string[] = [];
  let sims: ChildHandle | undefined;
  let engine: EngineHandle | undefined;
  const delay: { hisbridge: LoopDelay[]; baseline: LoopDelay[] } = { hisbridge: [], baseline: [] };
  const traffic: { hisbridge: FixedRateResult[]; baseline: FixedRateResult[] } = { hisbridge: [], baseline: [] };
  const big: BigRun[] = [];
  try {
    sims = await startChild(path.join(DIST, 'bench', 'lib', 'sims.js'), [], { ready: /^SITES (.*)$/, timeoutMs: 15_000 });
    const sites = JSON.parse(sims.ready[1]!) as Record<string, Record<string, unknown>>;
    const site = siteYaml(sites);
    const recognitionUrl = String(sites.recognition?.baseUrl ?? '');
    engine = await startEngine({ routes: shippedRoutes(), extraConfig: site.yaml, env: site.env });
    ctx.say(`stall: ${RATE} msg/s over ${CONNECTIONS} connections for ${durationMs / 1000} s; with and without ${N.toLocaleString('en')} PID-3 repetitions (ADT, ORU) and ${N.toLocaleString('en')} OBX in flight`);
    // Warm-up, not measured.
    await fixedRate(engine.mllp, { connections: CONNECTIONS, rate: RATE, durationMs: 2_000, factory: new MessageFactory('adt', runTag()) });
    await engine.waitPending((p) => p === 0, 60_000);
    for (let t = 0; t < trials; t++) {
      for (const who of ['baseline', 'hisbridge'] as const) {
        try {
          const before = await loopDelay(engine);
          const load = fixedRate(engine.mllp, { connections: CONNECTIONS, rate: RATE, durationMs, factory: new MessageFactory('adt', runTag()) });
          let bigRun: Promise<BigRun> | undefined;
          if (who === 'hisbridge') bigRun = new Promise((r) => setTimeout(r, 500)).then(() => sendBig(engine!, `S${runTag()}`, recognitionUrl));
          traffic[who].push(await load);
          const bigDone = bigRun ? await bigRun : undefined;
          const { dead, ...after } = await loopDelay(engine);
          delay[who].push(after);
          if (bigDone) {
            // Normal traffic makes no dead letters: the new ones are the big messages'.
            for (const [k, v] of Object.entries(dead ?? {})) if (v > (before.dead?.[k] ?? 0)) bigDone.deadLetters[k] = v - (before.dead?.[k] ?? 0);
            big.push(bigDone);
          }
          await engine.waitPending((p) => p === 0, 60_000);
        } catch (e) {
          notes.push(`${who} trial ${t + 1}: ${reason(e)}`);
        }
      }
    }
  } catch (e) {
    return [unavailable(BASE, 'failed', reason(e))];
  } finally {
    await Promise.allSettled([engine?.stop(), sims?.stop()]);
  }
  for (const [k, rs] of Object.entries(traffic)) {
    rs.forEach((r, i) => {
      if (!r.sustained) notes.push(`${k} trial ${i + 1}: normal traffic did not keep up: ${r.acked}/${r.scheduled} answered, ${r.rejected} not AA, ${r.errors} errors`);
    });
  }
  const names = ['ADT 100k PID-3 reps', 'ORU 100k PID-3 reps', 'ORU 100k OBX'];
  big.forEach((b, i) => {
    if (b.codes.some((c) => c !== 'AA')) notes.push(`pathological trial ${i + 1}: ACK codes ${b.codes.join(', ')}`);
    b.deliveredMs.forEach((d, j) => {
      if (d === null) notes.push(`pathological trial ${i + 1}: ${names[j]} not delivered within 60 s of its ACK`);
    });
  });
  // Delivered: the effect seen at the recognition simulator; per message, ACK -> delivered.
  const deliveredSpread = (j: number) => {
    const ds = big.map((b) => b.deliveredMs[j]).filter((d): d is number => typeof d === 'number');
    return { delivered: `${ds.length}/${big.length}`, ...(ds.length ? { ackToDeliveredMs: spread(ds) } : {}) };
  };
  if (big.length) {
    notes.push(`pathological delivered (ACK -> effect at the simulator, median): ${names.map((n, j) => {
      const d = deliveredSpread(j);
      return `${n} ${d.delivered}${d.ackToDeliveredMs ? ` ${d.ackToDeliveredMs.median} ms` : ''}`;
    }).join(', ')}`);
  }
  // Settled is not delivered: say which deliveries of the big messages ended in the dead letter, and why.
  const dead = [...new Set(big.flatMap((b) => Object.entries(b.deadLetters).map(([k, v]) => `${k} x${v}`)))];
  if (dead.length) notes.push(`pathological messages dead-lettered (route/plugin/code): ${dead.join(', ')}`);
  const max = (ds: LoopDelay[]) => ds.map((d) => d.max);
  const p99 = (ds: LoopDelay[]) => ds.map((d) => d.p99);
  const hb = delay.hisbridge;
  const details = {
    eventLoopP99Ms: { hisbridge: hb.length ? spread(p99(hb)) : null, baseline: delay.baseline.length ? spread(p99(delay.baseline)) : null },
    eventLoopMaxMs: { hisbridge: hb.length ? spread(max(hb)) : null, baseline: delay.baseline.length ? spread(max(delay.baseline)) : null },
    normalAckP99Ms: Object.fromEntries(Object.entries(traffic).filter(([, rs]) => rs.length).map(([k, rs]) => [k, spread(rs.map((r) => r.latency.p99))])),
    normalAckMaxMs: Object.fromEntries(Object.entries(traffic).filter(([, rs]) => rs.length).map(([k, rs]) => [k, spread(rs.map((r) => r.latency.max))])),
    pathologicalAckMs: big.length ? { adtPid3Reps: spread(big.map((b) => b.ackMs[0]!)), oruPid3Reps: spread(big.map((b) => b.ackMs[1]!)), oruObx: spread(big.map((b) => b.ackMs[2]!)) } : null,
    pathologicalSettledMs: big.length ? spread(big.map((b) => b.settledMs)) : null,
    pathologicalDelivered: big.length ? { adtPid3Reps: deliveredSpread(0), oruPid3Reps: deliveredSpread(1), oruObx: deliveredSpread(2) } : null,
    pathologicalDeadLetters: big.map((b) => b.deadLetters),
    perTrial: { hisbridge: hb, baseline: delay.baseline },
  };
  const maxSpread = hb.length ? spread(max(hb)) : undefined;
  return [
    entry({
      ...BASE,
      better: 'lower',
      met: maxSpread ? maxSpread.max <= 50 : null,
      ...(notes.length ? { note: notes.join('; ') } : {}),
      details,
    }, { hisbridge: max(hb), baselines: { 'normal-traffic-only': max(delay.baseline) } }),
    entry({
      ...BASE,
      name: 'stall-event-loop-p99',
      target: 'reported (p99 next to the max)',
      better: 'lower',
      met: null,
    }, { hisbridge: p99(hb), baselines: { 'normal-traffic-only': p99(delay.baseline) } }),
  ];
}
