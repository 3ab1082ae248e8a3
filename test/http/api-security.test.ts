/**
 * Issue 12 through the real engine HTTP server (startEngine, real fetch):
 * API clients (401/403), loopback-only without clients, 415 for non-JSON
 * bodies, no CORS, cross-site state changes refused, open health endpoints,
 * audit rows with client and address, and `hisbridge audit --patient <ID
 * number>` through the CLI.
 */
import http from 'node:http';
import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiToken } from '../../core/http/api-auth.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { cli } from '../helpers/cli.js';
import { until } from '../ops/fixtures.js';
import path from 'node:path';

const WS_TOKEN = 'ws-token-7f3c9a1b2d4e6f8091a2b3c4d5e6f708';
const STATS_TOKEN = 'stats-token-0a1b2c3d4e5f60718293a4b5c6d7e8f9';
const FAR_TOKEN = 'far-token-99aa88bb77cc66dd55ee44ff33001122';
const ID_NUMBER = '440106199003152314';
const OTHER_ID_NUMBER = '440106198512120019';

/** A non-loopback IPv4 address of this machine, if it has one (to call the server as a LAN client would). */
const LAN_IP = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('workstation APIs with api.clients', () => {
  let t: TestEngine;
  const viewer = (extra: Record<string, string> = {}) =>
    `${t.httpUrl}/api/gd-ehr/viewer-url?${new URLSearchParams({ patientId: 'P000100001', staffNo: 'D0012', staffName: '李建国', idcard: ID_NUMBER, cardType: '01', patientName: '张三丰', format: 'json', ...extra })}`;

  beforeAll(async () => {
    const siteYaml = `api:
  clients:
    - name: his-workstation
      tokenHash: "${hashApiToken(WS_TOKEN)}"
      allow: [gd-ehr, recognition]
      from: [10.1.0.0/16, 127.0.0.1]
    - name: stats-bot
      tokenHash: "${hashApiToken(STATS_TOKEN)}"
      allow: [stats]
    - name: far-away
      tokenHash: "${hashApiToken(FAR_TOKEN)}"
      from: [10.9.0.0/16]
`;
    t = await startEngine({ siteYaml });
  }, 60_000);
  afterAll(async () => t?.stop());

  it('401 API_E_UNAUTHENTICATED without a token or with a wrong one', async () => {
    for (const headers of [{}, bearer('wrong-token-0000000000000000000000000000'), { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, bearer(WS_TOKEN.slice(0, -1))]) {
      const r = await fetch(viewer(), { headers });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      const body = (await r.json()) as { code: string; message: string };
      expect(body.code).toBe('API_E_UNAUTHENTICATED');
      expect(typeof body.message).toBe('string');
    }
    // Unknown /api paths too: nothing about the API is told to an unauthenticated caller.
    expect((await fetch(`${t.httpUrl}/api/nope/x`)).status).toBe(401);
    expect((await fetch(`${t.httpUrl}/api/stats`)).status).toBe(401);
  });

  it('a valid token in its family and from an allowed address is served', async () => {
    const r = await fetch(viewer(), { headers: bearer(WS_TOKEN) });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { url: string }).url).toMatch(/getPrivilege\?param=[0-9a-f]+&appId=/);
    const stats = await fetch(`${t.httpUrl}/api/stats`, { headers: bearer(STATS_TOKEN) });
    expect(stats.status).toBe(200);
    expect(((await stats.json()) as { by: string }).by).toBe('org');
  });

  it('403 API_E_FORBIDDEN for a family not in allow or an address not in from', async () => {
    const family = await fetch(`${t.httpUrl}/api/stats`, { headers: bearer(WS_TOKEN) });
    expect(family.status).toBe(403);
    expect(((await family.json()) as { code: string }).code).toBe('API_E_FORBIDDEN');
    const family2 = await fetch(viewer(), { headers: bearer(STATS_TOKEN) });
    expect(family2.status).toBe(403);
    const address = await fetch(viewer(), { headers: bearer(FAR_TOKEN) });
    expect(address.status).toBe(403);
    expect(((await address.json()) as { code: string; message: string }).message).toContain('address');
  });

  it('health, readiness and metrics stay open', async () => {
    expect((await fetch(`${t.httpUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.httpUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${t.httpUrl}/metrics`)).status).toBe(200);
  });

  it('415 for a POST body that is not application/json (text/plain, forms), even with a valid token', async () => {
    const body = JSON.stringify({ orderNo: 'ORD1', itemCode: 'LAB0001', staffNo: 'D0001', decision: 'recognize' });
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) {
      const r = await fetch(`${t.httpUrl}/api/recognition/decision`, { method: 'POST', headers: { ...bearer(WS_TOKEN), 'content-type': type }, body });
      expect(r.status, type).toBe(415);
      expect(((await r.json()) as { code: string }).code).toBe('HTTP_E_UNSUPPORTED_MEDIA_TYPE');
    }
    // No content type at all is not JSON either.
    const none = await fetch(`${t.httpUrl}/api/recognition/decision`, { method: 'POST', headers: bearer(WS_TOKEN), body: new Uint8Array(Buffer.from(body)) });
    expect(none.status).toBe(415);
    // application/json with a charset reaches the endpoint (which answers for itself, not 415).
    const json = await fetch(`${t.httpUrl}/api/recognition/decision`, { method: 'POST', headers: { ...bearer(WS_TOKEN), 'content-type': 'application/json; charset=utf-8' }, body });
    expect(json.status).not.toBe(415);
    expect(json.status).not.toBe(401);
  });

  it('sends no CORS headers: a preflight gets no Access-Control-Allow-Origin', async () => {
    const pre = await fetch(`${t.httpUrl}/api/recognition/decision`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
    });
    expect(pre.status).toBeGreaterThanOrEqual(400);
    expect([...pre.headers.keys()].filter((k) => k.startsWith('access-control-'))).toEqual([]);
    const get = await fetch(viewer(), { headers: { ...bearer(WS_TOKEN), origin: 'http://evil.example' } });
    expect(get.status).toBe(200);
    expect([...get.headers.keys()].filter((k) => k.startsWith('access-control-'))).toEqual([]);
  });

  it('refuses state-changing requests from pages of other sites (console login included)', async () => {
    const login = await fetch(`${t.httpUrl}/console/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' }, body: 'user=a&password=b' });
    expect(login.status).toBe(403);
    expect(((await login.json()) as { code: string }).code).toBe('HTTP_E_CROSS_ORIGIN');
    const nul = await fetch(`${t.httpUrl}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'null' }, body: '{}' });
    expect(nul.status).toBe(403);
    // The same origin is fine (the console's own pages send it).
    const same = await fetch(`${t.httpUrl}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: t.httpUrl }, body: JSON.stringify({ user: 'x', password: 'y' }) });
    expect(same.status).toBe(401);
  });

  it('audit rows carry the client name and address; hisbridge audit --patient finds the viewer URL by ID number and by patientId', async () => {
    const r = await fetch(viewer({ staffNo: 'D0777', patientId: 'P000177777' }), { headers: bearer(WS_TOKEN) });
    expect(r.status).toBe(200);
    const rows = await until(() => t.engine.ops.queries.auditPage({ plugin: 'gd-ehr', operation: 'viewer-url', staffNo: 'D0777' }), (x) => x.length === 1);
    expect(rows[0]).toMatchObject({ client: 'his-workstation', address: '127.0.0.1', staffNo: 'D0777', result: 'ok' });
    expect(JSON.stringify(rows)).not.toContain(ID_NUMBER);

    const storeDir = path.join(t.dataDir, 'store');
    const byId = await cli(['audit', '--data-dir', storeDir, '--patient', ID_NUMBER, '--operation', 'viewer-url', '--format', 'jsonl']);
    expect(byId.code).toBe(0);
    const found = byId.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(found.some((x) => x.staffNo === 'D0777' && x.client === 'his-workstation' && x.address === '127.0.0.1')).toBe(true);
    expect(byId.stdout).not.toContain(ID_NUMBER);

    const byPid = await cli(['audit', '--data-dir', storeDir, '--patient', 'P000177777', '--format', 'jsonl']);
    expect(byPid.stdout).toContain('"staffNo":"D0777"');
    const csv = await cli(['audit', '--data-dir', storeDir, '--patient', ID_NUMBER, '--operation', 'viewer-url']);
    expect(csv.stdout.split('\r\n')[0]).toMatch(/,client,address$/);
    expect(csv.stdout).toContain(',his-workstation,127.0.0.1');

    const other = await cli(['audit', '--data-dir', storeDir, '--patient', OTHER_ID_NUMBER, '--operation', 'viewer-url', '--format', 'jsonl']);
    expect(other.code).toBe(0);
    expect(other.stdout.trim()).toBe('');
  });

  it('the console audit page shows client and address', async () => {
    // Uses the read path of the page renderer through the queries the page uses.
    const rows = t.engine.ops.queries.auditPage({ plugin: 'gd-ehr', patientId: ID_NUMBER });
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((x) => x.client === 'his-workstation')).toBe(true);
  });
});

describe('workstation APIs without api.clients', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine({ siteYaml: 'http:\n  host: 0.0.0.0\n' });
  }, 60_000);
  afterAll(async () => t?.stop());

  it('answer loopback callers', async () => {
    const port = new URL(t.httpUrl).port;
    const r = await fetch(`http://127.0.0.1:${port}/api/gd-ehr/viewer-url?patientId=P1&staffNo=D1&staffName=x&idcard=${ID_NUMBER}&cardType=01&patientName=x&format=json`);
    expect(r.status).toBe(200);
  });

  it('refuse a loopback caller whose Host names another site (DNS rebinding from a browser on this machine)', async () => {
    const port = Number(new URL(t.httpUrl).port);
    const query = `/api/gd-ehr/viewer-url?patientId=P1&staffNo=D1&staffName=x&idcard=${ID_NUMBER}&cardType=01&patientName=x&format=json`;
    const get = (host: string | undefined, p = query) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const headers: Record<string, string> = host === undefined ? {} : { host };
        const req = http.request({ host: '127.0.0.1', port, path: p, headers, setHost: host !== undefined }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString('utf8')));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const rebound = await get(`evil.example:${port}`);
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body)).toMatchObject({ code: 'API_E_FORBIDDEN' });
    expect(rebound.body).not.toContain('getPrivilege');
    expect((await get(`evil.example:${port}`, '/api/stats')).status).toBe(403);
    for (const ok of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'localhost']) expect((await get(ok)).status, ok).toBe(200);
    // Health stays open whatever the Host.
    expect((await get('evil.example', '/healthz')).status).toBe(200);
  });

  it.skipIf(!LAN_IP)('refuse other addresses with 403, while health stays open', async () => {
    const port = new URL(t.httpUrl).port;
    const r = await fetch(`http://${LAN_IP}:${port}/api/gd-ehr/viewer-url?patientId=P1&staffNo=D1&staffName=x&idcard=${ID_NUMBER}&cardType=01&patientName=x&format=json`);
    expect(r.status).toBe(403);
    expect(((await r.json()) as { code: string }).code).toBe('API_E_FORBIDDEN');
    expect((await fetch(`http://${LAN_IP}:${port}/api/stats`)).status).toBe(403);
    expect((await fetch(`http://${LAN_IP}:${port}/healthz`)).status).toBe(200);
  });
});
