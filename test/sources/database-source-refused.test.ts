/**
 * A row the engine refuses before storing it (here: a cursor value with a
 * control character, which no event id may hold) on a real PostgreSQL. It
 * used to be logged as a warning and skipped; now the listener's `refused`
 * statement records it beside the row in the HIS database with the code and
 * reason, once, and the source goes on past it. While that statement fails
 * the row is offered again, never skipped unrecorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import knex, { type Knex } from 'knex';
import { useEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';
import { startPostgres, useDbServer } from './db-servers.js';

const pg = useDbServer(startPostgres);
let db: Knex;
const routesDir = tempFiles({ 'rows.yaml': 'name: rows\nsources: [his-view]\nmatch: { events: [ROW^R01] }\nsteps:\n  - log: { message: "row ${body.code}" }\n' });

beforeAll(async () => {
  db = knex({ client: 'pg', connection: pg.server.url, pool: { min: 0, max: 2 } });
  await db.schema.createTable('lab_report', (t) => {
    t.string('code', 40).primary();
    t.string('item_name', 80).notNullable();
  });
  // R002's cursor holds a line break: the engine refuses its event (ENGINE_E_JSON) before storing anything.
  await db('lab_report').insert([{ code: 'R001', item_name: '血常规' }, { code: 'R002\n', item_name: '肝功能' }, { code: 'R003', item_name: '尿常规' }]);
}, 120_000);

afterAll(async () => {
  await db?.destroy();
  rmSync(routesDir, { recursive: true, force: true });
});

const t = useEngine(() => ({
  routesDir,
  siteYaml: [
    'simulators: false',
    'http: { port: 0 }',
    'listeners:',
    '  - { name: mllp, port: 0 }',
    `  - { name: his-view, type: database, client: pg, connection: "${pg.server.url}", query: "SELECT * FROM lab_report WHERE code > :cursor ORDER BY code", cursor: code, initial: "", poll: 30ms, refused: "INSERT INTO hb_refused (code, err, reason) VALUES (:cursor, :code, :reason) ON CONFLICT (code) DO NOTHING" }`,
  ].join('\n'),
}), 120_000);

async function until<T>(read: () => T | Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const by = Date.now() + ms;
  let v = await read();
  while (!ok(v) && Date.now() < by) {
    await new Promise((r) => setTimeout(r, 30));
    v = await read();
  }
  expect(ok(v)).toBe(true);
  return v;
}

const stored = () => t.engine.store.searchMessages({ limit: 100 }).filter((m) => m.source === 'his-view').map((m) => m.controlId).sort();

describe('database source: a row the engine refuses before storing it (PostgreSQL)', () => {
  it('is offered again while the refused statement fails, then recorded once with code and reason, and the source moves past it', async () => {
    // The error table does not exist yet: R001 is stored, R002 is held (not skipped), R003 waits behind it.
    await until(() => stored(), (s) => s.length === 1);
    expect(stored()).toEqual(['R001']);
    // The failing statement holds /readyz with the database's reason: R002 was tried and is held, not skipped.
    const ready = await until(async () => {
      const r = await fetch(`${t.httpUrl}/readyz`);
      return { status: r.status, text: await r.text() };
    }, (r) => r.status === 503 && r.text.includes('hb_refused'));
    expect(ready.text).not.toContain('肝功能');
    expect(stored()).toEqual(['R001']);
    expect(t.engine.store.sourceCheckpoint('his-view')).toBe('"R001"');

    await db.schema.createTable('hb_refused', (tb) => {
      tb.string('code', 40).primary();
      tb.string('err', 40).notNullable();
      tb.text('reason').notNullable();
    });
    await until(() => stored(), (s) => s.length === 2);
    expect(stored()).toEqual(['R001', 'R003']);
    const rows = await db('hb_refused').select('*');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ code: 'R002\n', err: 'ENGINE_E_JSON' });
    expect(String(rows[0].reason)).toMatch(/control character/);
    expect(t.engine.store.sourceCheckpoint('his-view')).toBe('"R003"');

    // Not offered again at later polls: a new row goes through and the refusal stays one row.
    await db('lab_report').insert({ code: 'R004', item_name: '血糖' });
    await until(() => stored(), (s) => s.length === 3);
    expect(await db('hb_refused').count({ n: '*' })).toEqual([{ n: '1' }]);
  });
});
