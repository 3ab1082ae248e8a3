/**
 * The format-specific READ stage of the ingress port (issue 13): bytes in,
 * either what the common stage needs (who sent it, its id, type, content
 * digest, the step input routes see) or a refusal. `readHl7` is here; JSON
 * events are read by core/engine/read-json.ts.
 *
 * Log lines carry codes and locations, never payload.
 */
import { ackMode, decodeHl7Yielding, parseHl7Yielding, readAckHeader, type AckHeader, type Hl7Message, type InvalidBytes } from '../hl7/index.js';
import { HisbridgeError, toHisbridgeError } from '../errors.js';
import { yieldIfBig } from '../cooperative.js';
import type { InboundMessage, IngestOutcome, Logger, StepInput } from '../sdk.js';
import { contentDigestYielding } from '../store/identity.js';
import { errorReply, withAckContext } from './ack.js';

/** A message read and understood: everything the common stage (duplicates, match, run, commit) needs. */
export interface ReadOk {
  ok: true;
  format: 'hl7' | 'json';
  /** Sender and id for the duplicate check: MSH-3, MSH-4, MSH-10 (JSON: identity.app, identity.facility, identity.id). */
  app: string;
  facility: string;
  id: string;
  /** MSH-9.1^MSH-9.2, or the JSON event type. */
  type: string;
  /** Content digest (core/store/identity.ts). */
  digest: string;
  /** The charset the bytes were read in (stored with the message). */
  charset: string;
  /** The step input routes see; the common stage gives each route its own copy with fresh `vars`. */
  input: StepInput;
  /** The in-hospital patient id, for the store's patient index ('' when none). */
  patientId: string;
  /** The sender asked for enhanced acknowledgment (CA/CE/CR). */
  enhanced: boolean;
  /** What the ACK echoes: the parsed message (HL7); absent for JSON. */
  header?: Hl7Message | AckHeader;
  /** Marks kept with the stored message (e.g. `invalid-bytes-replaced`). */
  flags?: string[];
}

export type ReadResult = ReadOk | { ok: false; outcome: IngestOutcome };

/**
 * A refusal before routing: `rejected`, the same bytes will be refused again.
 * Always AE: the message did not parse, so its MSH-15/16 were not read.
 */
export function readRefusal(err: HisbridgeError, ctx: { header?: AckHeader | undefined; charset: string; location?: string | undefined }): IngestOutcome {
  const outcome: IngestOutcome = {
    status: 'rejected',
    code: err.code,
    reason: err.message,
    routes: [],
    reply: errorReply('AE', err, ctx.location),
    ...(ctx.header?.controlId ? { controlId: ctx.header.controlId } : {}),
  };
  return withAckContext(outcome, { ...(ctx.header ? { header: ctx.header } : {}), charset: ctx.charset });
}

export function patientIdOf(msg: Hl7Message): string {
  return msg.get('PID-3[5=PI].1') || msg.get('PID-3.1');
}

/**
 * ERR-2 for invalid bytes (`PID^1^5`: segment, its sequence among segments of
 * that name, field) from where the decoder found them. The sequence is
 * counted on the bytes before the offset: segment names are ASCII.
 */
export function errLocation(frame: Buffer, inv: InvalidBytes): string | undefined {
  if (!/^[A-Z][A-Z0-9]{2}$/.test(inv.segment)) return undefined;
  const name = Buffer.from(inv.segment, 'latin1');
  let seq = 0;
  const end = Math.min(inv.offset, frame.length);
  for (let i = frame.indexOf(name, 0); i >= 0 && i < end; i = frame.indexOf(name, i + 1)) {
    if (i === 0 || frame[i - 1] === 0x0d || frame[i - 1] === 0x0a) seq++;
  }
  if (seq === 0) seq = 1;
  return inv.field > 0 ? `${inv.segment}^${seq}^${inv.field}` : `${inv.segment}^${seq}`;
}

/** The charset as people call it in a reject reason. */
function charsetLabel(cs: string): string {
  return cs === 'utf-8' || cs === 'ascii' ? 'UTF-8' : cs === 'gb18030' ? 'GB18030/GBK' : cs;
}

