/**
 * Store schema and its migrations, keyed by SQLite's `user_version`. A
 * migration is append-only: never edit one that has shipped, add the next.
 */
import type Database from 'better-sqlite3';
import { CHECKPOINTS_DDL } from './checkpoints.js';

/** States a delivery can still move out of; they count as pending for back-pressure. */
export const OPEN_STATES = `('pending','in-flight','retrying')`;

/** A migration: SQL run in one transaction, or a function for a step that must look at the schema first. */
type Migration = string | ((db: Database.Database) => void);

/**
 * Issue 15 (slim ledger): fewer indexes touched per commit, duplicates caught by
 * a UNIQUE index instead of a SELECT, and hints that let complete() skip the
 * ordering and status queries when nothing depends on them. Written to be
 * independent of the other migrations around it: every step checks first
 * (IF [NOT] EXISTS, columns looked up), so it may run again after a test
 * helper rebuilt an older schema.
 */
function slimLedger(db: Database.Database): void {
  const has = (table: string, col: string) => (db.prepare(`SELECT 1 FROM pragma_table_info('${table}') WHERE name = ?`).get(col) !== undefined);
  // messages.dedupe_slot: 0 on the newest message of each (MSH-10, sender), NULL on the others. The UNIQUE index
  // makes a new message's INSERT ... ON CONFLICT DO NOTHING the duplicate check; the full check runs only on a conflict.
  if (!has('messages', 'dedupe_slot')) db.exec('ALTER TABLE messages ADD COLUMN dedupe_slot INTEGER');
  db.exec(`
    UPDATE messages SET dedupe_slot = NULL WHERE dedupe_slot IS NOT NULL;
    UPDATE messages SET dedupe_slot = 0 WHERE id IN (SELECT max(id) FROM messages WHERE control_id != '' GROUP BY control_id, sending_app, sending_facility);
    -- Also serves the search by MSH-10 (control_id first) and the full duplicate check on a conflict.
    CREATE UNIQUE INDEX IF NOT EXISTS messages_once ON messages (control_id, sending_app, sending_facility, dedupe_slot);
    DROP INDEX IF EXISTS messages_control;
    DROP INDEX IF EXISTS messages_content;
    -- Status: only unsettled messages are indexed (a done message leaves the index instead of moving inside it).
    DROP INDEX IF EXISTS messages_status;
    CREATE INDEX IF NOT EXISTS messages_unsettled ON messages (status, id) WHERE status != 'done';
  `);
  // deliveries.waiters: 1 when other open deliveries of its ordering key may wait behind this one (complete() then
  // looks for the next head). deliveries.solo: 1 when it is the only delivery of its message (complete() then sets
  // the message status without counting). Open heads of an older store may have waiters: marked so.
  if (!has('deliveries', 'waiters')) {
    db.exec('ALTER TABLE deliveries ADD COLUMN waiters INTEGER NOT NULL DEFAULT 0');
  }
  if (!has('deliveries', 'solo')) db.exec('ALTER TABLE deliveries ADD COLUMN solo INTEGER NOT NULL DEFAULT 0');
  db.exec(`
    UPDATE deliveries SET waiters = 1 WHERE head = 1;
    -- At most one head per ordering key, enforced: a new delivery's INSERT finds an existing head by its conflict.
    UPDATE deliveries SET head = 0 WHERE head = 1 AND id NOT IN (SELECT min(id) FROM deliveries WHERE head = 1 GROUP BY ordering_key);
    DROP INDEX IF EXISTS deliveries_heads;
    CREATE UNIQUE INDEX IF NOT EXISTS deliveries_head ON deliveries (ordering_key) WHERE head = 1;
    -- By state: only dead deliveries need an index of their own (open ones are found through deliveries_key).
    DROP INDEX IF EXISTS deliveries_state;
    CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries (id) WHERE state = 'dead';
  `);
}

