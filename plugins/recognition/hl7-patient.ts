/**
 * Patient identity read from PID, shared by the upload and check plugins:
 * in-hospital id (PID-3 type PI, else the first), name (PID-5.1 + PID-5.2)
 * and the preferred identity document with its card type (SPEC §2.3, §4).
 */
import type { Hl7Message, Hl7Segment } from '../../core/hl7/index.js';

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
  // One pass over PID-3 (a sender may put 100,000 repetitions there): never get(3, r, ...) per repetition.
  // The identifiers themselves are listed only when a repetition's type asks for one.
  const types = pid.getRepetitions(3, 5);
  let values: string[] | undefined;
  let patientId = '';
  let idNumber = '';
  let idType = '';
  let rank = Infinity;
  const order = new Map(Object.keys(cardTypes).map((t, i) => [t, i]));
  for (let r = 0; r < types.length; r++) {
    const type = types[r]!.trim().toUpperCase();
    const card = Object.hasOwn(cardTypes, type) ? cardTypes[type] : undefined;
    const k = order.get(type) ?? -1;
    const wanted = (type === 'PI' && !patientId) || (card !== undefined && k < rank);
    if (!wanted) continue;
    values ??= pid.getRepetitions(3, 1);
    const value = values[r]!;
    if (type === 'PI' && !patientId) patientId = value;
    if (card && value && k < rank) {
      rank = k;
      idNumber = value;
      idType = card;
    }
  }
  if (!patientId) patientId = pid.get(3, 1, 1);
  return compact({
    patientId,
    name: `${pid.get(5, 1, 1)}${pid.get(5, 1, 2)}`,
    idNumber,
    idType,
    sex: pid.get(8),
    birthDate: pid.get(7, 1, 1).slice(0, 8),
  });
}

