/**
 * A message accepted with invalid bytes replaced (listener invalidBytes:
 * replace) carries a visible mark in the console message list and detail,
 * over real HTTP with a real session; a clean message carries none.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { hashPassword } from '../../core/ops/console/auth.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { CONSOLE_PASSWORD, CONSOLE_USER, until } from './fixtures.js';

const msg = (id: string, name: Buffer) => Buffer.concat([
  Buffer.from(`MSH|^~\\&|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||ADT^A28^ADT_A05|${id}|P|2.5||||||UNICODE UTF-8\rPID|1||T0000009^^^HOSP^PI||`, 'latin1'),
  name,
  Buffer.from('^X||19000101|M\r', 'latin1'),
]);

describe('console marks messages whose invalid bytes were replaced', () => {
  let t: TestEngine;
  let cookie: string;
  beforeAll(async () => {
    t = await startEngine({
      siteYaml: `listeners:\n  - { name: mllp, port: 0, invalidBytes: replace }\nconsole:\n  users:\n    - { name: ${CONSOLE_USER}, passwordHash: "${hashPassword(CONSOLE_PASSWORD)}" }\n`,
    });
    const c = await MllpClient.connect('127.0.0.1', t.port);
    await c.send(msg('FLAG-BAD-1', Buffer.from([0x41, 0xe4, 0x28, 0x42])));
    await c.send(msg('FLAG-OK-1', Buffer.from('AB', 'latin1')));
    await c.close();
    await until(() => t.engine.store.searchMessages({ controlId: 'FLAG-OK-1', limit: 1 }), (r) => r.length === 1);
    const res = await fetch(`${t.httpUrl}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: CONSOLE_USER, password: CONSOLE_PASSWORD }) });
    cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  }, 30_000);
  afterAll(async () => t?.stop());

  it('shows invalid-bytes-replaced on the marked row and its detail page only', async () => {
    const bad = await (await fetch(`${t.httpUrl}/console/messages?controlId=FLAG-BAD-1`, { headers: { cookie } })).text();
    expect(bad).toContain('FLAG-BAD-1');
    expect(bad).toMatch(/class="flag"[^>]*>invalid-bytes-replaced</);
    const ok = await (await fetch(`${t.httpUrl}/console/messages?controlId=FLAG-OK-1`, { headers: { cookie } })).text();
    expect(ok).toContain('FLAG-OK-1');
    expect(ok).not.toContain('invalid-bytes-replaced');
    const id = t.engine.store.searchMessages({ controlId: 'FLAG-BAD-1', limit: 1 })[0]!.id;
    const detail = await (await fetch(`${t.httpUrl}/console/messages/${id}`, { headers: { cookie } })).text();
    expect(detail).toContain('invalid-bytes-replaced');
  });
});