const MIGRATIONS: Migration[] = [
  // 1: initial schema.
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

  CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    sending_app TEXT NOT NULL,
    sending_facility TEXT NOT NULL,
    type TEXT NOT NULL,
    control_id TEXT NOT NULL,
    patient_id TEXT,
    charset TEXT NOT NULL,
    raw BLOB,
    raw_bytes INTEGER NOT NULL,
    ack_code TEXT NOT NULL,
    status TEXT NOT NULL,
    purged_at INTEGER
  );
  CREATE INDEX messages_dedupe ON messages (sending_app, sending_facility, control_id);
  CREATE INDEX messages_control ON messages (control_id);
  CREATE INDEX messages_patient ON messages (patient_id) WHERE patient_id IS NOT NULL;
  CREATE INDEX messages_time ON messages (received_at);
  CREATE INDEX messages_status ON messages (status, id);

  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    route TEXT NOT NULL,
    step INTEGER NOT NULL,
    plugin TEXT NOT NULL,
    ordering_key TEXT NOT NULL,
    state TEXT NOT NULL,
    -- 1 on the one open delivery of its ordering key that may run now.
    head INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    retry_initial_ms INTEGER NOT NULL,
    retry_max_delay_ms INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error_code TEXT,
    last_error TEXT,
    vars TEXT NOT NULL,
    output TEXT,
    as_name TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE head = 1 AND state IN ('pending','failed');
  CREATE INDEX deliveries_heads ON deliveries (ordering_key) WHERE head = 1;
  CREATE INDEX deliveries_key ON deliveries (ordering_key, id) WHERE state IN ('pending','in-flight','failed');
  CREATE INDEX deliveries_message ON deliveries (message_id, route, step);
  CREATE INDEX deliveries_state ON deliveries (state, id);

  CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error_code TEXT,
    reason TEXT,
    latency_ms INTEGER
  );
  CREATE INDEX attempts_delivery ON attempts (delivery_id);

  CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    route TEXT,
    plugin TEXT NOT NULL,
    operation TEXT NOT NULL,
    org_code TEXT,
    staff_no TEXT,
    patient_masked TEXT,
    patient_hash TEXT,
    result TEXT NOT NULL,
    latency_ms INTEGER,
    message_id TEXT,
    detail TEXT
  );
  CREATE INDEX audit_time ON audit (at);
  CREATE INDEX audit_patient ON audit (patient_hash) WHERE patient_hash IS NOT NULL;
  CREATE INDEX audit_org ON audit (org_code, at);
  -- The audit trail is append-only: rows leave only through retention.
  CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;

  CREATE TABLE plugin_state (
    plugin TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (plugin, key)
  ) WITHOUT ROWID;
  `,
  // v2: the reply segments/text of the original ACK, so a duplicate (a resend after a lost ACK) gets the same answer.
  `ALTER TABLE messages ADD COLUMN ack_reply TEXT;`,
  // v3: content-aware duplicates and instance-independent idempotency keys (core/store/identity.ts).
  // Rows stored before keep NULL: a NULL content digest matches any content, a NULL message key keeps the old delivery key.
  `
  ALTER TABLE messages ADD COLUMN content_hash TEXT;
  ALTER TABLE messages ADD COLUMN message_key TEXT;
  -- 1 when the sender and MSH-10 had been accepted before with other content (a reset control-id counter).
  ALTER TABLE messages ADD COLUMN control_id_reused INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX messages_content ON messages (sending_app, sending_facility, control_id, content_hash);
  DROP INDEX messages_dedupe;
  INSERT OR IGNORE INTO meta (key, value) SELECT 'pre_v3_rows', '1' WHERE EXISTS (SELECT 1 FROM messages);
  `,
  // v4 (issue 12): who made a workstation call (API client, address), and the keyed hash of the ID number a viewer URL was minted for.
  `
  ALTER TABLE audit ADD COLUMN client TEXT;
  ALTER TABLE audit ADD COLUMN address TEXT;
  ALTER TABLE audit ADD COLUMN id_hash TEXT;
  CREATE INDEX audit_id_hash ON audit (id_hash) WHERE id_hash IS NOT NULL;
  `,
  // v5 (issue 12): console sessions, stored under the SHA-256 of the session id, so a restart does not log everyone out.
  `
  CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
  `,
  // v6: marks set at receipt (comma-separated), e.g. invalid-bytes-replaced (listener invalidBytes: replace).
  `ALTER TABLE messages ADD COLUMN flags TEXT;`,
  // v7 (issue 11): the raw bytes leave the messages row. Any UPDATE of a row (a status change) rewrote the whole
  // row, multi-MB body included; and claiming deliveries read every body. A body is now written once, in
  // message_bodies, and read once when a delivery runs. A big body is written beforehand in parts (body_parts,
  // one small transaction each, the event loop gets a turn between them); its message_bodies row has no raw and
  // names the upload. Parts whose upload no accepted message names are orphans of a failed or duplicate accept
  // (recover() removes them).
  `
  CREATE TABLE message_bodies (
    message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    raw BLOB,
    upload INTEGER
  );
  CREATE UNIQUE INDEX message_bodies_upload ON message_bodies (upload) WHERE upload IS NOT NULL;
  CREATE TABLE body_parts (
    id INTEGER PRIMARY KEY,
    upload INTEGER NOT NULL,
    raw BLOB NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX body_parts_upload ON body_parts (upload, id);
  INSERT INTO message_bodies (message_id, raw) SELECT id, raw FROM messages WHERE raw IS NOT NULL;
  ALTER TABLE messages DROP COLUMN raw;
  `,
  // v8 (issue 13): what the stored bytes are: 'hl7' (an HL7 v2 message, as before) or 'json' (a JSON event, which
  // routes read as body.<path>; its type and identity came from the source). Rows stored before are HL7.
  `ALTER TABLE messages ADD COLUMN format TEXT NOT NULL DEFAULT 'hl7';`,
  // v9 (issue 14): the delivery state 'failed' is renamed 'retrying' (it always meant "waiting to retry"; a delivery
  // that can never succeed is 'dead'). Existing rows are rewritten and the two partial indexes that name the
  // state are built again with the new name.
  `
  UPDATE deliveries SET state = 'retrying' WHERE state = 'failed';
  DROP INDEX deliveries_due;
  CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE head = 1 AND state IN ('pending','retrying');
  DROP INDEX deliveries_key;
  CREATE INDEX deliveries_key ON deliveries (ordering_key, id) WHERE state IN ('pending','in-flight','retrying');
  `,
  // (issue 17): where a polling source (the database source's cursor) has read up to, written in the same
  // transaction as the messages it read (core/store/checkpoints.ts). IF NOT EXISTS: safe to renumber.
  CHECKPOINTS_DDL,
  // Issue 18 (operator actions): routes an operator paused. Their messages are still stored and ACKed; the delivery
  // workers claim none of their deliveries until the route is resumed (the row deleted). Kept across restarts.
  // deliveries_route_due lets a claim skip a paused route without reading the deliveries it holds.
  `
  CREATE TABLE IF NOT EXISTS route_pauses (
    route TEXT PRIMARY KEY,
    paused_at INTEGER NOT NULL,
    paused_by TEXT NOT NULL,
    reason TEXT
  );
  CREATE INDEX IF NOT EXISTS deliveries_route_due ON deliveries (route, next_attempt_at) WHERE head = 1 AND state IN ('pending','retrying');
  `,
  // Issue 15: the slim ledger (see slimLedger).
  slimLedger,
  // Issue 15 (WAL per message, measured by `node dist/bench/wal-pages.js`): calls without an institution (the http
  // step, workstation calls that name none) no longer write an entry into audit_org; every query by institution names
  // one (org_code = ? implies NOT NULL, so SQLite still uses the index). deliveries_message keeps only message_id:
  // every query through it names the message, which has a handful of deliveries at most, and entries a quarter
  // the size split the index's last page a quarter as often.
  `
  DROP INDEX IF EXISTS audit_org;
  CREATE INDEX audit_org ON audit (org_code, at) WHERE org_code IS NOT NULL;
  DROP INDEX IF EXISTS deliveries_message;
  CREATE INDEX deliveries_message ON deliveries (message_id);
  -- The patient hashes are random keys: every audit row wrote one random leaf of each index, and with 64-character
  -- keys (13 to a 1 KB page) split it often. Indexed by their first 16 hex digits (64 bits; patientWhere() checks
  -- the full hash on the rows found), four times as many entries fit in a page.
  DROP INDEX IF EXISTS audit_patient;
  CREATE INDEX audit_patient ON audit (substr(patient_hash, 1, 16)) WHERE patient_hash IS NOT NULL;
  DROP INDEX IF EXISTS audit_id_hash;
  CREATE INDEX audit_id_hash ON audit (substr(id_hash, 1, 16)) WHERE id_hash IS NOT NULL;
  `,
];

/** The latest schema version (the user_version a migrated store has). */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database to the latest schema version; each step in its own transaction. */
export function migrate(db: Database.Database): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`store schema version ${current} is newer than this hisbridge (${MIGRATIONS.length}); upgrade hisbridge`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      const m = MIGRATIONS[v]!;
      if (typeof m === 'string') db.exec(m);
      else m(db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return MIGRATIONS.length;
}
