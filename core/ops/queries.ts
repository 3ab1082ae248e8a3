/**
 * Read-only operator queries on the audit table: the audit export and the
 * call statistics. They use their own read-only connection to the store file
 * (WAL lets it read while the engine writes), so they never queue behind the
 * engine's group commits and can never modify the append-only trail.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { hbError } from '../errors.js';
import { DB_FILE } from '../store/sqlite.js';
import { auditRowFrom, loadAuditKey, patientWhere, type AuditRow, type RawAudit } from '../store/audit.js';

/** Plugins that write operator actions rather than outbound calls; left out of the call statistics. */
export const OPERATOR_PLUGINS = ['engine', 'cli', 'console'] as const;

export interface AuditExportFilter {
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  orgCode?: string;
  staffNo?: string;
  plugin?: string;
  operation?: string;
  /** Plain patient id or ID number: matched through its keyed hash, never stored. */
  patientId?: string;
}

export type StatsBy = 'org' | 'route' | 'operation';

export interface StatsCounts {
  /** Calls made (ok + failed). */
  total: number;
  ok: number;
  failed: number;
  /** Deliberately not called (e.g. no consent); not part of `total`. */
  skipped: number;
}

export interface StatsReport {
  by: StatsBy;
  since?: number;
  until?: number;
  totals: StatsCounts;
  /** One row per group key (orgCode, route or plugin/operation), most calls first. */
  groups: (StatsCounts & { key: string })[];
  /** One row per local calendar day (YYYY-MM-DD), oldest first. */
  days: (StatsCounts & { day: string })[];
  /** Per day and group. */
  byDay: (StatsCounts & { day: string; key: string })[];
}

const GROUP_SQL: Record<StatsBy, string> = {
  org: "coalesce(org_code, '(none)')",
  route: "coalesce(route, '(workstation)')",
  operation: "plugin || '/' || operation",
};

// 'ok' is a success, 'skipped' a deliberate no-call; everything else (failed, remote codes) counts as a failure.
const COUNTS_SQL = `sum(result != 'skipped') AS total, sum(result = 'ok') AS ok, sum(result != 'ok' AND result != 'skipped') AS failed, sum(result = 'skipped') AS skipped`;

interface RawCounts { total: number | null; ok: number | null; failed: number | null; skipped: number | null }

function counts(r: RawCounts): StatsCounts {
  return { total: r.total ?? 0, ok: r.ok ?? 0, failed: r.failed ?? 0, skipped: r.skipped ?? 0 };
}

/** A read-only view of one data directory's store. */
export class OpsQueries {
  readonly #db: Database.Database;
  readonly #key: Buffer;

  /** Opens `<dir>/hisbridge.db` read-only; throws STORE_E_NOT_FOUND when there is no store. */
  static open(dir: string, opts: { auditHashKey?: string } = {}): OpsQueries {
    const file = path.join(dir, DB_FILE);
    if (!existsSync(file)) throw hbError('STORE_E_NOT_FOUND', { what: 'store', id: dir });
    return new OpsQueries(new Database(file, { readonly: true, fileMustExist: true }), loadAuditKey(dir, opts.auditHashKey));
  }

  private constructor(db: Database.Database, key: Buffer) {
    this.#db = db;
    this.#db.pragma('busy_timeout = 5000');
    this.#key = key;
  }

