import { describe, expect, it } from 'vitest';
import { parseHl7 } from '../../core/hl7/index.js';
import { DEFAULT_CARD_TYPES, patientRef, scanPid3 } from '../../plugins/recognition/hl7-patient.js';
import { DEFAULT_DELIMITERS } from '../../core/hl7/delimiters.js';
import { leaf, nth } from '../../core/hl7/fields.js';

const d = DEFAULT_DELIMITERS;

/** The plain definition: every repetition, PI first seen, the most preferred document with a value. */
function reference(f: string, cardTypes: Record<string, string>) {
  const order = Object.keys(cardTypes);
  let patientId = '';
  let idNumber = '';
  let idType = '';
  let rank = Infinity;
  for (const r of f ? f.split('~') : []) {
    const type = leaf(nth(r, '^', 5), d).trim().toUpperCase();
    const value = leaf(nth(r, '^', 1), d);
    if (type === 'PI' && !patientId) patientId = value;
    const k = order.indexOf(type);
    if (k >= 0 && k < rank && value) {
      rank = k;
      idNumber = value;
      idType = cardTypes[type]!;
    }
  }
  return { patientId, idNumber, idType };
}

function msgWith(pid3: string) {
  return parseHl7(`MSH|^~\\&|HIS|H|R|F|20250101||ADT^A04|C1|P|2.5\rPID|1||${pid3}||王^小明||19900315|M\r`);
}

describe('patientRef reads PID-3 in one bounded pass (issue 11)', () => {
  const cases = [
    '',
    'P1',
    'P1^^^H^PI',
    'X1^^^H^MR~P2^^^H^PI~D9^^^H^DL~N1^^^H^NI',
    '^^^H^NI~N2^^^H^NI~P3^^^H^ pi ',
    'D1^^^H^DL~P4^^^H^PI~P5^^^H^PI~I1^^^H^ID',
    'A\\T\\B^^^H^PI~Z^^^H^N\\T\\I',
    'P6&SUB^^^H^PI~S1^^^H^SFZ^extra~Q^^^H^PPN',
    'only^^^H~^^^~~',
    // Types passed over by their first two characters, and the ones that must not be.
    'P9^^^H^pi~N3^^^H^ni~H1^^^H^hkb',
    'M1^^^H^MI~M2^^^H^MIL~X^^^H^MR~Y^^^H^P',
    'E1^^^H^\\E\\NI~E2^^^H^N\\E\\I~S1^^^H^ sfz~S2^^^H^SF',
    'Q1^^^H^PP~Q2^^^H^PPN&x~Q3^^^H^PI&y',
  ];
  for (const f of cases) {
    it(`agrees with the plain definition: "${f}"`, () => {
      expect(scanPid3(f, d, DEFAULT_CARD_TYPES)).toEqual(reference(f, { ...DEFAULT_CARD_TYPES }));
    });
  }

  it('falls back to the first identifier without a PI, and keeps name, sex and birth date', () => {
    expect(patientRef(msgWith('X1^^^H^MR~N1^^^H^NI'), DEFAULT_CARD_TYPES)).toEqual({ patientId: 'X1', name: '王小明', idNumber: 'N1', idType: '01', sex: 'M', birthDate: '19900315' });
  });

  it('finds PI and NI around 100,000 other repetitions', () => {
    const reps = Array.from({ length: 100_000 }, (_, i) => `M${i}^^^H^MR`);
    const ref = patientRef(msgWith(['N7^^^CHN^NI', ...reps, 'P7^^^HOSP^PI'].join('~')), DEFAULT_CARD_TYPES);
    expect(ref).toMatchObject({ patientId: 'P7', idNumber: 'N7', idType: '01' });
    // A less preferred document first, the preferred one last: still the preferred one.
    const late = patientRef(msgWith(['D7^^^H^DL', ...reps, 'N8^^^CHN^NI', 'P8^^^HOSP^PI'].join('~')), DEFAULT_CARD_TYPES);
    expect(late).toMatchObject({ patientId: 'P8', idNumber: 'N8', idType: '01' });
  });

  it('does not read an identifier type far longer than any configured one', () => {
    expect(scanPid3(`X^^^H^${' '.repeat(40)}NI`, d, DEFAULT_CARD_TYPES)).toEqual({ patientId: '', idNumber: '', idType: '' });
  });
});
