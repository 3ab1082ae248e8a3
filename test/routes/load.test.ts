import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { listRouteFiles, loadRoutes } from '../../core/routes/loader.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { RouteTable } from '../../core/routes/matcher.js';
import { builtinRegistry } from '../../plugins/index.js';
import { offlineContext } from '../../core/cli/common.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { parseHl7 } from '../../core/hl7/index.js';
import { tempFiles } from '../helpers/routes.js';

const reg = builtinRegistry();
const ctx = offlineContext(reg, loadSiteConfig(undefined, reg.extensions));
const load = (dir: string, env: NodeJS.ProcessEnv = {}) =>
  loadRoutes(listRouteFiles([dir]), { registry: reg, contextFor: (d) => ctx(d), sources: ['mllp'], env });

async function issuesOf(files: Record<string, string>, env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  const dir = tempFiles(files);
  try {
    await load(dir, env);
  } catch (e) {
    expect(e).toBeInstanceOf(LoadError);
    return (e as LoadError).issues.map((i) => i.toString().replace(dir + path.sep, ''));
  }
  throw new Error('expected the load to fail');
}

const GOOD = `# yaml-language-server: $schema=../schemas/route.schema.json
name: consent-log
match:
  events: [ADT^A04, ADT^A01]
  when:
    - { path: ZCN-1, equals: Y }
ack: on-complete
steps:
  - set:
      who: \${PID-5.1}\${PID-5.2}
  - log: { message: "registration \${msg.controlId}" }
  - reply: { segments: [[ZXX, "\${vars.who}"]] }
`;

describe('route files', () => {
  it('loads a valid route and matches by event and condition', async () => {
    const routes = await load(tempFiles({ 'a.yaml': GOOD }));
    expect(routes.map((r) => r.name)).toEqual(['consent-log']);
    const table = new RouteTable(routes);
    const msg = (z: string) => parseHl7(`MSH|^~\\&|HIS|H1|HB|HB|20250101120000||ADT^A04|C1|P|2.5\rPID|1||P1^^^H^PI||张^三\r${z}`);
    const key = { source: 'mllp', type: 'ADT^A04', sendingApp: 'HIS', sendingFacility: 'H1' };
    const input = (m: ReturnType<typeof msg>) => ({ messageId: '1', controlId: 'C1', type: 'ADT^A04', source: 'mllp', hl7: m, vars: {} });
    expect(table.match(key, input(msg('ZCN|Y|30'))).map((r) => r.name)).toEqual(['consent-log']);
    expect(table.match(key, input(msg('ZCN|N')))).toEqual([]);
    expect(table.match({ ...key, type: 'ADT^A08' }, input(msg('ZCN|Y')))).toEqual([]);
  });

  it('reports an unknown key at its line and column', async () => {
    const issues = await issuesOf({ 'a.yaml': GOOD.replace('ack: on-complete', 'ack: on-complete\nretries: 3') });
    expect(issues).toEqual(['a.yaml:8:1: unknown key "retries"']);
  });

  it('reports a bad enum value at the value', async () => {
    const issues = await issuesOf({ 'a.yaml': GOOD.replace('ack: on-complete', 'ack: at-once') });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^a\.yaml:7:6: ack must be one of: on-receive, on-complete$/);
  });

  it('reports a bad field path in a template with its position', async () => {
    const issues = await issuesOf({ 'a.yaml': GOOD.replace('${PID-5.1}${PID-5.2}', '${PID-X.1}') });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^a\.yaml:10:12: bad field path "PID-X\.1"/);
  });

  it('reports an unknown plugin', async () => {
    const issues = await issuesOf({ 'a.yaml': GOOD.replace('  - log: { message: "registration ${msg.controlId}" }', '  - plugin: no-such-plugin') });
    expect(issues.length).toBeGreaterThanOrEqual(1);
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^a\.yaml:11:13: steps\.1\.plugin must be one of: log, reply, http, /);
  });

  it('reports YAML syntax errors with line and column', async () => {
    const issues = await issuesOf({ 'a.yaml': 'name: x\nmatch: { events: [ADT^A04]\nsteps: []\n' });
    expect(issues[0]).toMatch(/^a\.yaml:\d+:\d+: /);
  });

  it('resolves ${env:NAME} and refuses a missing one by name', async () => {
    const route = GOOD.replace('    - { path: ZCN-1, equals: Y }', '    - path: ZCN-1\n      equals: ${env:CONSENT_VALUE}');
    const issues = await issuesOf({ 'a.yaml': route }, {});
    expect(issues).toEqual(['a.yaml:7:15: environment variable CONSENT_VALUE is not set']);
    const routes = await load(tempFiles({ 'a.yaml': route }), { CONSENT_VALUE: 'Y' });
    expect(routes).toHaveLength(1);
  });

  it('refuses secrets written inline', async () => {
    const route = GOOD.replace('ack: on-complete', 'ack: on-complete').replace('  - reply:', '  - plugin: http\n    config: { url: "http://127.0.0.1:1/x", headers: { token: abc } }\n  - reply:');
    const issues = await issuesOf({ 'a.yaml': route });
    expect(issues.join('\n')).toMatch(/token looks like a secret written inline/);
  });

  it('refuses two routes with the same name across files, naming the first file', async () => {
    const issues = await issuesOf({ 'a.yaml': GOOD, 'b.yaml': GOOD });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^b\.yaml:2:7: route name "consent-log" is already used in .*a\.yaml$/);
  });

  it('refuses a filter after an outbound step in an on-receive route', async () => {
    const route = `name: r1
match: { events: [ADT^A04] }
steps:
  - plugin: http
    config: { url: "http://127.0.0.1:1/x" }
  - filter: { path: PID-3.1, exists: true }
`;
    const issues = await issuesOf({ 'a.yaml': route });
    expect(issues).toEqual(['a.yaml:6:5: in an on-receive route, filters must come before the first outbound plugin step']);
  });

  it('refuses an unknown source name', async () => {
    const issues = await issuesOf({ 'a.yaml': GOOD.replace('match:', 'sources: [kafka-x]\nmatch:') });
    expect(issues).toEqual(['a.yaml:3:11: unknown source "kafka-x" (known: mllp)']);
  });

  it('loads every default route shipped in routes/', async () => {
    const routes = await load(path.resolve('routes'), process.env);
    expect(routes.length).toBeGreaterThan(0);
  });
});
