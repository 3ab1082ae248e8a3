/**
 * What the alert conditions read from the store, on their own read-only
 * connection (WAL lets it read while the engine writes, and it never waits
 * behind a group commit). Each read is bounded: counts use the state index,
 * and the attempt and message scans only read rows added since the last
 * tick, in chunks, so a tick costs time linear in the new rows only.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { DB_FILE } from '../store/sqlite.js';

export const SCAN_CHUNK = 5000;

export interface AttemptRow {
  id: number;
  outcome: string;
  error_code: string | null;
  plugin: string;
}

export interface MessageRow {
  id: number;
  sending_app: string;
  received_at: number;
}

export class AlertReader {
  readonly #db: Database.Database;
  readonly #dead: Database.Statement;
  readonly #deadBy: Database.Statement;
  readonly #attempts: Database.Statement;
  readonly #messages: Database.Statement;
  readonly #maxAttempt: Database.Statement;
  readonly #maxMessage: Database.Statement;

  constructor(dataDir: string) {
    this.#db = new Database(path.join(dataDir, DB_FILE), { readonly: true, fileMustExist: true });
    this.#db.pragma('busy_timeout = 1000');
    this.#dead = this.#db.prepare("SELECT count(*) AS n FROM deliveries WHERE state = 'dead'");
    this.#deadBy = this.#db.prepare("SELECT route, coalesce(last_error_code, '-') AS code, count(*) AS n FROM deliveries WHERE state = 'dead' GROUP BY route, code ORDER BY n DESC, route LIMIT 20");
    this.#attempts = this.#db.prepare('SELECT a.id, a.outcome, a.error_code, d.plugin FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE a.id > ? ORDER BY a.id LIMIT ?');
    this.#messages = this.#db.prepare('SELECT id, sending_app, received_at FROM messages WHERE id > ? ORDER BY id LIMIT ?');
    this.#maxAttempt = this.#db.prepare('SELECT coalesce(max(id), 0) AS id FROM attempts');
    this.#maxMessage = this.#db.prepare('SELECT coalesce(max(id), 0) AS id FROM messages');
  }

  deadCount(): number {
    return (this.#dead.get() as { n: number }).n;
  }

  /** Dead deliveries by route and error code, largest groups first (at most 20 groups). */
  deadByRoute(): { route: string; code: string; n: number }[] {
    return this.#deadBy.all() as { route: string; code: string; n: number }[];
  }

  lastAttemptId(): number {
    return (this.#maxAttempt.get() as { id: number }).id;
  }

  lastMessageId(): number {
    return (this.#maxMessage.get() as { id: number }).id;
  }

  attemptsAfter(id: number, limit = SCAN_CHUNK): AttemptRow[] {
    return this.#attempts.all(id, limit) as AttemptRow[];
  }

  messagesAfter(id: number, limit = SCAN_CHUNK): MessageRow[] {
    return this.#messages.all(id, limit) as MessageRow[];
  }

  close(): void {
    this.#db.close();
  }
}
