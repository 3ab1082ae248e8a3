/**
 * `database` source (issue 17): polls a database view (视图) the HIS exposes
 * and hands each new row to the engine as a JSON event. One code path through
 * knex for every driver (pg, mysql2, better-sqlite3 tested here; oracledb and
 * mssql untested here). See README.md beside this file and docs/sources.md.
 *
 * - `query` selects the rows after `:cursor`, ordered by the `cursor` column;
 *   at most `batch` rows are taken per round (the query is wrapped in an
 *   outer ORDER BY and LIMIT, unless it binds `:batch` itself);
 * - each row is one JSON event (`body.<column>`), type `event` (ROW^R01),
 *   identity (listener name, cursor value), submitted one after the other;
 * - the row's cursor value travels with it (`InboundMessage.checkpoint`) and
 *   is stored in the same store transaction as the message: after a kill -9
 *   the source starts again right after the last stored row;
 * - `after` runs once per round with `:cursor` = the last stored row's value
 *   (and once at start for the stored position), to mark rows as taken; it
 *   must therefore be idempotent;
 * - a row the engine refuses before storing it (its event cannot be read,
 *   e.g. a cursor value with a control character; a row refused after reading
 *   is stored as a rejected message like any other source's) runs `refused`
 *   with :cursor, :code and :reason, so the refusal is written beside the row
 *   in the HIS database (as the file source moves a refused file to error/
 *   and the Kafka source writes to its .dlq topic), is logged as an error,
 *   and shows in the listener's health (refused, lastRefused); the position
 *   moves past it only once that statement succeeded, so a row is neither
 *   offered again for ever nor dropped unrecorded.
 */
import type { Knex } from 'knex';
import { durationSchema, parseDuration, scrubText, untilResumed, type IngestOutcome, type JsonSchema, type RunningSource, type SourceContext, type SourceDefinition, type Submit } from '../../core/sdk.js';

export interface DatabaseSourceConfig {
  name: string;
  type: 'database';
  client: string;
  connection: string | Record<string, unknown>;
  query: string;
  cursor: string;
  poll?: number | string;
  batch?: number;
  event?: string;
  after?: string;
  refused?: string;
  initial?: string | number;
}

export const DEFAULT_EVENT = 'ROW^R01';
export const DEFAULT_BATCH = 200;
export const DEFAULT_POLL_MS = 5000;

/** The knex clients this source accepts (knex's own names, plus the usual aliases). */
export const CLIENTS = ['pg', 'postgres', 'postgresql', 'mysql2', 'mysql', 'mariadb', 'better-sqlite3', 'sqlite', 'oracledb', 'mssql'] as const;

export const configSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'client', 'connection', 'query', 'cursor'],
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9-]*$', description: 'Name routes use in `sources:`' },
    type: { const: 'database', description: 'Rows of a database view, polled through knex, as JSON events' },
    client: { enum: [...CLIENTS], description: 'Driver: pg, mysql2 (MySQL/MariaDB), better-sqlite3, oracledb (thin mode), mssql' },
    connection: {
      anyOf: [{ type: 'string', minLength: 1 }, { type: 'object' }],
      description: 'Connection URL (${env:HIS_DB_URL}) or a knex connection object; for better-sqlite3 the file name',
    },
    query: { type: 'string', minLength: 1, pattern: ':cursor', description: 'SELECT of the new rows: WHERE <cursor> > :cursor ORDER BY <cursor>; may bind :batch for its own row limit' },
    cursor: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_$]*$', description: 'Column whose value increases with every new row (unique): the position kept in the store' },
    poll: { ...durationSchema, description: 'Wait between rounds when the last one found fewer than batch rows (default 5s)' },
    batch: { type: 'integer', minimum: 1, maximum: 10000, description: 'Rows per round at most (default 200)' },
    event: { type: 'string', minLength: 1, maxLength: 199, description: 'Event type routes match with match.events (default ROW^R01)' },
    after: { type: 'string', minLength: 1, description: 'Statement run after each round with :cursor = the last stored row (marks rows as taken); must be idempotent' },
    refused: {
      type: 'string', minLength: 1, pattern: ':cursor',
      description: 'Statement run for a row the engine refuses before storing it, with :cursor, :code and :reason (PHI-free), e.g. an INSERT into an error table the HIS watches; must be idempotent. Without it such a row is only logged and counted',
    },
    initial: { type: ['string', 'number'], description: 'Cursor value before the first row is stored (default 0)' },
  },
};

/** knex's client name for an alias. */
function knexClient(client: string): string {
  switch (client) {
    case 'postgres': case 'postgresql': return 'pg';
    case 'mysql': case 'mariadb': return 'mysql2';
    case 'sqlite': return 'better-sqlite3';
    default: return client;
  }
}

