/**
 * The shape of bench/results.json and the helpers scenarios use to build
 * their entries. A figure that could not be measured is reported as such
 * (status and note), never filled in.
 */
import { summarizePairs, type Pair, type PairSummary } from './pairs.js';
import { round, spread, type Spread } from './stats.js';

export type Status = 'ok' | 'failed' | 'not-available' | 'not-yet-built';

export interface ScenarioResult {
  /** Stable id, e.g. `ingress-adt-8conn`. */
  name: string;
  /** Issue 8 scenario number. */
  scenario: number;
  title: string;
  /** Unit of the hisbridge and baseline figures. */
  unit: string;
  /** 'higher' when more is better (msg/s), 'lower' for latencies and costs. */
  better: 'higher' | 'lower';
  trials: number;
  hisbridge: Spread | null;
  baselines: Record<string, Spread>;
  /** Median hisbridge / median baseline, per baseline. */
  ratios: Record<string, number>;
  target: string;
  /** null when the target could not be judged. */
  met: boolean | null;
  status: Status;
  /** What limits the figure, what is missing, or why it failed. */
  note?: string;
  /** Secondary figures (latency percentiles, per-trial values). */
  details?: Record<string, unknown>;
  /** Paired trials (issue 15): one ratio per pair and metric, median and spread. */
  pairs?: PairSummary[];
  /** CPU microseconds per message of each measured process (hisbridge and baselines), over the trials. */
  cpuUsPerMsg?: Record<string, Spread>;
}

export interface Results {
  machine: { cpus: number; cpuModel: string; node: string; platform: string; date: string };
  mode: 'quick' | 'full';
  command: string;
  scenarios: ScenarioResult[];
}

export interface Context {
  quick: boolean;
  /** Trials per contender. */
  trials: number;
  /** Progress line on stderr. */
  say(text: string): void;
}

/** Builds an entry from raw trial values; ratios use medians. */
export function entry(base: Omit<ScenarioResult, 'hisbridge' | 'baselines' | 'ratios' | 'trials' | 'status' | 'met'> & { met?: boolean | null; status?: Status }, values: { hisbridge: number[]; baselines?: Record<string, number[]> }): ScenarioResult {
  const hisbridge = values.hisbridge.length ? spread(values.hisbridge) : null;
  const baselines: Record<string, Spread> = {};
  const ratios: Record<string, number> = {};
  for (const [k, v] of Object.entries(values.baselines ?? {})) {
    if (!v.length) continue;
    baselines[k] = spread(v);
    if (hisbridge && baselines[k].median) ratios[k] = round(hisbridge.median / baselines[k].median, 3);
  }
  return {
    ...base,
    trials: Math.max(values.hisbridge.length, ...Object.values(values.baselines ?? {}).map((v) => v.length)),
    hisbridge,
    baselines,
    ratios,
    met: base.met ?? null,
    status: base.status ?? (hisbridge ? 'ok' : 'failed'),
  };
}

/** An entry for something that could not run (missing component, failure). */
export function unavailable(base: Pick<ScenarioResult, 'name' | 'scenario' | 'title' | 'unit' | 'target'> & { better?: 'higher' | 'lower' }, status: Exclude<Status, 'ok'>, note: string): ScenarioResult {
  return { better: 'higher', ...base, trials: 0, hisbridge: null, baselines: {}, ratios: {}, met: null, status, note };
}

/** First line of an error message, without stack, for notes. */
export function reason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0]!.slice(0, 300);
}

/**
 * Builds an entry from paired trials: the headline spreads and per-baseline
 * ratio come from the pairs (median of the pair ratios, not a ratio of
 * medians), the CPU per message of both sides is kept, and a CPU ratio is
 * added when both sides measured it.
 */
export function pairedEntry(base: Omit<ScenarioResult, 'hisbridge' | 'baselines' | 'ratios' | 'trials' | 'status' | 'met' | 'pairs' | 'cpuUsPerMsg'> & { met?: boolean | null; status?: Status }, baseline: string, pairs: readonly Pair[]): ScenarioResult {
  const e = entry(base, { hisbridge: pairs.map((p) => p.engine.value), baselines: { [baseline]: pairs.map((p) => p.baseline.value) } });
  const value = summarizePairs(base.unit, baseline, pairs.map((p) => ({ engine: p.engine.value, baseline: p.baseline.value })));
  const summaries: PairSummary[] = [value];
  if (value.ratios.length) e.ratios[baseline] = value.median;
  const cpu = (side: 'engine' | 'baseline') => pairs.map((p) => p[side].cpuUsPerMsg ?? NaN).filter(Number.isFinite);
  const cpuUsPerMsg: Record<string, Spread> = {};
  if (cpu('engine').length) cpuUsPerMsg.hisbridge = spread(cpu('engine'));
  if (cpu('baseline').length) cpuUsPerMsg[baseline] = spread(cpu('baseline'));
  const cpuPairs = pairs.map((p) => ({ engine: p.engine.cpuUsPerMsg ?? NaN, baseline: p.baseline.cpuUsPerMsg ?? NaN }));
  const cpuSummary = summarizePairs('CPU us/msg', baseline, cpuPairs);
  if (cpuSummary.ratios.length) summaries.push(cpuSummary);
  return { ...e, trials: pairs.length, pairs: summaries, ...(Object.keys(cpuUsPerMsg).length ? { cpuUsPerMsg } : {}) };
}

/** The pair summary of a metric, if the entry has one. */
export function pairOf(r: ScenarioResult, metric: string): PairSummary | undefined {
  return r.pairs?.find((p) => p.metric === metric);
}
