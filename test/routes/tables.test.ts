/**
 * Code tables, the map step and the hl7 step as units (issue 17), loaded
 * through the real route loader: CSV reading (quotes, CRLF, BOM), lookups
 * (error, keep, default, an empty value), map (each over segments and over
 * field repetitions, nested, conditions, types, failures at run time) and
 * the hl7 step (escaping, repetitions and components, removal), with both
 * steps linear on a 100,000-OBX message.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCsv } from '../../core/routes/tables.js';
import { loadRoutes } from '../../core/routes/loader.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { parseHl7 } from '../../core/hl7/index.js';
import { silentLogger } from '../../core/log.js';
import { builtinRegistry } from '../../plugins/index.js';
import { REWRITTEN_HL7_VAR } from '../../core/routes/rewrite.js';
import { manyObxSegments } from '../../bench/lib/pathological.js';
import type { StepInput } from '../../core/sdk.js';
import type { CompiledRoute } from '../../core/routes/types.js';

// A collection before each timing of the CSV linearity test (as test/hl7/field-retention.test.ts does).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

const log = silentLogger();
const state = { get: async () => undefined, set: async () => {}, delete: async () => {} };
const contextFor = () => ({ log, http: { request: async () => { throw new Error('no HTTP here'); } }, signal: new AbortController().signal, site: {}, audit: () => {}, state });

/** Loads one route file with tables/ beside it. */
async function load(route: string, tables: Record<string, string | Buffer> = {}): Promise<CompiledRoute> {
  const root = mkdtempSync(path.join(tmpdir(), 'hisbridge-tables-unit-'));
  roots.push(root);
  mkdirSync(path.join(root, 'routes'));
  mkdirSync(path.join(root, 'tables'));
  for (const [n, t] of Object.entries(tables)) writeFileSync(path.join(root, 'tables', n), t);
  const file = path.join(root, 'routes', 'r.yaml');
  writeFileSync(file, route);
  const [r] = await loadRoutes([file], { registry: builtinRegistry(), contextFor, tablesDir: path.join(root, 'tables') });
  return r!;
}

const input = (text: string): StepInput => ({ messageId: '1', controlId: 'C1', type: 'ORU^R01', source: 'mllp', hl7: parseHl7(text), vars: {} });
const call = { route: 'r', step: 0, idempotencyKey: 'k', attempt: 1, signal: new AbortController().signal, log };
async function run(r: CompiledRoute, i: StepInput, step = 0) {
  const s = r.steps[step]!;
  if (s.kind !== 'plugin') throw new Error('not a plugin step');
  return s.instance.process(i, call);
}

const mapRoute = (fields: string) => `name: r\nmatch: { events: [ORU^R01] }\nsteps:\n  - plugin: map\n    as: out\n    config:\n      fields:\n${fields}`;

