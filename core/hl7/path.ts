/**
 * Field paths used by routes: `SEG[n]-F[r].C.S` (see docs/routes.md).
 * Compiled once at route load so that a typo refuses the route with the
 * character it trips on, and message reads do no string parsing.
 */
import { hbError } from '../errors.js';

/** Chooses the first repetition whose component `component` equals one of `values`. */
export interface RepetitionSelector {
  readonly component: number;
  readonly values: readonly string[];
}

/** A compiled field path. Numbers are 1-based, as in HL7. */
export interface FieldPath {
  /** The text it was compiled from. */
  readonly source: string;
  readonly segment: string;
  /** Segment occurrence `[n]`; undefined = first (get) or every occurrence (getAll). */
  readonly occurrence?: number;
  readonly field: number;
  /** Repetition `[r]`; undefined = first (get) or every repetition (getAll). */
  readonly repetition?: number;
  readonly selector?: RepetitionSelector;
  readonly component?: number;
  readonly subcomponent?: number;
}

const CACHE_LIMIT = 10_000;
const cache = new Map<string, FieldPath>();

function fail(path: string, detail: string): never {
  throw hbError('ROUTE_E_BAD_PATH', { path: path.length > 80 ? `${path.slice(0, 80)}...` : path, detail });
}

function isUpperAlnum(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Recursive-descent reader over the path text; positions in errors are 1-based characters. */
class Reader {
  pos = 0;
  constructor(readonly text: string) {}

  at(): string {
    return this.text[this.pos] ?? '';
  }

  describe(): string {
    return this.pos >= this.text.length ? 'end of path' : `"${this.at()}" at character ${this.pos + 1}`;
  }

  number(what: string): number {
    const start = this.pos;
    while (this.pos < this.text.length && isDigit(this.text.charCodeAt(this.pos))) this.pos++;
    if (this.pos === start) fail(this.text, `expected ${what} (a number) but found ${this.describe()}`);
    const n = Number(this.text.slice(start, this.pos));
    if (n < 1) fail(this.text, `${what} at character ${start + 1} must be 1 or more`);
    if (n > 9999) fail(this.text, `${what} at character ${start + 1} is too large`);
    return n;
  }

  expect(ch: string, why: string): void {
    if (this.at() !== ch) fail(this.text, `expected "${ch}" ${why} but found ${this.describe()}`);
    this.pos++;
  }
}

function parse(text: string): FieldPath {
  const r = new Reader(text);
  if (text === '') fail(text, 'the path is empty');
  for (let i = 0; i < 3; i++) {
    if (!isUpperAlnum(text.charCodeAt(i)) || (i === 0 && isDigit(text.charCodeAt(0)))) {
      fail(text, `segment name must be 3 upper-case letters or digits (like PID or ZCN); character ${i + 1} is ${text[i] === undefined ? 'missing' : `"${text[i]}"`}`);
    }
  }
  r.pos = 3;
  const segment = text.slice(0, 3);
  let occurrence: number | undefined;
  if (r.at() === '[') {
    r.pos++;
    occurrence = r.number('segment occurrence');
    r.expect(']', 'to close the segment occurrence');
  }
  r.expect('-', 'between segment and field number');
  const field = r.number('field number');
  let repetition: number | undefined;
  let selector: RepetitionSelector | undefined;
  if (r.at() === '[') {
    r.pos++;
    const save = r.pos;
    while (isDigit(text.charCodeAt(r.pos))) r.pos++;
    if (r.at() === '=') {
      r.pos = save;
      const component = r.number('selector component');
      r.expect('=', 'after the selector component');
      const values: string[] = [];
      let start = r.pos;
      for (;;) {
        const ch = r.at();
        if (ch === '|' || ch === ']' || ch === '') {
          if (r.pos === start) fail(text, `empty selector value at character ${r.pos + 1}`);
          values.push(text.slice(start, r.pos));
          if (ch !== '|') break;
          start = ++r.pos;
        } else if (ch === '[' || ch === '=') {
          fail(text, `unexpected "${ch}" in selector value at character ${r.pos + 1}`);
        } else r.pos++;
      }
      r.expect(']', 'to close the repetition selector');
      selector = { component, values };
    } else {
      r.pos = save;
      repetition = r.number('repetition');
      r.expect(']', 'to close the repetition');
    }
  }
  let component: number | undefined;
  let subcomponent: number | undefined;
  if (r.at() === '.') {
    r.pos++;
    component = r.number('component');
    if (r.at() === '.') {
      r.pos++;
      subcomponent = r.number('subcomponent');
    }
  }
  if (r.pos < text.length) fail(text, `unexpected ${r.describe()}`);
  if (segment === 'MSH' && field <= 2 && (repetition !== undefined || selector || component !== undefined)) {
    fail(text, `MSH-${field} holds the delimiters and has no repetitions or components`);
  }
  return {
    source: text,
    segment,
    field,
    ...(occurrence !== undefined ? { occurrence } : {}),
    ...(repetition !== undefined ? { repetition } : {}),
    ...(selector ? { selector } : {}),
    ...(component !== undefined ? { component } : {}),
    ...(subcomponent !== undefined ? { subcomponent } : {}),
  };
}

/**
 * Compiles (and caches) a field path. Throws ROUTE_E_BAD_PATH naming what is
 * wrong and at which character.
 */
export function compilePath(path: string): FieldPath {
  const hit = cache.get(path);
  if (hit) return hit;
  const compiled = Object.freeze(parse(path));
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(path, compiled);
  return compiled;
}
