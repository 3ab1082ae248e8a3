/**
 * The one ACK builder (issue 13). The ingress port returns a structured
 * IngestOutcome and builds no ACK; an HL7-speaking source asks for the ACK
 * here, on demand, and gets it in the message's charset. Kafka never does.
 *
 * What an ACK needs beyond the public outcome (the request's MSH, or the
 * header read from a message that did not parse, and its charset) is kept in
 * a WeakMap keyed by the outcome, so `IngestOutcome` stays as in core/sdk.ts.
 */
import { randomUUID } from 'node:crypto';
import { buildAck, buildBatchAckEnvelope, encodeText, Hl7Message, normalizeCharset, readAckHeader, type AckHeader } from '../hl7/index.js';
import type { HisbridgeError } from '../errors.js';
import type { IngestOutcome, IngestReply } from '../sdk.js';

export interface AckContext {
  /** The parsed request, or its header read from text that did not parse; absent when none was readable. */
  header?: Hl7Message | AckHeader;
  /** The charset the ACK is written in (the request's). */
  charset: string;
}

const CONTEXTS = new WeakMap<IngestOutcome, AckContext>();

const DEFAULT_HEADER: AckHeader = { fieldSep: '|', encodingChars: '^~\\&' };

/** Keeps what the ACK of `outcome` needs; returns the outcome. */
export function withAckContext<T extends IngestOutcome>(outcome: T, ctx: AckContext): T {
  CONTEXTS.set(outcome, ctx);
  return outcome;
}

/** HL7 table 0357 code for ERR-3 from a catalogue code. */
export function hl7ErrorCode(code: string): string {
  switch (code) {
    case 'HL7_E_NO_MSH':
      return '100';
    case 'HL7_E_MISSING_FIELD':
      return '101';
    case 'HL7_E_PARSE':
    case 'HL7_E_CHARSET':
    case 'HL7_E_INVALID_BYTES':
    case 'HL7_E_CHARSET_LABEL':
    case 'HL7_E_CONTROL_BYTES':
      return '102';
    case 'ENGINE_E_NO_ROUTE':
      return '200';
    default:
      return '207';
  }
}

/** The reply for an error: MSA-3 and ERR-8 carry the catalogue message (PHI-free), ERR-2 the location when known. */
export function errorReply(code: IngestReply['code'], err: HisbridgeError, location?: string): IngestReply {
  return { code, text: err.message, error: { hl7Code: hl7ErrorCode(err.code), text: err.message, ...(location ? { location } : {}) } };
}

/**
 * MSH-10 of an ACK: 20 hex digits, unique. A random 44-bit prefix per
 * process (drawn again when its counter wraps) and a 36-bit counter: no
 * UUID formatting and regex per message.
 */
let ackPrefix = '';
let ackCounter = 0;
const ACK_COUNTER_SPAN = 2 ** 36;

function ackId(): string {
  if (ackPrefix === '' || ackCounter >= ACK_COUNTER_SPAN) {
    ackPrefix = randomUUID().replace(/-/g, '').slice(0, 11);
    ackCounter = 0;
  }
  return ackPrefix + (ackCounter++).toString(16).padStart(9, '0');
}

/** The ACK text of one outcome (for logs of tests and the legacy `ackText`). */
export function renderAckText(outcome: IngestOutcome): string {
  const ctx = CONTEXTS.get(outcome);
  const r = outcome.reply;
  const text = r.text ?? r.error?.text;
  return buildAck(ctx?.header ?? { ...DEFAULT_HEADER, ...(outcome.controlId ? { controlId: outcome.controlId } : {}) }, {
    code: r.code,
    controlId: ackId(),
    ...(text !== undefined ? { text } : {}),
    ...(r.error ? { error: { hl7Code: r.error.hl7Code, text: r.error.text, ...(r.error.location ? { location: r.error.location } : {}), severity: 'E' as const } } : {}),
    ...(r.segments?.length ? { segments: r.segments } : {}),
    ...(ctx ? labelIfDeclared(ctx) : {}),
  });
}

/** HL7 table 0211 names for the charsets the engine writes. */
const LABELS: Record<string, string> = { 'utf-8': 'UNICODE UTF-8', gb18030: 'GB 18030-2000', latin1: '8859/1' };

/**
 * When the charset the message was read in is not the one its MSH-18 names (an
 * HTTP Content-Type declared another), the ACK's MSH-18 names the charset the
 * ACK is really encoded in.
 */
function labelIfDeclared(ctx: { header?: Hl7Message | AckHeader; charset: string }): { charsetLabel?: string } {
  const h = ctx.header;
  if (!h) return {};
  const named = h instanceof Hl7Message ? h.getRaw('MSH-18') : h.charset;
  if (!named) return {};
  let canonical: string;
  try {
    canonical = normalizeCharset(named, ctx.charset);
  } catch {
    canonical = '';
  }
  return canonical === ctx.charset ? {} : { charsetLabel: LABELS[ctx.charset] ?? '' };
}

/** The HL7 ACK of one outcome, in the request's charset (UTF-8 when that charset cannot encode it). */
export function renderAck(outcome: IngestOutcome): Buffer {
  const text = renderAckText(outcome);
  const charset = CONTEXTS.get(outcome)?.charset ?? 'utf-8';
  try {
    return encodeText(text, charset);
  } catch {
    return Buffer.from(text, 'utf8');
  }
}

function batchId(): string {
  return `B${randomUUID().replace(/-/g, '').slice(0, 19)}`;
}

/**
 * The batch ACK: BHS echoing the request's batch header (`header`, its bytes),
 * one ACK per outcome in order, BTS with their count. Each ACK is in its own
 * message's charset, so the parts are joined as bytes.
 */
export function renderBatchAck(header: Buffer, outcomes: readonly IngestOutcome[]): Buffer {
  // The header echoes ASCII fields; latin1 keeps the request's bytes as they were.
  const acks = outcomes.map(renderAck);
  // BHS-3/BHS-4 name the same sender as the ACKs inside when the request's BHS-5/BHS-6 are empty.
  const firstAck = acks[0]?.toString('latin1');
  const env = buildBatchAckEnvelope(header.toString('latin1'), outcomes.length, { controlId: batchId(), ...(firstAck ? { firstAck } : {}) });
  return Buffer.concat([Buffer.from(env.header, 'latin1'), ...acks, Buffer.from(env.trailer, 'latin1')]);
}

/**
 * An error ACK from the head of a frame that never reached the port (too
 * large, a handler failure), echoing its MSH-10 when readable; null when the
 * head holds no MSH. Latin1 keeps the echoed bytes as they were.
 */
export function errorAckFromHead(head: Buffer | undefined, err: HisbridgeError, code: 'AE' | 'AR'): Buffer | null {
  const header = readAckHeader(head ? head.toString('latin1') : '');
  if (!header) return null;
  return Buffer.from(buildAck(header, { code, controlId: ackId(), text: err.message, error: { hl7Code: '207', text: err.message, severity: 'E' } }), 'latin1');
}
