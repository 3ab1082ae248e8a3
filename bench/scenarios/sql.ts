/**
 * Issue 15 row 3: SQLite statements and WAL bytes per ~1 KB message on the
 * happy path (one HTTP delivery to a sink in another process, no ordering
 * successor). Counted from outside the code under test, so it works on any
 * store: a preloaded wrapper around better-sqlite3 in the engine process
 * (bench/lib/count-sql.ts) counts statements, and strace attached to the
 * engine after warm-up sums the bytes written to the -wal file (plus the
 * fsyncs and the database-file bytes the checkpoints write). strace slows
 * the engine, so fewer messages may share a group commit than unobserved:
 * the WAL figure is an upper bound of the unobserved one.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { statementsOf, type SqlCounts } from '../lib/count-sql.js';
import { DIST, engineUnavailable, ingressRoute, startEngine, type EngineHandle } from '../lib/engine.js';
import { closedLoop } from '../lib/load.js';
import { MessageFactory } from '../lib/messages.js';
import { entry, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { startSink, type Sink } from '../lib/servers.js';
import { round } from '../lib/stats.js';
import { runTag } from './mllp-setup.js';

const SQL = { name: 'sql-statements-per-msg', scenario: 3, title: 'SQLite statements per ~1 KB message, happy path (one delivery, no ordering successor), main thread', unit: 'statements/msg', target: '<= 5 statements' };
const WAL = { name: 'wal-kb-per-msg', scenario: 3, title: 'WAL bytes written per ~1 KB message, happy path, synchronous FULL (strace on the engine)', unit: 'KB/msg', target: '<= 8 KB' };

/** What strace saw written: bytes to the -wal file, to the database file, and the number of fsync/fdatasync calls. */
export interface WriteTotals {
  walBytes: number;
  dbBytes: number;
  syncs: number;
}

/** Sums an `strace -y` log: writes whose fd path ends in `.db-wal` or `.db`, and sync calls on either. */
export function sumStrace(log: string): WriteTotals {
  const t: WriteTotals = { walBytes: 0, dbBytes: 0, syncs: 0 };
  for (const line of log.split('\n')) {
    const m = /\b(pwrite64|write|pwritev2?|writev|fsync|fdatasync)\(\d+<([^>]*)>.*\) = (\d+)\s*$/.exec(line);
    if (!m) continue;
    const file = m[2]!;
    const isWal = file.endsWith('-wal');
    const isDb = file.endsWith('.db');
    if (!isWal && !isDb) continue;
    if (m[1] === 'fsync' || m[1] === 'fdatasync') t.syncs++;
    else if (isWal) t.walBytes += Number(m[3]);
    else t.dbBytes += Number(m[3]);
  }
  return t;
}

function hasStrace(): boolean {
  return ['/usr/bin/strace', '/bin/strace', '/usr/local/bin/strace'].some((p) => existsSync(p));
}

