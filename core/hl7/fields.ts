/**
 * Reading and rewriting values inside one segment's field list. Field arrays
 * are indexed by HL7 field number: index 0 is the segment name and, for MSH,
 * index 1 is the field separator and index 2 the encoding characters.
 */
import type { Hl7Delimiters } from './delimiters.js';
import { escapeHl7, unescapeHl7 } from './escape.js';
import type { RepetitionSelector } from './path.js';

/** The `n`th (1-based) piece of `s` split on `sep`, without allocating the other pieces. */
export function nth(s: string, sep: string, n: number): string {
  let from = 0;
  for (let k = 1; k < n; k++) {
    const at = s.indexOf(sep, from);
    if (at < 0) return '';
    from = at + 1;
  }
  const end = s.indexOf(sep, from);
  return end < 0 ? (from === 0 ? s : s.slice(from)) : s.slice(from, end);
}

/**
 * The contract for values handed to routes: a leaf (no delimiter left in it)
 * is unescaped; a value that still has structure (a whole field or component
 * with components or subcomponents) is returned as sent, escapes intact, so
 * that splitting it again stays correct.
 */
export function leaf(v: string, d: Hl7Delimiters): string {
  if (v === '') return v;
  if (v.includes(d.component) || v.includes(d.subcomponent) || v.includes(d.repetition)) return v;
  return unescapeHl7(v, d);
}

/** Index (0-based) of the first repetition matching the selector, or -1. */
export function selectRepetition(reps: readonly string[], sel: RepetitionSelector, d: Hl7Delimiters): number {
  for (let i = 0; i < reps.length; i++) {
    const c = leaf(nth(reps[i]!, d.component, sel.component), d);
    if (sel.values.includes(c)) return i;
  }
  return -1;
}

/**
 * The first repetition of a field's raw text that matches the selector, or
 * undefined. One left-to-right pass over the characters that stops at the
 * match: nothing is split off and nothing is allocated per repetition (a
 * component without an escape sequence is compared where it stands), so a
 * field with 100,000 repetitions costs one scan, not an array, and no search
 * runs past the repetition it is in.
 */
export function findRepetition(f: string, sel: RepetitionSelector, d: Hl7Delimiters): string | undefined {
  const REP = d.repetition.charCodeAt(0);
  const COMP = d.component.charCodeAt(0);
  let repStart = 0;
  let compNo = 1;
  let compStart = 0;
  // Position of the next escape character at or after compStart (-1: none left), kept so the search stays linear.
  let nextEsc = -2;
  const n = f.length;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? f.charCodeAt(i) : REP;
    if (c !== COMP && c !== REP) continue;
    if (compNo === sel.component) {
      if (nextEsc !== -1 && nextEsc < compStart) nextEsc = f.indexOf(d.escape, compStart);
      const plain = nextEsc < 0 || nextEsc >= i;
      // Without an escape the leaf rule returns the text as sent, so comparing in place is the same test.
      const hit = plain ? matchesAt(f, compStart, i, sel.values) : sel.values.includes(leaf(f.slice(compStart, i), d));
      if (hit) {
        const end = c === REP ? i : f.indexOf(d.repetition, i);
        return f.slice(repStart, end < 0 ? n : end);
      }
    }
    if (c === REP) {
      repStart = i + 1;
      compNo = 1;
    } else compNo++;
    compStart = i + 1;
  }
  return undefined;
}

/** True when f[start, end) equals one of `values`, compared in place. */
function matchesAt(f: string, start: number, end: number, values: readonly string[]): boolean {
  const len = end - start;
  for (const v of values) if (v.length === len && f.startsWith(v, start)) return true;
  return false;
}

/**
 * Component `comp` (and subcomponent `sub`) of every repetition of a field's
 * raw text, leaf rule applied, in one left-to-right pass over its characters:
 * no array of repetitions and no per-repetition rescans. A repetition
 * without that component gives ''. Without `comp`, each whole repetition.
 */
