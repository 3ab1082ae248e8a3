/**
 * Issue 15, target 3: what one 1 KB message costs the store on the happy path
 * (one delivery, no ordering successor), counted through a real engine: an
 * MLLP sender on 8 connections, the gd-ehr-authorize route, the provincial
 * simulator over HTTP. HISBRIDGE_COUNT_SQL=1 makes the store count every
 * statement it runs and suspend checkpoints so the WAL's growth is the bytes
 * written (core/store/sql-count.ts).
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { COUNT_SQL_ENV } from '../../core/store/sql-count.js';
import { useEngine } from '../helpers/engine.js';
import { idNumberByDay } from '../helpers/ids.js';

/** Statements per message the happy path may cost, BEGIN and COMMIT included (issue 15 target: at most 5). */
const MAX_STATEMENTS = 5;

/**
 * WAL bytes per 1 KB message on the happy path with one plain HTTP delivery.
 * The target is 8 KB, measured by the bench's row 3 with the engine
 * in its own process (`npm run bench -- --only sql`: 6.3 KB). Here the engine
 * shares the test process with its senders and sink, and WAL per message
 * depends on how many messages share a commit (each commit rewrites the last
 * page of every table and index): 6.5 KB at 4.2 messages per commit, 8.0 KB
 * at 3.1 in a CI run. The bound leaves room for that; `node dist/bench/
 * wal-pages.js` says where the pages go.
 */
const MAX_WAL_BYTES = 9.5 * 1024;

/**
 * The same with one provincial authorization, whose audit row carries the
 * patient's keyed hash: an index on a random key costs one random leaf per
 * row (about 1.3 pages of 1 KB with its splits, `node dist/bench/wal-pages.js
 * 2000 --route gd-ehr`), on top of what the plain delivery costs; this route
 * measures 9-10 KB.
 */
const MAX_WAL_BYTES_AUDITED = 12 * 1024;

const routesDir = mkdtempSync(path.join(tmpdir(), 'hb-sql-budget-'));
copyFileSync(path.resolve('routes/gd-ehr-authorize.yaml'), path.join(routesDir, 'gd-ehr-authorize.yaml'));

/** A ~1 KB registration with consent: its own MSH-10 and its own patient (so no ordering successor). */
function registration(seq: number): string {
  const id = String(seq).padStart(8, '0');
  const msg = [
    `MSH|^~\\&|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||ADT^A04^ADT_A01|BUDGET${id}|P|2.5|||||CHN|UNICODE UTF-8`,
    'EVN|A04|20250312093015|||OP001^Wang^Doctor',
    `PID|1||P${id}^^^HOSP^PI~${idNumberByDay(seq)}^^^CHN^NI||Test^Patient||19900315|M|||Test Road 1^^Guangzhou^Guangdong^510630^CHN^H||13800000001^PRN^CP`,
    'PV1|1|O|0301^^^Clinic||||D0012^Li^Doctor|||MED||||||||R|V20250312001||||||||||||||||||||||||||20250312093000',
    `ZCN|Y|30|20250312093010|DESK^${'x'.repeat(560)}`,
  ].join('\r');
  return msg;
}

interface Budget {
  statements: number;
  walBytes: number;
}

/**
 * Sends 50 messages to warm up, then 600 over 8 connections, waits until
 * every delivery settled, and returns the statements (with BEGIN/COMMIT) and
 * WAL bytes per message the store counted meanwhile.
 */
