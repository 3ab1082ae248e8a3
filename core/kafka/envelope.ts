/**
 * Record value → the bytes `engine.ingest` takes. HL7 topics pass the value
 * through (charset from MSH-18 or the topic). JSON topics carry the
 * kafka-event envelope (schemas/kafka-event.schema.json): its `hl7` text is
 * encoded in the charset its MSH-18 names; a JSON `body` becomes a small HL7
 * message built from the envelope fields, so routes, idempotency (source
 * system + eventId) and the store treat both kinds alike.
 */
import schema from '../../schemas/kafka-event.schema.json' with { type: 'json' };
import { compileSchema } from '../config/validate.js';
import { hbError, type HisbridgeError } from '../errors.js';
import { DEFAULT_DELIMITERS, encodeText, escapeHl7, hl7Timestamp, normalizeCharset, readMsh18 } from '../hl7/index.js';
import type { JsonSchema } from '../sdk.js';

/** The envelope as typed data. */
export interface KafkaEvent {
  specVersion: '1';
  eventId: string;
  eventType: string;
  source: { system: string; facility?: string };
  occurredAt: string;
  patient?: { id?: string; idNumber?: string; name?: string; gender?: string; birthDate?: string; phone?: string };
  order?: { id?: string; fillerId?: string; control?: string };
  report?: { id?: string; status?: string };
  hl7?: string;
  body?: Record<string, unknown>;
}

export const kafkaEventSchema = schema as unknown as JsonSchema;

/** What ingest needs: the frame and the charset to assume when MSH-18 is empty. */
export interface DecodedRecord {
  frame: Buffer;
  charset: string;
}

const validate = compileSchema(kafkaEventSchema);

/** Segment separators: producers on Unix often write LF; HL7 wants CR. Byte-level, so GBK stays intact. */
function withCr(b: Buffer): Buffer {
  if (b.includes(0x0d) || !b.includes(0x0a)) return b;
  const out = Buffer.from(b);
  for (let i = 0; i < out.length; i++) if (out[i] === 0x0a) out[i] = 0x0d;
  return out;
}

/** Strips an MLLP envelope if a producer copied one in. */
function stripMllp(b: Buffer): Buffer {
  let s = 0;
  let e = b.length;
  if (b[0] === 0x0b) s = 1;
  while (e > s && (b[e - 1] === 0x1c || b[e - 1] === 0x0d && b[e - 2] === 0x1c)) e--;
  return s === 0 && e === b.length ? b : b.subarray(s, e);
}

/** HL7 topic: the value is the message. */
export function decodeHl7Value(value: Buffer | null, charset: string): DecodedRecord | HisbridgeError {
  if (!value || value.length === 0) return hbError('KAFKA_E_PAYLOAD', { detail: 'empty record value' });
  return { frame: withCr(stripMllp(value)), charset };
}

/** Validates a JSON value against the envelope schema; the error names the first failing field, never its value. */
export function parseEvent(value: Buffer | null): KafkaEvent | HisbridgeError {
  if (!value || value.length === 0) return hbError('KAFKA_E_PAYLOAD', { detail: 'empty record value' });
  let data: unknown;
  try {
    data = JSON.parse(value.toString('utf8'));
  } catch {
    return hbError('KAFKA_E_PAYLOAD', { detail: 'value is not JSON' });
  }
  if (!validate(data)) {
    const e = validate.errors?.[0];
    const where = e?.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '(envelope)';
    return hbError('KAFKA_E_PAYLOAD', { detail: `${where} ${e?.message ?? 'invalid'} (schemas/kafka-event.schema.json)` });
  }
  return data as KafkaEvent;
}

/** JSON topic: the envelope's HL7, or an HL7 message built from its fields. */
export function decodeJsonValue(value: Buffer | null): DecodedRecord | HisbridgeError {
  const ev = parseEvent(value);
  if (!(ev as KafkaEvent).specVersion) return ev as HisbridgeError;
  const event = ev as KafkaEvent;
  if (event.hl7 !== undefined) {
    const text = event.hl7.replace(/\r\n|\n/g, '\r');
    if (!text.startsWith('MSH')) return hbError('KAFKA_E_PAYLOAD', { detail: 'hl7 does not start with MSH' });
    // MSH is ASCII, so reading MSH-18 from a latin1 view of the text is safe.
    const charset = normalizeCharset(readMsh18(Buffer.from(text.slice(0, 2048), 'latin1')), 'utf-8');
    try {
      return { frame: encodeText(text, charset), charset: 'utf-8' };
    } catch (e) {
      return hbError('KAFKA_E_PAYLOAD', { detail: `hl7 cannot be encoded in its MSH-18 charset ${charset}` }, { cause: e });
    }
  }
  return { frame: Buffer.from(eventToHl7(event), 'utf8'), charset: 'utf-8' };
}

/**
 * The HL7 v2.5 message standing for a JSON-bodied event: MSH (type, sender,
 * eventId as MSH-10, UTF-8), EVN, PID, ORC/OBR when present, and ZJB-1 with
 * the JSON body. Exported for the docs and tests.
 */
export function eventToHl7(ev: KafkaEvent): string {
  const d = DEFAULT_DELIMITERS;
  const x = (v: string | undefined) => (v ? escapeHl7(v, d) : '');
  const at = Number.isNaN(Date.parse(ev.occurredAt)) ? new Date() : new Date(ev.occurredAt);
  const ts = hl7Timestamp(at);
  const segs: string[] = [
    ['MSH', '^~\\&', x(ev.source.system), x(ev.source.facility), 'HISBRIDGE', 'KAFKA', ts, '', ev.eventType, x(ev.eventId), 'P', '2.5', '', '', '', '', '', 'UNICODE UTF-8'].join('|'),
    ['EVN', ev.eventType.split('^')[1] ?? '', ts].join('|'),
  ];
  const p = ev.patient;
  if (p) {
    const ids = [p.id ? `${x(p.id)}^^^^PI` : '', p.idNumber ? `${x(p.idNumber)}^^^^NI` : ''].filter(Boolean).join('~');
    segs.push(['PID', '1', '', ids, '', x(p.name), '', x(p.birthDate), x(p.gender), '', '', '', '', x(p.phone)].join('|'));
  }
  if (ev.order) segs.push(['ORC', x(ev.order.control), x(ev.order.id), x(ev.order.fillerId)].join('|'));
  if (ev.order || ev.report) {
    const obr = ['OBR', '1', x(ev.order?.id), x(ev.report?.id)];
    if (ev.report?.status) {
      while (obr.length < 25) obr.push('');
      obr[25] = x(ev.report.status);
    }
    segs.push(obr.join('|'));
  }
  if (ev.body) segs.push(['ZJB', x(JSON.stringify(ev.body))].join('|'));
  return segs.join('\r') + '\r';
}
