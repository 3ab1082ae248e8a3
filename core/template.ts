/**
 * Templates used in route files and plugin configs: literal text with
 * `${...}` expressions (HL7 field paths, `body.*` for JSON events, `vars.*`,
 * `msg.*`) and filters.
 * Compiled once at load; rendering is allocation-light.
 * (`${env:NAME}` never reaches here: it is resolved when the YAML is loaded.)
 */
import { compilePath, type FieldPath } from './hl7/index.js';
import { hbError } from './errors.js';
import { maskId, maskIdNumber, maskName, maskPhone } from './mask.js';
import type { StepInput } from './sdk.js';
import { lookupFilter } from './routes/tables.js';

export type Tables = Record<string, Record<string, string>>;

export interface Template {
  readonly source: string;
  /** True when the template has no expression (its value never changes). */
  readonly isConstant: boolean;
  render(input: StepInput): string;
}

/** A single value reference: `PID-5.1`, `vars.auth.url`, `msg.controlId`, `body.patient.idNumber`. */
export interface ValueRef {
  readonly source: string;
  get(input: StepInput): string;
}

type Filter = (v: string) => string;

const MSG_KEYS: Record<string, (i: StepInput) => string> = {
  controlId: (i) => i.controlId,
  type: (i) => i.type,
  source: (i) => i.source,
  id: (i) => i.messageId,
};

function varLookup(vars: Record<string, unknown>, keys: readonly string[]): string {
  let cur: unknown = vars;
  for (const k of keys) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[k];
  }
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'object' ? JSON.stringify(cur) : String(cur);
}

/** One step of a `body.` path: an object key or an array index. */
type BodyStep = string | number;

/**
 * Parses the part of a `body.` ref after `body`: `.key` steps and `[n]` array
 * indexes, e.g. `.items[0].code`. A key is any text without `.`, `[`, `]` or
 * blanks (Chinese keys included). Throws ROUTE_E_BAD_EXPRESSION naming the problem.
 */
function parseBodyPath(expr: string, rest: string): BodyStep[] {
  const steps: BodyStep[] = [];
  let i = 0;
  while (i < rest.length) {
    const c = rest[i];
    if (c === '.') {
      let j = i + 1;
      while (j < rest.length && !'.[] \t'.includes(rest[j]!)) j++;
      if (j === i + 1) throw hbError('ROUTE_E_BAD_EXPRESSION', { expr, detail: `empty key at character ${i + 2} of the body path` });
      steps.push(rest.slice(i + 1, j));
      i = j;
    } else if (c === '[') {
      const close = rest.indexOf(']', i);
      const digits = close < 0 ? '' : rest.slice(i + 1, close);
      if (!/^\d{1,9}$/.test(digits)) throw hbError('ROUTE_E_BAD_EXPRESSION', { expr, detail: 'an array index is written [n] with n a number, e.g. body.items[0].code' });
      steps.push(Number(digits));
      i = close + 1;
    } else {
      throw hbError('ROUTE_E_BAD_EXPRESSION', { expr, detail: `unexpected "${c}" in the body path; write body.key.key or body.list[0].key` });
    }
  }
  return steps;
}

/**
 * The value at `steps` in a JSON event, as text: '' when the path is missing
 * (or the message is not a JSON event), a string as is, a number or boolean
 * as JSON writes it, an object or array as JSON text. Only the value's own
 * keys are read (`body.constructor` is '', never a function).
 */
function bodyLookup(body: unknown, steps: readonly BodyStep[]): string {
  let cur: unknown = body;
  for (const k of steps) {
    if (cur === null || typeof cur !== 'object') return '';
    if (typeof k === 'number') {
      if (!Array.isArray(cur) || k >= cur.length) return '';
      cur = cur[k];
    } else {
      if (Array.isArray(cur) || !Object.hasOwn(cur, k)) return '';
      cur = (cur as Record<string, unknown>)[k];
    }
  }
  if (cur === undefined || cur === null) return '';
  if (typeof cur === 'string') return cur;
  return typeof cur === 'object' ? JSON.stringify(cur) : String(cur);
}

/** Compiles one reference (the text inside `${}` before any filter). */
export function compileRef(ref: string): ValueRef {
  const s = ref.trim();
  if (s === 'body' || s.startsWith('body.') || s.startsWith('body[')) {
    const steps = parseBodyPath(s, s.slice(4));
    return { source: s, get: (i) => bodyLookup(i.body, steps) };
  }
  if (s.startsWith('vars.') || s === 'vars') {
    const keys = s.split('.').slice(1);
    if (keys.some((k) => k === '')) throw hbError('ROUTE_E_BAD_EXPRESSION', { expr: s, detail: 'empty variable name' });
    return { source: s, get: (i) => varLookup(i.vars, keys) };
  }
  if (s.startsWith('msg.')) {
    const fn = MSG_KEYS[s.slice(4)];
    if (!fn) throw hbError('ROUTE_E_BAD_EXPRESSION', { expr: s, detail: `unknown message attribute; use one of ${Object.keys(MSG_KEYS).map((k) => `msg.${k}`).join(', ')}` });
    return { source: s, get: fn };
  }
  const path: FieldPath = compilePath(s);
  return { source: s, get: (i) => (i.hl7 ? i.hl7.get(path) : '') };
}