/** A column value as JSON can carry it: dates as ISO text, big integers and bytes as text. */
function jsonValue(v: unknown): unknown {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v)) return v.toString('base64');
  return v;
}

/** The rows of a knex.raw answer, whatever the driver (pg: {rows}, mysql2: [rows, fields], sqlite: rows). */
function rowsOf(result: unknown): Record<string, unknown>[] {
  if (Array.isArray(result)) return (Array.isArray(result[0]) ? result[0] : result) as Record<string, unknown>[];
  const rows = (result as { rows?: unknown })?.rows;
  return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** A database error as a short, data-free line (driver messages may quote values: they are scrubbed and cut). */
function dbError(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  const msg = scrubText(String((e as Error)?.message ?? e)).slice(0, 200);
  return typeof code === 'string' ? `${code}: ${msg}` : msg;
}

class DatabaseSource implements RunningSource {
  readonly #ctx: SourceContext;
  readonly #cfg: DatabaseSourceConfig;
  readonly #db: Knex;
  readonly #submit: Submit;
  readonly #stop = new AbortController();
  readonly #pollMs: number;
  readonly #batch: number;
  readonly #event: string;
  /** The cursor value of the last row stored (or the initial value), as the database gave it. */
  #cursor: unknown;
  #loop: Promise<void> = Promise.resolve();
  #problem: string | undefined;
  #afterDue = false;
  #counts = { rows: 0, rounds: 0, refused: 0, duplicates: 0, retries: 0 };
  /** The last row refused before it was stored, for health: its cursor (cut), code and reason. */
  #lastRefused: { cursor: string; code: string; reason: string } | undefined;

  constructor(ctx: SourceContext, cfg: DatabaseSourceConfig, db: Knex, submit: Submit) {
    this.#ctx = ctx;
    this.#cfg = cfg;
    this.#db = db;
    this.#submit = submit;
    this.#pollMs = Math.max(10, parseDuration(cfg.poll, DEFAULT_POLL_MS));
    this.#batch = cfg.batch ?? DEFAULT_BATCH;
    this.#event = cfg.event ?? DEFAULT_EVENT;
    const stored = ctx.checkpoint?.();
    this.#cursor = stored !== undefined ? (JSON.parse(stored) as unknown) : (cfg.initial ?? 0);
    // A crash between a round's commit and its `after` left rows unmarked: mark up to the stored position first.
    this.#afterDue = stored !== undefined && cfg.after !== undefined;
  }

  start(): void {
    this.#ctx.signal.addEventListener('abort', () => this.#stop.abort(), { once: true });
    this.#loop = this.#run();
  }

  async close(graceMs: number): Promise<void> {
    this.#stop.abort();
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.#loop, new Promise<void>((r) => (t = setTimeout(r, graceMs)))]);
    clearTimeout(t);
    await this.#db.destroy().catch(() => undefined);
  }

  health(): { live: boolean; ready: boolean; detail?: string; info?: Record<string, unknown> } {
    const ok = this.#problem === undefined;
    return { live: true, ready: ok, ...(this.#problem ? { detail: this.#problem } : {}), info: { ...this.#counts, ...(this.#lastRefused ? { lastRefused: this.#lastRefused } : {}) } };
  }

  async #run(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      await untilResumed(this.#ctx.flow, this.#stop.signal);
      if (this.#stop.signal.aborted) return;
      let full = false;
      try {
        if (this.#afterDue) await this.#markTaken();
        full = await this.#round();
        if (this.#problem) this.#ctx.log.info('database reachable again');
        this.#problem = undefined;
      } catch (e) {
        const detail = dbError(e);
        if (this.#problem !== detail) this.#ctx.log.error({ err: detail }, 'database source round failed; trying again at the next poll');
        this.#problem = detail;
      }
      if (!full) await sleep(this.#pollMs, this.#stop.signal);
    }
  }

  /** Runs `after` with :cursor = the stored position. */
  async #markTaken(): Promise<void> {
    if (this.#cfg.after === undefined) return;
    await this.#db.raw(this.#cfg.after, { cursor: this.#cursor as Knex.Value });
    this.#afterDue = false;
  }

  /** The next rows after the cursor, at most `batch`, in cursor order. */
  async #fetch(): Promise<Record<string, unknown>[]> {
    const q = this.#cfg.query;
    const cursor = this.#cursor as Knex.Value;
    if (/:batch\b/.test(q)) return rowsOf(await this.#db.raw(q, { cursor, batch: this.#batch }));
    // Wrapped: the outer ORDER BY keeps the order whatever the database does with the inner one, and knex writes
    // the row limit in the dialect's own syntax (LIMIT, FETCH FIRST, TOP).
    return (await this.#db
      .select('*')
      .from(this.#db.raw(`(${q}) hb_rows`, { cursor }))
      .orderByRaw(this.#cfg.cursor)
      .limit(this.#batch)) as Record<string, unknown>[];
  }

  /** One round; true when it took a full batch (more rows are probably waiting). */
  async #round(): Promise<boolean> {
    const rows = await this.#fetch();
    this.#counts.rounds++;
    const key = this.#cfg.cursor;
    let stored = 0;
    for (const row of rows) {
      if (this.#stop.signal.aborted) break;
      // Oracle answers column names in capitals: the cursor column is found whatever its case.
      const col = key in row ? key : Object.keys(row).find((k) => k.toLowerCase() === key.toLowerCase());
      const value = col === undefined ? undefined : row[col];
      if (value === undefined || value === null) throw new Error(`the query's rows have no value in the cursor column "${key}"`);
      const body: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(row)) body[k] = jsonValue(v);
      const position = JSON.stringify(jsonValue(value));
      const outcome = await this.#submit({
        source: this.#cfg.name,
        format: 'json',
        bytes: Buffer.from(JSON.stringify(body), 'utf8'),
        event: this.#event,
        identity: { app: this.#cfg.name, id: String(jsonValue(value)) },
        checkpoint: position,
      });
      if (!(await this.#settled(outcome, position, value))) {
        this.#counts.retries++;
        this.#ctx.log.warn({ code: outcome.code, cursor: String(jsonValue(value)).slice(0, 40) }, 'row not taken for a passing reason; offered again at the next poll');
        break;
      }
      this.#cursor = value;
      this.#counts.rows++;
      stored++;
    }
    if (stored > 0 && this.#cfg.after !== undefined) {
      this.#afterDue = true;
      await this.#markTaken();
    }
    return stored === this.#batch && rows.length === this.#batch;
  }

  /**
   * True when the row is done with (stored with its position, or refused for
   * good and recorded); false to offer it again. Throws when the `refused`
   * statement fails: the round fails and the row is offered again.
   */
  async #settled(o: IngestOutcome, position: string, cursor: unknown): Promise<boolean> {
    if (o.status === 'duplicate') {
      // Stored before (the position was reset by hand): no message was written now, so the position moves on its own.
      this.#counts.duplicates++;
      this.#ctx.saveCheckpoint?.(position);
      return true;
    }
    if (o.messageId !== undefined) return true; // committed, and its position with it
    if (o.status === 'rejected') {
      const reason = scrubText(o.reason).slice(0, 500);
      if (this.#cfg.refused !== undefined) await this.#db.raw(this.#cfg.refused, { cursor: cursor as Knex.Value, code: o.code, reason });
      this.#counts.refused++;
      this.#lastRefused = { cursor: String(jsonValue(cursor)).slice(0, 40), code: o.code, reason };
      this.#ctx.log.error(
        { code: o.code, reason, cursor: this.#lastRefused.cursor, recorded: this.#cfg.refused !== undefined },
        this.#cfg.refused !== undefined ? 'row refused before it was stored: recorded by the refused statement' : 'row refused before it was stored (set refused: to record it in the database)',
      );
      this.#ctx.saveCheckpoint?.(position);
      return true;
    }
    return false;
  }
}

const source: SourceDefinition<DatabaseSourceConfig> = {
  type: 'database',
  summary: 'Rows of a database view (Oracle, SQL Server, PostgreSQL, MySQL/MariaDB, SQLite through knex) polled by an increasing cursor, as JSON events',
  configSchema,
  async start(ctx, submit): Promise<RunningSource> {
    const cfg = ctx.config;
    const client = knexClient(cfg.client);
    let connection: unknown = cfg.connection;
    if (client === 'better-sqlite3' && typeof connection === 'string') {
      connection = { filename: connection.startsWith('/') || connection === ':memory:' ? connection : `${ctx.baseDir}/${connection}` };
    }
    // Loaded on first use, so sites without a database source never load knex or a driver.
    const { default: knex } = await import('knex');
    let db: Knex;
    try {
      // knex's own messages go to our log (one short scrubbed line), never straight to stdout.
      const say = (level: 'warn' | 'error' | 'debug') => (m: unknown) => ctx.log[level]({ detail: dbError(m) }, 'knex');
      db = knex({
        client, connection: connection as Knex.StaticConnectionConfig, pool: { min: 0, max: 2 }, useNullAsDefault: true,
        log: { warn: say('warn'), error: say('error'), deprecate: say('warn'), debug: say('debug') },
      });
    } catch (e) {
      throw new Error(`listener ${cfg.name} (type database): ${dbError(e)}`);
    }
    const running = new DatabaseSource(ctx, cfg, db, submit);
    running.start();
    ctx.log.info({ client, cursor: cfg.cursor, batch: cfg.batch ?? DEFAULT_BATCH }, 'database source started');
    return running;
  },
};

export default source;