export function componentOfEach(f: string, d: Hl7Delimiters, comp?: number, sub?: number): string[] {
  const out: string[] = [];
  if (comp === undefined) {
    for (const r of f.split(d.repetition)) out.push(leaf(r, d));
    return out;
  }
  const REP = d.repetition.charCodeAt(0);
  const COMP = d.component.charCodeAt(0);
  const n = f.length;
  let compNo = 1;
  let compStart = 0;
  let taken = false;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? f.charCodeAt(i) : REP;
    if (c !== COMP && c !== REP) continue;
    if (compNo === comp) {
      const v = f.slice(compStart, i);
      out.push(leaf(sub === undefined ? v : nth(v, d.subcomponent, sub), d));
      taken = true;
    }
    if (c === REP) {
      if (!taken) out.push('');
      taken = false;
      compNo = 1;
    } else compNo++;
    compStart = i + 1;
  }
  return out;
}

/** Component/subcomponent of one repetition, with the leaf rule applied unless `raw`. */
export function within(rep: string, d: Hl7Delimiters, component?: number, sub?: number, raw = false): string {
  const v = component === undefined ? rep : sub === undefined ? nth(rep, d.component, component) : nth(nth(rep, d.component, component), d.subcomponent, sub);
  return raw ? v : leaf(v, d);
}

/** Repetitions of a field's raw text; an empty field has none. */
export function repetitionsOf(f: string | undefined, d: Hl7Delimiters): string[] {
  return f ? f.split(d.repetition) : [];
}

function padTo(arr: string[], len: number): void {
  while (arr.length < len) arr.push('');
}

/** Where a value is written: a repetition (or a selector) and optional component/subcomponent. */
export interface WriteTarget {
  field: number;
  repetition?: number;
  selector?: RepetitionSelector;
  component?: number;
  subcomponent?: number;
}

/**
 * Writes an (unescaped) value into a field array in place. A selector that
 * matches no repetition appends one carrying the selector's first value, so
 * `set('PID-3[5=NI].1', id)` creates the NI identifier when it is missing.
 */
export function writeValue(fields: string[], t: WriteTarget, value: string, d: Hl7Delimiters): void {
  padTo(fields, t.field + 1);
  const reps = fields[t.field] === '' ? [''] : fields[t.field]!.split(d.repetition);
  let r: number;
  if (t.selector) {
    r = selectRepetition(reps, t.selector, d);
    if (r < 0) {
      if (reps.length !== 1 || reps[0] !== '') reps.push('');
      r = reps.length - 1;
      const comps: string[] = [];
      padTo(comps, t.selector.component);
      comps[t.selector.component - 1] = escapeHl7(t.selector.values[0]!, d);
      reps[r] = comps.join(d.component);
    }
  } else {
    r = (t.repetition ?? 1) - 1;
    padTo(reps, r + 1);
  }
  const escaped = escapeHl7(value, d);
  if (t.component === undefined) {
    reps[r] = escaped;
  } else {
    const comps = reps[r]!.split(d.component);
    padTo(comps, t.component);
    if (t.subcomponent === undefined) {
      comps[t.component - 1] = escaped;
    } else {
      const subs = comps[t.component - 1]!.split(d.subcomponent);
      padTo(subs, t.subcomponent);
      subs[t.subcomponent - 1] = escaped;
      comps[t.component - 1] = subs.join(d.subcomponent);
    }
    reps[r] = comps.join(d.component);
  }
  fields[t.field] = reps.join(d.repetition);
}

/** Rebuilds a segment's text from its field array (MSH-1 is the separator itself, not a field to join). */
export function joinFields(fields: readonly string[], d: Hl7Delimiters): string {
  if (fields[0] === 'MSH') return 'MSH' + d.field + fields.slice(2).join(d.field);
  return fields.join(d.field);
}
