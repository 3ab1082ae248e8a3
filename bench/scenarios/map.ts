/**
 * Scenario 10, the cost of a `map` step (issue 17): one lab report with 50
 * OBX results, each result's item code looked up in a 1,000-row code table,
 * mapped to a JSON result list with number and date types. Measured
 * in-process on the real route loader (tables loaded from a tables/ folder)
 * and the map step's own process(), per message, on a parsed message (the
 * parse is the same for every route and counted in the routing scenario).
 * Baseline: the same output built by hand-written JavaScript over the same
 * parsed message and a plain Map, i.e. what a site would write without the step.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { entry, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { round, spread } from '../lib/stats.js';

const BASE = { name: 'map-50-lookups', scenario: 10, title: 'map step: 50 OBX, 50 code-table lookups, typed JSON per message', unit: 'µs/msg', target: '< 2 x hand-written JavaScript' };
const ITEMS = 1000;
const OBX = 50;

const ROUTE = `name: map-bench
match: { events: [ORU^R01] }
steps:
  - plugin: map
    as: report
    config:
      fields:
        reportNo: "\${OBR-3.1}"
        reportTime: { path: OBR-22, type: date }
        results:
          each: OBX
          fields:
            itemCode: "\${OBX-3.1|lookup:lab-items.platformCode}"
            value: { path: OBX-5, type: number }
            unit: "\${OBX-6.1}"
`;

function message(): string {
  const segs = [
    'MSH|^~\\&|HIS|H1|HB|HB|20250312093015||ORU^R01^ORU_R01|B0001|P|2.5',
    'PID|1||PT0001^^^H^PI',
    'OBR|1|ORD01|RPT01|CBC|||20250312080000|||||||||||||||20250312091500',
  ];
  for (let i = 1; i <= OBX; i++) segs.push(`OBX|${i}|NM|IT${(i * 17) % ITEMS}^item ${i}||${i}.5|g/L|||||F`);
  return segs.join('\r') + '\r';
}

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  let mods;
  try {
    mods = {
      loader: await import('../../core/routes/loader.js'),
      hl7: await import('../../core/hl7/index.js'),
      plugins: await import('../../plugins/index.js'),
      log: await import('../../core/log.js'),
    };
  } catch (e) {
    return [unavailable(BASE, 'not-available', `route loader or map step not available: ${reason(e)}`)];
  }
  const root = mkdtempSync(path.join(tmpdir(), 'hisbridge-bench-map-'));
  try {
    mkdirSync(path.join(root, 'routes'));
    mkdirSync(path.join(root, 'tables'));
    const rows = ['hisCode,platformCode,name'];
    for (let i = 0; i < ITEMS; i++) rows.push(`IT${i},GD-LAB-${String(i).padStart(4, '0')},项目${i}`);
    writeFileSync(path.join(root, 'tables', 'lab-items.csv'), rows.join('\n') + '\n');
    const file = path.join(root, 'routes', 'map.yaml');
    writeFileSync(file, ROUTE);
    const log = mods.log.silentLogger();
    const state = { get: async () => undefined, set: async () => {}, delete: async () => {} };
    const contextFor = () => ({ log, http: { request: async () => { throw new Error('no HTTP in the map bench'); } }, signal: new AbortController().signal, site: {}, audit: () => {}, state });
    const [route] = await mods.loader.loadRoutes([file], { registry: mods.plugins.builtinRegistry(), contextFor, tablesDir: path.join(root, 'tables') });
    const step = route!.steps[0]!;
    if (step.kind !== 'plugin') throw new Error('expected the map step');
    const msg = mods.hl7.parseHl7(message());
    const call = { route: 'map-bench', step: 0, idempotencyKey: 'k', attempt: 1, signal: new AbortController().signal, log };
    const input = () => ({ messageId: '1', controlId: 'B0001', type: 'ORU^R01', source: 'mllp', hl7: msg, vars: {} });

    // The baseline: the same output by hand over the same parsed message.
    const table = new Map<string, string>();
    for (let i = 0; i < ITEMS; i++) table.set(`IT${i}`, `GD-LAB-${String(i).padStart(4, '0')}`);
    const byHand = () => {
      const ts = msg.get('OBR-22');
      const results: Record<string, unknown>[] = [];
      const n = msg.segments('OBX').length;
      for (let k = 1; k <= n; k++) {
        const code = msg.get(`OBX[${k}]-3.1`);
        const itemCode = table.get(code);
        if (itemCode === undefined) throw new Error(`no ${code}`);
        results.push({ itemCode, value: Number(msg.get(`OBX[${k}]-5`)), unit: msg.get(`OBX[${k}]-6.1`) });
      }
      return { reportNo: msg.get('OBR-3.1'), reportTime: `${ts.slice(0, 4)}-${ts.slice(4, 6)}-${ts.slice(6, 8)} ${ts.slice(8, 10)}:${ts.slice(10, 12)}:${ts.slice(12, 14)}`, results };
    };
    const check = (await step.instance.process(input(), call)).output as { results: { itemCode: string }[] };
    if (check.results.length !== OBX || JSON.stringify(check) !== JSON.stringify(byHand())) throw new Error('the map step and the hand-written baseline disagree');

    const iterations = ctx.quick ? 2_000 : 10_000;
    const timeMap = async (): Promise<number> => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) await step.instance.process(input(), call);
      return round(Number(process.hrtime.bigint() - t0) / iterations / 1000, 2);
    };
    const timeHand = (): number => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) byHand();
      return round(Number(process.hrtime.bigint() - t0) / iterations / 1000, 2);
    };
    ctx.say(`map: ${iterations} messages x ${ctx.trials} trials (${OBX} lookups each)`);
    await timeMap();
    timeHand(); // warm-up
    const v = { map: [] as number[], hand: [] as number[] };
    for (let t = 0; t < ctx.trials; t++) {
      v.map.push(await timeMap());
      v.hand.push(timeHand());
    }
    const m = spread(v.map).median;
    return [entry({
      ...BASE,
      better: 'lower',
      met: m < 2 * spread(v.hand).median,
      details: { iterations, lookupsPerMessage: OBX, tableRows: ITEMS, note: 'hisbridge = the map step (compiled templates, each: OBX, lookup, number and date types); baseline = the same JSON built by hand over the same parsed message with a Map' },
    }, { hisbridge: v.map, baselines: { 'hand-written': v.hand } })];
  } catch (e) {
    return [unavailable(BASE, 'failed', reason(e))];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
