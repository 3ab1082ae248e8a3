/**
 * Sensitive-record list: diagnoses and test codes whose records must not
 * leave the hospital unguarded. The default follows seed 002's rule (severe
 * mental disorders, tuberculosis, HIV/AIDS are not opened to self-service
 * queries): ICD-10 F20-F29, F30-F31, A15-A19, B20-B24, Z21.
 *
 * Entry syntax (case-insensitive): `F20-F29` an ICD-10 category range,
 * `Z21` an ICD-10 category (matches Z21 and Z21.x), `HIV*` a prefix, any
 * other text an exact code (`LAB0402`, `HIV-AB`).
 */
import { TimeSlice } from '../../core/cooperative.js';
import type { Hl7Message, Hl7Segment } from '../../core/hl7/index.js';

export const DEFAULT_SENSITIVE_CODES: readonly string[] = Object.freeze(['F20-F29', 'F30-F31', 'A15-A19', 'B20-B24', 'Z21']);

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

/** Letter and two digits of an ICD-10 code as a comparable number (A00 → 0, Z99 → 2599); undefined when not ICD-shaped. */
function icdKey(code: string): number | undefined {
  const m = /^([A-Z])(\d{2})(?:\.?\w*)?$/.exec(code);
  return m ? (m[1]!.charCodeAt(0) - 65) * 100 + Number(m[2]) : undefined;
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
  if (ICD_CATEGORY.test(e)) return (c) => c === e || c.startsWith(`${e}.`) || (c.startsWith(e) && /^\d$/.test(c.charAt(3)));
  if (e.endsWith('*')) {
    const prefix = e.slice(0, -1);
    return (c) => c.startsWith(prefix);
  }
  return (c) => c === e;
}

export interface SensitiveMatcher {
  /** True when the code is on the list. */
  test(code: string): boolean;
  /** Sensitive codes found in the message, deduplicated, in message order. */
  scan(msg: Hl7Message, fields?: readonly { segment: string; field: number }[]): string[];
  /** The same as `scan`, giving the event loop a turn every few milliseconds (a 100,000-OBX report must not stall other traffic). */
  scanYielding(msg: Hl7Message, fields?: readonly { segment: string; field: number }[]): Promise<string[]>;
}

/** Compiles a list; throws on an empty entry so a typo fails at load. */
export function compileSensitiveList(entries: readonly string[]): SensitiveMatcher {
  const rules = entries.map((e, i) => {
    if (!e.trim()) throw new Error(`sensitive code #${i + 1} is empty`);
    return compileEntry(e);
  });
  const test = (code: string): boolean => {
    const c = code.trim().toUpperCase();
    return c !== '' && rules.some((r) => r(c));
  };
  // Linear in the message: one pass per field over its repetitions, a set for the codes already found.
  const scanSegment = (seg: Hl7Segment, fields: readonly { segment: string; field: number }[], found: Set<string>): void => {
    const check = (value: string): void => {
      const code = value.trim();
      if (code && !found.has(code) && test(code)) found.add(code);
    };
    for (const f of fields) {
      if (f.segment !== seg.name) continue;
      // Both the identifier and the alternate identifier (CWE-1, CWE-4) may carry the code.
      const ids = seg.getRepetitions(f.field, 1);
      const alternates = seg.getRepetitions(f.field, 4);
      for (let r = 0; r < ids.length; r++) {
        check(ids[r]!);
        check(alternates[r]!);
      }
    }
    if (seg.name === 'OBX') {
      const type = seg.get(2);
      if (type === 'CE' || type === 'CWE') check(seg.get(5, 1, 1));
    }
  };
  return {
    test,
    scan(msg, fields = DEFAULT_CODE_FIELDS) {
      const found = new Set<string>();
      for (const seg of msg.segments()) scanSegment(seg, fields, found);
      return [...found];
    },
    async scanYielding(msg, fields = DEFAULT_CODE_FIELDS) {
      const found = new Set<string>();
      const slice = new TimeSlice();
      for (const seg of msg.eachSegment()) {
        scanSegment(seg, fields, found);
        if (slice.due()) await slice.pause();
      }
      return [...found];
    },
  };
}
