/**
 * Expectations of route test files: a plain value or one matcher, applied to
 * a value read from a call record, an ACK field or an outcome. Mismatches are
 * described with masked values, like log lines.
 */
import { isDeepStrictEqual } from 'node:util';
import { maskName, scrubText } from '../../mask.js';

/** A value (compared as text) or one matcher. */
export type Check =
  | string
  | number
  | boolean
  | { equals: unknown }
  | { matches: string }
  | { exists: boolean }
  | { in: unknown[] };

const ABSENT = '(absent)';
const MAX_SHOWN = 120;

function isScalar(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

/** Reads `a.b.0.c` from a value; undefined when any step is missing. */
export function getPath(value: unknown, dotted: string): unknown {
  let cur: unknown = value;
  for (const key of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/**
 * A value for a failure line: names masked when the key says it is a name,
 * ID numbers and phones masked everywhere, long values cut.
 */
export function show(v: unknown, key = ''): string {
  if (v === undefined) return ABSENT;
  let s: string;
  if (typeof v === 'string') s = /name/i.test(key) ? maskName(v) : JSON.stringify(v);
  else s = JSON.stringify(v) ?? String(v);
  s = scrubText(s);
  return s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN)}...` : s;
}

function sameText(want: unknown, got: unknown): boolean {
  if (isScalar(want) && isScalar(got)) return String(want) === String(got);
  return isDeepStrictEqual(want, got);
}

/**
 * Applies a check; returns undefined when it holds, else `expected X, got Y`.
 * `key` names what was read (for masking names).
 */
export function checkValue(check: Check, got: unknown, key = ''): string | undefined {
  const fail = (expected: string) => `expected ${expected}, got ${show(got, key)}`;
  if (isScalar(check)) return sameText(check, got) ? undefined : fail(show(check, key));
  if ('equals' in check) return sameText(check.equals, got) ? undefined : fail(show(check.equals, key));
  if ('matches' in check) {
    let re: RegExp;
    try {
      re = new RegExp(check.matches);
    } catch (e) {
      return `bad regular expression: ${(e as Error).message}`;
    }
    return isScalar(got) && re.test(String(got)) ? undefined : fail(`a match of /${check.matches}/`);
  }
  if ('exists' in check) {
    const present = got !== undefined && got !== null && got !== '';
    return present === check.exists ? undefined : fail(check.exists ? 'a value' : ABSENT);
  }
  if ('in' in check) return check.in.some((x) => sameText(x, got)) ? undefined : fail(`one of ${show(check.in, key)}`);
  return 'unknown check';
}
