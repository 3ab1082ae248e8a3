/**
 * Issue 14 item 4: a site connected only to the provincial platform (gdEhr),
 * simulators off, starts with the shipped routes. The recognition routes load
 * inactive (one warning each), match nothing, and are listed with their reason
 * in /readyz and the console overview; `validate` warns and exits 0; a route
 * marked `required: true` makes the missing section an error again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { Engine } from '../../core/engine/engine.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { silentLogger } from '../../core/log.js';
import { builtinRegistry } from '../../plugins/index.js';
import { AUTH_PATH, DEMO_SITE, VIEWER_PATH, startGdEhrSimulator, type GdEhrSimulator } from '../../plugins/gd-ehr/index.js';
import { hashPassword } from '../../core/ops/console/auth.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { cli } from '../helpers/cli.js';

const RECOGNITION_ROUTES = ['recognition-check', 'recognition-dict', 'recognition-exam', 'recognition-lab', 'recognition-patient'];
const REASON = 'recognition.baseUrl is not set in hisbridge.yaml';
const CONSOLE_PASSWORD = 'correct horse battery';
const ENV = { I14_PAAS_TOKEN: DEMO_SITE.paasToken, I14_SM4_KEY: DEMO_SITE.sm4Key };

/** A gdEhr-only site: simulators off, no recognition section. */
function gdEhrOnlyYaml(simUrl: string, extra = ''): string {
  return `simulators: false
listeners:
  - name: mllp
    port: 0
    noRoute: AR
gdEhr:
  authUrl: ${simUrl}${AUTH_PATH}
  viewerUrl: ${simUrl}${VIEWER_PATH}
  orgCode: ${DEMO_SITE.orgCode}
  orgName: ${DEMO_SITE.orgName}
  callSysCode: ${DEMO_SITE.callSysCode}
  appId: ${DEMO_SITE.appId}
  paasId: ${DEMO_SITE.paasId}
  paasToken: \${env:I14_PAAS_TOKEN}
  sm4Key: \${env:I14_SM4_KEY}
${extra}`;
}

function ack(bytes: Buffer) {
  return parseHl7(decodeHl7(bytes, 'gb18030').text);
}

