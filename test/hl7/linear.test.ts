/**
 * Issue 11, "linear time everywhere": huge repetition and segment counts.
 * The correctness tests pin what the one-pass readers return; the growth
 * tests (see `growth`) compare how a step's time grows from N to 16N with a
 * plainly linear pass over the same text, with a generous bound, so that a
 * quadratic step fails by a wide margin and a noisy machine does not decide.
 * They are not timing gates: no absolute time is asserted.
 */
import { describe, expect, it } from 'vitest';
import { decodeHl7, parseHl7, type Hl7Message } from '../../core/hl7/index.js';
import { compileTemplate } from '../../core/template.js';
import { hl7Tree, MAX_TREE_SEGMENTS, renderTree } from '../../core/ops/console/hl7-tree.js';
import { isHisbridgeError } from '../../core/errors.js';
import { DEFAULT_CARD_TYPES, patientRef } from '../../plugins/recognition/hl7-patient.js';
import { labPayload, patientPayload, staffPayloads } from '../../plugins/recognition-upload/payload.js';
import { compileSensitiveList, DEFAULT_SENSITIVE_CODES } from '../../plugins/recognition/sensitive.js';
import { manyObxSegments, manyPid3Repetitions, syntheticIdNumber } from '../../bench/lib/pathological.js';

const parse = (text: string): Hl7Message => parseHl7(decodeHl7(Buffer.from(text, 'utf8'), 'utf-8').text);
const reportOptions = { cardTypes: DEFAULT_CARD_TYPES, findings: /FIND/i, impression: /IMP/i, mask: false };

/** Fastest of `runs` timings of fn, in ms. */
function fastest(fn: () => void, runs = 5): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

/** A plainly linear pass over the same text that allocates like a parser: segments, fields, repetitions. */
function reference(text: string): number {
  let n = 0;
  for (const line of text.split('\r')) for (const f of line.split('|')) n += f.split('~').length;
  return n;
}

interface Case {
  text: string;
  run(): void;
}

/**
 * How much faster than linear a step grows from N to 16N: its time relative
 * to `reference` on the same text, at 16N over at N. A linear step gives
 * about 1 (the reference absorbs the machine's noise, caches and garbage
 * collection, which hit both mostly alike; up to ~6 was seen for parsing on a
 * loaded machine); a quadratic one about 16 and more. The bound of 8 sits
 * between. No absolute time is asserted.
 */
function growth(prepare: (n: number) => Case, n: number): number {
  const cases = [prepare(n), prepare(16 * n)];
  // Fewer runs of the big case: a quadratic step then fails in seconds instead of minutes.
  const relative = cases.map((c, i) => {
    c.run();
    reference(c.text);
    const runs = i === 0 ? 7 : 3;
    return fastest(() => c.run(), runs) / Math.max(fastest(() => reference(c.text), runs), 0.01);
  });
  return relative[1]! / relative[0]!;
}

const LINEAR = 8;