/** Attaches strace to every thread of `pid`; `stop()` detaches it and returns the totals. */
async function attachStrace(pid: number, file: string): Promise<{ stop(): Promise<WriteTotals> }> {
  const st = spawn('strace', ['-f', '-y', '-s', '0', '-e', 'trace=pwrite64,write,pwritev,pwritev2,writev,fsync,fdatasync', '-o', file, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  st.stderr!.setEncoding('utf8');
  const attached = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`strace did not attach within 10 s: ${err.slice(0, 200)}`)), 10_000);
    st.stderr!.on('data', (d: string) => {
      err += d;
      if (/attached/.test(err)) {
        clearTimeout(t);
        resolve();
      }
    });
    st.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`strace exited with code ${code}: ${err.slice(0, 200)}`));
    });
  });
  await attached;
  return {
    stop: async () => {
      const exited = new Promise((r) => st.once('exit', r));
      st.kill('SIGINT');
      const t = setTimeout(() => st.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      return sumStrace(readFileSync(file, 'utf8'));
    },
  };
}

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  const missing = engineUnavailable();
  if (missing) return [unavailable(SQL, 'not-available', missing), unavailable(WAL, 'not-available', missing)];
  const n = ctx.quick ? 300 : 2000;
  const tmp = mkdtempSync(path.join(tmpdir(), 'hb-bench-sql-'));
  const countFile = path.join(tmp, 'sql-counts.json');
  const readCounts = () => JSON.parse(readFileSync(countFile, 'utf8')) as SqlCounts;
  let sink: Sink | undefined;
  let engine: EngineHandle | undefined;
  const notes: string[] = [];
  let perMsg: { statements: number; transactions: number; byKind: Record<string, number> } | undefined;
  let writes: WriteTotals | undefined;
  try {
    sink = await startSink();
    engine = await startEngine({
      routes: { 'ingress.yaml': ingressRoute(sink.url) },
      nodeArgs: ['--import', pathToFileURL(path.join(DIST, 'bench', 'lib', 'count-sql.js')).href],
      env: { HB_BENCH_SQL_COUNT_FILE: countFile },
    });
    const warm = await closedLoop(engine.mllp, { connections: 8, messages: 300, factory: new MessageFactory('adt', runTag()), maxMs: 30_000 });
    if (warm.acked < 300) throw new Error(`warm-up: ${warm.acked}/300 acked`);
    await engine.waitPending((p) => p === 0, 30_000);
    await new Promise((r) => setTimeout(r, 500));
    ctx.say(`sql: counting statements and WAL bytes over ${n} messages`);
    const strace = hasStrace() ? await attachStrace(engine.child.pid, path.join(tmp, 'strace.log')).catch((e: unknown) => {
      notes.push(`WAL not measured: ${reason(e)}`);
      return undefined;
    }) : (notes.push('WAL not measured: strace is not installed'), undefined);
    const c0 = readCounts();
    const delivered0 = await sink.count();
    const r = await closedLoop(engine.mllp, { connections: 8, messages: n, factory: new MessageFactory('adt', runTag()), maxMs: 120_000 });
    if (r.acked < n || r.rejected) notes.push(`${r.acked}/${n} acked, ${r.rejected} not AA`);
    const left = await engine.waitPending((p) => p === 0, 120_000);
    const delivered = (await sink.count()) - delivered0;
    if (left !== 0 || delivered < n) notes.push(`${delivered}/${n} delivered, ${left} pending`);
    await new Promise((r2) => setTimeout(r2, 400));
    const c1 = readCounts();
    writes = await strace?.stop();
    const byKind: Record<string, number> = {};
    for (const k of Object.keys(c1) as (keyof SqlCounts)[]) byKind[k] = round((c1[k] - c0[k]) / n, 2);
    perMsg = { statements: round((statementsOf(c1) - statementsOf(c0)) / n, 2), transactions: byKind.transactions!, byKind };
  } catch (e) {
    notes.push(reason(e));
  } finally {
    await Promise.allSettled([engine?.stop(), sink?.child.stop()]);
    rmSync(tmp, { recursive: true, force: true });
  }
  const note = notes.length ? { note: notes.join('; ') } : {};
  const details = { messages: n, perMessage: perMsg?.byKind ?? null, transactionsPerMsg: perMsg?.transactions ?? null, ...(writes ? { walBytesPerMsg: round(writes.walBytes / n, 0), dbFileBytesPerMsg: round(writes.dbBytes / n, 0), fsyncsPerMsg: round(writes.syncs / n, 3) } : {}) };
  const walKb = writes ? round(writes.walBytes / n / 1024, 2) : undefined;
  return [
    entry({ ...SQL, better: 'lower', met: perMsg ? perMsg.statements <= 5 : null, details, ...note }, { hisbridge: perMsg ? [perMsg.statements] : [] }),
    entry({ ...WAL, better: 'lower', met: walKb !== undefined ? walKb <= 8 : null, details, ...note }, { hisbridge: walKb !== undefined ? [walKb] : [] }),
  ];
}