async function until<T>(fn: () => T | Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a gdEhr-only site with the shipped routes', () => {
  let sim: GdEhrSimulator;
  let t: TestEngine;
  let client: MllpClient;
  let dir: string;
  let siteFile: string;

  beforeAll(async () => {
    sim = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site: {}, log: silentLogger() });
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-i14-'));
    siteFile = path.join(dir, 'hisbridge.yaml');
    writeFileSync(siteFile, gdEhrOnlyYaml(sim.url));
    const consoleYaml = `console:\n  users:\n    - { name: ops, passwordHash: "${hashPassword(CONSOLE_PASSWORD)}" }\n`;
    t = await startEngine({ siteYaml: gdEhrOnlyYaml(sim.url, consoleYaml), env: ENV });
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 10_000 });
  });
  afterAll(async () => {
    client?.close();
    await t?.stop();
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('starts, runs no simulator, and keeps the gd-ehr routes active', () => {
    expect(t.engine.simulators).toEqual({});
    const active = t.engine.routes.routes.map((r) => r.name);
    expect(active).toEqual(expect.arrayContaining(['gd-ehr-viewer']));
    expect(active.some((n) => n.startsWith('gd-ehr-authorize') || n.startsWith('gd-ehr-consent'))).toBe(true);
    for (const n of RECOGNITION_ROUTES) expect(active).not.toContain(n);
  });

  it('authorizes sample 01 at the gd-ehr simulator it is pointed at', async () => {
    const a = ack(await client.send(readFileSync(path.resolve('samples/01-adt-a04-registration-consent.hl7'))));
    expect(a.get('MSA-1')).toBe('AA');
    const calls = await until(() => sim.calls.filter((c) => c.op === 'authorize'), (c) => c.length > 0);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.verified).toBe(true);
  });

  it('lists the recognition routes as inactive in /readyz, which stays ready', async () => {
    const res = await fetch(`${t.httpUrl}/readyz`);
    const body = (await res.json()) as { status: string; inactiveRoutes: { name: string; reason: string }[] };
    expect(res.status).toBe(200);
    expect(body.status).toBe('ok');
    expect(body.inactiveRoutes.map((r) => r.name).sort()).toEqual(RECOGNITION_ROUTES);
    for (const r of body.inactiveRoutes) expect(r.reason).toBe(REASON);
  });

  it('lists them in the console overview with the reason', () => {
    const routes = t.engine.ops.overview().routes;
    const lab = routes.find((r) => r.name === 'recognition-lab');
    expect(lab?.inactive).toBe(REASON);
    expect(routes.find((r) => r.name === 'gd-ehr-viewer')?.inactive).toBeUndefined();
  });

  it('shows them in the console Routes table with Status "inactive: reason"', async () => {
    const login = await fetch(`${t.httpUrl}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'ops', password: CONSOLE_PASSWORD }) });
    expect(login.status).toBe(200);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const page = await (await fetch(`${t.httpUrl}/console/dashboard?lang=en`, { headers: { cookie } })).text();
    expect(page).toContain('<th>Status</th>');
    for (const n of RECOGNITION_ROUTES) expect(page).toContain(`<td>${n}</td><td class="route-state bad" data-state="inactive">inactive: ${REASON}</td>`);
    expect(page).toContain('<td>gd-ehr-viewer</td><td class="route-state ok" data-state="active">active</td>');
    // The health panel lists them too, with the reason (issue 18).
    for (const n of RECOGNITION_ROUTES) expect(page).toContain(`<tr data-route="${n}"><td>${n}</td><td>${REASON}</td></tr>`);
    // The default language is zh-CN: the same reason after 未启用.
    const zh = await (await fetch(`${t.httpUrl}/console/dashboard?lang=zh-CN`, { headers: { cookie } })).text();
    for (const n of RECOGNITION_ROUTES) expect(zh).toContain(`<td>${n}</td><td class="route-state bad" data-state="inactive">未启用：${REASON}</td>`);
  });

  it('logs one warning per inactive route, naming the section and key only', () => {
    for (const n of RECOGNITION_ROUTES) {
      const lines = t.logs.filter((l) => l.includes(`"route":"${n}"`) && l.includes('inactive'));
      expect(lines, n).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', code: 'CONFIG_E_SITE_MISSING', reason: REASON });
    }
  });

  it('routes nothing to an inactive route: a lab report gets the listener noRoute answer', async () => {
    const a = ack(await client.send(readFileSync(path.resolve('samples/15-oru-r01-lab-report-final.hl7'))));
    expect(a.get('MSA-1')).toBe('AR');
    expect(a.get('MSA-3')).toContain('no route accepts ORU^R01');
  });

  it('keeps the same rules on reload', async () => {
    const r = await t.engine.reload();
    expect(r.ok).toBe(true);
    expect(t.engine.inactiveRoutes.map((x) => x.name).sort()).toEqual(RECOGNITION_ROUTES);
  });

  it('validate --config warns file:line:col per inactive route and exits 0', async () => {
    const r = await cli(['validate', '--config', siteFile, path.resolve('routes')], ENV);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    for (const n of RECOGNITION_ROUTES) {
      expect(r.stderr).toMatch(new RegExp(`routes/${n}\\.yaml:\\d+:\\d+: warning: route ${n} inactive: ${REASON.replace(/\./g, '\\.')}`));
    }
    expect(r.stdout).toContain('5 inactive');
  });

  describe('required: true', () => {
    let routesDir: string;
    beforeAll(() => {
      routesDir = path.join(dir, 'routes-required');
      cpSync(path.resolve('routes'), routesDir, { recursive: true });
      const f = path.join(routesDir, 'recognition-lab.yaml');
      writeFileSync(f, readFileSync(f, 'utf8').replace(/^name: recognition-lab$/m, 'name: recognition-lab\nrequired: true'));
    });

    it('makes the missing section an error for validate (exit 1, naming the route)', async () => {
      const r = await cli(['validate', '--config', siteFile, routesDir], ENV);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/recognition-lab\.yaml:\d+:\d+: route recognition-lab is required: recognition\.baseUrl is not set in hisbridge\.yaml/);
      // The routes not marked required stay warnings.
      expect(r.stderr).toContain('warning: route recognition-exam inactive');
    });

    it('refuses the start, naming the route', async () => {
      const r = await cli(['start', '--config', siteFile, '--routes', routesDir, '--data-dir', path.join(dir, 'data-required'), '--mllp-port', '0', '--http-port', '0'], ENV);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('route recognition-lab is required: recognition.baseUrl is not set in hisbridge.yaml');
      expect(r.stderr).toContain('refusing to start');
    });
  });
});

describe('what still refuses the start', () => {
  const reg = builtinRegistry();
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-i14b-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function create(yaml: string): Promise<unknown> {
    const file = path.join(dir, `site-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml);
    const config = loadSiteConfig(file, reg.extensions, { mllpPort: 0, httpPort: 0, dataDir: path.join(dir, 'store'), routesDir: path.resolve('routes') }, { ...process.env, ...ENV });
    try {
      const e = await Engine.create({ config, registry: reg, log: silentLogger(), workers: false });
      await e.stop(100);
      return undefined;
    } catch (e) {
      return e;
    }
  }

  it('a recognition section that is written but incomplete is an error, not an inactive route', async () => {
    const e = await create(gdEhrOnlyYaml('http://127.0.0.1:9', 'recognition:\n  baseUrl: http://127.0.0.1:9\n'));
    expect(e).toBeInstanceOf(LoadError);
    expect(String((e as LoadError).message)).toContain('recognition.username is not set in hisbridge.yaml');
  });

  it('a malformed recognition URL is a config error at load', () => {
    const file = path.join(dir, 'bad-url.yaml');
    writeFileSync(file, gdEhrOnlyYaml('http://127.0.0.1:9', 'recognition:\n  baseUrl: ftp:/nowhere\n'));
    expect(() => loadSiteConfig(file, reg.extensions, {}, { ...process.env, ...ENV })).toThrow(/baseUrl/);
  });

  it('with the simulators on, nothing is inactive', async () => {
    const t = await startEngine({});
    try {
      expect(t.engine.inactiveRoutes).toEqual([]);
      expect(t.engine.routes.routes.map((r) => r.name)).toEqual(expect.arrayContaining(RECOGNITION_ROUTES));
    } finally {
      await t.stop();
    }
  });
});
