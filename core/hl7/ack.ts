/**
 * Acknowledgments (HL7 v2.5 section 2.9). Original mode answers AA/AE/AR;
 * when the sender sets MSH-15 or MSH-16 it asked for enhanced mode and the
 * commit codes CA/CE/CR apply (the caller picks the code from `ackMode`).
 */
import { DEFAULT_DELIMITERS, delimitersFrom, encodingCharsOf, type Hl7Delimiters } from './delimiters.js';
import { escapeHl7 } from './escape.js';
import { nth } from './fields.js';
import { Hl7Message } from './message.js';

export type AckCode = 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR';
/** HL7 table 0155. */
export type AckCondition = 'AL' | 'NE' | 'ER' | 'SU';

export interface AckModeInfo {
  /** True when the sender set MSH-15 or MSH-16. */
  enhanced: boolean;
  /** MSH-15; AL when empty or not a table 0155 value. */
  acceptAck: AckCondition;
  /** MSH-16; AL when empty or not a table 0155 value. */
  appAck: AckCondition;
}

const CONDITIONS = new Set<string>(['AL', 'NE', 'ER', 'SU']);

function condition(v: string): AckCondition {
  const u = v.trim().toUpperCase();
  return CONDITIONS.has(u) ? (u as AckCondition) : 'AL';
}

/** The acknowledgment mode the sender asked for. */
export function ackMode(msg: Hl7Message): AckModeInfo {
  const accept = msg.acceptAckType;
  const app = msg.appAckType;
  return { enhanced: accept !== '' || app !== '', acceptAck: condition(accept), appAck: condition(app) };
}

/**
 * The request header fields an ACK needs, as sent (escaped, in the request's
 * delimiters). Built from a parsed message, or by `readAckHeader` from text
 * that failed to parse.
 */
export interface AckHeader {
  /** MSH-1. */
  fieldSep: string;
  /** MSH-2. */
  encodingChars: string;
  /** MSH-3..MSH-6, whole fields. */
  sendingApp?: string;
  sendingFacility?: string;
  receivingApp?: string;
  receivingFacility?: string;
  /** MSH-9.2. */
  triggerEvent?: string;
  /** MSH-10. */
  controlId?: string;
  /** MSH-11. */
  processingId?: string;
  /** MSH-12. */
  version?: string;
  /** MSH-18. */
  charset?: string;
}

export interface AckError {
  /** HL7 table 0357: 100 segment sequence, 101 required field missing, 102 data type, 103 table value not found, 200 unsupported message type, 201 unsupported event code, 202 unsupported processing id, 203 unsupported version id, 207 application internal error. */
  hl7Code: string;
  text: string;
  /** ERR-2 error location written with `^` (e.g. `MSH^1^10`); translated to the message's component separator. */
  location?: string;
  severity?: 'E' | 'W' | 'I';
}

export interface AckOptions {
  code: AckCode;
  /** MSH-10 of the ACK itself: unique, supplied by the caller. */
  controlId: string;
  /** MSA-3 text message. */
  text?: string;
  /** Adds an ERR segment (v2.5 layout). */
  error?: AckError;
  /** Extra segments after MSA/ERR: `[name, field1, field2, ...]`, values escaped here. */
  segments?: string[][];
  /** Clock for MSH-7 (tests). */
  now?: Date;
  /** MSH-18 of the ACK when it is not the request's (the transport declared another charset than MSH-18 names). */
  charsetLabel?: string;
}

/**
 * The engine's own application name: MSH-3 of an ACK (and BHS-3 of a batch
 * ACK) when the request leaves its receiving application (MSH-5, BHS-5)
 * empty, so the sender always learns who answered. There is no engine-wide
 * facility: MSH-4 and BHS-4 stay empty when nothing names one.
 */
export const ENGINE_APPLICATION = 'HISBRIDGE';

/** Longest echoed header value: v2.5 caps MSH-10 at 199; anything longer is not a header we should copy. */
const MAX_ECHO = 199;

