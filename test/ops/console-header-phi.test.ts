/**
 * A HIS that puts an ID number or a mobile number in MSH-10 or MSH-9: the
 * message browsers (console list and detail over real HTTP, `hisbridge
 * messages search|show` as processes) mask them as they mask the body and the
 * log lines; `show --unmask` still shows them (issue 11, item 9).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { hashPassword } from '../../core/ops/console/auth.js';
import { cli } from '../helpers/cli.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { CONSOLE_PASSWORD, CONSOLE_USER, until } from './fixtures.js';

// 18 characters with a valid check digit, and a mainland mobile number: both synthetic.
const ID = '11010519491231002X';
const PHONE = '13912345678';
const msg = (controlId: string, type: string) => Buffer.from(
  `MSH|^~\\&|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||${type}|${controlId}|P|2.5||||||UNICODE UTF-8\rPID|1||T0000021^^^HOSP^PI||A^B||19000101|M\r`,
  'latin1',
);

describe('MSH-9 and MSH-10 are masked in the message browsers', () => {
  let t: TestEngine;
  let cookie: string;
  let store: string;
  beforeAll(async () => {
    t = await startEngine({
      siteYaml: `console:\n  users:\n    - { name: ${CONSOLE_USER}, passwordHash: "${hashPassword(CONSOLE_PASSWORD)}" }\n`,
    });
    store = path.join(t.dataDir, 'store');
    const c = await MllpClient.connect('127.0.0.1', t.port);
    await c.send(msg(ID, 'ADT^A28^ADT_A05'));
    await c.send(msg(`T${PHONE}`, `ADT^${PHONE}`));
    await c.close();
    await until(() => t.engine.store.searchMessages({ limit: 5 }), (r) => r.length === 2);
    const res = await fetch(`${t.httpUrl}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: CONSOLE_USER, password: CONSOLE_PASSWORD }) });
    cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  }, 30_000);
  afterAll(async () => t?.stop());

  it('console list and detail pages show neither number', async () => {
    const list = await (await fetch(`${t.httpUrl}/console/messages`, { headers: { cookie } })).text();
    expect(list).toContain('110105********002X');
    expect(list).toContain('139****5678');
    expect(list).not.toContain(ID);
    expect(list).not.toContain(PHONE);
    for (const m of t.engine.store.searchMessages({ limit: 5 })) {
      const detail = await (await fetch(`${t.httpUrl}/console/messages/${m.id}`, { headers: { cookie } })).text();
      expect(detail).not.toContain(ID);
      expect(detail).not.toContain(PHONE);
    }
  });

  it('messages search and show (text and --json) show neither number; show --unmask does', async () => {
    for (const args of [['messages', 'search', '--data-dir', store], ['messages', 'search', '--json', '--data-dir', store]]) {
      const r = await cli(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('139****5678');
      expect(r.stdout).not.toContain(ID);
      expect(r.stdout).not.toContain(PHONE);
    }
    const ids = t.engine.store.searchMessages({ limit: 5 }).map((m) => String(m.id));
    for (const id of ids) {
      for (const extra of [[], ['--json']]) {
        const r = await cli(['messages', 'show', id, ...extra, '--data-dir', store]);
        expect(r.code).toBe(0);
        expect(r.stdout).not.toContain(ID);
        expect(r.stdout).not.toContain(PHONE);
      }
    }
    const plain = (await cli(['messages', 'show', ids.join(',').split(',').find((i) => t.engine.store.getMessage(Number(i))!.controlId === ID)!, '--unmask', '--data-dir', store])).stdout;
    expect(plain.split('\n')[0]).toContain(ID);
  });
});
