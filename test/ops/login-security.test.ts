/**
 * Issue 12, console side, through the real engine HTTP server: login
 * throttling (429 + Retry-After, doubling up to 15 minutes), sessions kept
 * hashed in the store so they survive an engine restart, logout deleting the
 * session, and HTTPS (`http.tls`) with the session cookie marked Secure.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSiteConfig } from '../../core/config/site.js';
import { Engine } from '../../core/engine/engine.js';
import { createLogger } from '../../core/log.js';
import { ConsoleAuth, LOGIN_THROTTLE, LoginThrottle, MemorySessionStore, hashPassword, sessionIdHash } from '../../core/ops/console/auth.js';
import { DB_FILE } from '../../core/store/sqlite.js';
import { builtinRegistry } from '../../plugins/index.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { CONSOLE_PASSWORD, CONSOLE_USER, startOpsEngine, until } from './fixtures.js';
import type { TestEngine } from '../helpers/engine.js';

const reg = builtinRegistry();
const quiet = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

function login(base: string, user: string, password: string): Promise<Response> {
  return fetch(`${base}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }) });
}

describe('console login throttling over HTTP', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startOpsEngine();
  }, 60_000);
  afterAll(async () => t?.stop());

  it('answers 429 with Retry-After after 5 failures, even for the right password, and audits the refusals with the address', async () => {
    for (let i = 0; i < LOGIN_THROTTLE.maxFailures; i++) expect((await login(t.httpUrl, CONSOLE_USER, `wrong-${i}`)).status).toBe(401);
    const locked = await login(t.httpUrl, CONSOLE_USER, CONSOLE_PASSWORD);
    expect(locked.status).toBe(429);
    const retry = Number(locked.headers.get('retry-after'));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(LOGIN_THROTTLE.firstLockMs / 1000);
    expect(locked.headers.get('set-cookie')).toBeNull();
    expect(((await locked.json()) as { code: string }).code).toBe('OPS_E_THROTTLED');
    // The address is locked too: another user name from the same address waits as well.
    expect((await login(t.httpUrl, 'someone-else', 'whatever-pass')).status).toBe(429);
    const rows = await until(() => t.engine.ops.queries.auditPage({ plugin: 'console', operation: 'login' }), (r) => r.filter((x) => x.result === 'throttled').length >= 2);
    expect(rows.filter((r) => r.result === 'failed')).toHaveLength(LOGIN_THROTTLE.maxFailures);
    expect(rows.every((r) => r.address === '127.0.0.1')).toBe(true);
    expect(JSON.stringify(rows)).not.toContain(CONSOLE_PASSWORD);
    expect(JSON.stringify(rows)).not.toContain('wrong-');
  });
});

describe('login throttle and sessions (units with a clock)', () => {
  it('locks a key after 5 failures in 15 minutes, doubling each lock up to 15 minutes', () => {
    const th = new LoginThrottle();
    const k = ['user:a'];
    let now = 1_000_000;
    for (let i = 0; i < 4; i++) th.fail(k, (now += 1000));
    expect(th.retryAfterMs(k, now)).toBe(0);
    th.fail(k, now);
    const locks: number[] = [th.retryAfterMs(k, now)];
    for (let i = 0; i < 6; i++) {
      now += locks[locks.length - 1]!; // wait the lock out, fail once more
      expect(th.retryAfterMs(k, now)).toBe(0);
      th.fail(k, now);
      locks.push(th.retryAfterMs(k, now));
    }
    expect(locks.map((ms) => ms / 60_000)).toEqual([1, 2, 4, 8, 15, 15, 15]);
    // Quiet for a whole window after the lock: forgotten, the next failure alone does not lock.
    now += locks[locks.length - 1]! + LOGIN_THROTTLE.windowMs;
    th.fail(k, now);
    expect(th.retryAfterMs(k, now)).toBe(0);
  });

  it('forgets failures older than the window, and a success clears the user', () => {
    const th = new LoginThrottle();
    const k = ['user:a', 'addr:10.0.0.1'];
    for (let i = 0; i < 4; i++) th.fail(k, i);
    th.fail(k, LOGIN_THROTTLE.windowMs + 10); // the first four are out of the window
    expect(th.retryAfterMs(k, LOGIN_THROTTLE.windowMs + 10)).toBe(0);
    th.succeed('user:a');
    expect(th.retryAfterMs(['user:a'], LOGIN_THROTTLE.windowMs + 11)).toBe(0);
  });

  it('keeps a bounded number of keys under a flood of names', () => {
    const th = new LoginThrottle({ maxKeys: 100 });
    for (let i = 0; i < 1000; i++) th.fail([`user:n${i}`], 1);
    expect(th.size).toBeLessThanOrEqual(100);
  });

  it('stores sessions under the hash of their id, honours expiry, and logout deletes', () => {
    const store = new MemorySessionStore();
    const auth = new ConsoleAuth({ enabled: true, users: [{ name: 'a', passwordHash: hashPassword('pw-123456') }], sessionTtlMs: 1000 }, store);
    const s = auth.login('a', 'pw-123456', 0)!;
    expect(store.get(s.id)).toBeUndefined();
    expect(store.get(sessionIdHash(s.id))?.user).toBe('a');
    const headers = { cookie: `hb_session=${s.id}` };
    expect(auth.session(headers, 999)?.csrf).toBe(s.csrf);
    expect(auth.session(headers, 1000)).toBeUndefined();
    const s2 = auth.login('a', 'pw-123456', 2000)!;
    auth.logout(s2.id);
    expect(auth.session({ cookie: `hb_session=${s2.id}` }, 2001)).toBeUndefined();
  });
});

describe('console sessions across an engine restart', () => {
  let dir: string;
  let engine: Engine | undefined;
  const yaml = `console:\n  users:\n    - { name: ${CONSOLE_USER}, passwordHash: "${hashPassword(CONSOLE_PASSWORD)}" }\n  sessionTtl: 10m\n`;

  async function start(): Promise<Engine> {
    const file = path.join(dir, 'hisbridge.yaml');
    const config = loadSiteConfig(file, reg.extensions, { mllpPort: 0, httpPort: 0, dataDir: path.join(dir, 'store'), routesDir: path.resolve('routes') });
    const e = await Engine.create({ config, registry: reg, log: quiet, simulatorPorts: 'random' });
    await e.start();
    return e;
  }

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-sessions-'));
    writeFileSync(path.join(dir, 'hisbridge.yaml'), yaml);
  });
  afterAll(async () => {
    await engine?.stop(2000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a session made before a restart still opens pages after it; the table holds only hashes; logout ends it', async () => {
    engine = await start();
    const res = await login(engine.httpServer!.url, CONSOLE_USER, CONSOLE_PASSWORD);
    expect(res.status).toBe(200);
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const id = cookie.split('=')[1]!;
    await engine.stop(2000);
    engine = undefined;

    const db = new Database(path.join(dir, 'store', DB_FILE), { readonly: true });
    const rows = db.prepare('SELECT id_hash, user FROM console_sessions').all() as { id_hash: string; user: string }[];
    db.close();
    expect(rows).toEqual([{ id_hash: sessionIdHash(id), user: CONSOLE_USER }]);

    engine = await start();
    const base = engine.httpServer!.url;
    const page = await fetch(`${base}/console/dashboard`, { headers: { cookie }, redirect: 'manual' });
    expect(page.status).toBe(200);
    const csrf = /name="csrf-token" content="([^"]+)"/.exec(await page.text())?.[1];
    expect(csrf).toBeTruthy();
    const out = await fetch(`${base}/console/logout`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf!, 'content-type': 'application/json' }, body: '{}' });
    expect(out.status).toBe(200);
    const after = await fetch(`${base}/console/dashboard`, { headers: { cookie }, redirect: 'manual' });
    expect(after.status).toBe(303);
  });
});

/** An HTTPS request trusting the test CA. */
function httpsRequest(url: string, opts: { ca: string; method?: string; headers?: Record<string, string>; body?: string; cert?: string; key?: string }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: opts.method ?? 'GET', headers: opts.headers, ca: opts.ca, ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}) }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('HTTPS server (http.tls)', () => {
  let dir: string;
  let certs: TestCerts;
  let engine: Engine;
  const read = (f: string) => readFileSync(f, 'utf8');

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-https-'));
    certs = makeCerts(path.join(dir, 'pki'));
    mkdirSync(path.join(dir, 'store'));
    // Paths relative to the config file's directory.
    writeFileSync(path.join(dir, 'hisbridge.yaml'), `http:\n  tls: { cert: pki/server.pem, key: pki/server.key }\nconsole:\n  users:\n    - { name: ${CONSOLE_USER}, passwordHash: "${hashPassword(CONSOLE_PASSWORD)}" }\n`);
    const config = loadSiteConfig(path.join(dir, 'hisbridge.yaml'), reg.extensions, { mllpPort: 0, httpPort: 0, dataDir: path.join(dir, 'store'), routesDir: path.resolve('routes') });
    engine = await Engine.create({ config, registry: reg, log: quiet, simulatorPorts: 'random' });
    await engine.start();
  }, 60_000);
  afterAll(async () => {
    await engine?.stop(2000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves https with the configured certificate, and the session cookie is Secure', async () => {
    const url = engine.httpServer!.url;
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = read(certs.ca);
    expect((await httpsRequest(`${url}/healthz`, { ca })).status).toBe(200);
    const res = await httpsRequest(`${url}/console/login`, { ca, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: CONSOLE_USER, password: CONSOLE_PASSWORD }) });
    expect(res.status).toBe(200);
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/; Secure(;|$)/);
    expect(cookie).toContain('HttpOnly');
    // A client that does not trust the CA cannot talk to it.
    await expect(httpsRequest(`${url}/healthz`, { ca: read(certs.rogueCert) })).rejects.toThrow();
  });
});
