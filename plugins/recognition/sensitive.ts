/**
 * Sensitive-record list: diagnoses and test codes whose records must not
 * leave the hospital unguarded. The default follows seed 002's rule (severe
 * mental disorders, tuberculosis, HIV/AIDS are not opened to self-service
 * queries): ICD-10 F20-F29, F30-F31, A15-A19, B20-B24, Z21.
 *
 * Two more disorders of the national list of six severe mental disorders
 * (严重精神障碍: schizophrenia, schizoaffective disorder, persistent
 * delusional disorder, bipolar disorder, psychotic disorder due to epilepsy,
 * intellectual disability with psychotic disorder) are not one code but a
 * combination, so they are combinations: a record is sensitive when it
 * carries a code of every condition (DEFAULT_SENSITIVE_COMBINATIONS).
 *
 * Entry syntax (case-insensitive): `F20-F29` an ICD-10 category range,
 * `Z21` an ICD-10 category (matches Z21 and Z21.x), `F32.3` an ICD-10
 * subcategory (F32.3, F323, F32.300…), `F06.0-F06.2` a subcategory range
 * within one category, `HIV*` a prefix, any other text an exact code
 * (`LAB0402`, `HIV-AB`).
 */
import { componentOfEach, leaf, nth, TimeSlice, type Hl7Message, type Hl7Segment } from '../../core/sdk.js';

export const DEFAULT_SENSITIVE_CODES: readonly string[] = Object.freeze(['F20-F29', 'F30-F31', 'A15-A19', 'B20-B24', 'Z21']);

/**
 * A record is sensitive when, for every condition in `all`, one of its codes
 * matches that condition (an entry, or a list of entries of which any may
 * match). Codes may come from different fields and segments of the message.
 */
export interface SensitiveCombination {
  /** Shown in documentation and config errors; never in logs with the codes. */
  name?: string;
  all: (string | string[])[];
}

/**
 * Psychotic codes for the intellectual-disability combination: the
 * schizophrenia spectrum F20-F29, mania and bipolar disorder F30-F31 (their
 * psychotic subtypes F30.2, F31.2, F31.5 included), organic hallucinosis,
 * catatonic and delusional disorders F06.0-F06.2, and severe depression with
 * psychotic symptoms F32.3 / F33.3. Substance-induced psychoses (F1x.5) are
 * left out: the national list does not count them.
 */
export const PSYCHOTIC_CODES: readonly string[] = Object.freeze(['F20-F29', 'F30-F31', 'F06.0-F06.2', 'F32.3', 'F33.3']);

export const DEFAULT_SENSITIVE_COMBINATIONS: readonly SensitiveCombination[] = Object.freeze([
  // 癫痫所致精神障碍: a mental disorder due to brain disease (F06) recorded together with epilepsy (G40).
  { name: 'psychotic disorder with epilepsy', all: ['F06', 'G40'] },
  // 精神发育迟滞伴发精神障碍: intellectual disability (F70-F79) with a psychotic disorder.
  { name: 'intellectual disability with psychotic disorder', all: ['F70-F79', [...PSYCHOTIC_CODES]] },
]);

/**
 * Where codes are read by default: diagnoses (DG1-3), the reason for the
 * order (OBR-31), the ordered item (OBR-4), the observation (OBX-3) and
 * coded answers (OBX-5 of CE/CWE values).
 */
export const DEFAULT_CODE_FIELDS: readonly { segment: string; field: number }[] = Object.freeze([
  { segment: 'DG1', field: 3 },
  { segment: 'OBR', field: 31 },
  { segment: 'OBR', field: 4 },
  { segment: 'OBX', field: 3 },
]);

type Rule = (code: string) => boolean;

