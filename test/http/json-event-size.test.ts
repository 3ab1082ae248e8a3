/**
 * Issue 11, "linear time everywhere": a JSON event is parsed in one piece
 * by nothing, and an HTTP listener with `event:` bounds its size with
 * `maxEventBytes` (default 1 MiB): a bigger event gets 413 with the
 * catalogued code ENGINE_E_EVENT_TOO_LARGE, is not stored and not routed, and
 * the listener keeps taking events. Through the real HTTP listener of a real
 * engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';

const stored = (t: TestEngine, controlId: string) => t.engine.store.searchMessages({ controlId, limit: 10 });

/** A JSON event of about `bytes` bytes: its id, then padding in a field routes ignore. */
function event(id: string, bytes: number): string {
  const head = JSON.stringify({ eventId: id, patient: { id: 'PSZ0001' }, note: '' });
  return head.slice(0, -2) + 'x'.repeat(Math.max(0, bytes - head.length)) + '"}';
}

describe('JSON event size over HTTP (maxEventBytes)', () => {
  let t: TestEngine;
  beforeAll(async () => {
    const routes = tempFiles({ 'ev.yaml': 'name: json-size\nmatch: { events: [patient.registered] }\nsteps:\n  - log: { message: "event ${body.patient.id}" }\n' });
    t = await startEngine({
      routesDir: routes,
      siteYaml: 'listeners:\n  - { name: mllp, port: 0 }\n  - { name: ev-small, type: http, path: /events/small, event: patient.registered, maxEventBytes: 4096 }\n  - { name: ev-default, type: http, path: /events/default, event: patient.registered }\n',
    });
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  const post = (path: string, body: string) => fetch(`${t.httpUrl}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });

  it('refuses an event over maxEventBytes with 413 ENGINE_E_EVENT_TOO_LARGE, stores nothing, and takes the next one', async () => {
    const big = event('EVSIZE1', 5000);
    expect(Buffer.byteLength(big)).toBe(5000);
    const r = await post('/events/small', big);
    expect(r.status).toBe(413);
    const a = (await r.json()) as Record<string, unknown>;
    expect(a).toMatchObject({ status: 'rejected', code: 'ENGINE_E_EVENT_TOO_LARGE', messageId: null, routes: [] });
    expect(a.reason).toBe('JSON event of 5000 bytes is larger than maxEventBytes (4096)');
    expect(stored(t, 'EVSIZE1')).toHaveLength(0);
    // Exactly at the limit: taken.
    const ok = await post('/events/small', event('EVSIZE2', 4096));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'accepted', routes: [expect.objectContaining({ route: 'json-size' })] });
    expect(stored(t, 'EVSIZE2')).toHaveLength(1);
    // One warn line with the code and the sizes, never the body.
    const warn = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.code === 'ENGINE_E_EVENT_TOO_LARGE');
    expect(warn).toMatchObject({ listener: 'ev-small', bytes: 5000, limit: 4096 });
    expect(t.logs.join('\n')).not.toContain('xxxxxxxx');
  });

  it('the default is 1 MiB: 1 MiB + 1 byte is refused, a 900 kB event is taken whole', async () => {
    const over = await post('/events/default', event('EVSIZE3', 1024 * 1024 + 1));
    expect(over.status).toBe(413);
    expect(await over.json()).toMatchObject({ code: 'ENGINE_E_EVENT_TOO_LARGE' });
    expect(stored(t, 'EVSIZE3')).toHaveLength(0);
    const under = await post('/events/default', event('EVSIZE4', 900_000));
    expect(under.status).toBe(200);
    expect(await under.json()).toMatchObject({ status: 'accepted' });
    expect(stored(t, 'EVSIZE4')).toHaveLength(1);
  });
});
