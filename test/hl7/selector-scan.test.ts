import { describe, expect, it } from 'vitest';
import { parseHl7 } from '../../core/hl7/index.js';
import { findRepetition, leaf, nth } from '../../core/hl7/fields.js';
import { DEFAULT_DELIMITERS } from '../../core/hl7/delimiters.js';

const d = DEFAULT_DELIMITERS;

/** The plain definition: split, unescape component `comp` of each repetition, first match. */
function reference(f: string, comp: number, values: string[]): string | undefined {
  return f.split('~').find((r) => values.includes(leaf(nth(r, '^', comp), d)));
}

describe('repetition selectors read in one pass (issue 11)', () => {
  it('agrees with split-and-compare on mixed repetitions, escapes and sub-components', () => {
    const reps = ['A1^^^H^MR', 'B2^^^H^N\\T\\I', 'C3^^^H^NI&X', 'D4^^^H', 'E5^^^H^NI', 'F6^^^H^PI', '', 'G7^^^H^A&B', 'H8^^^H^A\\T\\B'];
    const f = reps.join('~');
    // (An empty selector value is refused when the path is compiled, so it is not tried here.)
    for (const values of [['NI'], ['PI'], ['N&I'], ['NI&X'], ['A&B'], ['MR', 'PI'], ['ZZ']]) {
      expect(findRepetition(f, { component: 5, values }, d), values.join('|')).toBe(reference(f, 5, values));
    }
    expect(findRepetition(f, { component: 1, values: ['D4'] }, d)).toBe('D4^^^H');
  });

  it('finds the last of 100,000 repetitions, through the message API', () => {
    const reps = Array.from({ length: 100_000 }, (_, i) => `M${i}^^^H^MR`);
    reps.push('P42^^^HOSP^PI');
    const msg = parseHl7(`MSH|^~\\&|HIS|H|R|F|20250101||ADT^A04|C1|P|2.5\rPID|1||${reps.join('~')}||X^Y\r`);
    expect(msg.get('PID-3[5=PI].1')).toBe('P42');
    expect(msg.get('PID-3[5=NI|ID|SFZ].1')).toBe('');
    expect(msg.get('PID-3[5=MR].1')).toBe('M0');
  });
});