const ICD_CATEGORY = /^([A-Z])(\d{2})$/;
const ICD_RANGE = /^([A-Z])(\d{2})-([A-Z])(\d{2})$/;
const ICD_SUB = /^([A-Z]\d{2})\.(\w+)$/;
const ICD_SUB_RANGE = /^([A-Z]\d{2})\.(\d)-([A-Z]\d{2})\.(\d)$/;
const ICD_SHAPED = /^[A-Z]\d{2}\.?\w*$/;

// The rules of a list are tried one after the other on the same code: the last code's
// ICD forms are kept, so each code is matched against the ICD patterns once, not once per rule.
let plainOf: string | undefined;
let plainValue: string | undefined;
let keyOf: string | undefined;
let keyValue: number | undefined;

/** An ICD-10 code without its dot (F32.300 → F32300); undefined when not ICD-shaped. */
function icdPlain(code: string): string | undefined {
  if (code !== plainOf) {
    plainOf = code;
    plainValue = ICD_SHAPED.test(code) ? code.replace('.', '') : undefined;
  }
  return plainValue;
}

/** Letter and two digits of an ICD-10 code as a comparable number (A00 → 0, Z99 → 2599); undefined when not ICD-shaped. */
function icdKey(code: string): number | undefined {
  if (code !== keyOf) {
    keyOf = code;
    const m = /^([A-Z])(\d{2})(?:\.?\w*)?$/.exec(code);
    keyValue = m ? (m[1]!.charCodeAt(0) - 65) * 100 + Number(m[2]) : undefined;
  }
  return keyValue;
}

function compileEntry(entry: string): Rule {
  const e = entry.trim().toUpperCase();
  const range = ICD_RANGE.exec(e);
  if (range) {
    const lo = (range[1]!.charCodeAt(0) - 65) * 100 + Number(range[2]);
    const hi = (range[3]!.charCodeAt(0) - 65) * 100 + Number(range[4]);
    return (c) => {
      const k = icdKey(c);
      return k !== undefined && k >= lo && k <= hi;
    };
  }
  const subRange = ICD_SUB_RANGE.exec(e);
  if (subRange) {
    if (subRange[1] !== subRange[3] || subRange[2]! > subRange[4]!) throw new Error(`"${entry}": a subcategory range stays within one category, low to high (e.g. F06.0-F06.2)`);
    const cat = subRange[1]!;
    const lo = subRange[2]!;
    const hi = subRange[4]!;
    return (c) => {
      const p = icdPlain(c);
      const d = p?.charAt(3) ?? '';
      return p !== undefined && p.startsWith(cat) && /\d/.test(d) && d >= lo && d <= hi;
    };
  }
  const sub = ICD_SUB.exec(e);
  if (sub) {
    const want = `${sub[1]}${sub[2]}`;
    return (c) => c === e || (icdPlain(c)?.startsWith(want) ?? false);
  }
  if (ICD_CATEGORY.test(e)) return (c) => c === e || c.startsWith(`${e}.`) || (c.startsWith(e) && /^\d$/.test(c.charAt(3)));
  if (e.endsWith('*')) {
    const prefix = e.slice(0, -1);
    return (c) => c.startsWith(prefix);
  }
  return (c) => c === e;
}