describe('CSV reading', () => {
  it('reads quoted cells with commas, doubled quotes and line breaks, CRLF and LF line ends, and skips blank lines', () => {
    expect(parseCsv('a,b,c\r\n1,"x, y","say ""hi"""\r\n\r\n2,"two\nlines",\n3')).toEqual([
      { cells: ['a', 'b', 'c'], line: 1 },
      { cells: ['1', 'x, y', 'say "hi"'], line: 2 },
      { cells: ['2', 'two\nlines', ''], line: 4 },
      { cells: ['3'], line: 6 },
    ]);
  });

  /**
   * Per-row cost at N rows over per-row cost at N / 4. The N / 4 side is four
   * parses of the four quarters of the same rows, each result kept, so both
   * sides build the same N row objects on the same heap: the garbage
   * collector's copying of live rows, which makes one 200,000-row parse up to
   * 4 x slower per row than one lone 50,000-row parse whose rows fit in the
   * young generation, costs both sides alike. A linear parse gives about 1
   * (0.8-1.4 measured at 200,000 rows); a quadratic one about 4. Best of
   * three alternating rounds after a warm-up (five when the third is still
   * over the bound), with a collection before each timing so that one round's
   * garbage is not collected inside the next. No absolute time is asserted.
   *
   * A 20,000-row rung comes first so that a quadratic parse fails in seconds
   * rather than spending minutes on 200,000 rows. Its parses take a few
   * milliseconds, so a busy machine's time slices weigh more (0.5-1.9
   * measured for the linear parse under a load of 7 on 2 cores) and its bound
   * is 3; the quadratic parses tried gave 6-8 there.
   */
  function perRowGrowth(total: number, bound: number): number {
    const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => `K${from + i},"值 ${from + i}, 项目"`).join('\n');
    const quarter = total / 4;
    const whole = 'k,v\n' + rows(0, total);
    const quarters = [0, 1, 2, 3].map((q) => 'k,v\n' + rows(q * quarter, quarter));
    const time = (parse: () => unknown[]) => {
      gc();
      const t0 = performance.now();
      const kept = parse();
      const ms = performance.now() - t0;
      expect(kept.length).toBeGreaterThan(0);
      return ms;
    };
    const parseWhole = () => parseCsv(whole);
    const parseQuarters = () => quarters.map((q) => parseCsv(q));
    expect(parseQuarters().map((r) => r.length)).toEqual([1, 2, 3, 4].map(() => quarter + 1));
    expect(parseWhole().length).toBe(total + 1);
    parseQuarters();
    parseWhole();
    let big = Infinity;
    let small = Infinity;
    for (let round = 0; round < 3 || (round < 5 && !(big / small < bound)); round++) {
      small = Math.min(small, time(parseQuarters));
      big = Math.min(big, time(parseWhole));
    }
    return big / small;
  }

  it('is linear: the per-row cost at 20,000 and 200,000 rows is that of a quarter as many', () => {
    expect(perRowGrowth(20_000, 3), '20,000 rows').toBeLessThan(3);
    expect(perRowGrowth(200_000, 2), '200,000 rows').toBeLessThan(2);
  });
});

describe('lookups', () => {
  const route = 'name: r\nmatch: { events: [ORU^R01] }\nsteps:\n  - set: { a: "${PV1-3.1|lookup:dept}", b: "${PV1-3.1|lookup:keep.name}", c: "${PV1-3.1|lookup:dflt}", d: "${PV1-4|lookup:dept}" }\n';
  const tables = {
    'dept.csv': 'code,platform\n0101,NK01\n',
    'keep.csv': 'code,platform,name\n0101,NK01,内科\n',
    'keep.yaml': 'missing: keep\n',
    'dflt.csv': 'code,platform\n0101,NK01\n',
    'dflt.yaml': 'missing: default\ndefault: 9999\n',
  };
  const msg = (dept: string) => `MSH|^~\\&|HIS|H1|HB|HB|20250101||ORU^R01|C1|P|2.5\rPV1|1|O|${dept}\r`;
  const vars = async (dept: string) => {
    const r = await load(route, tables);
    const i = input(msg(dept));
    const s = r.steps[0]!;
    if (s.kind !== 'set') throw new Error('set step expected');
    return Object.fromEntries(s.entries.map(([k, t]) => [k, t.render(i)]));
  };

  it('gives the second column, a named column, and leaves an empty value empty', async () => {
    expect(await vars('0101')).toEqual({ a: 'NK01', b: '内科', c: 'NK01', d: '' });
  });

  it('a missing key: error throws a permanent error naming table and key; keep gives the key; default the default', async () => {
    const r = await load(route, tables);
    const s = r.steps[0]!;
    if (s.kind !== 'set') throw new Error('set step expected');
    const i = input(msg('0777'));
    expect(() => s.entries[0]![1].render(i)).toThrow(expect.objectContaining({ code: 'ROUTE_E_LOOKUP_MISSING', retryable: false, message: 'table dept has no key "0777"' }));
    expect(s.entries[1]![1].render(i)).toBe('0777');
    expect(s.entries[2]![1].render(i)).toBe('9999');
  });

  it('a route referencing a table when there is no tables folder does not load', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'hisbridge-tables-none-'));
    roots.push(root);
    const file = path.join(root, 'r.yaml');
    writeFileSync(file, route);
    await expect(loadRoutes([file], { registry: builtinRegistry(), contextFor, tablesDir: path.join(root, 'no-such-dir') })).rejects.toThrow(LoadError);
  });
});

