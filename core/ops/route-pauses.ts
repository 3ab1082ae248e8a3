/**
 * Routes an operator paused (issue 18), kept in the store's `route_pauses`
 * table so a pause survives a restart. A paused route still matches, stores
 * and ACKs its messages; the delivery workers just claim none of its
 * deliveries (core/delivery/worker.ts `skipRoutes`) until it is resumed.
 *
 * The table is written through its own small connection, like the console
 * sessions: pauses are rare, and `hisbridge routes pause` writes the same
 * table from another process. The workers ask at every claim and every
 * start at accept, so the answer is cached and re-read only when the table
 * may have changed: every pause and resume, in any process, appends one
 * byte to `<dataDir>/route-pauses.stamp` after its commit, and the cache is
 * re-read when that file's size or inode differs from the last read (one
 * stat call, no SQL: issue 15's per-message statement budget). A pause from
 * the CLI therefore holds from the moment the command returns. The table is
 * also re-read every few seconds whatever the stamp says (a stamp that could
 * not be written, a restored backup).
 */
import Database from 'better-sqlite3';
import { appendFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DB_FILE } from '../store/sqlite.js';

/** File beside the store whose growth says that route_pauses changed. */
export const PAUSE_STAMP = 'route-pauses.stamp';
/** The cached names are re-read at least this often, stamp or not. */
const REFRESH_MS = 5000;
/**
 * Calls closer together than this share one look at the stamp (a group
 * commit starting deliveries asks once per delivery): a pause made by another
 * process is seen at most this late, far less than any command takes to return.
 */
const STAMP_CHECK_MS = 1;

export interface RoutePause {
  route: string;
  pausedAt: number;
  pausedBy: string;
  reason?: string;
}

interface Row { route: string; paused_at: number; paused_by: string; reason: string | null }

export class RoutePauses {
  readonly #db: Database.Database;
  readonly #names: Database.Statement;
  readonly #list: Database.Statement;
  readonly #put: Database.Statement;
  readonly #del: Database.Statement;
  readonly #stamp: string;
  #cached: readonly string[] | undefined;
  /** The stamp file as of the cached read: size and inode ('' when it did not exist). */
  #seen = '';
  #readAt = 0;
  /** performance.now() of the last stamp check: a burst of calls within STAMP_CHECK_MS shares one stat. */
  #checkedAt = -Infinity;
  /** A failed stamp write, logged once by the caller (see pause/resume). */
  stampError: string | undefined;

  /** Opens the store file of `dir` (the Store must have created and migrated it). */
  static open(dir: string): RoutePauses {
    return new RoutePauses(new Database(path.join(dir, DB_FILE), { fileMustExist: true }), path.join(dir, PAUSE_STAMP));
  }

  private constructor(db: Database.Database, stamp: string) {
    this.#db = db;
    this.#stamp = stamp;
    db.pragma('busy_timeout = 5000');
    this.#names = db.prepare('SELECT route FROM route_pauses ORDER BY route').pluck();
    this.#list = db.prepare('SELECT route, paused_at, paused_by, reason FROM route_pauses ORDER BY route');
    this.#put = db.prepare('INSERT OR IGNORE INTO route_pauses (route, paused_at, paused_by, reason) VALUES (?, ?, ?, ?)');
    this.#del = db.prepare('DELETE FROM route_pauses WHERE route = ?');
  }

  /**
   * Names of the paused routes. Re-read from the table when the stamp file
   * changed since the last read (another process paused or resumed a route),
   * else from the cache: a pause holds from the moment `pause()` returned, in
   * this process or any other.
   */
  names(): readonly string[] {
    const t = performance.now();
    if (this.#cached !== undefined && t - this.#checkedAt < STAMP_CHECK_MS) return this.#cached;
    this.#checkedAt = t;
    const now = Date.now();
    const seen = this.#stampState();
    if (this.#cached === undefined || seen !== this.#seen || now - this.#readAt >= REFRESH_MS) {
      this.#cached = this.#names.all() as string[];
      this.#seen = seen;
      this.#readAt = now;
    }
    return this.#cached;
  }

  #stampState(): string {
    try {
      const st = statSync(this.#stamp, { throwIfNoEntry: false });
      return st ? `${st.ino}:${st.size}` : '';
    } catch {
      return '';
    }
  }

  /** After a committed change: one byte more in the stamp, so every process re-reads the table at its next check. */
  #touch(): void {
    this.#cached = undefined;
    try {
      appendFileSync(this.#stamp, '.', { mode: 0o600 });
      this.stampError = undefined;
    } catch (e) {
      // Another running engine then sees the change within REFRESH_MS instead of at once.
      this.stampError = e instanceof Error ? e.message : String(e);
    }
  }

  list(): RoutePause[] {
    return (this.#list.all() as Row[]).map((r) => ({ route: r.route, pausedAt: r.paused_at, pausedBy: r.paused_by, ...(r.reason ? { reason: r.reason } : {}) }));
  }

  /** Pauses a route; false when it was paused already (the first pause is kept). */
  pause(route: string, by: string, reason?: string, now = Date.now()): boolean {
    const changed = this.#put.run(route, now, by, reason ? reason.slice(0, 200) : null).changes > 0;
    if (changed) this.#touch();
    return changed;
  }

  /** Resumes a route; false when it was not paused. */
  resume(route: string): boolean {
    const changed = this.#del.run(route).changes > 0;
    if (changed) this.#touch();
    return changed;
  }

  close(): void {
    this.#db.close();
  }
}