function clean(v: string | undefined): string {
  if (!v) return '';
  const s = v.includes('\r') || v.includes('\n') ? v.replace(/[\r\n]/g, '') : v;
  return s.length > MAX_ECHO ? s.slice(0, MAX_ECHO) : s;
}

function headerOf(msg: Hl7Message): AckHeader {
  const d = msg.delimiters;
  return {
    fieldSep: d.field,
    encodingChars: encodingCharsOf(d),
    sendingApp: msg.getRaw('MSH-3'),
    sendingFacility: msg.getRaw('MSH-4'),
    receivingApp: msg.getRaw('MSH-5'),
    receivingFacility: msg.getRaw('MSH-6'),
    triggerEvent: msg.getRaw('MSH-9.2'),
    controlId: msg.getRaw('MSH-10'),
    processingId: msg.getRaw('MSH-11'),
    version: msg.getRaw('MSH-12'),
    charset: msg.getRaw('MSH-18'),
  };
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** HL7 DTM with seconds and the local UTC offset: YYYYMMDDHHMMSS+ZZZZ. */
export function hl7Timestamp(t: Date): string {
  const off = -t.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return (
    `${t.getFullYear()}${pad2(t.getMonth() + 1)}${pad2(t.getDate())}` +
    `${pad2(t.getHours())}${pad2(t.getMinutes())}${pad2(t.getSeconds())}${sign}${pad2(Math.floor(a / 60))}${pad2(a % 60)}`
  );
}

/** The timestamp of the current second, computed once per second (every ACK writes it). */
let stamp = { second: -1, text: '' };

function currentTimestamp(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== stamp.second) stamp = { second, text: hl7Timestamp(new Date(now)) };
  return stamp.text;
}

function segment(parts: string[], d: Hl7Delimiters): string {
  let n = parts.length;
  while (n > 1 && parts[n - 1] === '') n--;
  return parts.slice(0, n).join(d.field);
}

/**
 * Builds the ACK text ('\r' after every segment) in the request's delimiters:
 * sender and receiver swapped, MSA-2 = the request's MSH-10, MSH-11/12/18
 * copied (MSH-18 tells the sender which charset the caller encodes the ACK in).
 */
export function buildAck(req: Hl7Message | AckHeader, opts: AckOptions): string {
  const h = req instanceof Hl7Message ? headerOf(req) : req;
  const parsed = delimitersFrom(h.fieldSep, h.encodingChars);
  const d = typeof parsed === 'string' ? DEFAULT_DELIMITERS : parsed;
  const esc = (v: string): string => escapeHl7(v, d);
  const trigger = clean(h.triggerEvent);
  const msh = [
    'MSH',
    encodingCharsOf(d),
    clean(h.receivingApp) || ENGINE_APPLICATION,
    clean(h.receivingFacility),
    clean(h.sendingApp),
    clean(h.sendingFacility),
    opts.now ? hl7Timestamp(opts.now) : currentTimestamp(),
    '',
    trigger ? `ACK${d.component}${trigger}${d.component}ACK` : 'ACK',
    esc(opts.controlId),
    clean(h.processingId) || 'P',
    clean(h.version) || '2.5',
    '', '', '', '', '',
    opts.charsetLabel ?? clean(h.charset),
  ];
  const out = [segment(msh, d)];
  out.push(segment(['MSA', opts.code, clean(h.controlId), opts.text !== undefined ? esc(opts.text) : ''], d));
  const e = opts.error;
  if (e) {
    const location = e.location ? e.location.split('^').map(esc).join(d.component) : '';
    const cwe = [esc(e.hl7Code), esc(e.text), 'HL70357'].join(d.component);
    out.push(segment(['ERR', '', location, cwe, e.severity ?? 'E', '', '', '', esc(e.text)], d));
  }
  for (const s of opts.segments ?? []) {
    if (s.length === 0) continue;
    out.push(segment(s.map((v, i) => (i === 0 ? v : esc(v))), d));
  }
  return out.join('\r') + '\r';
}

function usableSep(c: string | undefined): c is string {
  return c !== undefined && /^[^\sA-Za-z0-9]$/.test(c);
}

