/**
 * Search by message content (issue 18): an HL7 field path (`PID-5.1`,
 * `OBX[2]-5`, see docs/routes.md) that equals or contains a value, over a
 * received-time window. The window is read through the `messages_time`
 * index, and the scan is bounded: a window holding more than `SCAN_CAP`
 * messages is refused with OPS_E_SEARCH_WINDOW ("narrow your time window")
 * before any body is read. Inside the window each body is first checked for
 * the value's bytes (in the message's own charset), and only a body that
 * holds them is decoded and parsed, so a search costs one index range read
 * plus a byte search per message.
 *
 * Only HL7 messages are searched (JSON events have no field paths), and a
 * body removed by retention cannot match. Comparison is exact (case
 * sensitive) on the unescaped value; any repetition of the field counts.
 */
import type Database from 'better-sqlite3';
import { hbError } from '../errors.js';
import { decodeHl7, encodeText } from '../hl7/charset.js';
import { parseHl7 } from '../hl7/message.js';
import { compilePath, type FieldPath } from '../hl7/path.js';

/**
 * Most messages one search may scan: past it the operator must narrow the
 * window. 2,000 keeps a search under the console's 200 ms budget on a small
 * server (bench scenario 8); at 1,000,000 messages a month that is about an hour and a half.
 */
export const SCAN_CAP = 2000;
/** Matches one console search shows (a replay asks for more, up to the scan cap). */
export const MATCH_LIMIT = 200;

export type ContentOp = 'equals' | 'contains';

export interface ContentQuery {
  path: string;
  op: ContentOp;
  value: string;
  /** Epoch ms, inclusive. */
  since: number;
  /** Epoch ms, exclusive. */
  until: number;
  /** Matches wanted (default 50, at most the scan cap). */
  limit?: number;
  /** Override of SCAN_CAP (tests, the bench). */
  scanCap?: number;
}

export interface ContentHit {
  id: number;
  receivedAt: number;
  source: string;
  type: string;
  controlId: string;
  patientId?: string;
  status: string;
}

export interface ContentResult {
  hits: ContentHit[];
  /** Messages in the window (all of them were scanned unless `limit` hits came first). */
  scanned: number;
}

interface Row {
  id: number; received_at: number; source: string; type: string; control_id: string; patient_id: string | null; status: string;
  charset: string; format: string; raw: Buffer | null; upload: number | null;
}

const CR = 0x0d;
const LF = 0x0a;

/**
 * The MSH line and the lines of segment `name` of a raw message, as bytes
 * (or the whole message when it does not start with MSH). Carriage returns
 * and line feeds never occur inside a multi-byte character (UTF-8, GB18030),
 * and a segment name is the first bytes of its line, so the cut is safe in
 * every charset; decoding and parsing a few lines instead of a whole report
 * is what keeps a search over thousands of messages fast.
 */
function segmentsOnly(raw: Buffer, name: string): Buffer {
  if (raw.length < 8 || raw.toString('latin1', 0, 3) !== 'MSH') return raw;
  const sep = raw[3]!;
  const want = Buffer.from(name, 'latin1');
  const keep: Buffer[] = [];
  let start = 0;
  while (start < raw.length) {
    let end = start;
    while (end < raw.length && raw[end] !== CR && raw[end] !== LF) end++;
    const isMsh = start === 0;
    const matches = end - start > want.length && raw[start + want.length] === sep && raw.compare(want, 0, want.length, start, start + want.length) === 0;
    if (isMsh || matches) keep.push(raw.subarray(start, end), Buffer.from([CR]));
    start = end + 1;
  }
  return Buffer.concat(keep);
}

/** Checks the query's shape; throws OPS_E_BAD_QUERY naming what is wrong. */
export function checkContentQuery(q: { path?: string; op?: string; value?: string }): { path: FieldPath; op: ContentOp; value: string } {
  if (!q.path) throw hbError('OPS_E_BAD_QUERY', { detail: 'give a field path such as PID-5.1' });
  let path: FieldPath;
  try {
    path = compilePath(q.path.trim().toUpperCase());
  } catch (e) {
    throw hbError('OPS_E_BAD_QUERY', { detail: `field path: ${(e as Error).message}` });
  }
  const op = (q.op || 'equals') as ContentOp;
  if (op !== 'equals' && op !== 'contains') throw hbError('OPS_E_BAD_QUERY', { detail: 'op must be equals or contains' });
  if (!q.value) throw hbError('OPS_E_BAD_QUERY', { detail: 'give the value to look for' });
  if (q.value.length > 200) throw hbError('OPS_E_BAD_QUERY', { detail: 'the value is longer than 200 characters' });
  return { path, op, value: q.value };
}

/** Runs a content search on a read connection to the store. */
export function searchContent(db: Database.Database, q: ContentQuery): ContentResult {
  const { path, op, value } = checkContentQuery(q);
  const cap = q.scanCap ?? SCAN_CAP;
  const limit = Math.max(1, Math.min(q.limit ?? 50, cap));
  // One index range read: is the window small enough to scan?
  const ids = db.prepare('SELECT id FROM messages INDEXED BY messages_time WHERE received_at >= ? AND received_at < ? ORDER BY received_at DESC, id DESC LIMIT ?')
    .pluck().all(q.since, q.until, cap + 1) as number[];
  if (ids.length > cap) throw hbError('OPS_E_SEARCH_WINDOW', { cap });
  const rows = db.prepare(`SELECT m.id, m.received_at, m.source, m.type, m.control_id, m.patient_id, m.status, m.charset, m.format, b.raw, b.upload
    FROM messages m INDEXED BY messages_time LEFT JOIN message_bodies b ON b.message_id = m.id
    WHERE m.received_at >= ? AND m.received_at < ? ORDER BY m.received_at DESC, m.id DESC LIMIT ?`);
  const parts = db.prepare('SELECT raw FROM body_parts WHERE upload = ? ORDER BY id').pluck();
  const needles = new Map<string, Buffer | undefined>();
  const needleFor = (charset: string): Buffer | undefined => {
    if (!needles.has(charset)) {
      let b: Buffer | undefined;
      try {
        b = encodeText(value, charset);
      } catch {
        b = undefined;
      }
      needles.set(charset, b);
    }
    return needles.get(charset);
  };
  const hits: ContentHit[] = [];
  let scanned = 0;
  for (const r of rows.iterate(q.since, q.until, cap) as Iterable<Row>) {
    scanned++;
    if (r.format === 'json') continue;
    const raw = r.raw ?? (r.upload !== null ? Buffer.concat(parts.all(r.upload) as Buffer[]) : null);
    if (!raw) continue;
    // The value's bytes must be in the body (unless it would be escaped there): skip the parse when they are not.
    const needle = /[|^~\\&]/.test(value) ? undefined : needleFor(r.charset);
    if (needle && raw.indexOf(needle) < 0) continue;
    let values: string[];
    try {
      values = parseHl7(decodeHl7(segmentsOnly(raw, path.segment), r.charset, r.charset).text).getAll(path);
    } catch {
      continue;
    }
    if (!values.some((v) => (op === 'equals' ? v === value : v.includes(value)))) continue;
    hits.push({
      id: r.id, receivedAt: r.received_at, source: r.source, type: r.type, controlId: r.control_id, status: r.status,
      ...(r.patient_id ? { patientId: r.patient_id } : {}),
    });
    if (hits.length >= limit) break;
  }
  return { hits, scanned };
}