/**
 * Reads one HL7 v2 message: decode (the transport's charset, else MSH-18,
 * else the listener default), refuse or replace invalid bytes, parse, digest.
 */
export async function readHl7(inbound: InboundMessage, log: Logger): Promise<ReadResult> {
  const frame = inbound.bytes;
  const source = inbound.source;
  let charset = 'utf-8';
  let text: string;
  let invalid: InvalidBytes | undefined;
  try {
    // A big frame is decoded in slices, with turns of the event loop between them (issue 11).
    // The transport's charset is applied as the default: core/hl7/charset.ts has no override of MSH-18 yet.
    ({ text, charset, invalid } = await decodeHl7Yielding(frame, inbound.defaultCharset ?? 'gb18030', undefined, inbound.charset));
  } catch (e) {
    const err = toHisbridgeError(e);
    log.warn({ listener: source, code: err.code }, 'cannot decode message');
    const fallback = new TextDecoder('latin1').decode(frame.subarray(0, 4096));
    return { ok: false, outcome: readRefusal(err, { header: readAckHeader(fallback), charset: 'latin1' }) };
  }
  let flags: string[] | undefined;
  if (invalid) {
    // Never the bytes or the text around them: only where they are (and, for a control character, which one).
    const kind = invalid.kind ?? 'bytes';
    const err =
      kind === 'label'
        ? new HisbridgeError('HL7_E_CHARSET_LABEL', { charset: charsetLabel(charset), location: invalid.location })
        : kind === 'control'
          ? new HisbridgeError('HL7_E_CONTROL_BYTES', { byte: invalid.byte ?? '??', location: invalid.location })
          : new HisbridgeError('HL7_E_INVALID_BYTES', { charset: charsetLabel(charset), location: invalid.location });
    const what = kind === 'label' ? 'UTF-8 bytes under a GB18030/GBK label' : kind === 'control' ? 'a raw control character' : 'invalid bytes';
    if ((inbound.invalidBytes ?? 'reject') === 'reject') {
      log.warn({ listener: source, code: err.code, location: invalid.location, offset: invalid.offset }, `rejected message with ${what}`);
      return { ok: false, outcome: readRefusal(err, { header: readAckHeader(text), charset, location: errLocation(frame, invalid) }) };
    }
    log.warn(
      { listener: source, code: err.code, location: invalid.location, offset: invalid.offset },
      kind === 'label' ? 'UTF-8 bytes under a GB18030/GBK label kept as read in GB18030 (invalidBytes: replace)' : `${what} replaced by U+FFFD (invalidBytes: replace)`,
    );
    flags = [kind === 'label' ? 'charset-label-mismatch' : kind === 'control' ? 'control-bytes-replaced' : 'invalid-bytes-replaced'];
  }

  // A big message gives other connections a turn between its big steps (issue 11: no stall over 50 ms).
  await yieldIfBig(frame.length);
  let msg: Hl7Message;
  try {
    // A big message is parsed in time slices (issue 11).
    msg = await parseHl7Yielding(text);
  } catch (e) {
    const err = toHisbridgeError(e);
    log.warn({ listener: source, code: err.code, reason: err.message }, 'rejected unparsable message');
    return { ok: false, outcome: readRefusal(err, { header: readAckHeader(text), charset }) };
  }
  // Hashing a multi-MB message takes ~15 ms: in slices, not in the same turn as the parse.
  await yieldIfBig(frame.length);
  const digest = await contentDigestYielding(text);
  return {
    ok: true,
    format: 'hl7',
    app: msg.sendingApp,
    facility: msg.sendingFacility,
    id: msg.controlId,
    type: msg.type,
    digest,
    charset,
    input: { messageId: `${source}:${msg.controlId}`, controlId: msg.controlId, type: msg.type, source, hl7: msg, vars: {} },
    patientId: patientIdOf(msg),
    enhanced: ackMode(msg).enhanced,
    header: msg,
    ...(flags ? { flags } : {}),
  };
}
