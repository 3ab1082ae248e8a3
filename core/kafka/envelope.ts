/**
 * Record value → what the ingress port takes. HL7 topics pass the value
 * through (charset from MSH-18 or the topic). JSON topics carry the
 * kafka-event envelope (schemas/kafka-event.schema.json): its `hl7` text is
 * encoded in the charset its MSH-18 names; an envelope with a JSON `body` is
 * submitted as a JSON event (`format: 'json'`), the envelope itself being the
 * event routes read as `body.<path>`. No synthetic HL7 (issue 13).
 */
import schema from '../../schemas/kafka-event.schema.json' with { type: 'json' };
import { compileSchema } from '../config/validate.js';
import { hbError, type HisbridgeError } from '../errors.js';
import { encodeText, normalizeCharset, readMsh18 } from '../hl7/index.js';
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

/**
 * A record value decoded into what the ingress port takes (the fields of an
 * `InboundMessage` except `source`): an HL7 message with the charset to assume
 * when MSH-18 is empty, or a JSON event with its type and identity.
 */
export type DecodedRecord =
  | { format: 'hl7'; bytes: Buffer; defaultCharset: string }
  | { format: 'json'; bytes: Buffer; event: string; identity: { app: string; facility: string; id: string } };

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
  return { format: 'hl7', bytes: withCr(stripMllp(value)), defaultCharset: charset };
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
  // Said in words before the schema speaks: its oneOf would only say "must NOT be valid".
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return hbError('KAFKA_E_PAYLOAD', { detail: `the value must be a JSON object (the event envelope), not ${data === null ? 'null' : Array.isArray(data) ? 'an array' : `a ${typeof data}`} (schemas/kafka-event.schema.json)` });
  }
  const hasHl7 = Object.hasOwn(data, 'hl7');
  const hasBody = Object.hasOwn(data, 'body');
  if (hasHl7 === hasBody) {
    return hbError('KAFKA_E_PAYLOAD', { detail: `the envelope carries ${hasHl7 ? 'both hl7 and body' : 'neither hl7 nor body'}: it needs exactly one of them (schemas/kafka-event.schema.json)` });
  }
  if (!validate(data)) {
    const e = validate.errors?.[0];
    const where = e?.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '(envelope)';
    return hbError('KAFKA_E_PAYLOAD', { detail: `${where} ${e?.message ?? 'invalid'} (schemas/kafka-event.schema.json)` });
  }
  return data as KafkaEvent;
}

/**
 * JSON topic. An envelope carrying `hl7` becomes that HL7 message, encoded in
 * the charset its MSH-18 names. An envelope carrying a `body` is handed over as
 * a JSON event, unchanged: the bytes are the record value, the event type is
 * `eventType`, and the duplicate-check identity is `source.system`,
 * `source.facility` and `eventId`. Routes read the whole envelope as
 * `body.<path>` (`${body.patient.idNumber}`, `${body.body.<field>}` for the
 * envelope's own `body`): docs/kafka.md.
 */
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
      return { format: 'hl7', bytes: encodeText(text, charset), defaultCharset: 'utf-8' };
    } catch (e) {
      return hbError('KAFKA_E_PAYLOAD', { detail: `hl7 cannot be encoded in its MSH-18 charset ${charset}` }, { cause: e });
    }
  }
  return {
    format: 'json',
    bytes: value!,
    event: event.eventType,
    identity: { app: event.source.system, facility: event.source.facility ?? '', id: event.eventId },
  };
}