/** Letter and two digits at the start of a code as a number (A00 → 0, Z99 → 2599), or -1. */
function categoryKey(c: string): number {
  if (c.length < 3) return -1;
  const a = c.charCodeAt(0) - 65;
  const d1 = c.charCodeAt(1) - 48;
  const d2 = c.charCodeAt(2) - 48;
  if (a < 0 || a > 25 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return -1;
  return a * 100 + d1 * 10 + d2;
}

/**
 * The ICD-10 categories (A00-Z99 as numbers) a code must start with to match
 * the entry, or undefined when it may match a code that starts otherwise
 * (a short prefix `HIV*`, an exact non-ICD code). Every ICD form of
 * compileEntry only matches codes that start with its category.
 */
function entryCategories(entry: string): [number, number] | undefined {
  const e = entry.trim().toUpperCase();
  const range = ICD_RANGE.exec(e);
  if (range) return [(range[1]!.charCodeAt(0) - 65) * 100 + Number(range[2]), (range[3]!.charCodeAt(0) - 65) * 100 + Number(range[4])];
  const prefix = e.endsWith('*') ? e.slice(0, -1) : e;
  const k = categoryKey(prefix);
  return k >= 0 ? [k, k] : undefined;
}

export interface SensitiveMatcher {
  /** True when the code is on the list. */
  test(code: string): boolean;
  /** Sensitive codes found in the message, deduplicated, in message order. */
  scan(msg: Hl7Message, fields?: readonly { segment: string; field: number }[]): string[];
  /** The same as `scan`, giving the event loop a turn every few milliseconds (a 100,000-OBX report must not stall other traffic). */
  scanYielding(msg: Hl7Message, fields?: readonly { segment: string; field: number }[]): Promise<string[]>;
}

/** Compiles a list and its combinations; throws on an empty or malformed entry so a typo fails at load. */
export function compileSensitiveList(entries: readonly string[], combinations: readonly SensitiveCombination[] = []): SensitiveMatcher {
  const rules = entries.map((e, i) => {
    if (!e.trim()) throw new Error(`sensitive code #${i + 1} is empty`);
    return compileEntry(e);
  });
  const anyOf = (list: Rule[]) => (c: string) => list.some((r) => r(c));
  const combos = combinations.map((combo, i) => {
    const label = combo.name ? `"${combo.name}"` : `#${i + 1}`;
    if (!Array.isArray(combo.all) || combo.all.length < 2) throw new Error(`sensitive combination ${label} needs at least two conditions in all`);
    return combo.all.map((cond, j) => {
      const list = Array.isArray(cond) ? cond : [cond];
      if (list.length === 0 || list.some((e) => typeof e !== 'string' || !e.trim())) throw new Error(`sensitive combination ${label} condition #${j + 1} is empty`);
      return anyOf(list.map(compileEntry));
    });
  });
  const norm = (code: string): string => code.trim().toUpperCase();
  const test = (code: string): boolean => {
    const c = norm(code);
    return c !== '' && rules.some((r) => r(c));
  };
  // A code that matches neither the list nor any condition of a combination can never be in the answer.
  const conditions = combos.flat();
  // A quick refusal first: when every entry is an ICD form, a code outside their categories matches none
  // (a 100,000-result report has 100,000 item codes, nearly none of them ICD codes on the list).
  const every = [...entries, ...combinations.flatMap((c) => c.all.flatMap((x) => (Array.isArray(x) ? x : [x])))].map(entryCategories);
  let categories: Uint8Array | undefined;
  if (every.every((r) => r !== undefined)) {
    categories = new Uint8Array(2600);
    for (const [lo, hi] of every as [number, number][]) categories.fill(1, lo, hi + 1);
  }
  const candidate = (code: string): boolean => {
    const c = norm(code);
    if (categories) {
      const k = categoryKey(c);
      if (k < 0 || categories[k] === 0) return false;
    }
    return c !== '' && (rules.some((r) => r(c)) || conditions.some((cond) => cond(c)));
  };
  // Linear in the message: one pass per field over its repetitions; every candidate code once, in message order.
  // Only candidates are kept: a 100,000-result report kept 100,000 codes alive during the scan, for the garbage collector to copy.
  const scanSegment = (seg: Hl7Segment, fields: readonly { segment: string; field: number }[], seen: Set<string>, codes: string[]): void => {
    const add = (value: string): void => {
      const code = value.trim();
      if (code && !seen.has(code) && candidate(code)) seen.add(code), codes.push(code);
    };
    for (const f of fields) {
      if (f.segment !== seg.name) continue;
      // Both the identifier and the alternate identifier (CWE-1, CWE-4) may carry the code.
      const ids = seg.getRepetitions(f.field, 1);
      const alternates = seg.getRepetitions(f.field, 4);
      for (let r = 0; r < ids.length; r++) {
        add(ids[r]!);
        add(alternates[r]!);
      }
    }
    if (seg.name === 'OBX') {
      const type = seg.get(2);
      if (type === 'CE' || type === 'CWE') add(seg.get(5, 1, 1));
    }
  };
  /**
   * scanSegment for the segment at position i, reading the few fields it
   * needs from the segment's text: no Hl7Segment and no split of every field
   * (a 100,000-OBX report split 1.2 million fields for three of them). The
   * values are the ones Hl7Segment.getRepetitions and get give.
   */
  const scanAt = (msg: Hl7Message, i: number, fields: readonly { segment: string; field: number }[], seen: Set<string>, codes: string[]): void => {
    const name = msg.segmentName(i);
    // MSH-1 and MSH-2 shift MSH's field numbers: read as a segment.
    if (name === 'MSH') return scanSegment(msg.segmentAt(i)!, fields, seen, codes);
    const d = msg.delimiters;
    const add = (value: string): void => {
      const code = value.trim();
      if (code && !seen.has(code) && candidate(code)) seen.add(code), codes.push(code);
    };
    let line: string | undefined;
    for (const f of fields) {
      if (f.segment !== name) continue;
      line ??= msg.segmentText(i);
      const ft = nth(line, d.field, f.field + 1);
      if (!ft) continue;
      if (!ft.includes(d.repetition)) {
        add(leaf(nth(ft, d.component, 1), d));
        add(leaf(nth(ft, d.component, 4), d));
        continue;
      }
      const ids = componentOfEach(ft, d, 1);
      const alternates = componentOfEach(ft, d, 4);
      for (let r = 0; r < ids.length; r++) {
        add(ids[r]!);
        add(alternates[r]!);
      }
    }
    if (name === 'OBX') {
      line ??= msg.segmentText(i);
      const type = leaf(nth(nth(line, d.field, 3), d.repetition, 1), d);
      if (type === 'CE' || type === 'CWE') add(leaf(nth(nth(nth(line, d.field, 6), d.repetition, 1), d.component, 1), d));
    }
  };
  // The codes on the list, plus every code of a combination that holds (each condition met by some code).
  const sensitiveOf = (codes: string[]): string[] => {
    const hit = new Set(codes.filter(test));
    for (const conds of combos) {
      const matched = conds.map((cond) => codes.filter((c) => cond(norm(c))));
      if (matched.every((m) => m.length > 0)) for (const m of matched) for (const c of m) hit.add(c);
    }
    return codes.filter((c) => hit.has(c));
  };
  return {
    test,
    scan(msg, fields = DEFAULT_CODE_FIELDS) {
      const seen = new Set<string>();
      const codes: string[] = [];
      for (let i = 0, n = msg.segmentCount; i < n; i++) scanAt(msg, i, fields, seen, codes);
      return sensitiveOf(codes);
    },
    async scanYielding(msg, fields = DEFAULT_CODE_FIELDS) {
      const seen = new Set<string>();
      const codes: string[] = [];
      const slice = new TimeSlice();
      for (let i = 0, n = msg.segmentCount; i < n; i++) {
        scanAt(msg, i, fields, seen, codes);
        if (slice.due()) await slice.pause();
      }
      // The same as sensitiveOf, in slices: 100,000 distinct codes against the list took ~100 ms in one go.
      const hit = new Set<string>();
      for (const c of codes) {
        if (test(c)) hit.add(c);
        if (slice.due()) await slice.pause();
      }
      for (const conds of combos) {
        const matched: string[][] = [];
        for (const cond of conds) {
          const m: string[] = [];
          for (const c of codes) {
            if (cond(norm(c))) m.push(c);
            if (slice.due()) await slice.pause();
          }
          matched.push(m);
        }
        if (matched.every((m) => m.length > 0)) for (const m of matched) for (const c of m) hit.add(c);
      }
      return codes.filter((c) => hit.has(c));
    },
  };
}
