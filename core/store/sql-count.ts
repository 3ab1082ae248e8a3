/**
 * Statement and WAL counting for the store (issue 15): how many SQL
 * statements and how many bytes of WAL a message costs. Off by default; with
 * the environment variable HISBRIDGE_COUNT_SQL=1 the Store counts every
 * statement it runs on its connection (prepared statements' run/get/all/
 * iterate, exec and pragma) and suspends WAL checkpoints, so the -wal file
 * only grows and its growth is the bytes written. Read the counts with
 * `Store.sqlCounts()`; a running engine also shows them on /metrics as
 * hisbridge_store_sql_statements_total and hisbridge_store_wal_bytes.
 */
import type Database from 'better-sqlite3';
import { statSync } from 'node:fs';

/** The environment variable that turns counting on ('1'). */
export const COUNT_SQL_ENV = 'HISBRIDGE_COUNT_SQL';

export interface SqlCounts {
  /** Statements run on the store's connection since it opened (transaction BEGIN/COMMIT not included). */
  statements: number;
  /** Bytes the WAL file grew by since the store opened (checkpoints are suspended while counting). */
  walBytes: number;
  /** Write transactions committed. */
  transactions: number;
}

/** True when counting is asked for in `env`. */
export function countingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[COUNT_SQL_ENV] === '1';
}

const RUNNERS = ['run', 'get', 'all', 'iterate'] as const;

/**
 * Wraps `db` so that every statement run through it is counted: prepare()
 * returns statements whose run/get/all/iterate add one, and exec() and
 * pragma() add one each. Returns the live counter.
 */
export function countStatements(db: Database.Database): { readonly n: number } {
  const counter = { n: 0 };
  const prepare = db.prepare.bind(db);
  const exec = db.exec.bind(db);
  const pragma = db.pragma.bind(db);
  const patched = db as unknown as Record<string, unknown>;
  patched.prepare = (sql: string) => {
    const stmt = prepare(sql) as unknown as Record<string, unknown>;
    for (const name of RUNNERS) {
      const fn = stmt[name] as (...a: unknown[]) => unknown;
      stmt[name] = (...a: unknown[]) => {
        counter.n++;
        return fn.apply(stmt, a);
      };
    }
    return stmt;
  };
  patched.exec = (sql: string) => {
    counter.n++;
    return exec(sql);
  };
  patched.pragma = (sql: string, opts?: Database.PragmaOptions) => {
    counter.n++;
    return pragma(sql, opts);
  };
  return counter;
}

/** Size of a file in bytes, 0 when it does not exist. */
export function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
