/**
 * Routes over JSON events (issue 13): `body.<path>` refs in templates and
 * conditions, `match.events` on the event type a source gives, and route
 * files using them loading through the real loader (route validate).
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { compileTemplate, compileRef } from '../../core/template.js';
import { compileCondition } from '../../core/routes/condition.js';
import { listRouteFiles, loadRoutes } from '../../core/routes/loader.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { RouteTable } from '../../core/routes/matcher.js';
import { builtinRegistry } from '../../plugins/index.js';
import { offlineContext } from '../../core/cli/common.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { parseHl7 } from '../../core/hl7/index.js';
import type { StepInput } from '../../core/sdk.js';
import { tempFiles } from '../helpers/routes.js';

const envelope = {
  specVersion: '1',
  eventId: 'E-100',
  eventType: 'ADT^A04',
  source: { system: 'HIS', facility: 'H1' },
  patient: { id: 'P1', idNumber: '440106199003152314', name: '欧阳娜' },
  consent: 'Y',
  count: 3,
  score: 1.5,
  flag: false,
  empty: null,
  items: [{ code: 'A1', name: '血常规' }, { code: 'B2', tags: ['x', 'y'] }],
  body: { note: 'x|y^z', 科室: '内科', nested: { deep: [1, 2] } },
};
const json = (body: unknown = envelope, type = 'ADT^A04'): StepInput => ({ messageId: 'kafka-json:E-100', controlId: 'E-100', type, source: 'kafka-json', body, vars: {} });
const render = (t: string, i: StepInput = json()) => compileTemplate(t).render(i);

describe('body.<path> in templates', () => {
  it('reads keys, nested keys and array indexes, Chinese text intact', () => {
    expect(render('${body.patient.idNumber}')).toBe('440106199003152314');
    expect(render('${body.patient.name}')).toBe('欧阳娜');
    expect(render('${body.items[0].code}/${body.items[1].tags[1]}')).toBe('A1/y');
    expect(render('${body.items[0].name}')).toBe('血常规');
    expect(render('${body.body.科室}')).toBe('内科');
    expect(render('${body.body.note}')).toBe('x|y^z');
    expect(render('id=${body.patient.id}&type=${msg.type}')).toBe('id=P1&type=ADT^A04');
  });

  it('renders numbers and booleans as JSON writes them, objects and arrays as JSON text, null as empty', () => {
    expect(render('${body.count}')).toBe('3');
    expect(render('${body.score}')).toBe('1.5');
    expect(render('${body.flag}')).toBe('false');
    expect(render('${body.empty}')).toBe('');
    expect(JSON.parse(render('${body.body.nested}'))).toEqual({ deep: [1, 2] });
    expect(render('${body.items[1].tags}')).toBe('["x","y"]');
    expect(JSON.parse(render('${body}'))).toEqual(envelope);
  });

  it('renders a missing path as empty, like a missing HL7 field, and never reads inherited properties', () => {
    expect(render('[${body.patient.phone}]')).toBe('[]');
    expect(render('[${body.nothing.here.at.all}]')).toBe('[]');
    expect(render('[${body.items[5].code}]')).toBe('[]');
    expect(render('[${body.patient[0]}]')).toBe('[]');
    expect(render('[${body.items.length}]')).toBe('[]');
    expect(render('[${body.constructor}]')).toBe('[]');
    expect(render('[${body.patient.id.length}]')).toBe('[]');
    expect(render('[${body.__proto__}]')).toBe('[]');
    expect(render('[${body.consent|default:N}]', json({}))).toBe('[N]');
  });

  it('works with filters (mask, upper, default, table)', () => {
    expect(render('${body.patient.idNumber|mask:idcard}')).not.toContain('199003152314');
    expect(render('${body.items[0].code|lower}')).toBe('a1');
    expect(compileTemplate('${body.consent|table:yn}', { yn: { Y: '1', N: '0' } }).render(json())).toBe('1');
  });

  it('renders body refs empty on an HL7 message, and HL7 paths empty on a JSON event', () => {
    const hl7 = parseHl7('MSH|^~\\&|HIS|H1|HB|HB|20250101120000||ADT^A04|C1|P|2.5\rPID|1||P1^^^H^PI||张^三\r');
    const hl7Input: StepInput = { messageId: '1', controlId: 'C1', type: 'ADT^A04', source: 'mllp', hl7, vars: {} };
    expect(render('[${body.patient.id}]', hl7Input)).toBe('[]');
    expect(render('[${PID-5.1}]', hl7Input)).toBe('[张]');
    expect(render('[${PID-5.1}][${MSH-10}]')).toBe('[][]');
  });

  it('refuses malformed body paths at compile time with a specific error', () => {
    for (const bad of ['body.', 'body..x', 'body.items[]', 'body.items[x]', 'body.items[0', 'body.a b', 'body.items[-1]']) {
      expect(() => compileRef(bad), bad).toThrow(/bad expression.*(empty key|array index|unexpected)/);
    }
    // `bodyx` is not a body ref: it is read as an HL7 path and refused as one.
    expect(() => compileRef('bodyx.a')).toThrow();
  });

  it('is linear: a 20,000-step path and a wide array are read in one pass', () => {
    const wide = { items: Array.from({ length: 100_000 }, (_, i) => ({ code: `C${i}` })) };
    const t0 = performance.now();
    expect(render('${body.items[99999].code}', json(wide))).toBe('C99999');
    const ref = compileRef('body' + '.k'.repeat(20_000));
    expect(ref.get(json({ k: { k: 1 } }))).toBe('');
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('body.<path> in conditions', () => {
  it('tests equals, in, exists, matches, not on JSON fields', () => {
    const i = json();
    expect(compileCondition({ path: 'body.consent', equals: 'Y' })(i)).toBe(true);
    expect(compileCondition({ path: 'body.consent', equals: 'N' })(i)).toBe(false);
    expect(compileCondition({ path: 'body.count', equals: 3 })(i)).toBe(true);
    expect(compileCondition({ path: 'body.flag', equals: false })(i)).toBe(true);
    expect(compileCondition({ path: 'body.items[0].code', in: ['A1', 'A2'] })(i)).toBe(true);
    expect(compileCondition({ path: 'body.patient.phone', exists: false })(i)).toBe(true);
    expect(compileCondition({ path: 'body.patient.idNumber', exists: true })(i)).toBe(true);
    expect(compileCondition({ path: 'body.patient.name', matches: '^欧阳' })(i)).toBe(true);
    expect(compileCondition({ not: { path: 'body.body.科室', equals: '内科' } })(i)).toBe(false);
    expect(compileCondition({ all: [{ path: 'body.consent', equals: 'Y' }, { path: 'ZCN-1', exists: false }] })(i)).toBe(true);
  });
});

const reg = builtinRegistry();
const ctx = offlineContext(reg, loadSiteConfig(undefined, reg.extensions));
const load = (dir: string) => loadRoutes(listRouteFiles([dir]), { registry: reg, contextFor: (d) => ctx(d), sources: ['mllp', 'kafka-json', 'his-json', 'kafka-events'] });

/** The YAML block of a doc that holds `name: <route>`. */
function docRoute(doc: string, route: string): string {
  const text = readFileSync(path.resolve('docs', doc), 'utf8');
  const block = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes(`name: ${route}\n`));
  if (!block) throw new Error(`no ${route} example in docs/${doc}`);
  return block;
}

