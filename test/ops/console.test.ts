/**
 * Console security over real HTTP: login, session cookie attributes,
 * redirects and refusals without a session, CSRF, HTML escaping of message
 * values, masked PHI with an audited reveal, retention refusal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { ConsoleAuth, hashPassword, verifyPassword } from '../../core/ops/console/auth.js';
import { hl7Tree } from '../../core/ops/console/hl7-tree.js';
import { formatAudit } from '../../core/ops/audit-export.js';
import { OpsQueries } from '../../core/ops/queries.js';
import Database from 'better-sqlite3';
import { DB_FILE, Store } from '../../core/store/sqlite.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import type { TestEngine } from '../helpers/engine.js';
import { CONSOLE_PASSWORD, CONSOLE_USER, sample, startOpsEngine, until } from './fixtures.js';

async function login(base: string, user: string, password: string): Promise<Response> {
  return fetch(`${base}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, password }) });
}

describe('console over HTTP', () => {
  let t: TestEngine;
  let cookie: string;
  let csrf: string;
  let messageId: number;

  beforeAll(async () => {
    t = await startOpsEngine();
    const c = await MllpClient.connect('127.0.0.1', t.port);
    await c.send(sample('01-adt-a04-registration-consent.hl7'));
    // A control id that is markup: it must come back escaped.
    await c.send(Buffer.from('MSH|^~\\&|HIS|H|HB|HB|20250101||ZZZ^Z99|<b>x</b>"\'|P|2.5\rPID|1||P77^^^^PI||Doe^John\r'));
    c.close();
    messageId = (await until(() => t.engine.store.searchMessages({ controlId: 'HIS202503120001', limit: 1 }), (r) => r.length === 1))[0]!.id;
  }, 30_000);
  afterAll(async () => t?.stop());

  it('refuses a wrong password and an unknown user, and audits the attempt with the address (the typed name only when it is a user)', async () => {
    const bad = await login(t.httpUrl, CONSOLE_USER, 'wrong password');
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
    expect((await login(t.httpUrl, 'nobody', CONSOLE_PASSWORD)).status).toBe(401);
    const rows = await until(() => t.engine.ops.queries.auditPage({ plugin: 'console', operation: 'login' }), (r) => r.length >= 2);
    expect(rows.every((r) => r.result === 'failed' && r.address === '127.0.0.1')).toBe(true);
    expect(rows.map((r) => r.staffNo ?? null).sort()).toEqual([CONSOLE_USER, null].sort());
    expect(JSON.stringify(rows)).not.toContain(CONSOLE_PASSWORD);
    expect(JSON.stringify(rows)).not.toContain('nobody');
  });

  it('logs in with a session cookie that is HttpOnly, SameSite=Strict and expiring', async () => {
    const res = await login(t.httpUrl, CONSOLE_USER, CONSOLE_PASSWORD);
    expect(res.status).toBe(200);
    const set = res.headers.get('set-cookie')!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Max-Age=600/);
    cookie = set.split(';')[0]!;
    const page = await (await fetch(`${t.httpUrl}/console/dashboard`, { headers: { cookie } })).text();
    csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page)![1]!;
    expect(page).toContain('gd-ehr-authorize');
  });

  it('redirects pages and refuses actions without a session', async () => {
    const page = await fetch(`${t.httpUrl}/console/messages`, { redirect: 'manual' });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/console/login');
    const action = await fetch(`${t.httpUrl}/console/messages/${messageId}/reveal`, { method: 'POST', headers: { 'x-csrf-token': csrf } });
    expect(action.status).toBe(401);
    expect((await fetch(`${t.httpUrl}/console/api/live`, { redirect: 'manual' })).status).toBe(303);
  });

  it('refuses an action with a session but without the CSRF token (403)', async () => {
    expect((await fetch(`${t.httpUrl}/console/messages/${messageId}/reveal`, { method: 'POST', headers: { cookie } })).status).toBe(403);
    expect((await fetch(`${t.httpUrl}/console/messages/${messageId}/reveal`, { method: 'POST', headers: { cookie, 'x-csrf-token': 'x'.repeat(43) } })).status).toBe(403);
  });

  it('searches by control id and shows the message with PHI masked; reveal is audited', async () => {
    const list = await (await fetch(`${t.httpUrl}/console/messages?controlId=HIS202503120001`, { headers: { cookie } })).text();
    expect(list).toContain(`href="/console/messages/${messageId}"`);
    const msg = parseHl7(decodeHl7(sample('01-adt-a04-registration-consent.hl7'), 'gb18030').text);
    const idNumber = msg.get('PID-3[5=NI].1');
    const name = msg.get('PID-5.1') + msg.get('PID-5.2');
    const detail = await (await fetch(`${t.httpUrl}/console/messages/${messageId}`, { headers: { cookie } })).text();
    expect(detail).toContain('PID-3');
    expect(detail).not.toContain(idNumber);
    expect(detail).not.toContain(msg.get('PID-5.1'));
    expect(detail).toContain(idNumber.slice(0, 6) + '*');
    const res = await fetch(`${t.httpUrl}/console/messages/${messageId}/reveal`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { html: string };
    expect(body.html).toContain(idNumber);
    expect(body.html).toContain(msg.get('PID-5.1'));
    const audit = await until(() => t.engine.ops.queries.auditPage({ plugin: 'console', operation: 'reveal' }), (r) => r.length === 1);
    expect(audit[0]!.staffNo).toBe(CONSOLE_USER);
    expect(audit[0]!.patientHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(audit)).not.toContain(name);
  });

  it('escapes values read from messages', async () => {
    const list = await (await fetch(`${t.httpUrl}/console/messages`, { headers: { cookie } })).text();
    expect(list).not.toContain('<b>x</b>');
    expect(list).toContain('&lt;b&gt;x&lt;/b&gt;&quot;&#39;');
    const res = await fetch(`${t.httpUrl}/console/messages`, { headers: { cookie } });
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
  });

  it('pages the message list with a keyset cursor', async () => {
    const ids = t.engine.store.searchMessages({ limit: 10 }).map((m) => m.id);
    const older = await (await fetch(`${t.httpUrl}/console/messages?before=${ids[0]}`, { headers: { cookie } })).text();
    expect(older).not.toContain(`href="/console/messages/${ids[0]}"`);
    expect(older).toContain(`href="/console/messages/${ids[1]}"`);
  });

  it('logout ends the session', async () => {
    const res = await fetch(`${t.httpUrl}/console/logout`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } });
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toMatch(/Max-Age=0/);
    expect((await fetch(`${t.httpUrl}/console/dashboard`, { headers: { cookie }, redirect: 'manual' })).status).toBe(303);
  });
});

describe('console building blocks', () => {
  it('verifies scrypt hashes and rejects wrong or malformed ones', () => {
    const h = hashPassword('s3cret-pass');
    expect(verifyPassword('s3cret-pass', h)).toBe(true);
    expect(verifyPassword('s3cret-pasS', h)).toBe(false);
    expect(verifyPassword('s3cret-pass', 'plain')).toBe(false);
  });

  it('expires sessions after their lifetime', () => {
    const auth = new ConsoleAuth({ enabled: true, users: [{ name: 'a', passwordHash: hashPassword('pw-123456') }], sessionTtlMs: 1000 });
    const s = auth.login('a', 'pw-123456', 0)!;
    const headers = { cookie: `hb_session=${s.id}` };
    expect(auth.session(headers, 999)?.user).toBe('a');
    expect(auth.session(headers, 1000)).toBeUndefined();
  });

  it('masks person segments by position and scrubs ID-shaped text elsewhere', () => {
    const text = 'MSH|^~\\&|HIS|H|HB|HB|20250101||ADT^A04|C1|P|2.5\rPID|1||P001^^^^PI~440106199003152314^^^^NI||张^三丰||19900315|M|||广州市越秀区|||13800001234\rNTE|1||call 13800005678 id 440106199003152314\r';
    const tree = hl7Tree(text);
    const flat = JSON.stringify(tree);
    expect(flat).not.toContain('440106199003152314');
    expect(flat).not.toContain('三丰');
    expect(flat).not.toContain('13800001234');
    expect(flat).not.toContain('13800005678');
    expect(flat).not.toContain('越秀');
    expect(tree[1]!.fields.find((f) => f.index === 8)!.value).toBe('M');
    expect(JSON.stringify(hl7Tree(text, true))).toContain('440106199003152314');
  });

  it('writes CSV that a spreadsheet cannot execute', () => {
    const out = [...formatAudit([{ id: 1, at: 0, plugin: 'p', operation: 'o', result: '=HYPERLINK("x")', detail: 'a,b' }], 'csv')].join('');
    expect(out.split('\r\n')[1]).toBe(`1,1970-01-01T00:00:00.000Z,,p,o,,,,,"'=HYPERLINK(""x"")",,,"a,b",,`);
  });
});

describe('audit retention', () => {
  it('refuses a metadata retention below 180 days in the store and in the site config', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-ret-'));
    try {
      expect(() => Store.open(dir, { metadataRetentionDays: 90 })).toThrow(expect.objectContaining({ code: 'CONFIG_E_RETENTION' }));
      const file = path.join(dir, 'hisbridge.yaml');
      writeFileSync(file, 'store: { metadataRetentionDays: 90 }\n');
      expect(() => loadSiteConfig(file, [])).toThrow(LoadError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps audit rows for 180 days, refuses to edit them, and purges only older ones', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-ret-'));
    try {
      const store = Store.open(dir);
      store.audit({ plugin: 'p', operation: 'o', result: 'ok', patientId: 'P1' });
      const day = 86_400_000;
      expect(store.purge(Date.now() + 179 * day).auditDeleted).toBe(0);
      const q = OpsQueries.open(dir);
      expect(q.auditPage({}).length).toBe(1);
      q.close();
      store.close();
      // The table is append-only: an UPDATE is refused by a trigger even with write access.
      const raw = new Database(path.join(dir, DB_FILE));
      expect(() => raw.prepare("UPDATE audit SET result = 'x'").run()).toThrow(/append-only/);
      raw.close();
      const reopened = Store.open(dir);
      expect(reopened.purge(Date.now() + 181 * day).auditDeleted).toBe(1);
      reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
