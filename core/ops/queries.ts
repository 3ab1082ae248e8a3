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
import { scrubText } from '../mask.js';
import { DB_FILE } from '../store/sqlite.js';
import { searchContent, type ContentQuery, type ContentResult } from './content-search.js';
import { auditRowFrom, auditWhere, loadAuditKey, type AuditRow, type RawAudit } from '../store/audit.js';

const TIME_HELP = 'use YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z|+08:00] or an age such as 30m, 24h, 7d';
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
const AGE = /^(\d{1,9}(?:\.\d{1,6})?)\s*(ms|s|m|h|d)$/;
const AGE_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function badTime(name: string, value: string, why: string): never {
  const shown = scrubText(value.slice(0, 40)).replace(/[\u0000-\u001f\u007f]/g, '?');
  throw hbError('OPS_E_BAD_QUERY', { detail: `${name}: "${shown}"${value.length > 40 ? '…' : ''} ${why}` });
}

/**
 * The one parser of `since` / `until` for the HTTP API, the console and the
 * CLI. Accepts `YYYY-MM-DD` (local midnight), `YYYY-MM-DDTHH:MM[:SS[.mmm]]`
 * (local time unless it ends in `Z` or an offset such as `+08:00`; a space
 * may replace the `T`), or an age (`30m`, `24h`, `7d`: that long before
 * `now`). Returns epoch ms; undefined for an absent or empty value. Anything
 * else (an impossible date such as 2026-02-30, an age reaching before 1970,
 * a year past 9999, free text) throws OPS_E_BAD_QUERY naming the parameter.
 */
export function parseTimeBound(name: string, value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (v.length > 40) badTime(name, v, `is too long: ${TIME_HELP}`);
  const age = AGE.exec(v);
  if (age) {
    const ms = Math.round(Number(age[1]) * AGE_UNITS[age[2]!]!);
    if (ms > now) badTime(name, v, 'reaches back before 1970');
    return now - ms;
  }
  const m = ISO_TIME.exec(v);
  if (!m) badTime(name, v, `is not a date/time: ${TIME_HELP}`);
  const [y, mo, d, h = 0, mi = 0, sec = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((x) => (x === undefined ? undefined : Number(x))) as number[];
  const ms = m[7] ? Number(m[7].padEnd(3, '0')) : 0;
  const daysInMonth = mo! >= 1 && mo! <= 12 ? new Date(Date.UTC(y!, mo!, 0)).getUTCDate() : 0;
  if (y! < 1970 || mo! < 1 || mo! > 12 || d! < 1 || d! > daysInMonth || h > 23 || mi > 59 || sec > 59) badTime(name, v, 'is not a valid date/time');
  let t: number;
  const zone = m[8];
  if (zone) {
    let offsetMin = 0;
    if (zone !== 'Z') {
      const oh = Number(zone.slice(1, 3));
      const om = Number(zone.slice(-2));
      if (oh > 14 || om > 59) badTime(name, v, 'has an impossible time-zone offset');
      offsetMin = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
    }
    t = Date.UTC(y!, mo! - 1, d!, h, mi, sec, ms) - offsetMin * 60_000;
  } else {
    t = new Date(y!, mo! - 1, d!, h, mi, sec, ms).getTime();
  }
  if (!Number.isFinite(t) || t < 0 || t > MAX_TIME) badTime(name, v, 'is out of range (1970-9999)');
  return t;
}

/** `since` (inclusive) and `until` (exclusive) parsed together; since must come before until. */
export function parseTimeBounds(q: { since?: string | undefined; until?: string | undefined }, now = Date.now(), names = { since: 'since', until: 'until' }): { since?: number; until?: number } {
  const since = parseTimeBound(names.since, q.since, now);
  const until = parseTimeBound(names.until, q.until, now);
  if (since !== undefined && until !== undefined && since >= until) {
    throw hbError('OPS_E_BAD_QUERY', { detail: `${names.since} must be before ${names.until}` });
  }
  return { ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) };
}

/** Plugins that write operator actions rather than outbound calls; left out of the call statistics. */
export const OPERATOR_PLUGINS = ['engine', 'cli', 'console', 'alerts'] as const;

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

  /** The filter as a WHERE clause; `before` only for a page, operator actions left out of the statistics. */
  #where(f: AuditExportFilter, operatorRows: boolean, before?: number): { sql: string; args: unknown[] } {
    return auditWhere(this.#key, { ...f, before }, operatorRows ? [] : OPERATOR_PLUGINS);
  }

  /** One page of audit rows, newest first; `before` is the last id of the previous page. */
  auditPage(f: AuditExportFilter & { before?: number; limit?: number }): AuditRow[] {
    const w = this.#where(f, true, f.before);
    const sql = `SELECT * FROM audit ${w.sql} ORDER BY id DESC LIMIT ?`;
    const args = [...w.args, Math.max(1, Math.min(f.limit ?? 100, 10_000))];
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

  /** Dead deliveries now, by route (issue 18: hisbridge_dead_letters_current and the dashboard). */
  deadByRoute(): Record<string, number> {
    const rows = this.#db.prepare("SELECT route, count(*) AS n FROM deliveries WHERE state = 'dead' GROUP BY route").all() as { route: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.route, r.n]));
  }

  /** Search by content over a received-time window (core/ops/content-search.ts). */
  searchContent(q: ContentQuery): ContentResult {
    return searchContent(this.#db, q);
  }

  /** The message a delivery belongs to. */
  messageOfDelivery(deliveryId: number): number | undefined {
    return (this.#db.prepare('SELECT message_id AS m FROM deliveries WHERE id = ?').get(deliveryId) as { m: number } | undefined)?.m;
  }

  close(): void {
    this.#db.close();
  }
}
