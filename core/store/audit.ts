/**
 * Audit rows: who called which remote for which patient, with what result.
 * The patient identifier is never stored plain: a masked form for people and
 * a keyed HMAC-SHA256 so an auditor can still find every row of one patient
 * (`queryAudit({ patientId })`) without the table revealing the identifier.
 * A row may also carry the keyed hash of the patient's ID number (`id_hash`,
 * viewer URLs), under the same key: a patient search matches either column.
 * Workstation calls also record the API client and the caller's address.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { AuditEntry } from '../sdk.js';
import { maskId, maskIdNumber, scrubText } from '../mask.js';

/** File in the data directory holding the generated audit hash key (hex). */
export const AUDIT_KEY_FILE = 'audit-hash.key';

export interface AuditRow {
  id: number;
  at: number;
  route?: string;
  plugin: string;
  operation: string;
  orgCode?: string;
  staffNo?: string;
  patientMasked?: string;
  patientHash?: string;
  result: string;
  latencyMs?: number;
  messageId?: string;
  detail?: string;
  /** Authenticated API client of a workstation call. */
  client?: string;
  /** Caller's address (workstation calls, console logins). */
  address?: string;
}

export interface AuditFilter {
  since?: number;
  until?: number;
  plugin?: string;
  operation?: string;
  orgCode?: string;
  /** Plain identifier (patient id or ID number): matched through its keyed hash. */
  patientId?: string;
  limit?: number;
  /** Keyset pagination: rows with id lower than this. */
  before?: number;
}

/** The configured key, or the one kept in the data directory (created on first use, mode 0600). */
export function loadAuditKey(dir: string, configured?: string): Buffer {
  if (configured) return Buffer.from(configured, 'utf8');
  const file = path.join(dir, AUDIT_KEY_FILE);
  if (existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  const key = randomBytes(32);
  try {
    writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    // Another process (engine or CLI) created it first: use theirs so hashes agree.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
    throw e;
  }
  return key;
}

const ID_NUMBER = /^\d{14,17}[\dXx]$/;

export function maskPatient(id: string): string {
  return ID_NUMBER.test(id) ? maskIdNumber(id) : maskId(id);
}

export function patientHash(key: Buffer, id: string): string {
  return createHmac('sha256', key).update(id, 'utf8').digest('hex');
}

/** Column values of one audit row, computed when the entry is queued (so the plain id is not kept around). */
export function auditParams(key: Buffer, entry: AuditEntry, at: number): unknown[] {
  const pid = entry.patientId ? String(entry.patientId) : undefined;
  return [
    at,
    entry.route ?? null,
    entry.plugin,
    entry.operation,
    entry.orgCode ?? null,
    entry.staffNo ?? null,
    pid ? maskPatient(pid) : null,
    pid ? patientHash(key, pid) : null,
    entry.result,
    entry.latencyMs === undefined ? null : Math.round(entry.latencyMs),
    entry.messageId ?? null,
    entry.detail === undefined ? null : scrubText(entry.detail).slice(0, 500),
    entry.client === undefined ? null : String(entry.client).slice(0, 64),
    entry.address === undefined ? null : String(entry.address).slice(0, 64),
    entry.idNumber ? patientHash(key, String(entry.idNumber)) : null,
  ];
}

export const INSERT_AUDIT = `INSERT INTO audit (at, route, plugin, operation, org_code, staff_no, patient_masked, patient_hash, result, latency_ms, message_id, detail, client, address, id_hash)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/** SQL condition (and its arguments) matching the rows of one patient, by patient id or ID number. */
export function patientWhere(key: Buffer, id: string): { sql: string; args: unknown[] } {
  const h = patientHash(key, id);
  const prefix = h.slice(0, HASH_INDEX_PREFIX);
  // The indexes hold the hashes' first 16 digits (schema: audit_patient, audit_id_hash); the expressions must match theirs.
  return { sql: '((substr(patient_hash, 1, 16) = ? AND patient_hash = ?) OR (substr(id_hash, 1, 16) = ? AND id_hash = ?))', args: [prefix, h, prefix, h] };
}

/** Hex digits of a patient hash that its index holds. */
const HASH_INDEX_PREFIX = 16;

/** An audit row as SQLite returns it. */
export interface RawAudit {
  id: number; at: number; route: string | null; plugin: string; operation: string; org_code: string | null; staff_no: string | null;
  patient_masked: string | null; patient_hash: string | null; result: string; latency_ms: number | null; message_id: string | null; detail: string | null;
  client?: string | null; address?: string | null;
}

/** What the audit queries of the store, the console, the API, the export and the statistics can filter on. */
export interface AuditWhereFilter {
  /** Epoch ms, inclusive. */
  since?: number | undefined;
  /** Epoch ms, exclusive. */
  until?: number | undefined;
  plugin?: string | undefined;
  operation?: string | undefined;
  orgCode?: string | undefined;
  staffNo?: string | undefined;
  /** Plain patient id or ID number: matched through its keyed hash. */
  patientId?: string | undefined;
  /** Keyset pagination: rows with id lower than this. */
  before?: number | undefined;
}

/**
 * The one WHERE clause of the audit queries (`WHERE ...`, or '' when nothing
 * filters) and its arguments. Rows of `excludePlugins` (operator actions in
 * the call statistics) are left out.
 */
export function auditWhere(key: Buffer, f: AuditWhereFilter, excludePlugins: readonly string[] = []): { sql: string; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (f.since !== undefined) { where.push('at >= ?'); args.push(f.since); }
  if (f.until !== undefined) { where.push('at < ?'); args.push(f.until); }
  if (f.orgCode) { where.push('org_code = ?'); args.push(f.orgCode); }
  if (f.staffNo) { where.push('staff_no = ?'); args.push(f.staffNo); }
  if (f.plugin) { where.push('plugin = ?'); args.push(f.plugin); }
  if (f.operation) { where.push('operation = ?'); args.push(f.operation); }
  if (f.patientId) { const p = patientWhere(key, f.patientId); where.push(p.sql); args.push(...p.args); }
  if (excludePlugins.length) { where.push(`plugin NOT IN (${excludePlugins.map(() => '?').join(',')})`); args.push(...excludePlugins); }
  if (f.before !== undefined) { where.push('id < ?'); args.push(f.before); }
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', args };
}

/** Newest first. */
export function queryAudit(db: Database.Database, key: Buffer, f: AuditFilter): AuditRow[] {
  const w = auditWhere(key, f);
  const sql = `SELECT * FROM audit ${w.sql} ORDER BY id DESC LIMIT ?`;
  return (db.prepare(sql).all(...w.args, Math.max(1, Math.min(f.limit ?? 100, 10_000))) as RawAudit[]).map(auditRowFrom);
}

/** Maps a SQLite audit row to the API shape (absent columns left out). */
export function auditRowFrom(r: RawAudit): AuditRow {
  const row: AuditRow = { id: r.id, at: r.at, plugin: r.plugin, operation: r.operation, result: r.result };
  if (r.route !== null) row.route = r.route;
  if (r.org_code !== null) row.orgCode = r.org_code;
  if (r.staff_no !== null) row.staffNo = r.staff_no;
  if (r.patient_masked !== null) row.patientMasked = r.patient_masked;
  if (r.patient_hash !== null) row.patientHash = r.patient_hash;
  if (r.latency_ms !== null) row.latencyMs = r.latency_ms;
  if (r.message_id !== null) row.messageId = r.message_id;
  if (r.detail !== null) row.detail = r.detail;
  if (r.client != null) row.client = r.client;
  if (r.address != null) row.address = r.address;
  return row;
}