describe('one-pass readers return the same values as before', () => {
  const msg = parse(manyPid3Repetitions(1000, 'ADT^A04', { patientId: 'P123' }));

  it('a selector finds the last repetition and the first, unescaped, and answers "" when none matches', () => {
    expect(msg.get('PID-3[5=PI].1')).toBe('P123');
    expect(msg.get('PID-3[5=NI|ID|SFZ].1')).toBe(syntheticIdNumber(1000));
    expect(msg.get('PID-3[5=XX].1')).toBe('');
    const esc = parse('MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5\rPID|1||A1^^^H^MR~B\\T\\2^^^H^PI~C3^^^H^NI\r');
    expect(esc.get('PID-3[5=PI].1')).toBe('B&2');
    expect(esc.get('PID-3[5=PI]')).toBe('B\\T\\2^^^H^PI');
    // A selector on component 1 of a field without components compares the whole repetition.
    const plain = parse('MSH|^~\\&|A|B|C|D|20250101||ADT^A04|1|P|2.5\rZZZ|a~b~c\r');
    expect(plain.get('ZZZ-1[1=c]')).toBe('c');
    expect(plain.get('ZZZ-1[2=c]')).toBe('');
  });

  it('getRepetitions lists one value per repetition', () => {
    const pid = msg.segment('PID')!;
    const ids = pid.getRepetitions(3, 1);
    expect(ids.length).toBe(1002);
    expect(ids[0]).toBe(syntheticIdNumber(1000));
    expect(ids[1001]).toBe('P123');
    expect(pid.getRepetitions(3, 5).slice(0, 3)).toEqual(['NI', 'MR', 'MR']);
    expect(pid.getRepetitions(4)).toEqual([]);
    expect(msg.segment('MSH')!.getRepetitions(2)).toEqual(['^~\\&']);
  });

  it('segment(name, n) is the nth segment of that name, in short and in long messages', () => {
    const long = parse(manyObxSegments(100));
    expect(long.segment('OBX', 100)!.get(1)).toBe('100');
    expect(long.segment('OBX', 101)).toBeUndefined();
    expect(long.get('OBX[77]-3.1')).toBe('T77');
    expect(long.get('NTE-3')).toBe('');
    expect([...long.eachSegment()].map((x) => x.name)).toEqual(long.segments().map((x) => x.name));
    expect([...long.eachSegment()].length).toBe(long.segmentCount);
  });

  it('the patient is found at the end of 100,000 repetitions, with its identity document', () => {
    const big = parse(manyPid3Repetitions(100_000, 'ORU^R01', { patientId: 'P777' }));
    expect(patientRef(big, DEFAULT_CARD_TYPES)).toMatchObject({ patientId: 'P777', idNumber: syntheticIdNumber(100_000), idType: '01', name: '测试患者' });
  });

  it('the staff identity document is read from STF-2 in one pass', () => {
    const reps = Array.from({ length: 500 }, (_, i) => `X${i}^^^H^MR`).concat(`${syntheticIdNumber(5)}^^^CHN^NI`).join('~');
    const mfn = parse(`MSH|^~\\&|HIS|H|R|F|20250101||MFN^M02|1|P|2.5\rMFI|STF\rMFE|MAD|||D01^王^医生\rSTF|D01|${reps}|王^医生\r`);
    expect(staffPayloads(mfn, {}, DEFAULT_CARD_TYPES)[0]).toMatchObject({ staffNo: 'D01', idNumber: syntheticIdNumber(5) });
  });

  it('a lab report with more results than maxResults is refused with RECOG_E_TOO_MANY_RESULTS; at the limit it is built', () => {
    const m = parse(manyObxSegments(50));
    expect((labPayload(m, {}, 'R1', 'F', { ...reportOptions, maxResults: 50 }).results as unknown[]).length).toBe(50);
    let err: unknown;
    try {
      labPayload(m, {}, 'R1', 'F', { ...reportOptions, maxResults: 49 });
    } catch (e) {
      err = e;
    }
    expect(isHisbridgeError(err) && err.code).toBe('RECOG_E_TOO_MANY_RESULTS');
    expect(String((err as Error).message)).toContain('more than 49 results');
  });

  it('lab results keep their fields and key order', () => {
    const m = parse('MSH|^~\\&|LIS|H|R|F|20250101||ORU^R01|1|P|2.5\rPID|1||P1^^^H^PI\rOBR|1|A|B|C^D\rOBX|1|NM|WBC^白细胞^L||6.5|10*9/L|3.5-9.5|N|||F|||20250101\rOBX|2|ST|X^^L||text\rOBX|3|ED|PDF^r^L||^application^pdf^Base64^AAAA\r');
    const results = labPayload(m, {}, 'R', 'F', reportOptions).results as Record<string, unknown>[];
    expect(results).toEqual([
      { seq: 1, code: 'WBC', name: '白细胞', valueType: 'NM', units: '10*9/L', range: '3.5-9.5', abnormalFlag: 'N', status: 'F', observedAt: '20250101', value: '6.5' },
      { seq: 2, code: 'X', valueType: 'ST', value: 'text' },
    ]);
    expect(Object.keys(results[0]!)).toEqual(['seq', 'code', 'name', 'valueType', 'units', 'range', 'abnormalFlag', 'status', 'observedAt', 'value']);
  });

  it('the sensitive scan finds a code in the last of many repetitions and in a CE answer, each once', () => {
    const list = compileSensitiveList(DEFAULT_SENSITIVE_CODES);
    const reps = Array.from({ length: 2000 }, (_, i) => `I10.${i}^^I10`).concat('X^^L^A15.0^^I10', 'A15.0^^I10').join('~');
    const m = parse(`MSH|^~\\&|LIS|H|R|F|20250101||ORU^R01|1|P|2.5\rPID|1||P1^^^H^PI\rDG1|1||${reps}\rOBX|1|CE|Q^^L||B20^HIV^I10\r`);
    expect(list.scan(m)).toEqual(['A15.0', 'B20']);
  });
});

describe('long loops give the event loop a turn', () => {
  it('the sensitive scan of a 100,000-OBX report lets timers run meanwhile, and finds what scan finds', async () => {
    const list = compileSensitiveList(DEFAULT_SENSITIVE_CODES);
    const lines = manyObxSegments(100_000).split('\r');
    lines.splice(50_000, 0, 'DG1|1||B20^HIV^I10');
    const m = parse(lines.join('\r'));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      const found = await list.scanYielding(m);
      expect(found).toEqual(list.scan(m));
      expect(found).toEqual(['B20']);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
  });
});

