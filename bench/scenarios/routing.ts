/**
 * Scenario 5, routing cost: per message, parse (lazy) + match against a
 * realistic set of 100 routes vs a set holding only the route that matches.
 * Measured in-process on the lead's route loader and matcher, with route
 * files loaded through the real schema. Conditions on other routes read
 * fields the single route never touches, so the lazy parser's extra work is
 * counted, not just the matcher's.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MessageFactory } from '../lib/messages.js';
import { entry, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { round, spread } from '../lib/stats.js';

const BASE = { name: 'routing-100-vs-1', scenario: 8, title: 'Parse + route match per ~1 KB ADT^A04: 100 routes vs 1 route', unit: 'ns/msg', target: '100 routes < 1.2 x the cost of 1 route' };

const TARGET_ROUTE = `  - name: r-target
    match: { events: ["ADT^A04"], sender: { application: HIS }, when: [{ path: ZCN-1, equals: "Y" }] }
    steps: [{ log: { message: "registration \${msg.controlId}" } }]`;

/** 99 other routes: a few competing for ADT^A04 with conditions that fail, the rest on other events. */
function otherRoutes(): string[] {
  const out: string[] = [];
  const competing = [
    '{ events: ["ADT^A04"], sender: { application: LIS } }',
    '{ events: ["ADT^A04"], when: [{ path: PV1-2, equals: "I" }] }',
    '{ events: ["ADT^A04", "ADT^A01"], when: [{ path: PID-8, equals: "F" }, { path: ZCN-1, equals: "Y" }] }',
    '{ events: ["ADT^*"], when: [{ path: MSH-3, in: [RIS, PACS] }] }',
    '{ events: ["ADT^A04"], when: [{ path: "PID-3[5=PPN].1", exists: true }] }',
    '{ events: ["ADT^*"], when: [{ path: EVN-1, equals: A08 }] }',
    '{ events: ["ADT^A04"], when: [{ path: PV1-3.1, matches: "^ZY" }] }',
    '{ events: ["ADT^A04"], sender: { facility: OTHERHOSP } }',
    '{ events: ["ADT^A04"], when: [{ not: { path: NK1-3.1, equals: SPO } }] }',
  ];
  competing.forEach((m, i) => out.push(`  - name: r-compete-${i}\n    match: ${m}\n    steps: [{ log: { message: "x" } }]`));
  const events = ['ADT^A01', 'ADT^A02', 'ADT^A03', 'ADT^A05', 'ADT^A08', 'ADT^A11', 'ADT^A28', 'ADT^A31', 'ADT^A40', 'ORM^O01', 'OML^O21', 'ORU^R01', 'MDM^T02', 'SIU^S12', 'SIU^S15', 'MFN^M02', 'MFN^M05', 'DFT^P03', 'BAR^P01', 'RDE^O11'];
  for (let i = 0; out.length < 99; i++) {
    const ev = events[i % events.length]!;
    out.push(`  - name: r-other-${i}\n    match: { events: ["${ev}"], when: [{ path: MSH-3, equals: "S${i % 7}" }] }\n    steps: [{ log: { message: "y" } }]`);
  }
  return out;
}

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  let mods;
  try {
    mods = {
      loader: await import('../../core/routes/loader.js'),
      matcher: await import('../../core/routes/matcher.js'),
      hl7: await import('../../core/hl7/index.js'),
      plugins: await import('../../plugins/index.js'),
      log: await import('../../core/log.js'),
    };
  } catch (e) {
    return [unavailable(BASE, 'not-available', `route loader/matcher or HL7 parser not available: ${reason(e)}`)];
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-bench-routes-'));
  try {
    const registry = mods.plugins.builtinRegistry();
    const log = mods.log.silentLogger();
    const state = { get: async () => undefined, set: async () => {}, delete: async () => {} };
    const contextFor = () => ({ log, http: { request: async () => { throw new Error('no HTTP in the routing bench'); } }, signal: new AbortController().signal, site: {}, audit: () => {}, state });
    const load = async (file: string, routes: string[]) => {
      writeFileSync(path.join(dir, file), `routes:\n${routes.join('\n')}\n`);
      return new mods.matcher.RouteTable(await mods.loader.loadRoutes([path.join(dir, file)], { registry, contextFor, sources: ['mllp'] }));
    };
    const one = await load('one.yaml', [TARGET_ROUTE]);
    const hundred = await load('hundred.yaml', [...otherRoutes().slice(0, 50), TARGET_ROUTE, ...otherRoutes().slice(50)]);
    if (hundred.routes.length !== 100) throw new Error(`expected 100 routes, loaded ${hundred.routes.length}`);

    // Pre-built texts so that only parse + match is timed.
    const factory = new MessageFactory('adt', 'R');
    const texts = Array.from({ length: 256 }, () => factory.next().toString('utf8'));
    const iterations = ctx.quick ? 20_000 : 100_000;
    const measure = (table: InstanceType<typeof mods.matcher.RouteTable>, parse: boolean): number => {
      const pre = parse ? [] : texts.map((t) => mods.hl7.parseHl7(t));
      let matched = 0;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) {
        const msg = parse ? mods.hl7.parseHl7(texts[i & 255]!) : pre[i & 255]!;
        const input = { messageId: 'b', controlId: msg.controlId, type: msg.type, source: 'mllp', hl7: msg, vars: {} };
        matched += table.match({ source: 'mllp', type: msg.type, sendingApp: msg.sendingApp, sendingFacility: msg.sendingFacility }, input).length;
      }
      const ns = Number(process.hrtime.bigint() - t0) / iterations;
      if (matched !== iterations) throw new Error(`expected exactly the target route to match every message, got ${matched}/${iterations}`);
      return round(ns, 0);
    };
    ctx.say(`routing: ${iterations} messages x ${ctx.trials} trials per route set`);
    measure(one, true);
    measure(hundred, true); // warm-up
    const v = { one: [] as number[], hundred: [] as number[], oneMatch: [] as number[], hundredMatch: [] as number[] };
    for (let t = 0; t < ctx.trials; t++) {
      v.one.push(measure(one, true));
      v.hundred.push(measure(hundred, true));
      v.oneMatch.push(measure(one, false));
      v.hundredMatch.push(measure(hundred, false));
    }
    const ratio = spread(v.hundred).median / spread(v.one).median;
    return [entry({
      ...BASE,
      better: 'lower',
      met: ratio < 1.2,
      details: {
        iterations,
        matchOnlyNsPerMsg: { '100 routes': spread(v.hundredMatch), '1 route': spread(v.oneMatch) },
        note: 'hisbridge = 100 routes (9 competing for ADT^A04 with failing conditions, 90 on other events); baseline = the matching route alone',
      },
    }, { hisbridge: v.hundred, baselines: { '1-route': v.one } })];
  } catch (e) {
    return [unavailable(BASE, 'failed', reason(e))];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
