/**
 * Read-only queries for operators (CLI `messages`, `dlq`, the HTTP API).
 * Newest first with keyset pagination (`before`), so paging stays cheap on a
 * table with millions of rows.
 */
import type Database from 'better-sqlite3';
import type {
  AttemptRecord, DeadFilter, DeliveryRecord, DeliveryState, MessageDetail, MessageSearch, MessageStatus, MessageSummary,
} from './types.js';

interface RawMessage {
  id: number; received_at: number; source: string; sending_app: string; sending_facility: string; type: string; control_id: string;
  patient_id: string | null; charset: string; ack_code: string; status: string; raw_bytes: number; purged_at: number | null; raw?: Buffer | null;
  control_id_reused?: number;
  flags?: string | null;
  format?: string;
}

interface RawDelivery {
  id: number; message_id: number; route: string; step: number; plugin: string; ordering_key: string; state: string; attempts: number;
  max_attempts: number; next_attempt_at: number; last_error_code: string | null; last_error: string | null; as_name: string | null;
  created_at: number; updated_at: number; vars: string; output: string | null;
}

interface RawAttempt {
  at: number; attempt: number; outcome: string; error_code: string | null; reason: string | null; latency_ms: number | null;
}

const SUMMARY_COLUMNS = 'id, received_at, source, sending_app, sending_facility, type, control_id, patient_id, charset, ack_code, status, raw_bytes, purged_at, control_id_reused, flags, format';

function toSummary(r: RawMessage): MessageSummary {
  const m: MessageSummary = {
    id: r.id, receivedAt: r.received_at, source: r.source, sendingApp: r.sending_app, sendingFacility: r.sending_facility,
    type: r.type, controlId: r.control_id, charset: r.charset, ackCode: r.ack_code, status: r.status as MessageStatus, rawBytes: r.raw_bytes,
    format: r.format === 'json' ? 'json' : 'hl7',
  };
  if (r.patient_id !== null) m.patientId = r.patient_id;
  if (r.purged_at !== null) m.purgedAt = r.purged_at;
  if (r.control_id_reused) m.controlIdReused = true;
  if (r.flags) m.flags = r.flags.split(',');
  return m;
}

export function toDeliveryRecord(r: RawDelivery): DeliveryRecord {
  const d: DeliveryRecord = {
    id: r.id, messageId: r.message_id, route: r.route, step: r.step, plugin: r.plugin, orderingKey: r.ordering_key,
    state: r.state as DeliveryState, attempts: r.attempts, maxAttempts: r.max_attempts, nextAttemptAt: r.next_attempt_at,
    createdAt: r.created_at, updatedAt: r.updated_at,
  };
  if (r.last_error_code !== null) d.lastErrorCode = r.last_error_code;
  if (r.last_error !== null) d.lastError = r.last_error;
  if (r.as_name !== null) d.asName = r.as_name;
  return d;
}

function toAttempt(r: RawAttempt): AttemptRecord {
  const a: AttemptRecord = { at: r.at, attempt: r.attempt, outcome: r.outcome as AttemptRecord['outcome'] };
  if (r.error_code !== null) a.errorCode = r.error_code;
  if (r.reason !== null) a.reason = r.reason;
  if (r.latency_ms !== null) a.latencyMs = r.latency_ms;
  return a;
}

export function searchMessages(db: Database.Database, q: MessageSearch): MessageSummary[] {
  const where: string[] = [];
  const args: unknown[] = [];
  // The extra term lets SQLite use the partial index messages_unsettled (only messages not done are indexed by status).
  if (q.status) { where.push(q.status === 'done' ? 'status = ?' : "status = ? AND status != 'done'"); args.push(q.status); }
  if (q.controlId) { where.push('control_id = ?'); args.push(q.controlId); }
  if (q.patientId) { where.push('patient_id = ?'); args.push(q.patientId); }
  if (q.since !== undefined) { where.push('received_at >= ?'); args.push(q.since); }
  if (q.until !== undefined) { where.push('received_at < ?'); args.push(q.until); }
  if (q.before !== undefined) { where.push('id < ?'); args.push(q.before); }
  args.push(Math.max(1, Math.min(q.limit, 10_000)));
  const sql = `SELECT ${SUMMARY_COLUMNS} FROM messages ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`;
  return (db.prepare(sql).all(...args) as RawMessage[]).map(toSummary);
}

export function getMessage(db: Database.Database, id: number): MessageDetail | undefined {
  const r = db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM messages WHERE id = ?`).get(id) as RawMessage | undefined;
  if (!r) return undefined;
  r.raw = readBody(db, id);
  const attemptsOf = db.prepare('SELECT at, attempt, outcome, error_code, reason, latency_ms FROM attempts WHERE delivery_id = ? ORDER BY id');
  const deliveries = (db.prepare('SELECT * FROM deliveries WHERE message_id = ? ORDER BY id').all(id) as RawDelivery[]).map((d) => {
    const rec: MessageDetail['deliveries'][number] = {
      ...toDeliveryRecord(d),
      vars: JSON.parse(d.vars) as Record<string, unknown>,
      attemptLog: (attemptsOf.all(d.id) as RawAttempt[]).map(toAttempt),
    };
    // A plain success writes no attempt row (ledger.ts complete): its attempt is the delivery row's own.
    const last = rec.attemptLog[rec.attemptLog.length - 1];
    if (d.state === 'done' && d.attempts > 0 && (!last || last.attempt < d.attempts || last.outcome === 'released')) {
      rec.attemptLog.push({ at: d.updated_at, attempt: d.attempts, outcome: 'ok' });
    }
    if (d.output !== null) rec.output = JSON.parse(d.output) as Record<string, unknown>;
    return rec;
  });
  return { ...toSummary(r), raw: r.raw ?? null, deliveries };
}

/**
 * The body of a message in one read (operator views: console, CLI), or null
 * when retention removed it. A body stored in parts (see Store.accept) is
 * put back together.
 */
export function readBody(db: Database.Database, messageId: number): Buffer | null {
  const row = db.prepare('SELECT raw, upload FROM message_bodies WHERE message_id = ?').get(messageId) as { raw: Buffer | null; upload: number | null } | undefined;
  if (!row) return null;
  if (row.raw) return row.raw;
  if (row.upload === null) return null;
  const parts = (db.prepare('SELECT raw FROM body_parts WHERE upload = ? ORDER BY id').all(row.upload) as { raw: Buffer }[]).map((p) => p.raw);
  return parts.length ? Buffer.concat(parts) : null;
}

/** Dead deliveries, newest first, with the MSH-10 and type of their message. */
export function listDead(db: Database.Database, f: DeadFilter): (DeliveryRecord & { controlId: string; type: string })[] {
  const args: unknown[] = [];
  let where = "d.state = 'dead'";
  if (f.route) { where += ' AND d.route = ?'; args.push(f.route); }
  args.push(Math.max(1, Math.min(f.limit ?? 100, 10_000)));
  const rows = db.prepare(
    `SELECT d.*, m.control_id AS m_control_id, m.type AS m_type FROM deliveries d JOIN messages m ON m.id = d.message_id
     WHERE ${where} ORDER BY d.id DESC LIMIT ?`,
  ).all(...args) as (RawDelivery & { m_control_id: string; m_type: string })[];
  return rows.map((r) => ({ ...toDeliveryRecord(r), controlId: r.m_control_id, type: r.m_type }));
}