/**
 * Best-effort MSH extraction from text that failed full parsing, so that even
 * a rejected message gets an ACK echoing its MSH-10. Returns undefined when the
 * text does not start with MSH and a field separator. Without a segment
 * terminator the text may be cut short, so its last field is not trusted.
 */
export function readAckHeader(text: string): AckHeader | undefined {
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (start < text.length && text.charCodeAt(start) <= 0x20) start++;
  if (!text.startsWith('MSH', start)) return undefined;
  const sep = text[start + 3];
  if (!usableSep(sep)) return undefined;
  const cr = text.indexOf('\r', start);
  const lf = text.indexOf('\n', start);
  const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
  const parts = text.slice(start, end < 0 ? text.length : end).split(sep);
  if (end < 0) parts.pop();
  const enc = parts[1] ?? '';
  const valid = typeof delimitersFrom(sep, enc) !== 'string';
  const field = (n: number): string => clean(parts[n - 1]);
  const component = valid ? enc[0]! : '^';
  return {
    fieldSep: valid ? sep : DEFAULT_DELIMITERS.field,
    encodingChars: valid ? enc : encodingCharsOf(DEFAULT_DELIMITERS),
    sendingApp: field(3),
    sendingFacility: field(4),
    receivingApp: field(5),
    receivingFacility: field(6),
    triggerEvent: nth(field(9), component, 2),
    controlId: field(10),
    processingId: field(11),
    version: field(12),
    charset: field(18),
  };
}

export interface BatchAckOptions {
  /** BHS-11 of the reply batch: unique, supplied by the caller. */
  controlId: string;
  /**
   * The first ACK message of the reply (its text, any charset read as
   * latin1): when the request's BHS-5/BHS-6 are empty, BHS-3/BHS-4 are that
   * ACK's MSH-3/MSH-4 (the enclosed message's receiver, or the engine's own
   * application name), so the batch header names the same sender as the ACKs
   * inside it.
   */
  firstAck?: string;
  /** Clock for BHS-7 (tests). */
  now?: Date;
}

/**
 * The batch acknowledgment header and trailer around the ACK messages of a
 * batch (HL7 v2.5 section 2.10.3): `BHS` echoing the request's BHS (or FHS)
 * with sender and receiver swapped, BHS-11 our batch id and BHS-12 the
 * request's BHS-11; then the caller puts one ACK message per enclosed message,
 * in order; then `BTS` with their count. `request` is the request's header
 * line as text ('' when unreadable: default delimiters).
 */
export function buildBatchAckEnvelope(request: string, count: number, opts: BatchAckOptions): { header: string; trailer: string } {
  const isHeader = request.startsWith('BHS') || request.startsWith('FHS');
  const sep = isHeader ? request[3] : undefined;
  const parts = sep && usableSep(sep) ? request.split(sep) : [];
  const enc = parts[1] ?? '';
  const parsed = sep ? delimitersFrom(sep, enc) : 'none';
  const d = typeof parsed === 'string' ? DEFAULT_DELIMITERS : parsed;
  // parts[0] is the name and parts[1] BHS-2, so BHS-n is parts[n - 1].
  const field = (n: number): string => (typeof parsed === 'string' ? '' : clean(parts[n - 1]));
  // Our sender fields when the request names no receiver: the first ACK's MSH-3/MSH-4 when it is written in the
  // same delimiters (its values are escaped in them), else the engine's application name.
  const ack = (!field(5) || !field(6)) && opts.firstAck ? readAckHeader(opts.firstAck) : undefined;
  const fromAck = ack !== undefined && ack.fieldSep === d.field && ack.encodingChars === encodingCharsOf(d) ? ack : undefined;
  const app = field(5) || fromAck?.sendingApp || ENGINE_APPLICATION;
  const facility = field(6) || fromAck?.sendingFacility || '';
  const header = segment(
    ['BHS', encodingCharsOf(d), app, facility, field(3), field(4), opts.now ? hl7Timestamp(opts.now) : currentTimestamp(), '', 'ACK', '', escapeHl7(opts.controlId, d), field(11)],
    d,
  );
  return { header: header + '\r', trailer: segment(['BTS', String(count)], d) + '\r' };
}
