/** Durations in config: a number of milliseconds, or text like `500ms`, `2s`, `5m`, `24h`, `30d`. */
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)\\s*$';

/** JSON Schema fragment for a duration value. */
export const durationSchema = {
  anyOf: [
    { type: 'number', minimum: 0 },
    { type: 'string', pattern: DURATION_PATTERN },
  ],
  description: 'milliseconds, or a duration such as 500ms, 2s, 5m, 24h, 30d',
} as const;

export function parseDuration(v: number | string | undefined, fallbackMs: number): number {
  if (v === undefined) return fallbackMs;
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(v);
  if (!m) throw new Error(`bad duration "${v}"`);
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}