const JSON_ROUTE = `name: json-consent
sources: [kafka-json]
match:
  events: [ADT^A04]
  when:
    - { path: body.consent, equals: Y }
steps:
  - set:
      who: \${body.patient.name}
      first: \${body.items[0].code}
  - log: { message: "event \${msg.controlId} \${body.patient.idNumber|mask:idcard}" }
delivery:
  orderingKey: \${body.patient.id}
`;

describe('routes over JSON events (real loader)', () => {
  it('loads body refs in conditions, set, log templates and the ordering key, and matches on the event type', async () => {
    const routes = await load(tempFiles({ 'j.yaml': JSON_ROUTE }));
    const table = new RouteTable(routes);
    const key = (type: string, source = 'kafka-json') => ({ source, type, sendingApp: 'HIS', sendingFacility: 'H1' });
    expect(table.match(key('ADT^A04'), json()).map((r) => r.name)).toEqual(['json-consent']);
    expect(table.match(key('ADT^A04'), json({ ...envelope, consent: 'N' }))).toEqual([]);
    expect(table.match(key('ADT^A01'), json(envelope, 'ADT^A01'))).toEqual([]);
    expect(table.match(key('ADT^A04', 'mllp'), json())).toEqual([]);
  });

  it('matches non-HL7 event types a listener gives, exactly, and ADT^* / * wildcards on JSON events', async () => {
    const routes = await load(tempFiles({
      'a.yaml': 'name: by-name\nmatch: { events: [patient.registered] }\nsteps:\n  - log: { message: x }\n',
      'b.yaml': 'name: by-code\nmatch: { events: ["ADT^*"] }\nsteps:\n  - log: { message: x }\n',
      'c.yaml': 'name: every\nmatch: { events: ["*"], when: [{ path: body.consent, exists: true }] }\nsteps:\n  - log: { message: x }\n',
    }));
    const table = new RouteTable(routes);
    const m = (type: string, body: unknown = envelope) => table.match({ source: 'his-json', type, sendingApp: 'HIS', sendingFacility: '' }, json(body, type)).map((r) => r.name);
    expect(m('patient.registered')).toEqual(['by-name', 'every']);
    expect(m('patient.registered.v2')).toEqual(['every']);
    expect(m('ADT^A31')).toEqual(['by-code', 'every']);
    expect(m('ADT^A31', {})).toEqual(['by-code']);
  });

  it('still refuses a malformed HL7 event type (adt^a04) and a malformed body path, naming file, line and column', async () => {
    const dir = tempFiles({
      'bad-event.yaml': 'name: bad-event\nmatch:\n  events: ["adt^a04"]\nsteps:\n  - log: { message: x }\n',
      'bad-path.yaml': 'name: bad-path\nmatch:\n  events: ["ADT^A04"]\n  when: [{ path: "body.items[x]", equals: Y }]\nsteps:\n  - log: { message: "${body..x}" }\n',
    });
    let issues: string[] = [];
    try {
      await load(dir);
    } catch (e) {
      expect(e).toBeInstanceOf(LoadError);
      issues = (e as LoadError).issues.map((i) => i.toString().replace(dir + path.sep, ''));
    }
    const text = issues.join('\n');
    expect(text).toMatch(/bad-event\.yaml:3:\d+: match\.events\.0 does not match/);
    expect(text).toMatch(/bad-path\.yaml:4:\d+: bad expression "body\.items\[x\]": an array index/);
    expect(text).toMatch(/bad-path\.yaml:6:\d+: bad expression "body\.\.x": empty key/);
  });

  it('loads the JSON-event examples of docs/routes.md and docs/kafka.md and matches a Kafka envelope with them', async () => {
    const routes = await load(tempFiles({ 'lab.yaml': docRoute('routes.md', 'kafka-lab-report'), 'consent.yaml': docRoute('kafka.md', 'kafka-consent') }));
    const table = new RouteTable(routes);
    const lab = { ...envelope, eventType: 'ORU^R01', report: { id: 'R1', status: 'F' }, body: { items: [{ code: 'HGB', name: '血红蛋白' }] } };
    const key = (type: string) => ({ source: 'kafka-events', type, sendingApp: 'LIS', sendingFacility: '' });
    expect(table.match(key('ORU^R01'), { ...json(lab, 'ORU^R01'), source: 'kafka-events' }).map((r) => r.name)).toEqual(['kafka-lab-report']);
    expect(table.match(key('ORU^R01'), { ...json({ ...lab, report: { id: 'R1', status: 'X' } }, 'ORU^R01'), source: 'kafka-events' })).toEqual([]);
    const consent = { ...envelope, body: { consent: 'Y' } };
    expect(table.match(key('ADT^A04'), { ...json(consent), source: 'kafka-events' }).map((r) => r.name)).toEqual(['kafka-consent']);
    expect(table.match(key('ADT^A04'), { ...json({ ...consent, body: { consent: 'N' } }), source: 'kafka-events' })).toEqual([]);
  });
});
