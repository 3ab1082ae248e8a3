/**
 * Source checkpoints (issue 17): the position a polling source (the database
 * source's cursor) has read up to, one row per source name. A checkpoint that
 * comes with a message (`InboundMessage.checkpoint`) is written in the same
 * transaction as the message's accept, so a kill -9 either keeps both the
 * message and the new position or neither: no row is lost or read twice.
 */
import type Database from 'better-sqlite3';

/** The table, created by its migration in schema.ts. */
export const CHECKPOINTS_DDL = `
  CREATE TABLE IF NOT EXISTS source_checkpoints (
    source TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;
`;

export interface Checkpoint {
  /** The source's name (`listeners[].name`). */
  source: string;
  /** The position, as the source wrote it (the database source stores its cursor value as JSON). */
  value: string;
}

const statements = new WeakMap<Database.Database, { put: Database.Statement; get: Database.Statement }>();

function prepared(db: Database.Database): { put: Database.Statement; get: Database.Statement } {
  let s = statements.get(db);
  if (!s) {
    s = {
      put: db.prepare('INSERT INTO source_checkpoints (source, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at'),
      get: db.prepare('SELECT value FROM source_checkpoints WHERE source = ?'),
    };
    statements.set(db, s);
  }
  return s;
}

/** Writes a checkpoint; call it inside the transaction that must carry it. */
export function writeCheckpoint(db: Database.Database, cp: Checkpoint, now: number): void {
  prepared(db).put.run(cp.source, cp.value, now);
}

/** The stored checkpoint of a source, or undefined when it has none. */
export function readCheckpoint(db: Database.Database, source: string): string | undefined {
  return (prepared(db).get.get(source) as { value: string } | undefined)?.value;
}
