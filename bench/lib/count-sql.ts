/**
 * Preloaded into a process (`node --import .../count-sql.js ...`) to count
 * the SQLite statements it runs through better-sqlite3, without touching the
 * code under test: every run/get/all/iterate of a prepared statement, every
 * exec() and pragma() call on the main thread. The counts are written as
 * JSON to $HB_BENCH_SQL_COUNT_FILE every 100 ms and at exit. The BEGIN and
 * COMMIT that db.transaction() runs are statements too and are counted as
 * two runs per transaction; `transactions` counts the transactions.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';

export interface SqlCounts {
  run: number;
  get: number;
  all: number;
  iterate: number;
  exec: number;
  pragma: number;
  transactions: number;
  prepare: number;
}

/** Statements executed (everything but prepare and transactions). */
export function statementsOf(c: SqlCounts): number {
  return c.run + c.get + c.all + c.iterate + c.exec + c.pragma;
}

type Fn = (...args: unknown[]) => unknown;

/** Wraps better-sqlite3's prototypes so every call is counted in `counts`; returns the counts object. */
export function installCounter(Database: { prototype: Record<string, unknown> }): SqlCounts {
  const counts: SqlCounts = { run: 0, get: 0, all: 0, iterate: 0, exec: 0, pragma: 0, transactions: 0, prepare: 0 };
  const db = Database.prototype;
  const count = (proto: Record<string, unknown>, name: keyof SqlCounts) => {
    const orig = proto[name] as Fn;
    proto[name] = function (this: unknown, ...args: unknown[]) {
      counts[name]++;
      return orig.apply(this, args);
    };
  };
  let statementPatched = false;
  const prepare = db.prepare as Fn;
  db.prepare = function (this: unknown, ...args: unknown[]) {
    counts.prepare++;
    const stmt = prepare.apply(this, args) as object;
    if (!statementPatched) {
      statementPatched = true;
      const sp = Object.getPrototypeOf(stmt) as Record<string, unknown>;
      for (const m of ['run', 'get', 'all', 'iterate'] as const) count(sp, m);
    }
    return stmt;
  };
  count(db, 'exec');
  count(db, 'pragma');
  const transaction = db.transaction as Fn;
  db.transaction = function (this: unknown, ...args: unknown[]) {
    const t = transaction.apply(this, args) as Fn & Record<string, Fn>;
    const wrap = (f: Fn): Fn => function (this: unknown, ...a: unknown[]) {
      counts.transactions++;
      return f.apply(this, a);
    };
    const w = wrap(t) as Fn & Record<string, Fn>;
    for (const v of ['deferred', 'immediate', 'exclusive'] as const) if (typeof t[v] === 'function') w[v] = wrap(t[v]);
    w.default = w;
    return w;
  };
  return counts;
}

const out = process.env.HB_BENCH_SQL_COUNT_FILE;
if (isMainThread && out) {
  const require = createRequire(import.meta.url);
  const counts = installCounter(require('better-sqlite3') as { prototype: Record<string, unknown> });
  const write = () => {
    try {
      writeFileSync(`${out}.tmp`, JSON.stringify(counts));
      renameSync(`${out}.tmp`, out);
    } catch {
      // the directory went away at shutdown
    }
  };
  setInterval(write, 100).unref();
  process.on('exit', write);
}
