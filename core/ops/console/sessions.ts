/**
 * Console sessions kept in the store (`console_sessions`, schema v4): one row
 * per live session under the SHA-256 of its id, so a restart does not log
 * everyone out, and a copy of the database holds no usable cookie. The table
 * is written through its own small connection (sessions are rare writes; they
 * never wait for the engine's group commits).
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { DB_FILE } from '../../store/sqlite.js';
import type { SessionStore, StoredSession } from './auth.js';

export class SqliteSessionStore implements SessionStore {
  readonly #db: Database.Database;
  readonly #get: Database.Statement;
  readonly #put: Database.Statement;
  readonly #del: Database.Statement;
  readonly #sweep: Database.Statement;

  /** Opens the store file of `dir` (the engine's Store must have created and migrated it). */
  static open(dir: string): SqliteSessionStore {
    return new SqliteSessionStore(new Database(path.join(dir, DB_FILE), { fileMustExist: true }));
  }

  private constructor(db: Database.Database) {
    this.#db = db;
    db.pragma('busy_timeout = 5000');
    this.#get = db.prepare('SELECT user, expires_at AS expiresAt FROM console_sessions WHERE id_hash = ?');
    this.#put = db.prepare('INSERT OR REPLACE INTO console_sessions (id_hash, user, created_at, expires_at) VALUES (?, ?, ?, ?)');
    this.#del = db.prepare('DELETE FROM console_sessions WHERE id_hash = ?');
    this.#sweep = db.prepare('DELETE FROM console_sessions WHERE expires_at <= ?');
  }

  get(idHash: string): StoredSession | undefined {
    return this.#get.get(idHash) as StoredSession | undefined;
  }

  put(idHash: string, s: StoredSession, now: number): void {
    this.#put.run(idHash, s.user, now, s.expiresAt);
  }

  delete(idHash: string): void {
    this.#del.run(idHash);
  }

  sweep(now: number): void {
    this.#sweep.run(now);
  }

  close(): void {
    this.#db.close();
  }
}
