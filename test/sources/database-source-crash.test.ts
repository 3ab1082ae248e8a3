/**
 * The database source across a kill -9, on real PostgreSQL and MariaDB
 * servers (test/sources/db-servers.ts) and on SQLite: a view of 400 rows is
 * polled by a real `hisbridge start` process, killed with SIGKILL once some
 * rows are stored, and started again on the same data directory. Every row
 * must be stored exactly once (the cursor moves in the same store commit as
 * the rows' messages), delivered to the receiving HTTP server, and marked
 * taken by the `after:` statement. dist/ comes from the global setup's build.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import knex, { type Knex } from 'knex';
import { spawnEngine, type EngineProcess } from '../helpers/proc.js';
import { startMariaDb, startPostgres, useDbServer } from './db-servers.js';

const N = 400;
const KILL_AT = 80;

const ROUTE = `name: lab-rows
sources: [his-view]
match:
  events: [LAB^ROW]
ack: on-receive
steps:
  - plugin: http
    config:
      url: \${vars.sink}
      body: { id: "\${body.id}", item: "\${body.item_name}", patient: "\${body.patient_no}" }
delivery:
  retry: { max: 1000, initial: 50ms, maxDelay: 400ms }
`;

/** A receiving HTTP server that records the row ids posted to it. */
function useSink(): { readonly url: string; readonly received: string[] } {
  let server: Server | undefined;
  const received: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(String((JSON.parse(body) as { id: string }).id));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
  });
  return {
    get url() {
      return `http://127.0.0.1:${(server!.address() as { port: number }).port}/rows`;
    },
    received,
  };
}

async function seed(db: Knex): Promise<void> {
  await db.schema.dropTableIfExists('lab_report');
  await db.schema.createTable('lab_report', (t) => {
    t.integer('id').primary();
    t.string('patient_no', 40).notNullable();
    t.string('item_name', 80).notNullable();
    t.dateTime('reported_at').notNullable();
    t.integer('taken').notNullable().defaultTo(0);
  });
  const rows = Array.from({ length: N }, (_, i) => ({
    id: i + 1,
    patient_no: `P${String(i % 37).padStart(5, '0')}`,
    item_name: i % 2 ? '血常规' : '肝功能',
    reported_at: new Date(Date.UTC(2025, 2, 12, 1, 0, i % 60)),
  }));
  for (let i = 0; i < rows.length; i += 100) await db('lab_report').insert(rows.slice(i, i + 100));
}

function storedCounts(dataDir: string): Map<string, number> {
  const db = new Database(path.join(dataDir, 'hisbridge.db'), { readonly: true });
  try {
    const rows = db.prepare(`SELECT control_id AS id, count(*) AS n FROM messages WHERE source = 'his-view' GROUP BY control_id`).all() as { id: string; n: number }[];
    return new Map(rows.map((r) => [r.id, r.n]));
  } catch {
    return new Map();
  } finally {
    db.close();
  }
}

async function until(cond: () => boolean | Promise<boolean>, ms: number, step = 20): Promise<void> {
  const by = Date.now() + ms;
  while (!(await cond()) && Date.now() < by) await new Promise((r) => setTimeout(r, step));
}