async function measure(t: ReturnType<typeof useEngine>): Promise<Budget> {
  async function sendAll(from: number, count: number, connections: number): Promise<void> {
    const clients = await Promise.all(Array.from({ length: connections }, () => MllpClient.connect('127.0.0.1', t.port)));
    let next = from;
    await Promise.all(clients.map(async (c) => {
      while (next < from + count) {
        const ack = (await c.send(registration(next++))).toString('utf8');
        expect(ack).toMatch(/MSA\|AA\|/);
      }
    }));
    await Promise.all(clients.map((c) => c.close()));
  }
  async function drained(): Promise<void> {
    const end = Date.now() + 30_000;
    while (t.engine.store.pendingCount() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(t.engine.store.pendingCount()).toBe(0);
  }
  expect(Buffer.byteLength(registration(1))).toBeGreaterThanOrEqual(1000);
  expect(Buffer.byteLength(registration(1))).toBeLessThan(1100);
  // Warm-up: route compilation, first pages of each table and index.
  await sendAll(0, 50, 8);
  await drained();
  const start = t.engine.store.sqlCounts()!;
  expect(start).toBeDefined();
  await sendAll(100, N, 8);
  await drained();
  const end = t.engine.store.sqlCounts()!;
  const statements = (end.statements - start.statements) / N;
  const walBytes = (end.walBytes - start.walBytes) / N;
  const transactions = (end.transactions - start.transactions) / N;
  // Each transaction also runs BEGIN and COMMIT: counted here too, as the bench's outside counter does.
  const withTx = statements + 2 * transactions;
  console.log(`per message: ${statements.toFixed(2)} statements (${withTx.toFixed(2)} with BEGIN/COMMIT), ${(walBytes / 1024).toFixed(2)} KB WAL, ${transactions.toFixed(2)} transactions`);
  // Every message was settled done.
  expect(t.engine.store.searchMessages({ status: 'done', limit: 10_000 }).length).toBe(N + 50);
  return { statements: withTx, walBytes };
}

/** Messages measured per case (after 50 of warm-up). */
const N = 600;

function countingSql(): void {
  let before: string | undefined;
  beforeAll(() => {
    before = process.env[COUNT_SQL_ENV];
    process.env[COUNT_SQL_ENV] = '1';
  });
  afterAll(() => {
    if (before === undefined) delete process.env[COUNT_SQL_ENV];
    else process.env[COUNT_SQL_ENV] = before;
  });
}

describe('store cost per message (issue 15, target 3): one HTTP delivery', () => {
  countingSql();
  let sink: Server | undefined;
  let delivered = 0;
  const sinkDir = mkdtempSync(path.join(tmpdir(), 'hb-sql-budget-sink-'));
  const t = useEngine(async () => {
    sink = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        delivered++;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => sink!.listen(0, '127.0.0.1', r));
    const port = (sink.address() as AddressInfo).port;
    writeFileSync(path.join(sinkDir, 'sink.yaml'), [
      'name: budget-sink',
      'sources: [mllp]',
      'match:',
      '  events: ["ADT^*"]',
      'ack: on-receive',
      'steps:',
      '  - plugin: http',
      '    config:',
      `      url: "http://127.0.0.1:${port}/deliver"`,
      '      body: { controlId: "${msg.controlId}", type: "${msg.type}" }',
    ].join('\n') + '\n');
    return { routesDir: sinkDir };
  });
  afterAll(async () => {
    await new Promise((r) => sink?.close(r));
    rmSync(sinkDir, { recursive: true, force: true });
  });

  it('costs at most 5 statements and 9.5 KB of WAL per 1 KB message in process (the bench: 8 KB target), one delivery and no ordering successor', async () => {
    const b = await measure(t);
    expect(delivered).toBeGreaterThanOrEqual(N + 50);
    expect(b.statements).toBeLessThanOrEqual(MAX_STATEMENTS);
    expect(b.walBytes).toBeLessThanOrEqual(MAX_WAL_BYTES);
  }, 120_000);
});

describe('store cost per message (issue 15, target 3): one audited provincial authorization', () => {
  countingSql();
  const t = useEngine({ routesDir });
  afterAll(() => {
    rmSync(routesDir, { recursive: true, force: true });
  });

  it('costs at most 5 statements and 12 KB of WAL per 1 KB message (the patient-hash index of its audit row)', async () => {
    const b = await measure(t);
    // Every message was delivered: the simulator holds one authorization per patient.
    const calls = (await (await fetch(`${t.engine.simulators.gdEhr!.url}/__sim/calls`)).json()) as { calls: { op: string }[] };
    expect(calls.calls.filter((c) => c.op === 'authorize' || c.op.startsWith('auth')).length).toBeGreaterThanOrEqual(N + 50);
    expect(b.statements).toBeLessThanOrEqual(MAX_STATEMENTS);
    expect(b.walBytes).toBeLessThanOrEqual(MAX_WAL_BYTES_AUDITED);
  }, 120_000);
});
