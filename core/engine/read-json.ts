/**
 * The READ stage for `format: 'json'` (issue 13): one JSON event, as a source
 * handed it over, becomes what the common ingest stage needs (duplicate-check
 * identity, content digest, the StepInput routes see). No synthetic HL7: routes
 * read the event as `body.<path>` and match its type (`InboundMessage.event`)
 * with `match.events` (docs/routes.md, "JSON events").
 *
 * Every input is untrusted: invalid UTF-8, text that is not JSON, a top level
 * that is not an object, nesting deeper than 64 levels, and a missing event
 * type or identity are refused with ENGINE_E_JSON (status rejected: the same
 * bytes would be refused again). Linear in the input size; a big event is
 * decoded and parsed in slices, with turns of the event loop between them and
 * around its digest. Sources bound an event's size first (`maxEventBytes`,
 * ENGINE_E_EVENT_TOO_LARGE; docs/sources.md).
 */
import { hbError, type HisbridgeError } from '../errors.js';
import { parseJsonYielding, yieldIfBig, yieldToLoop } from '../cooperative.js';
import { jsonContentDigest, JsonTooDeep, JSON_MAX_DEPTH } from '../store/identity.js';
import type { InboundMessage, IngestOutcome, StepInput } from '../sdk.js';
import { readRefusal, type ReadResult } from './read.js';

export type { ReadResult };

/** Longest event type and identity part accepted (the store indexes them; MSH-10 allows 199). */
const MAX_ID_CHARS = 199;

/** Bytes decoded per event-loop turn: 1 MB of Chinese text takes ~7 ms. */
const DECODE_SLICE_BYTES = 1024 * 1024;

/**
 * Strict UTF-8 decode (a byte order mark is dropped), in slices with a turn of
 * the event loop between them for a big event; throws on invalid bytes. The
 * streaming decoder carries a character split across slices.
 */
async function decodeUtf8(bytes: Buffer): Promise<string> {
  const dec = new TextDecoder('utf-8', { fatal: true });
  if (bytes.length <= DECODE_SLICE_BYTES) return dec.decode(bytes);
  let text = '';
  for (let off = 0; off < bytes.length; off += DECODE_SLICE_BYTES) {
    const end = Math.min(off + DECODE_SLICE_BYTES, bytes.length);
    text += dec.decode(bytes.subarray(off, end), { stream: end < bytes.length });
    if (end < bytes.length) await yieldToLoop();
  }
  return text;
}

/** The outcome for a refused event: rejected, with an AE and ERR-3 102 should an HL7-speaking source render it. */
export function jsonRejected(err: HisbridgeError, extra: { controlId?: string; type?: string } = {}): { ok: false; outcome: IngestOutcome } {
  const outcome = readRefusal(err, { charset: 'utf-8' });
  outcome.reply = { ...outcome.reply, error: { hl7Code: '102', text: err.message } };
  if (extra.controlId) outcome.controlId = extra.controlId;
  if (extra.type) outcome.type = extra.type;
  return { ok: false, outcome };
}

const bad = (detail: string) => hbError('ENGINE_E_JSON', { detail });

/** A short, PHI-free description of a value's JSON type. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** An identity part or event type: a non-empty string, bounded, without control characters. */
function checkToken(v: unknown, what: string, required: boolean): string | HisbridgeError {
  if (v === undefined || v === '') return required ? bad(`${what} is missing (the source must give it)`) : '';
  if (typeof v !== 'string') return bad(`${what} must be text`);
  if (v.length > MAX_ID_CHARS) return bad(`${what} is longer than ${MAX_ID_CHARS} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) return bad(`${what} holds a control character`);
  return v;
}

/**
 * Reads one JSON event. Resolves to the identity, digest and StepInput of the
 * event, or to a rejected outcome; never throws.
 */
export async function readJson(inbound: InboundMessage): Promise<ReadResult> {
  const type = checkToken(inbound.event, 'the event type', true);
  if (typeof type !== 'string') return jsonRejected(type);
  const identity = inbound.identity;
  if (!identity || typeof identity !== 'object') return jsonRejected(bad('the event has no identity (sender and id; the source must give them)'), { type });
  const app = checkToken(identity.app, 'the sender (identity.app)', true);
  if (typeof app !== 'string') return jsonRejected(app, { type });
  const facility = checkToken(identity.facility, 'the facility (identity.facility)', false);
  if (typeof facility !== 'string') return jsonRejected(facility, { type });
  const id = checkToken(identity.id, 'the event id (identity.id)', true);
  if (typeof id !== 'string') return jsonRejected(id, { type });
  const refuse = (detail: string) => jsonRejected(bad(detail), { controlId: id, type });

  const bytes = inbound.bytes;
  if (!bytes || bytes.length === 0) return refuse('the event is empty');
  let text: string;
  try {
    text = await decodeUtf8(bytes);
  } catch {
    return refuse('the bytes are not valid UTF-8');
  }
  // A big event is parsed in time slices (JSON.parse of 5 MB holds the loop ~35 ms or more); the digest gets turns around it.
  await yieldIfBig(bytes.length);
  let body: unknown;
  try {
    body = await parseJsonYielding(text);
  } catch (e) {
    // V8's message names the position ("Unexpected token } in JSON at position 12"), never the text around it.
    const where = /position \d+/.exec((e as Error).message)?.[0];
    return refuse(`not JSON${where ? ` (${where})` : ''}`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return refuse(`the top level must be an object, not ${kindOf(body)}`);
  await yieldIfBig(bytes.length);
  let digest: string;
  try {
    digest = await jsonContentDigest(body, JSON_MAX_DEPTH);
  } catch (e) {
    if (e instanceof JsonTooDeep) return refuse(`nested deeper than ${e.limit} levels`);
    // A stack overflow on hostile input must not escape: the depth check runs first at every level, so this is unexpected.
    return refuse('the event cannot be read');
  }
  await yieldIfBig(bytes.length);

  const patient = (body as Record<string, unknown>).patient;
  const pid = patient !== null && typeof patient === 'object' && !Array.isArray(patient) && Object.hasOwn(patient, 'id') ? (patient as Record<string, unknown>).id : undefined;
  const patientId = typeof pid === 'string' ? pid : '';

  return {
    ok: true,
    format: 'json',
    app,
    facility,
    id,
    type,
    digest,
    charset: 'utf-8',
    input: { messageId: `${inbound.source}:${id}`, controlId: id, type, source: inbound.source, body, vars: {} },
    patientId,
    enhanced: false,
  };
}