/** Runs the kill -9 scenario against one database. */
async function crashScenario(client: string, connection: string, db: Knex, sinkUrl: string, received: string[]): Promise<string> {
  await seed(db);
  const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-dbcrash-'));
  const children: EngineProcess[] = [];
  try {
    mkdirSync(path.join(dir, 'routes'));
    writeFileSync(path.join(dir, 'routes', 'rows.yaml'), ROUTE.replace('${vars.sink}', sinkUrl));
    writeFileSync(path.join(dir, 'hisbridge.yaml'), [
      'simulators: false',
      'log: { level: info }',
      'http: { port: 0 }',
      'store: { synchronous: FULL }',
      'listeners:',
      '  - { name: mllp, port: 0 }',
      '  - name: his-view',
      '    type: database',
      `    client: ${client}`,
      '    connection: ${env:HIS_DB_URL}',
      '    query: "SELECT * FROM lab_report WHERE id > :cursor ORDER BY id"',
      '    cursor: id',
      '    poll: 50ms',
      '    batch: 25',
      '    event: LAB^ROW',
      '    after: "UPDATE lab_report SET taken = 1 WHERE id <= :cursor AND taken = 0"',
    ].join('\n'));
    const args = ['--config', path.join(dir, 'hisbridge.yaml'), '--routes', path.join(dir, 'routes'), '--data-dir', path.join(dir, 'data')];
    const env = { HIS_DB_URL: connection, HISBRIDGE_LOG_LEVEL: 'info' };
    const dataDir = path.join(dir, 'data');

    const first = await spawnEngine(args, env, 30_000);
    children.push(first);
    await until(() => storedCounts(dataDir).size >= KILL_AT, 30_000, 2);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    const atKill = storedCounts(dataDir).size;
    // The position stored at the kill is exactly the last row stored: they were committed together.
    const killed = new Database(path.join(dataDir, 'hisbridge.db'), { readonly: true });
    const cpAtKill = killed.prepare(`SELECT value FROM source_checkpoints WHERE source = 'his-view'`).get() as { value: string };
    const maxAtKill = killed.prepare(`SELECT max(CAST(control_id AS INTEGER)) AS m FROM messages WHERE source = 'his-view'`).get() as { m: number };
    killed.close();
    expect(JSON.parse(cpAtKill.value)).toBe(maxAtKill.m);
    expect(maxAtKill.m).toBe(atKill);
    expect(atKill).toBeGreaterThanOrEqual(KILL_AT);
    expect(atKill).toBeLessThan(N);

    const second = await spawnEngine(args, env, 30_000);
    children.push(second);
    const ids = Array.from({ length: N }, (_, i) => String(i + 1));
    await until(() => storedCounts(dataDir).size === N && ids.every((id) => received.includes(id)), 60_000, 50);
    await new Promise((r) => setTimeout(r, 300)); // a late repeat would show up here
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    const stored = storedCounts(dataDir);
    expect([...stored.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(ids);
    expect([...stored.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    const lost = ids.filter((id) => !received.includes(id));
    expect(lost).toEqual([]);
    // Every row was marked taken by `after:` (the restart marked what the kill left unmarked).
    const untaken = await db('lab_report').where('taken', 0).count({ n: '*' });
    expect(Number((untaken[0] as { n: number | string }).n)).toBe(0);
    // The stored cursor is the last row's id, kept in the store beside the messages.
    const store = new Database(path.join(dataDir, 'hisbridge.db'), { readonly: true });
    const cp = store.prepare(`SELECT value FROM source_checkpoints WHERE source = 'his-view'`).get() as { value: string };
    const sample = store.prepare(`SELECT type, format FROM messages WHERE source = 'his-view' LIMIT 1`).get();
    store.close();
    expect(JSON.parse(cp.value)).toBe(N);
    expect(sample).toEqual({ type: 'LAB^ROW', format: 'json' });
    // No patient number or item text in the logs.
    for (const c of children) expect(c.stdout() + c.stderr()).not.toContain('P00001');
    const repeats = received.length - new Set(received).size;
    return `${client}: killed with ${atKill} of ${N} rows stored; after the restart ${stored.size} stored once each, ${lost.length} lost, ${repeats} repeated deliveries at the receiver`;
  } finally {
    for (const c of children) c.child.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('database source across kill -9: PostgreSQL', () => {
  const pg = useDbServer(startPostgres);
  const sink = useSink();
  it('stores every row exactly once and marks them all taken', async () => {
    const db = knex({ client: 'pg', connection: pg.server.url });
    try {
      console.log(await crashScenario('pg', pg.server.url, db, sink.url, sink.received));
    } finally {
      await db.destroy();
    }
  }, 180_000);
});

describe('database source across kill -9: MariaDB', () => {
  const maria = useDbServer(startMariaDb);
  const sink = useSink();
  it('stores every row exactly once and marks them all taken', async () => {
    const db = knex({ client: 'mysql2', connection: maria.server.url });
    try {
      console.log(await crashScenario('mysql2', maria.server.url, db, sink.url, sink.received));
    } finally {
      await db.destroy();
    }
  }, 180_000);
});

describe('database source across kill -9: SQLite', () => {
  const sink = useSink();
  it('stores every row exactly once and marks them all taken', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-sqlite-view-'));
    const file = path.join(dir, 'his.db');
    const db = knex({ client: 'better-sqlite3', connection: { filename: file }, useNullAsDefault: true });
    try {
      await db.raw('PRAGMA journal_mode = WAL');
      console.log(await crashScenario('better-sqlite3', file, db, sink.url, sink.received));
    } finally {
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