describe('the map step', () => {
  const report = [
    'MSH|^~\\&|HIS|H1|HB|HB|20250101||ORU^R01|C1|P|2.5',
    'PID|1||P1^^^H^PI~ID9^^^GD^NI||ZHANG^SAN',
    'OBR|1|O1|R1|CBC',
    'OBX|1|NM|HGB||135|g/L|||||F',
    'NTE|1||first note',
    'OBX|2|ST|MEMO||a\\F\\b~second|x|||||F',
    'OBX|3|NM|WBC||5.2|g/L|||||P',
  ].join('\r') + '\r';

  it('builds arrays over segments and over repetitions of a field, nested, with conditions, types and constants', async () => {
    const r = await load(mapRoute(`        ids:
          each: PID-3
          fields: { id: "\${PID-3.1}", authority: "\${PID-3.4}" }
        results:
          each: OBX
          when: { path: OBX-11, equals: F }
          fields:
            code: "\${OBX-3.1|lookup:items}"
            value: { path: OBX-5, type: number, when: { path: OBX-2, equals: NM } }
            texts:
              each: OBX-5
              fields: { text: { path: OBX-5 } }
            report: "\${OBR-3.1}"
        patient: { fields: { name: { path: PID-5.1 }, version: 2, ok: true } }
        absent: { path: ZZZ-1, when: { path: ZZZ-1, exists: true } }
`), { 'items.csv': 'k,v\nHGB,P-HGB\nMEMO,P-MEMO\nWBC,P-WBC\n' });
    const res = await run(r, input(report));
    expect(res.output).toEqual({
      ids: [{ id: 'P1', authority: 'H' }, { id: 'ID9', authority: 'GD' }],
      results: [
        { code: 'P-HGB', value: 135, texts: [{ text: '135' }], report: 'R1' },
        { code: 'P-MEMO', texts: [{ text: 'a|b' }, { text: 'second' }], report: 'R1' },
      ],
      patient: { name: 'ZHANG', version: 2, ok: true },
    });
  });

  it('a number or date field that is not one fails the step for good, naming the field and not the value', async () => {
    const r = await load(mapRoute(`        results:
          each: OBX
          fields: { value: { path: OBX-5, type: number } }
`));
    await expect(run(r, input(report))).rejects.toMatchObject({ code: 'ROUTE_E_MAP', retryable: false, message: 'map field results[1].value: the value is not a number' });
    const d = await load(mapRoute('        when: { path: PID-5.1, type: date }\n'));
    await expect(run(d, input(report))).rejects.toMatchObject({ code: 'ROUTE_E_MAP', message: 'map field when: the value is not an HL7 date (YYYYMMDD[HHMM[SS]])' });
  });

  it('is linear: 100,000 OBX take about 10 x the time of 10,000', async () => {
    const r = await load(mapRoute(`        results:
          each: OBX
          fields: { code: "\${OBX-3.1}", value: "\${OBX-5}", report: "\${OBR-3.1}" }
`));
    const time = async (n: number) => {
      const i = input(manyObxSegments(n, { controlId: 'BIG', patientId: 'P1' }));
      const t0 = performance.now();
      const out = (await run(r, i)).output as { results: unknown[] };
      expect(out.results.length).toBe(n);
      return performance.now() - t0;
    };
    await time(10_000);
    const a = Math.min(await time(10_000), await time(10_000), await time(10_000));
    const b = Math.min(await time(100_000), await time(100_000));
    // 10 x the input; quadratic work would take about 100 x (the bound leaves room for a loaded machine).
    expect(b / a).toBeLessThan(35);
  }, 120_000);
});

