/**
 * Routes an operator paused (issue 18), kept in the store's `route_pauses`
 * table so a pause survives a restart. A paused route still matches, stores
 * and ACKs its messages; the delivery workers just claim none of its
 * deliveries (core/delivery/worker.ts `skipRoutes`) until it is resumed.
 *
 * The table is written through its own small connection, like the console
 * sessions: pauses are rare, and `hisbridge routes pause` writes the same
 * table from another process. The workers read it at every claim and
 * every start at accept (a handful of rows), so a pause from the CLI holds
 * at once.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { DB_FILE } from '../store/sqlite.js';

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

  /** Opens the store file of `dir` (the Store must have created and migrated it). */
  static open(dir: string): RoutePauses {
    return new RoutePauses(new Database(path.join(dir, DB_FILE), { fileMustExist: true }));
  }

  private constructor(db: Database.Database) {
    this.#db = db;
    db.pragma('busy_timeout = 5000');
    this.#names = db.prepare('SELECT route FROM route_pauses ORDER BY route').pluck();
    this.#list = db.prepare('SELECT route, paused_at, paused_by, reason FROM route_pauses ORDER BY route');
    this.#put = db.prepare('INSERT OR IGNORE INTO route_pauses (route, paused_at, paused_by, reason) VALUES (?, ?, ?, ?)');
    this.#del = db.prepare('DELETE FROM route_pauses WHERE route = ?');
  }

  /**
   * Names of the paused routes, read from the table at each call: another
   * process (`hisbridge routes pause`) may have changed it, and a pause must
   * hold from the moment the command returns. One indexed read of a handful
   * of rows on this connection; the store's own statement count is untouched.
   */
  names(): readonly string[] {
    return this.#names.all() as string[];
  }

  list(): RoutePause[] {
    return (this.#list.all() as Row[]).map((r) => ({ route: r.route, pausedAt: r.paused_at, pausedBy: r.paused_by, ...(r.reason ? { reason: r.reason } : {}) }));
  }

  /** Pauses a route; false when it was paused already (the first pause is kept). */
  pause(route: string, by: string, reason?: string, now = Date.now()): boolean {
    return this.#put.run(route, now, by, reason ? reason.slice(0, 200) : null).changes > 0;
  }

  /** Resumes a route; false when it was not paused. */
  resume(route: string): boolean {
    return this.#del.run(route).changes > 0;
  }

  close(): void {
    this.#db.close();
  }
}
