/**
 * Paired trials: the baseline and the engine run alternately (the order
 * flips every pair so a machine that slows down over the run does not
 * favour either), each pair gives one ratio, and the figure is the median of
 * the pair ratios with their min and max as the spread. A noisy baseline
 * (the raw echo varied 1.8x within one run) then moves both sides of a pair
 * together instead of dominating a ratio of medians.
 */
import { round } from './stats.js';

/** One measured trial: the headline value (msg/s, ms, ...) and the server's CPU per message. */
export interface Trial {
  value: number;
  /** CPU microseconds per message of the process under test; NaN when not measured. */
  cpuUsPerMsg?: number;
  /** Anything else worth keeping (latency percentiles, sustained flag). */
  extra?: Record<string, unknown>;
}

export interface Pair {
  engine: Trial;
  baseline: Trial;
}

/** Summary of the pair ratios of one metric. */
export interface PairSummary {
  /** What the ratio compares, e.g. `msg/s` or `CPU us/msg`. */
  metric: string;
  /** The baseline's name. */
  baseline: string;
  /** engine / baseline, one per pair, in run order. */
  ratios: number[];
  median: number;
  min: number;
  max: number;
}

/** Median of numbers (mean of the middle two for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Ratios engine / baseline of the pairs whose two values are finite and the
 * baseline non-zero, with their median, min and max.
 */
export function summarizePairs(metric: string, baseline: string, pairs: readonly { engine: number; baseline: number }[]): PairSummary {
  const ratios = pairs.filter((p) => Number.isFinite(p.engine) && Number.isFinite(p.baseline) && p.baseline !== 0).map((p) => round(p.engine / p.baseline, 3));
  return {
    metric,
    baseline,
    ratios,
    median: round(median(ratios), 3),
    min: ratios.length ? Math.min(...ratios) : NaN,
    max: ratios.length ? Math.max(...ratios) : NaN,
  };
}

/**
 * Runs `count` pairs; pair i runs the baseline first when i is even and the
 * engine first when i is odd. A trial that throws is recorded through
 * `onError` and leaves its pair out (a pair needs both halves).
 */
export async function runPairs(count: number, run: { baseline(i: number): Promise<Trial>; engine(i: number): Promise<Trial> }, onError: (side: 'baseline' | 'engine', i: number, e: unknown) => void): Promise<Pair[]> {
  const out: Pair[] = [];
  for (let i = 0; i < count; i++) {
    const order: ('baseline' | 'engine')[] = i % 2 === 0 ? ['baseline', 'engine'] : ['engine', 'baseline'];
    const got: Partial<Pair> = {};
    for (const side of order) {
      try {
        got[side] = await run[side](i);
      } catch (e) {
        onError(side, i, e);
        break;
      }
    }
    if (got.engine && got.baseline) out.push({ engine: got.engine, baseline: got.baseline });
  }
  return out;
}
