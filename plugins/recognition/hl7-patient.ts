/**
 * Patient identity read from PID, shared by the upload and check plugins:
 * in-hospital id (PID-3 type PI, else the first), name (PID-5.1 + PID-5.2)
 * and the preferred identity document with its card type (SPEC §2.3, §4).
 */
import { type Hl7Delimiters, type Hl7Message, type Hl7Segment, leaf } from '../../core/sdk.js';

export type Json = Record<string, unknown>;

/** Identifier type (PID-3.5 / STF-2.5) → card type code (SPEC §2.3); order = preference. */
export const DEFAULT_CARD_TYPES: Readonly<Record<string, string>> = Object.freeze({
  NI: '01', ID: '01', SFZ: '01', HKB: '02', PPN: '03', JZ: '04', MIL: '04', DL: '05', HKM: '06', TW: '07', HKMTID: '08',
});

/** Drops keys whose value is '' or undefined (optional fields stay absent rather than empty). */
export function compact<T extends Json>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== '' && v !== undefined)) as T;
}

/** First segment named `name`. */
export function first(msg: Hl7Message, name: string): Hl7Segment | undefined {
  return msg.segment(name);
}

/** Patient identity from PID: in-hospital id (type PI, else the first), name, best identity document. */
export function patientRef(msg: Hl7Message, cardTypes: Readonly<Record<string, string>>): Json {
  const pid = first(msg, 'PID');
  if (!pid) return {};
  const id = scanPid3(pid.raw(3), msg.delimiters, cardTypes);
  return compact({
    patientId: id.patientId || pid.get(3, 1, 1),
    name: `${pid.get(5, 1, 1)}${pid.get(5, 1, 2)}`,
    idNumber: id.idNumber,
    idType: id.idType,
    sex: pid.get(8),
    birthDate: pid.get(7, 1, 1).slice(0, 8),
  });
}

/** ASCII upper case of a character code. */
function upper(c: number): number {
  return c >= 0x61 && c <= 0x7a ? c - 32 : c;
}

/** Identifier types longer than the longest configured one by more than this (blanks, escapes) are not read. */
const TYPE_SLACK = 8;

/**
 * One left-to-right pass over PID-3's text (a sender may put 100,000
 * repetitions there, issue 11): the repetitions are found with indexOf and
 * their components by walking that repetition's characters only, so every
 * character is visited at most twice and nothing is built per repetition
 * except the short identifier type. The pass stops as soon as it holds the PI
 * identifier and the most preferred identity document (the first type in
 * `cardTypes`); otherwise it reads to the end of the field.
 */
export function scanPid3(f: string, d: Hl7Delimiters, cardTypes: Readonly<Record<string, string>>): { patientId: string; idNumber: string; idType: string } {
  const order = new Map(Object.keys(cardTypes).map((t, i) => [t, i]));
  let longest = 2;
  for (const t of order.keys()) longest = Math.max(longest, t.length);
  const COMP = d.component.charCodeAt(0);
  const ESC = d.escape.charCodeAt(0);
  // The first two characters (upper-cased) of every type that can matter: a repetition whose type starts
  // otherwise is passed over without building its type string (100,000 MR repetitions made 400,000 strings).
  const wanted = [...order.keys(), 'PI'].map((t) => t.toUpperCase());
  const heads = wanted.every((t) => t.length >= 2) ? new Set(wanted.map((t) => upper(t.charCodeAt(0)) * 65536 + upper(t.charCodeAt(1)))) : undefined;
  let patientId = '';
  let idNumber = '';
  let idType = '';
  let rank = Infinity;
  const n = f.length;
  let start = 0;
  while (n > 0 && start <= n) {
    let end = f.indexOf(d.repetition, start);
    if (end < 0) end = n;
    // Component 1 ends at the first component separator; component 5 starts after the fourth.
    let firstEnd = -1;
    let typeStart = -1;
    let typeEnd = end;
    let comp = 1;
    for (let i = start; i < end; i++) {
      if (f.charCodeAt(i) !== COMP) continue;
      if (comp === 1) firstEnd = i;
      comp++;
      if (comp === 5) typeStart = i + 1;
      else if (comp === 6) {
        typeEnd = i;
        break;
      }
    }
    if (heads && typeStart >= 0 && typeEnd - typeStart >= 2) {
      const c0 = f.charCodeAt(typeStart);
      const c1 = f.charCodeAt(typeStart + 1);
      // Printable ASCII, not the escape character: the type's text starts with these two characters as they are.
      if (c0 > 0x20 && c0 < 0x7f && c1 > 0x20 && c1 < 0x7f && c0 !== ESC && c1 !== ESC && !heads.has(upper(c0) * 65536 + upper(c1))) {
        start = end + 1;
        continue;
      }
    }
    if (typeStart >= 0 && typeEnd - typeStart <= longest + TYPE_SLACK) {
      const type = leaf(f.slice(typeStart, typeEnd), d).trim().toUpperCase();
      const isPi = type === 'PI' && !patientId;
      const k = order.get(type);
      const isDoc = k !== undefined && k < rank && Object.hasOwn(cardTypes, type);
      if (isPi || isDoc) {
        const value = leaf(f.slice(start, firstEnd < 0 ? end : firstEnd), d);
        if (isPi) patientId = value;
        if (isDoc && value) {
          rank = k;
          idNumber = value;
          idType = cardTypes[type]!;
        }
        if (patientId && rank === 0) break;
      }
    }
    start = end + 1;
  }
  return { patientId, idNumber, idType };
}