describe('the console tree stays bounded', () => {
  it(`lists at most ${MAX_TREE_SEGMENTS} segments and says how many more there are`, () => {
    const tree = hl7Tree(manyObxSegments(5000));
    expect(tree.length).toBe(MAX_TREE_SEGMENTS + 1);
    expect(tree.at(-1)!.fields[0]!.value).toBe(`${5005 - MAX_TREE_SEGMENTS} more segments not shown`);
    expect(renderTree(tree).value).toContain(`… ${5005 - MAX_TREE_SEGMENTS} more segments not shown`);
  });

  it('summarises a 1.5 MB PID-3 masked, with its real length, and reveals it only when asked', () => {
    const text = manyPid3Repetitions(100_000);
    const pid = hl7Tree(text).find((s) => s.name === 'PID')!;
    const f3 = pid.fields.find((f) => f.index === 3)!;
    expect(f3.masked).toBe(true);
    expect(f3.value).toMatch(/… \(\d+ characters\)$/);
    expect(Number(/\((\d+) characters\)/.exec(f3.value)![1])).toBeGreaterThan(1_400_000);
    expect(f3.value).not.toContain(syntheticIdNumber(100_000));
    expect(f3.value.startsWith(syntheticIdNumber(100_000).slice(0, 2))).toBe(true);
    const revealed = hl7Tree(text, true).find((s) => s.name === 'PID')!.fields.find((f) => f.index === 3)!;
    expect(revealed.value.startsWith(syntheticIdNumber(100_000))).toBe(true);
  });
});

describe('time grows linearly with the repetition count (N vs 16N)', () => {
  const N = 1000;
  const adt = (n: number) => manyPid3Repetitions(n, 'ADT^A04');
  const oru = (n: number) => manyPid3Repetitions(n, 'ORU^R01');
  const on = (text: string, fn: (m: Hl7Message) => unknown): Case => {
    const m = parse(text);
    return { text, run: () => fn(m) };
  };

  it('selector read PID-3[5=PI].1', () => {
    expect(growth((n) => on(adt(n), (m) => m.get('PID-3[5=PI].1')), N)).toBeLessThan(LINEAR);
  });
  it('template render with a selector', () => {
    const t = compileTemplate('recognition:${PID-3[5=PI].1}');
    expect(growth((n) => on(adt(n), (m) => t.render({ messageId: '1', controlId: '1', type: 'ADT^A04', source: 's', hl7: m, vars: {} })), N)).toBeLessThan(LINEAR);
  });
  it('recognition patient payload (was quadratic: 40,000 repetitions took seconds)', () => {
    expect(growth((n) => on(adt(n), (m) => patientPayload(m, {}, DEFAULT_CARD_TYPES)), N)).toBeLessThan(LINEAR);
  });
  it('recognition lab payload of a report with a huge PID-3 (was quadratic)', () => {
    expect(growth((n) => on(oru(n), (m) => labPayload(m, {}, 'R', 'F', reportOptions)), N)).toBeLessThan(LINEAR);
  });
  it('sensitive scan of a DG1-3 with many repetitions (was quadratic)', () => {
    const list = compileSensitiveList(DEFAULT_SENSITIVE_CODES);
    const dg1 = (n: number) => `MSH|^~\\&|LIS|H|R|F|20250101||ORU^R01|1|P|2.5\rDG1|1||${Array.from({ length: n }, (_, i) => `C${i}^^L`).join('~')}\r`;
    expect(growth((n) => on(dg1(n), (m) => list.scan(m)), N)).toBeLessThan(LINEAR);
  });
  it('console tree of a huge PID-3', () => {
    expect(growth((n) => { const text = adt(n); return { text, run: () => renderTree(hl7Tree(text)) }; }, N)).toBeLessThan(LINEAR);
  });
});

describe('time grows linearly with the segment count (N vs 16N)', () => {
  const N = 1000;
  const obx = (n: number) => manyObxSegments(n);
  it('decode and parse', () => {
    expect(growth((n) => { const text = obx(n); const b = Buffer.from(text); return { text, run: () => parseHl7(decodeHl7(b, 'utf-8').text) }; }, N)).toBeLessThan(LINEAR);
  });
  it('reads of an absent segment in a long message', () => {
    expect(growth((n) => { const text = obx(n); const m = parse(text); return { text, run: () => { for (let i = 0; i < 20; i++) m.get('NTE-3'); } }; }, N)).toBeLessThan(LINEAR);
  });
  it('lab payload', () => {
    expect(growth((n) => { const text = obx(n); const m = parse(text); return { text, run: () => labPayload(m, {}, 'R', 'F', { ...reportOptions, maxResults: 1e9 }) }; }, N)).toBeLessThan(LINEAR);
  });
  it('sensitive scan', () => {
    const list = compileSensitiveList(DEFAULT_SENSITIVE_CODES);
    expect(growth((n) => { const text = obx(n); const m = parse(text); return { text, run: () => list.scan(m) }; }, N)).toBeLessThan(LINEAR);
  });
  it('console tree', () => {
    expect(growth((n) => { const text = obx(n); return { text, run: () => renderTree(hl7Tree(text)) }; }, N)).toBeLessThan(LINEAR);
  });
});
