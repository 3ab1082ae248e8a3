/**
 * The database source in a running engine, on a SQLite view: rows become
 * JSON events of the listener's type (default ROW^R01) whose columns routes
 * read as body.<column> in conditions and templates; the cursor is stored
 * with the messages; a query binding :batch runs as written; a failing query
 * holds /readyz and the source recovers when the view appears.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-dbsrc-'));
const viewFile = path.join(dir, 'his.db');
const received: Record<string, unknown>[] = [];
let sink: Server;
let routesDir: string;

function seed(): void {
  const db = new Database(viewFile);
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE lab_report (id INTEGER PRIMARY KEY, patient_no TEXT, item_name TEXT, status TEXT, reported_at TEXT);
           CREATE TABLE exam_report (seq INTEGER PRIMARY KEY, modality TEXT);`);
  const ins = db.prepare('INSERT INTO lab_report VALUES (?, ?, ?, ?, ?)');
  for (let i = 1; i <= 30; i++) ins.run(i, `P${i}`, i % 2 ? '血常规' : '肝功能', i % 3 === 0 ? 'C' : 'F', `2025-03-12T0${i % 10}:00:00Z`);
  const ex = db.prepare('INSERT INTO exam_report VALUES (?, ?)');
  for (let i = 1; i <= 7; i++) ex.run(i * 10, i % 2 ? 'CT' : 'MR');
  db.close();
}

beforeAll(async () => {
  seed();
  sink = createServer((req, res) => {
    let b = '';
    req.on('data', (c: Buffer) => (b += c.toString()));
    req.on('end', () => {
      received.push(JSON.parse(b) as Record<string, unknown>);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(sink.address() as { port: number }).port}`;
  routesDir = tempFiles({
    'lab.yaml': `name: lab-final
sources: [lab-view]
match:
  events: [ROW^R01]
  when:
    - { path: body.status, equals: F }
steps:
  - plugin: http
    config:
      url: ${url}/lab
      body: { id: "\${body.id}", item: "\${body.item_name}", at: "\${body.reported_at}" }
`,
    'exam.yaml': `name: exam
sources: [exam-view]
match:
  events: [EXM^R01]
steps:
  - plugin: http
    config:
      url: ${url}/exam
      body: { seq: "\${body.seq}", modality: "\${body.modality}" }
`,
    'late.yaml': `name: late
sources: [late-view]
match:
  events: [ROW^R01]
steps:
  - log: { message: "late row \${body.n}" }
`,
  });
});

afterAll(async () => {
  await new Promise((r) => sink.close(r));
  rmSync(routesDir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

const t = useEngine(() => ({
  routesDir,
  siteYaml: [
    'simulators: false',
    'http: { port: 0 }',
    'listeners:',
    '  - { name: mllp, port: 0 }',
    `  - { name: lab-view, type: database, client: better-sqlite3, connection: ${viewFile}, query: "SELECT * FROM lab_report WHERE id > :cursor ORDER BY id", cursor: id, poll: 30ms, batch: 7 }`,
    `  - { name: exam-view, type: database, client: sqlite, connection: ${viewFile}, query: "SELECT seq, modality FROM exam_report WHERE seq > :cursor ORDER BY seq LIMIT :batch", cursor: seq, poll: 30ms, batch: 2, event: EXM^R01, initial: 15 }`,
    `  - { name: late-view, type: database, client: better-sqlite3, connection: ${viewFile}, query: "SELECT * FROM late_rows WHERE n > :cursor ORDER BY n", cursor: n, poll: 30ms }`,
  ].join('\n'),
}));

async function until(cond: () => boolean, ms = 15_000): Promise<void> {
  const by = Date.now() + ms;
  while (!cond() && Date.now() < by) await new Promise((r) => setTimeout(r, 20));
  expect(cond()).toBe(true);
}

const stored = (source: string) => t.engine.store.searchMessages({ limit: 1000 }).filter((m) => m.source === source);

describe('database source', () => {
  it('stores every row as a ROW^R01 JSON event; routes read body.<column> in conditions and templates', async () => {
    await until(() => stored('lab-view').length === 30 && received.filter((r) => 'item' in r).length === 20);
    const lab = stored('lab-view');
    expect(new Set(lab.map((m) => m.type))).toEqual(new Set(['ROW^R01']));
    expect(new Set(lab.map((m) => m.format))).toEqual(new Set(['json']));
    expect(lab.map((m) => m.controlId).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 30 }, (_, i) => String(i + 1)));
    // Only status F rows went out (the condition), with their columns filled in.
    const ids = received.filter((r) => 'item' in r).map((r) => Number(r.id)).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 30 }, (_, i) => i + 1).filter((i) => i % 3 !== 0));
    expect(received.find((r) => r.id === '1')).toEqual({ id: '1', item: '血常规', at: '2025-03-12T01:00:00Z' });
    // The stored body is the row.
    const one = t.engine.store.getMessage(lab.find((m) => m.controlId === '2')!.id)!;
    expect(JSON.parse(one.raw!.toString('utf8'))).toEqual({ id: 2, patient_no: 'P2', item_name: '肝功能', status: 'F', reported_at: '2025-03-12T02:00:00Z' });
    expect(t.engine.store.sourceCheckpoint('lab-view')).toBe('30');
  });

  it('a query that binds :batch runs as written; event: and initial: apply', async () => {
    await until(() => stored('exam-view').length === 6);
    expect(stored('exam-view').map((m) => m.controlId).sort((a, b) => Number(a) - Number(b))).toEqual(['20', '30', '40', '50', '60', '70']);
    expect(new Set(stored('exam-view').map((m) => m.type))).toEqual(new Set(['EXM^R01']));
    expect(t.engine.store.sourceCheckpoint('exam-view')).toBe('70');
  });

  it('new rows are picked up at the next poll', async () => {
    const db = new Database(viewFile);
    db.prepare('INSERT INTO lab_report VALUES (?, ?, ?, ?, ?)').run(31, 'P31', '尿常规', 'F', '2025-03-13T00:00:00Z');
    db.close();
    await until(() => stored('lab-view').length === 31 && received.some((r) => r.id === '31'));
    expect(t.engine.store.sourceCheckpoint('lab-view')).toBe('31');
  });

  it('a failing query holds /readyz with the reason; the source recovers when the view appears', async () => {
    const health = async () => (await fetch(`${t.httpUrl}/readyz`)).status;
    expect(await health()).toBe(503);
    const db = new Database(viewFile);
    db.exec('CREATE TABLE late_rows (n INTEGER PRIMARY KEY); INSERT INTO late_rows VALUES (1), (2), (3);');
    db.close();
    await until(() => stored('late-view').length === 3);
    let status = 0;
    const by = Date.now() + 10_000;
    while ((status = await health()) !== 200 && Date.now() < by) await new Promise((r) => setTimeout(r, 30));
    expect(status).toBe(200);
  });
});

describe('database source: a driver that is not installed', () => {
  it('refuses the start naming the listener and the npm package to install', async () => {
    const { startEngine } = await import('../helpers/engine.js');
    const r = tempFiles({ 'x.yaml': 'name: x\nmatch: { events: [ROW^R01] }\nsteps:\n  - log: { message: row }\n' });
    try {
      await expect(startEngine({
        routesDir: r,
        siteYaml: ['simulators: false', 'http: { port: 0 }', 'listeners:', '  - { name: mllp, port: 0 }',
          '  - { name: his-view, type: database, client: oracledb, connection: "oracle://u:p@db:1521/his", query: "SELECT * FROM v WHERE id > :cursor ORDER BY id", cursor: id }'].join('\n'),
      })).rejects.toThrow(/his-view.*oracledb/s);
    } finally {
      rmSync(r, { recursive: true, force: true });
    }
  });
});
