/**
 * Small statistics helpers for the benchmark: percentiles over latency
 * samples and median/min/max over repeated trials.
 */

/** Median, min and max of a set of trial figures. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** The p-th percentile (0-100) by nearest rank; 0 for an empty sample. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n - 1, Math.max(0, rank - 1))]!;
}

/** Median/min/max of trial values (the median of an even count averages the middle two). */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { median: NaN, min: NaN, max: NaN };
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median: round(median), min: round(s[0]!), max: round(s[s.length - 1]!) };
}

/** Latency summary in milliseconds from samples in nanoseconds. */
export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
}

export function latencySummary(samplesNs: Float64Array | number[]): LatencySummary {
  const s = Float64Array.from(samplesNs).sort();
  return { p50: round(percentile(s, 50) / 1e6, 3), p99: round(percentile(s, 99) / 1e6, 3), max: round(percentile(s, 100) / 1e6, 3) };
}

/** Rounds to a few significant decimals so results.json stays readable. */
export function round(v: number, decimals = 2): number {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}
