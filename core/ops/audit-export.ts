/**
 * Audit export formats (CSV for auditors' spreadsheets, JSONL for tools).
 * Rows hold only masked patient identifiers and keyed hashes, so an export
 * can leave the hospital's integration team without leaking identifiers.
 */
import type { AuditRow } from '../store/audit.js';

export type AuditFormat = 'csv' | 'jsonl';

/** Column order of the CSV export (also its header line). */
export const AUDIT_COLUMNS = ['id', 'time', 'route', 'plugin', 'operation', 'orgCode', 'staffNo', 'patientMasked', 'patientHash', 'result', 'latencyMs', 'messageId', 'detail', 'client', 'address'] as const;

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = String(v);
  // A leading =, +, - or @ would run as a formula when an auditor opens the file in a spreadsheet.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function record(r: AuditRow): Record<(typeof AUDIT_COLUMNS)[number], unknown> {
  return {
    id: r.id, time: new Date(r.at).toISOString(), route: r.route, plugin: r.plugin, operation: r.operation, orgCode: r.orgCode,
    staffNo: r.staffNo, patientMasked: r.patientMasked, patientHash: r.patientHash, result: r.result, latencyMs: r.latencyMs,
    messageId: r.messageId, detail: r.detail, client: r.client, address: r.address,
  };
}

/** Formats rows lazily: yields the header (CSV) and then one line per row, each ending in a newline. */
export function* formatAudit(rows: Iterable<AuditRow>, format: AuditFormat): Generator<string> {
  if (format === 'csv') yield AUDIT_COLUMNS.join(',') + '\r\n';
  for (const r of rows) {
    const rec = record(r);
    yield format === 'csv' ? AUDIT_COLUMNS.map((c) => csvCell(rec[c])).join(',') + '\r\n' : JSON.stringify(rec) + '\n';
  }
}