describe('the hl7 step', () => {
  const route = (config: string) => `name: r\nmatch: { events: [ORU^R01] }\nsteps:\n  - plugin: hl7\n    config:\n${config}`;

  it('writes repetitions, components and subcomponents escape-correct with the message\'s own delimiters', async () => {
    const r = await load(route(`      set:
        PID-3[2].1: "a|b^c&d~e\\\\f"
        PID-3[2].4.2: GD
        PID-5.2: "\${PID-5.2|upper}"
        MSH-5: LIS
      clear: [PID-8, PV1-2]
      remove:
        - NTE[2]
        - ZCN
`));
    // Other delimiters than the usual: # for components, ! for repetitions.
    const text = 'MSH|#!\\&|HIS|H1|HB|HB|20250101||ORU#R01|C1|P|2.5\rPID|1||P1####PI||zhang#san|||M\rNTE|1||one\rNTE|2||two\rNTE|3||three\rZCN|Y\r';
    const i = input(text);
    const original = i.hl7!;
    expect((await run(r, i)).outcome).toBe('ok');
    expect(i.hl7!.encode().split('\r')).toEqual([
      'MSH|#!\\&|HIS|H1|LIS|HB|20250101||ORU#R01|C1|P|2.5',
      'PID|1||P1####PI!a\\F\\b^c\\T\\d~e\\E\\f###&GD||zhang#SAN|||',
      'NTE|1||one',
      'NTE|3||three',
      '',
    ]);
    // The component separator of this message is #, so ^ and ~ are plain text here; reading gives the value back.
    expect(i.hl7!.get('PID-3[2].1')).toBe('a|b^c&d~e\\f');
    // PV1 was absent: clearing it does not create it.
    expect(i.hl7!.segment('PV1')).toBeUndefined();
    expect(i.vars[REWRITTEN_HL7_VAR]).toBe(i.hl7!.encode());
    // The message the step was given is untouched.
    expect(original.encode()).toBe(text);
  });

  it('is linear: removing and setting on 100,000 OBX takes about 10 x the time of 10,000', async () => {
    const r = await load(route('      set:\n        MSH-5: LIS\n        OBX[2]-5: X\n      remove: [NTE]\n'));
    const time = async (n: number) => {
      const i = input(manyObxSegments(n, { controlId: 'BIG', patientId: 'P1' }));
      const t0 = performance.now();
      await run(r, i);
      expect(i.hl7!.get('MSH-5')).toBe('LIS');
      return performance.now() - t0;
    };
    await time(10_000);
    const a = Math.min(await time(10_000), await time(10_000), await time(10_000));
    const b = Math.min(await time(100_000), await time(100_000));
    // 10 x the input; quadratic work would take about 100 x (the bound leaves room for a loaded machine).
    expect(b / a).toBeLessThan(35);
  }, 120_000);

  it('each: OBX sets and clears fields of every OBX, reading the current one, from the message before the step', async () => {
    const r = await load(
      route(`      each: OBX
      set:
        OBX-3.1: "\${OBX-3.1|lookup:items}"
        OBX-3.2: "\${OBX-3.1|lookup:items.name}"
        OBX-4: "\${OBX-1}/\${PID-3.1}"
      clear: [OBX-8]
`),
      { 'items.csv': 'code,platform,name\nWBC,GD-1,white cells\nHGB,GD-2,haemoglobin\n' },
    );
    const text = 'MSH|^~\\&|LIS|H1|HB|HB|20250101||ORU^R01|C1|P|2.5\rPID|1||P1^^^H^PI\rOBX|1|NM|WBC^wbc||5|||H\rNTE|1||note\rOBX|2|NM|HGB^hgb||140|||N\r';
    const i = input(text);
    expect((await run(r, i)).outcome).toBe('ok');
    expect(i.hl7!.encode().split('\r')).toEqual([
      'MSH|^~\\&|LIS|H1|HB|HB|20250101||ORU^R01|C1|P|2.5',
      'PID|1||P1^^^H^PI',
      'OBX|1|NM|GD-1^white cells|1/P1|5|||',
      'NTE|1||note',
      'OBX|2|NM|GD-2^haemoglobin|2/P1|140|||',
      '',
    ]);
    // A message without OBX is left as it was.
    const none = input('MSH|^~\\&|LIS|H1|HB|HB|20250101||ORU^R01|C2|P|2.5\rPID|1||P1\r');
    expect((await run(r, none)).outcome).toBe('ok');
    expect(none.hl7!.encode()).toBe('MSH|^~\\&|LIS|H1|HB|HB|20250101||ORU^R01|C2|P|2.5\rPID|1||P1\r');
    // A missing code fails the step naming the table and the key.
    const miss = input(text.replace('HGB^hgb', 'XYZ^xyz'));
    await expect(run(r, miss)).rejects.toThrow(expect.objectContaining({ code: 'ROUTE_E_LOOKUP_MISSING', message: 'table items has no key "XYZ"' }));
  });

  it('refuses a bad each at load, at the file:line:col of the entry', async () => {
    const cases: [string, RegExp][] = [
      ['      each: obx\n      set: { OBX-5: x }\n', /r\.yaml:6:13: .*each names a repeating segment such as OBX/],
      ['      each: MSH\n      set: { MSH-5: x }\n', /r\.yaml:6:13: .*each: MSH is not a repeating segment/],
      ['      each: OBX\n      set: { PID-5: x }\n', /r\.yaml:7:\d+: .*with each: OBX, set and clear write fields of OBX only/],
      ['      each: OBX\n      set:\n        "OBX[2]-5": x\n', /r\.yaml:8:\d+: .*without \[n\]/],
      ['      each: OBX\n      set: { OBX-5: x }\n      remove: [ZCN]\n', /r\.yaml:8:\d+: .*remove cannot be used with each/],
    ];
    for (const [config, expected] of cases) {
      const err = await load(route(config)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LoadError);
      expect((err as Error).message).toMatch(expected);
    }
  });

  it('is linear: each: OBX on 100,000 OBX takes about 10 x the time of 10,000', async () => {
    const r = await load(route('      each: OBX\n      set:\n        OBX-3.1: "\${OBX-3.1|lookup:items}"\n        OBX-4: "\${OBX-1}"\n'), {
      'items.csv': 'code,platform\n',
      'items.yaml': 'missing: keep\n',
    });
    const time = async (n: number) => {
      const i = input(manyObxSegments(n, { controlId: 'BIG', patientId: 'P1' }));
      const t0 = performance.now();
      await run(r, i);
      const obx = i.hl7!.segments('OBX');
      expect(obx).toHaveLength(n);
      expect(obx.at(-1)!.get(4)).toBe(String(n));
      return performance.now() - t0;
    };
    await time(10_000);
    const a = Math.min(await time(10_000), await time(10_000), await time(10_000));
    const b = Math.min(await time(100_000), await time(100_000));
    // 10 x the input; quadratic work would take about 100 x (the bound leaves room for a loaded machine).
    expect(b / a).toBeLessThan(35);
  }, 120_000);
});