/** Formats an HL7 TS (`YYYYMMDDHHmmss`) with YYYY, MM, DD, HH, mm, ss; text that is not a TS comes back as is. */
export function formatDate(ts: string, fmt: string): string {
  // HL7 TS: YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]
  const m = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?/.exec(ts);
  if (!m) return ts;
  const parts: Record<string, string> = { YYYY: m[1]!, MM: m[2] ?? '01', DD: m[3] ?? '01', HH: m[4] ?? '00', mm: m[5] ?? '00', ss: m[6] ?? '00' };
  return fmt.replace(/YYYY|MM|DD|HH|mm|ss/g, (k) => parts[k]!);
}

function compileFilter(spec: string, tables: Tables, expr: string): Filter {
  const idx = spec.indexOf(':');
  const name = (idx < 0 ? spec : spec.slice(0, idx)).trim();
  const arg = idx < 0 ? '' : spec.slice(idx + 1);
  switch (name) {
    case 'trim':
      return (v) => v.trim();
    case 'upper':
      return (v) => v.toUpperCase();
    case 'lower':
      return (v) => v.toLowerCase();
    case 'default':
      return (v) => (v === '' ? arg : v);
    case 'date':
      return (v) => (v ? formatDate(v, arg || 'YYYY-MM-DD HH:mm:ss') : v);
    case 'table': {
      const t = tables[arg];
      if (!t) throw hbError('ROUTE_E_BAD_EXPRESSION', { expr, detail: `unknown table "${arg}" (declare it under tables:)` });
      return (v) => t[v] ?? t['*'] ?? v;
    }
    case 'lookup':
      // A code table (tables/<name>.csv) of the route set being loaded; throws ROUTE_E_TABLE for an unknown table or column.
      return lookupFilter(arg);
    case 'mask': {
      const fn = ({ id: maskId, idcard: maskIdNumber, name: maskName, phone: maskPhone } as Record<string, (v: string) => string>)[arg];
      if (!fn) throw hbError('ROUTE_E_BAD_EXPRESSION', { expr, detail: 'mask needs one of id, idcard, name, phone' });
      return fn;
    }
    default:
      throw hbError('ROUTE_E_BAD_EXPRESSION', { expr, detail: `unknown filter "${name}" (trim, upper, lower, default:, date:, table:, lookup:, mask:)` });
  }
}

/** Splits on `|` that are not inside `[...]` (path selectors use `|`). */
function splitPipes(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '[') depth++;
    else if (c === ']') depth = Math.max(0, depth - 1);
    else if (c === '|' && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

/** Compiles a `${ref|filter|...}` body. */
export function compileExpression(body: string, tables: Tables = {}): ValueRef {
  const [refText, ...filterSpecs] = splitPipes(body);
  const ref = compileRef(refText ?? '');
  if (filterSpecs.length === 0) return ref;
  const filters = filterSpecs.map((f) => compileFilter(f, tables, body));
  return {
    source: body,
    get(i) {
      let v = ref.get(i);
      for (const f of filters) v = f(v);
      return v;
    },
  };
}

/**
 * Compiles a template. Throws ROUTE_E_BAD_PATH / ROUTE_E_BAD_EXPRESSION for a
 * bad expression, so a route that cannot work refuses to load.
 */
export function compileTemplate(source: string, tables: Tables = {}): Template {
  const parts: (string | ValueRef)[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('${', i);
    if (open < 0) {
      parts.push(source.slice(i));
      break;
    }
    if (open > i) parts.push(source.slice(i, open));
    const close = source.indexOf('}', open + 2);
    if (close < 0) throw hbError('ROUTE_E_BAD_EXPRESSION', { expr: source, detail: `"\${" at character ${open + 1} is never closed` });
    parts.push(compileExpression(source.slice(open + 2, close), tables));
    i = close + 1;
  }
  const dynamic = parts.filter((p): p is ValueRef => typeof p !== 'string');
  if (dynamic.length === 0) {
    const text = parts.join('');
    return { source, isConstant: true, render: () => text };
  }
  if (parts.length === 1) {
    const only = dynamic[0]!;
    return { source, isConstant: false, render: (input) => only.get(input) };
  }
  return {
    source,
    isConstant: false,
    render(input) {
      let out = '';
      for (const p of parts) out += typeof p === 'string' ? p : p.get(input);
      return out;
    },
  };
}
