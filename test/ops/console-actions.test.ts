/**
 * Issue 18 over real HTTP, MLLP and the CLI process: the dashboard's counts
 * agree with /metrics after every sample, route pause / resume (console,
 * /api/routes and `hisbridge routes`), statistics reset, content search and
 * filtered replay with its confirm step and cap. Every action is audited and
 * the console's are refused without the session's CSRF token.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSiteConfig } from '../../core/config/site.js';
import { Engine } from '../../core/engine/engine.js';
import { createLogger } from '../../core/log.js';
import { builtinRegistry } from '../../plugins/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../core/ops/console/auth.js';
import { hashApiToken } from '../../core/http/api-auth.js';
import { MllpClient } from '../../core/mllp/client.js';
import { SCAN_CAP } from '../../core/ops/content-search.js';
import { DB_FILE } from '../../core/store/sqlite.js';
import { cli } from '../helpers/cli.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { CONSOLE_PASSWORD, CONSOLE_USER, metricValue, parseMetrics, sample, sampleFiles, samplePhi, until, withControlId } from './fixtures.js';

const TOOL_TOKEN = 'tool-token-0123456789abcdefghij';

function siteYaml(): string {
  return `console:
  users:
    - { name: ${CONSOLE_USER}, passwordHash: "${hashPassword(CONSOLE_PASSWORD)}" }
  sessionTtl: 10m
api:
  clients:
    - name: ops-tool
      tokenHash: "${hashApiToken(TOOL_TOKEN)}"
      allow: [routes]
`;
}

interface Session { cookie: string; csrf: string }

async function login(base: string): Promise<Session> {
  const res = await fetch(`${base}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: CONSOLE_USER, password: CONSOLE_PASSWORD }) });
  expect(res.status).toBe(200);
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  const page = await (await fetch(`${base}/console/dashboard`, { headers: { cookie } })).text();
  return { cookie, csrf: /<meta name="csrf-token" content="([^"]+)">/.exec(page)![1]! };
}

function post(base: string, s: Session, p: string, body: Record<string, unknown> = {}, csrf = true): Promise<Response> {
  return fetch(`${base}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', cookie: s.cookie, ...(csrf ? { 'x-csrf-token': s.csrf } : {}) }, body: JSON.stringify(body) });
}

const api = (base: string, p: string, init: RequestInit = {}) =>
  fetch(`${base}${p}`, { ...init, headers: { 'content-type': 'application/json', authorization: `Bearer ${TOOL_TOKEN}`, ...(init.headers as Record<string, string> | undefined) } });

/** Deliveries of a route by state, read from the store file. */
function deliveryStates(t: TestEngine, route: string): Record<string, number> {
  const db = new Database(path.join(t.dataDir, 'store', DB_FILE), { readonly: true });
  try {
    const rows = db.prepare('SELECT state, count(*) AS n FROM deliveries WHERE route = ? GROUP BY state').all(route) as { state: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  } finally {
    db.close();
  }
}

async function sendAll(port: number, frames: Buffer[]): Promise<string[]> {
  const c = await MllpClient.connect('127.0.0.1', port);
  const acks: string[] = [];
  try {
    for (const f of frames) acks.push((await c.send(f)).toString('latin1').split('\r')[1]?.split('|')[1] ?? '');
  } finally {
    c.close();
  }
  return acks;
}

describe('console operator actions over HTTP', () => {
  let t: TestEngine;
  let s: Session;

  beforeAll(async () => {
    t = await startEngine({ siteYaml: siteYaml() });
    s = await login(t.httpUrl);
  }, 30_000);
  afterAll(async () => t?.stop());

  it('dashboard counts equal the /metrics series after every sample (mixed load), with "delivered" counted for the on-complete route', async () => {
    await sendAll(t.port, sampleFiles().map(sample));
    // Quiet: nothing open, and two reads a moment apart give the same numbers.
    type Live = { received: number; errors: number; delivered: number; retries: number; deadLettered: number; dead: number; pending: number; routes: Record<string, { matched: number; delivered: number; retries: number; deadLettered: number; deadNow: number }> };
    const live = async (): Promise<Live> => (await fetch(`${t.httpUrl}/console/api/live`, { headers: { cookie: s.cookie } })).json() as Promise<Live>;
    let a: Live;
    let b: Live;
    for (;;) {
      a = await until(live, (v) => v.pending === 0 && v.received === sampleFiles().length);
      await new Promise((r) => setTimeout(r, 300));
      b = await live();
      if (JSON.stringify(a) === JSON.stringify(b)) break;
    }
    const m = parseMetrics(await (await fetch(`${t.httpUrl}/metrics`)).text());
    expect(b.received).toBe(sampleFiles().length);
    expect(b.received).toBe(metricValue(m, 'hisbridge_messages_received_total'));
    const acked = m.filter((x) => x.name === 'hisbridge_messages_acked_total' && !['AA', 'CA'].includes(x.labels.code!)).reduce((n, x) => n + x.value, 0);
    expect(b.errors).toBe(acked);
    const delivered = metricValue(m, 'hisbridge_deliveries_total', { outcome: 'done' }) + metricValue(m, 'hisbridge_deliveries_total', { outcome: 'skipped' })
      + metricValue(m, 'hisbridge_route_matches_total', { outcome: 'ok' });
    expect(b.delivered).toBe(delivered);
    expect(b.retries).toBe(metricValue(m, 'hisbridge_deliveries_total', { outcome: 'retry' }));
    expect(b.deadLettered).toBe(metricValue(m, 'hisbridge_dead_letters_total'));
    expect(b.dead).toBe(metricValue(m, 'hisbridge_dead_letters_current'));
    expect(b.dead).toBe(metricValue(m, 'hisbridge_deliveries_current', { state: 'dead' }));
    expect(b.pending).toBe(metricValue(m, 'hisbridge_queue_depth'));
    let perRouteDead = 0;
    for (const [route, r] of Object.entries(b.routes)) {
      expect(r.matched, route).toBe(metricValue(m, 'hisbridge_route_matches_total', { route }));
      expect(r.deadLettered, route).toBe(metricValue(m, 'hisbridge_dead_letters_total', { route }));
      expect(r.deadNow, route).toBe(metricValue(m, 'hisbridge_dead_letters_current', { route }));
      perRouteDead += r.deadNow;
    }
    expect(perRouteDead).toBe(b.dead);
    // The on-complete viewer route finished its matched messages before the ACK: they count as delivered.
    const viewer = b.routes['gd-ehr-viewer']!;
    expect(viewer.matched).toBeGreaterThan(0);
    expect(viewer.delivered).toBe(metricValue(m, 'hisbridge_route_matches_total', { route: 'gd-ehr-viewer', outcome: 'ok' }));
    expect(viewer.delivered).toBeGreaterThan(0);
  }, 60_000);

  it('shows the health panel (listeners, store, remotes, Kafka, event loop, inactive routes) instead of a JSON dump', async () => {
    const html = await (await fetch(`${t.httpUrl}/console/dashboard?lang=en`, { headers: { cookie: s.cookie } })).text();
    expect(html).toContain('id="health-panel"');
    expect(html).not.toMatch(/<pre>\{/);
    expect(html).toMatch(/<tr data-listener="mllp"><td>mllp<\/td><td><span class="ok">Bound :\d+/);
    expect(html).toMatch(/id="health-store"><tr><th>Store<\/th><td data-ok="true">/);
    expect(html).toContain('id="health-remotes"');
    expect(html).toMatch(/data-remote="gdEhr"|data-remote="recognition"/);
    expect(html).toContain('id="health-kafka"');
    expect(html).toContain('id="health-loop"');
    expect(html).toContain('id="health-inactive"');
    const health = await (await fetch(`${t.httpUrl}/healthz`)).json() as { eventLoop?: { p99: number; maxSinceStart: number } };
    expect(health.eventLoop?.maxSinceStart).toBeGreaterThanOrEqual(0);
  });

  it('pauses a route from the console (CSRF required, audited): messages are stored and ACKed, delivery waits; resume delivers them', async () => {
    const route = 'recognition-patient';
    expect((await post(t.httpUrl, s, `/console/routes/${route}/pause`, {}, false)).status).toBe(403);
    const res = await post(t.httpUrl, s, `/console/routes/${route}/pause`);
    expect(res.status).toBe(200);
    const before = deliveryStates(t, route).done ?? 0;
    const acks = await sendAll(t.port, [withControlId('06-adt-a28-add-person-no-msh18.hl7', 'PAUSE0001'), withControlId('06-adt-a28-add-person-no-msh18.hl7', 'PAUSE0002')]);
    expect(acks).toEqual(['AA', 'AA']);
    await new Promise((r) => setTimeout(r, 800));
    const held = deliveryStates(t, route);
    expect(held.pending).toBe(2);
    expect(held.done ?? 0).toBe(before);
    const list = await (await api(t.httpUrl, '/api/routes')).json() as { routes: { name: string; state: string; pausedBy?: string }[] };
    expect(list.routes.find((r) => r.name === route)).toMatchObject({ state: 'paused', pausedBy: CONSOLE_USER });
    const dash = await (await fetch(`${t.httpUrl}/console/dashboard`, { headers: { cookie: s.cookie } })).text();
    expect(dash).toContain(`data-route="${route}"><td>${route}</td><td class="route-state bad" data-state="paused">`);

    expect((await post(t.httpUrl, s, `/console/routes/${route}/resume`)).status).toBe(200);
    const after = await until(() => deliveryStates(t, route), (d) => (d.done ?? 0) === before + 2);
    expect(after.done).toBe(before + 2);
    const rows = await until(() => t.engine.ops.queries.auditPage({ plugin: 'console' }).filter((r) => r.route === route), (x) => x.length === 2);
    expect(rows.map((r) => r.operation).sort()).toEqual(['route-pause', 'route-resume']);
    expect(rows.every((r) => r.staffNo === CONSOLE_USER && r.result === 'ok')).toBe(true);
  }, 30_000);

  it('refuses to pause an on-complete route and an unknown one', async () => {
    const oc = await post(t.httpUrl, s, '/console/routes/gd-ehr-viewer/pause');
    expect(oc.status).toBe(409);
    expect(((await oc.json()) as { code: string }).code).toBe('OPS_E_ROUTE_ON_COMPLETE');
    const unknown = await api(t.httpUrl, '/api/routes/no-such-route/pause', { method: 'POST', body: '{}' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { code: string }).code).toBe('OPS_E_ROUTE_UNKNOWN');
  });

  it('pauses and resumes through /api/routes behind api.clients, audited with the client name', async () => {
    expect((await fetch(`${t.httpUrl}/api/routes`)).status).toBe(401);
    const p = await api(t.httpUrl, '/api/routes/gd-ehr-authorize/pause', { method: 'POST', body: JSON.stringify({ reason: 'provincial maintenance' }) });
    expect(p.status).toBe(200);
    expect(await p.json()).toEqual({ route: 'gd-ehr-authorize', state: 'paused', changed: true });
    const again = await api(t.httpUrl, '/api/routes/gd-ehr-authorize/pause', { method: 'POST', body: '{}' });
    expect(((await again.json()) as { changed: boolean }).changed).toBe(false);
    const list = await (await api(t.httpUrl, '/api/routes')).json() as { routes: { name: string; state: string; reason?: string }[] };
    expect(list.routes.find((r) => r.name === 'gd-ehr-authorize')).toMatchObject({ state: 'paused', reason: 'provincial maintenance' });
    expect(t.engine.ops.pauses.names()).toContain('gd-ehr-authorize');
    const r = await api(t.httpUrl, '/api/routes/gd-ehr-authorize/resume', { method: 'POST', body: '{}' });
    expect(await r.json()).toEqual({ route: 'gd-ehr-authorize', state: 'active', changed: true });
    // Audit rows are group-committed: wait for the last one.
    const rows = await until(() => t.engine.ops.queries.auditPage({ plugin: 'api' }).filter((x) => x.route === 'gd-ehr-authorize'), (x) => x.length === 3);
    expect(rows.map((x) => `${x.operation}:${x.result}:${x.client}`).sort()).toEqual(['route-pause:ok:ops-tool', 'route-pause:skipped:ops-tool', 'route-resume:ok:ops-tool']);
  });

  it('answers a malformed pause body with 400 and pauses nothing; without the token it answers 401 before reading the body', async () => {
    const route = 'gd-ehr-authorize';
    const state = async () => ((await (await api(t.httpUrl, '/api/routes')).json()) as { routes: { name: string; state: string }[] }).routes.find((r) => r.name === route)?.state;
    expect(await state()).toBe('active');
    const pause = (body: string, headers: Record<string, string> = {}) => api(t.httpUrl, `/api/routes/${route}/pause`, { method: 'POST', body, headers });
    const bad = [
      ['{"reason": "maintenance"', 'body is not valid JSON'],
      ['not json', 'body is not valid JSON'],
      ['["maintenance"]', 'the pause body must be a JSON object'],
      ['"maintenance"', 'the pause body must be a JSON object'],
      ['null', 'the pause body must be a JSON object'],
      ['{"reason": 5}', 'reason must be a string'],
    ] as const;
    for (const [body, message] of bad) {
      const r = await pause(body);
      expect({ body, status: r.status }).toEqual({ body, status: 400 });
      const answer = (await r.json()) as { code: string; message: string };
      expect(answer.code).toBe('HTTP_E_BAD_REQUEST');
      expect(answer.message).toContain(message);
    }
    const anonymous = await fetch(`${t.httpUrl}/api/routes/${route}/pause`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"reason": "maintenance"' });
    expect(anonymous.status).toBe(401);
    const wrongToken = await pause('not json', { authorization: 'Bearer not-the-token-0123456789abcdefghij' });
    expect(wrongToken.status).toBe(401);
    expect(await state()).toBe('active');
    expect(t.engine.ops.pauses.names()).not.toContain(route);
    // An empty body is still a pause without a reason.
    const empty = await pause('');
    expect(empty.status).toBe(200);
    expect(await empty.json()).toEqual({ route, state: 'paused', changed: true });
    const resumed = await api(t.httpUrl, `/api/routes/${route}/resume`, { method: 'POST', body: '{}' });
    expect(resumed.status).toBe(200);
  });

  it('pauses through `hisbridge routes` on the engine\'s store: the running engine holds the route at once, list shows it, resume releases it', async () => {
    const dir = path.join(t.dataDir, 'store');
    const route = 'recognition-patient';
    const bad = await cli(['routes', 'pause', 'no-such-route', '--data-dir', dir, '--routes', 'routes']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('OPS_E_ROUTE_UNKNOWN');
    const p = await cli(['routes', 'pause', route, '--data-dir', dir, '--routes', 'routes', '--reason', 'HIS upgrade']);
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    const list = await cli(['routes', 'list', '--data-dir', dir, '--routes', 'routes', '--json']);
    expect((JSON.parse(list.stdout) as { routes: { name: string; state: string; reason?: string }[] }).routes.find((r) => r.name === route)).toMatchObject({ state: 'paused', reason: 'HIS upgrade' });
    const done = deliveryStates(t, route).done ?? 0;
    expect(await sendAll(t.port, [withControlId('06-adt-a28-add-person-no-msh18.hl7', 'CLIPAUSE1')])).toEqual(['AA']);
    await new Promise((r) => setTimeout(r, 800));
    expect(deliveryStates(t, route).pending).toBe(1);
    const api1 = await (await api(t.httpUrl, '/api/routes')).json() as { routes: { name: string; state: string }[] };
    expect(api1.routes.find((r) => r.name === route)?.state).toBe('paused');
    const r = await cli(['routes', 'resume', route, '--data-dir', dir, '--routes', 'routes']);
    expect(r.code).toBe(0);
    // Nothing wakes the workers here: they poll (delivery.pollMs) and find the route released.
    await until(() => deliveryStates(t, route), (d) => (d.done ?? 0) === done + 1);
    expect(deliveryStates(t, route).done).toBe(done + 1);
    const audit = await until(() => t.engine.ops.queries.auditPage({ plugin: 'cli' }).filter((x) => x.route === route), (x) => x.length === 2);
    expect(audit.map((x) => x.operation).sort()).toEqual(['route-pause', 'route-resume']);
  }, 30_000);

  it('resets a route\'s statistics window (CSRF, audited) without touching the /metrics counters', async () => {
    const route = 'recognition-lab';
    const before = await (await fetch(`${t.httpUrl}/console/api/live`, { headers: { cookie: s.cookie } })).json() as { routes: Record<string, { matched: number; windowStart?: number }> };
    expect(before.routes[route]!.matched).toBeGreaterThan(0);
    expect((await post(t.httpUrl, s, `/console/routes/${route}/reset-stats`, {}, false)).status).toBe(403);
    expect((await post(t.httpUrl, s, `/console/routes/${route}/reset-stats`)).status).toBe(200);
    const after = await (await fetch(`${t.httpUrl}/console/api/live`, { headers: { cookie: s.cookie } })).json() as { routes: Record<string, { matched: number; windowStart?: number }> };
    expect(after.routes[route]!.matched).toBe(0);
    expect(after.routes[route]!.windowStart).toBeGreaterThan(0);
    const m = parseMetrics(await (await fetch(`${t.httpUrl}/metrics`)).text());
    expect(metricValue(m, 'hisbridge_route_matches_total', { route })).toBe(before.routes[route]!.matched);
    expect((await until(() => t.engine.ops.queries.auditPage({ plugin: 'console', operation: 'route-stats-reset' }), (x) => x.length === 1))[0]).toMatchObject({ route, staffNo: CONSOLE_USER, result: 'ok' });
  });

  it('finds a message by PID-5.1 (equals and contains) over a time window, masked, and refuses a window past the scan cap', async () => {
    const q = (params: Record<string, string>) => fetch(`${t.httpUrl}/console/search?${new URLSearchParams({ lang: 'en', ...params })}`, { headers: { cookie: s.cookie } });
    const eq = await (await q({ path: 'PID-5.1', value: '欧阳', since: '1h' })).text();
    const ids = [...eq.matchAll(/<tr data-message="(\d+)">/g)].map((x) => Number(x[1]));
    expect(ids).toHaveLength(1);
    expect(t.engine.store.getMessage(ids[0]!)!.controlId).toBe('HIS202503120003');
    const contains = await (await q({ path: 'PID-5.1', op: 'contains', value: '欧', since: '1h' })).text();
    expect([...contains.matchAll(/<tr data-message="(\d+)">/g)]).toHaveLength(1);
    // A repetition selector, and a segment later in the message (OBX) than PID.
    const byPi = await (await q({ path: 'PID-3[5=PI].1', value: 'P000100001', since: '1h' })).text();
    const piIds = [...byPi.matchAll(/<tr data-message="(\d+)">/g)].map((x) => t.engine.store.getMessage(Number(x[1]))!.controlId).sort();
    expect(piIds).toContain('HIS202503120001');
    expect(piIds).not.toContain('HIS202503120003');
    const obx = await (await q({ path: 'OBX-3.2', op: 'contains', value: '白细胞', since: '1h' })).text();
    const obxIds = [...obx.matchAll(/<tr data-message="(\d+)">/g)].map((x) => t.engine.store.getMessage(Number(x[1]))!.controlId).sort();
    expect(obxIds).toEqual(['LIS202503120015', 'LIS202503120016']);
    const none = await (await q({ path: 'PID-5.1', value: '欧阳', since: '2000-01-01', until: '2000-01-02' })).text();
    expect(none).toContain('id="scanned">0 ');
    // No name or ID number of the samples on the result page.
    const phi = samplePhi();
    for (const v of [...phi.idNumbers, ...phi.names]) expect(eq).not.toContain(v);
    const bad = await q({ path: 'PID-5.x', value: 'a' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('OPS_E_BAD_QUERY');
    t.engine.ops.actions.scanCap = 3;
    try {
      const wide = await q({ path: 'PID-5.1', value: '欧阳', since: '1h' });
      expect(wide.status).toBe(400);
      const text = await wide.text();
      expect(text).toContain('data-code="OPS_E_SEARCH_WINDOW"');
      expect(text).toContain('narrow your time window');
    } finally {
      t.engine.ops.actions.scanCap = SCAN_CAP;
    }
  });

  it('replays a filtered set of stored messages only after the confirm step, capped, audited', async () => {
    const filter = { path: 'PID-5.1', op: 'equals', value: '欧阳', since: '1h' };
    const confirmPage = await (await fetch(`${t.httpUrl}/console/replay?${new URLSearchParams(filter)}`, { headers: { cookie: s.cookie } })).text();
    expect(confirmPage).toMatch(/id="replay-count"><b>1<\/b>/);
    expect((await post(t.httpUrl, s, '/console/replay', { ...filter, confirm: '1' }, false)).status).toBe(403);
    const noConfirm = await post(t.httpUrl, s, '/console/replay', filter);
    expect(noConfirm.status).toBe(409);
    expect(await noConfirm.json()).toMatchObject({ code: 'OPS_E_REPLAY_CONFIRM' });
    const wrong = await post(t.httpUrl, s, '/console/replay', { ...filter, confirm: '5' });
    expect(wrong.status).toBe(409);
    const ok = await post(t.httpUrl, s, '/console/replay', { ...filter, confirm: '1' });
    expect(ok.status).toBe(200);
    const body = await ok.json() as { messages: number; requeued: number };
    expect(body.messages).toBe(1);
    expect(body.requeued).toBeGreaterThan(0);
    expect((await until(() => t.engine.ops.queries.auditPage({ plugin: 'console', operation: 'replay-filtered' }), (x) => x.length === 1))[0]).toMatchObject({ staffNo: CONSOLE_USER, result: 'ok' });
    t.engine.ops.actions.replayCap = 2;
    try {
      const many = await post(t.httpUrl, s, '/console/replay', { since: '1h', confirm: '3' });
      expect(many.status).toBe(400);
      expect(await many.json()).toMatchObject({ code: 'OPS_E_REPLAY_TOO_MANY' });
    } finally {
      t.engine.ops.actions.replayCap = 1000;
    }
  }, 30_000);

  it('keeps no PHI in the log lines the actions wrote', () => {
    const phi = samplePhi();
    const lines = t.logs.filter((l) => /route paused|route resumed|stored messages replayed/.test(l));
    expect(lines.length).toBeGreaterThan(0);
    for (const v of [...phi.idNumbers, ...phi.names]) expect(lines.join('\n')).not.toContain(v);
  });
});

describe('a paused route across an engine restart', () => {
  it('stays paused after a restart: its held delivery waits until resumed', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'hisbridge-pause-'));
    const reg = builtinRegistry();
    const config = loadSiteConfig(undefined, reg.extensions, { mllpPort: 0, httpPort: 0, dataDir: path.join(dataDir, 'store'), routesDir: path.resolve('routes') }, process.env, reg.sources);
    const start = async () => {
      const e = await Engine.create({ config, registry: reg, log: createLogger({ level: 'silent' }), simulatorPorts: 'random' });
      await e.start();
      return e;
    };
    const route = 'recognition-patient';
    let e = await start();
    try {
      e.ops.actions.pause(route, { name: 'ops', via: 'console' }, 'restart test');
      expect(await sendAll(e.listeners[0]!.port!, [withControlId('06-adt-a28-add-person-no-msh18.hl7', 'RESTART01')])).toEqual(['AA']);
      await e.stop(2000);
      e = await start();
      expect(e.ops.actions.routes().find((r) => r.name === route)).toMatchObject({ state: 'paused', pausedBy: 'ops', reason: 'restart test' });
      await new Promise((r) => setTimeout(r, 800));
      expect(e.store.pendingCount()).toBe(1);
      e.ops.actions.resume(route, { name: 'ops', via: 'console' });
      expect((await until(() => e.store.pendingCount(), (n) => n === 0))).toBe(0);
    } finally {
      await e.stop(2000);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