describe('the route plan with a map step', () => {
  const steps = `  - set: { a: "\${MSH-10}" }
  - plugin: map
    as: out
    config: { fields: { x: "\${MSH-10}" } }
  - set: { b: "\${vars.out.x}" }
  - plugin: http
    config: { url: "http://a.local/", body: "\${vars.out}" }
  - log: { message: between }
  - plugin: http
    config: { url: "http://b.local/", body: "\${vars.out}" }
`;
  it('on-receive: the map step and what follows it run with every delivery, not before the ACK', async () => {
    const r = await load(`name: r\nmatch: { events: [ORU^R01] }\nsteps:\n${steps}`);
    expect(r.plan.inline).toEqual({ from: 0, to: 1 });
    expect(r.plan.deliveries.map((d) => ({ run: d.run, prefix: d.prefix }))).toEqual([
      { run: { from: 1, to: 4 }, prefix: undefined },
      { run: { from: 4, to: 6 }, prefix: { from: 1, to: 3 } },
    ]);
  });

  it('on-complete: unchanged, every step before the ACK', async () => {
    const r = await load(`name: r\nmatch: { events: [ORU^R01] }\nack: on-complete\nsteps:\n${steps}`);
    expect(r.plan.inline).toEqual({ from: 0, to: 6 });
  });
});