  /** True when the store file answers a trivial query (readiness). */
  ping(): boolean {
    try {
      return (this.#db.prepare('SELECT 1 AS ok').get() as { ok: number }).ok === 1;
    } catch {
      return false;
    }
  }

  #where(f: AuditExportFilter, operatorRows: boolean): { sql: string; args: unknown[] } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.since !== undefined) { where.push('at >= ?'); args.push(f.since); }
    if (f.until !== undefined) { where.push('at < ?'); args.push(f.until); }
    if (f.orgCode) { where.push('org_code = ?'); args.push(f.orgCode); }
    if (f.staffNo) { where.push('staff_no = ?'); args.push(f.staffNo); }
    if (f.plugin) { where.push('plugin = ?'); args.push(f.plugin); }
    if (f.operation) { where.push('operation = ?'); args.push(f.operation); }
    if (f.patientId) { const p = patientWhere(this.#key, f.patientId); where.push(p.sql); args.push(...p.args); }
    if (!operatorRows) where.push(`plugin NOT IN (${OPERATOR_PLUGINS.map(() => '?').join(',')})`), args.push(...OPERATOR_PLUGINS);
    return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', args };
  }

  /** One page of audit rows, newest first; `before` is the last id of the previous page. */
  auditPage(f: AuditExportFilter & { before?: number; limit?: number }): AuditRow[] {
    const w = this.#where(f, true);
    const sql = `SELECT * FROM audit ${w.sql ? w.sql + (f.before !== undefined ? ' AND id < ?' : '') : f.before !== undefined ? 'WHERE id < ?' : ''} ORDER BY id DESC LIMIT ?`;
    const args = [...w.args, ...(f.before !== undefined ? [f.before] : []), Math.max(1, Math.min(f.limit ?? 100, 10_000))];
    return (this.#db.prepare(sql).all(...args) as RawAudit[]).map(auditRowFrom);
  }

  /** Every matching audit row, oldest first, streamed from the database (constant memory). */
  *auditRows(f: AuditExportFilter): Generator<AuditRow> {
    const w = this.#where(f, true);
    const stmt = this.#db.prepare(`SELECT * FROM audit ${w.sql} ORDER BY id`);
    for (const r of stmt.iterate(...w.args) as Iterable<RawAudit>) yield auditRowFrom(r);
  }

  /** Call statistics from the audit trail (operator actions excluded). */
  stats(by: StatsBy, f: AuditExportFilter = {}): StatsReport {
    const w = this.#where(f, false);
    const group = GROUP_SQL[by];
    // Local calendar days: the hospital counts its days in its own time zone.
    const day = "strftime('%Y-%m-%d', at / 1000, 'unixepoch', 'localtime')";
    const totals = counts(this.#db.prepare(`SELECT ${COUNTS_SQL} FROM audit ${w.sql}`).get(...w.args) as RawCounts);
    const groups = (this.#db.prepare(`SELECT ${group} AS key, ${COUNTS_SQL} FROM audit ${w.sql} GROUP BY key ORDER BY total DESC, key`).all(...w.args) as (RawCounts & { key: string })[])
      .map((r) => ({ key: r.key, ...counts(r) }));
    const days = (this.#db.prepare(`SELECT ${day} AS day, ${COUNTS_SQL} FROM audit ${w.sql} GROUP BY day ORDER BY day`).all(...w.args) as (RawCounts & { day: string })[])
      .map((r) => ({ day: r.day, ...counts(r) }));
    const byDay = (this.#db.prepare(`SELECT ${day} AS day, ${group} AS key, ${COUNTS_SQL} FROM audit ${w.sql} GROUP BY day, key ORDER BY day, key`).all(...w.args) as (RawCounts & { day: string; key: string })[])
      .map((r) => ({ day: r.day, key: r.key, ...counts(r) }));
    return { by, ...(f.since !== undefined ? { since: f.since } : {}), ...(f.until !== undefined ? { until: f.until } : {}), totals, groups, days, byDay };
  }

  /** Dead deliveries waiting for an operator (an index range count: cheap on large stores). */
  deadCount(): number {
    return (this.#db.prepare("SELECT count(*) AS n FROM deliveries WHERE state = 'dead'").get() as { n: number }).n;
  }

  /** The message a delivery belongs to. */
  messageOfDelivery(deliveryId: number): number | undefined {
    return (this.#db.prepare('SELECT message_id AS m FROM deliveries WHERE id = ?').get(deliveryId) as { m: number } | undefined)?.m;
  }

  close(): void {
    this.#db.close();
  }
}
