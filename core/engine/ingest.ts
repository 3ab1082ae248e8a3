/**
 * One received HL7 message, from bytes to ACK bytes:
 * decode (MSH-18 or listener default) → parse → duplicate check → match
 * routes → run local steps / on-complete steps → commit message + deliveries
 * → ACK in the sender's charset. Never throws: every failure becomes an
 * AE/AR (or CE/CR) with an ERR segment naming the reason.
 *
 * ACK codes (docs/routes.md): CE/CR only when the message was not committed
 * (refused, store failure, no route with noRoute AR). A committed message
 * whose on-complete processing failed gets AE in original mode (the sender
 * resends and it is processed again) or CA with an ERR in enhanced mode (a
 * resend gets the same answer; the failed step waits in the dead letter).
 */
import { randomUUID } from 'node:crypto';
import { ackMode, buildAck, decodeHl7Yielding, encodeText, parseHl7Yielding, readAckHeader, type Hl7Message, type InvalidBytes } from '../hl7/index.js';
import { hbError, HisbridgeError, isHisbridgeError, toHisbridgeError } from '../errors.js';
import { maskId } from '../mask.js';
import { yieldIfBig } from '../cooperative.js';
import { runSegment } from '../routes/run.js';
import type { RouteTable } from '../routes/matcher.js';
import type { CompiledRoute } from '../routes/types.js';
import type { Logger, ReplyContribution, StepInput } from '../sdk.js';
import { contentDigestYielding, idempotencyKeyOf, messageKey } from '../store/identity.js';
import type { AckReply, NewDeliveryWithOutcome } from '../store/types.js';
import type { Store } from '../store/sqlite.js';

export type AckCode = 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR';

export interface RouteOutcome {
  route: string;
  /** queued: deliveries stored; ok/failed/filtered/skipped: final. */
  outcome: 'queued' | 'ok' | 'failed' | 'filtered' | 'skipped';
  detail?: string;
  deliveries?: number;
  errorCode?: string;
}

export interface IngestResult {
  ack: Buffer;
  ackText: string;
  code: AckCode;
  controlId?: string;
  type?: string;
  messageId?: number;
  duplicate?: boolean;
  /** Stored as a new message although its sender and MSH-10 were accepted before with other content. */
  controlIdReused?: boolean;
  routes: RouteOutcome[];
  /** Catalogue code when the message was refused before it could be parsed (decode, charset, invalid bytes, parse). */
  errorCode?: string;
}

export interface IngestDeps {
  routes(): RouteTable;
  store: Store;
  log: Logger;
  idempotencyWindowMs: number;
  /** Called after a commit that created pending deliveries. */
  onQueued(): void;
  /** True when new work must be refused (overload: reject, or shutting down). */
  refuse(): HisbridgeError | undefined;
  signal: AbortSignal;
}

export interface Listener {
  name: string;
  charset: string;
  noRoute: 'AA' | 'AR';
  /** Bytes invalid in the message's charset: refuse with AE (default) or keep them as U+FFFD and mark the message. */
  invalidBytes?: 'reject' | 'replace';
  /** Several messages in one block (see block.ts): each processed on its own (default), or all refused with AR. */
  multiMessageBlocks?: 'split' | 'reject';
}

function ackId(): string {
  return randomUUID().replace(/-/g, '').slice(0, 20);
}

/** Maps our error codes to HL7 table 0357 codes for ERR-3. */
function hl7ErrorCode(e: HisbridgeError): string {
  switch (e.code) {
    case 'HL7_E_NO_MSH':
      return '100';
    case 'HL7_E_MISSING_FIELD':
      return '101';
    case 'HL7_E_PARSE':
    case 'HL7_E_CHARSET':
    case 'HL7_E_INVALID_BYTES':
      return '102';
    case 'ENGINE_E_NO_ROUTE':
      return '200';
    default:
      return '207';
  }
}

function patientIdOf(msg: Hl7Message): string {
  return msg.get('PID-3[5=PI].1') || msg.get('PID-3.1');
}

export async function ingest(frame: Buffer, listener: Listener, deps: IngestDeps): Promise<IngestResult> {
  const log = deps.log;
  let charset = 'utf-8';
  let text: string;
  let invalid: InvalidBytes | undefined;
  try {
    // A big frame is decoded in slices, with turns of the event loop between them (issue 11).
    ({ text, charset, invalid } = await decodeHl7Yielding(frame, listener.charset));
  } catch (e) {
    const err = toHisbridgeError(e);
    log.warn({ listener: listener.name, code: err.code }, 'cannot decode message');
    const fallback = new TextDecoder('latin1').decode(frame);
    return reject(fallback, 'latin1', err, 'AE');
  }
  if (invalid) {
    // Never the bytes or the text around them: only where they are.
    const err = new HisbridgeError('HL7_E_INVALID_BYTES', { charset: charsetLabel(charset), location: invalid.location });
    if ((listener.invalidBytes ?? 'reject') === 'reject') {
      log.warn({ listener: listener.name, code: err.code, location: invalid.location, offset: invalid.offset }, 'rejected message with invalid bytes');
      return reject(text, charset, err, 'AE');
    }
    log.warn({ listener: listener.name, code: err.code, location: invalid.location, offset: invalid.offset }, 'invalid bytes replaced by U+FFFD (invalidBytes: replace)');
  }

  // A big message gives other connections a turn between its big steps (issue 11: no stall over 50 ms).
  await yieldIfBig(frame.length);
  let msg: Hl7Message;
  try {
    // A big message is parsed in time slices (issue 11).
    msg = await parseHl7Yielding(text);
  } catch (e) {
    const err = toHisbridgeError(e);
    log.warn({ listener: listener.name, code: err.code, reason: err.message }, 'rejected unparsable message');
    return reject(text, charset, err, 'AE');
  }

  const mode = ackMode(msg);
  const code = (c: 'A' | 'E' | 'R'): AckCode => (mode.enhanced ? `C${c}` : `A${c}`) as AckCode;
  const base = { controlId: msg.controlId, type: msg.type };
  const finish = (c: AckCode, routes: RouteOutcome[], extra: { text?: string; error?: HisbridgeError; errSegment?: AckReply['error']; replies?: ReplyContribution[]; messageId?: number; duplicate?: boolean; reused?: boolean } = {}): IngestResult => {
    const segments = (extra.replies ?? []).flatMap((r) => r.segments ?? []);
    const replyText = extra.text ?? (extra.replies ?? []).map((r) => r.text).find((t) => t !== undefined);
    const errSegment = extra.error ? { hl7Code: hl7ErrorCode(extra.error), text: extra.error.message } : extra.errSegment;
    const ackText = buildAck(msg, {
      code: c,
      controlId: ackId(),
      ...(replyText !== undefined ? { text: replyText } : errSegment ? { text: errSegment.text } : {}),
      ...(errSegment ? { error: { ...errSegment, severity: 'E' as const } } : {}),
      ...(segments.length ? { segments } : {}),
    });
    return {
      ack: encodeText(ackText, charset), ackText, code: c, ...base, routes,
      ...(extra.messageId !== undefined ? { messageId: extra.messageId } : {}), ...(extra.duplicate ? { duplicate: true } : {}), ...(extra.reused ? { controlIdReused: true } : {}),
    };
  };

  const refusal = deps.refuse();
  if (refusal) {
    log.warn({ listener: listener.name, msgId: msg.controlId, code: refusal.code }, 'message refused');
    return finish(code('E'), [], { error: refusal });
  }

  // Content-aware duplicates and instance-independent idempotency keys (core/store/identity.ts, docs/delivery.md).
  // Hashing a multi-MB message takes ~15 ms: in slices, not in the same turn as the parse.
  await yieldIfBig(frame.length);
  const digest = await contentDigestYielding(text);
  const msgKey = messageKey(msg.sendingApp, msg.sendingFacility, msg.controlId, digest);
  const keyOf = (route: string, step: number) => idempotencyKeyOf(msgKey, route, step);

  try {
    const dup = deps.store.findDuplicate(msg.sendingApp, msg.sendingFacility, msg.controlId, deps.idempotencyWindowMs, digest);
    if (dup) {
      log.info({ listener: listener.name, msgId: msg.controlId, messageId: dup.messageId }, 'duplicate control id: re-acknowledged, not dispatched again');
      return finish(dup.ackCode as AckCode, [], { messageId: dup.messageId, duplicate: true, ...duplicateReply(dup.ackReply) });
    }
  } catch (e) {
    const err = toHisbridgeError(e);
    log.error({ listener: listener.name, msgId: msg.controlId, code: err.code }, 'duplicate check failed');
    return finish(code('E'), [], { error: err });
  }

  await yieldIfBig(frame.length);
  const provisionalId = `${listener.name}:${msg.controlId}`;
  const input = (): StepInput => ({ messageId: provisionalId, controlId: msg.controlId, type: msg.type, source: listener.name, hl7: msg, vars: {} });
  const matched = deps.routes().match(
    { source: listener.name, type: msg.type, sendingApp: msg.sendingApp, sendingFacility: msg.sendingFacility },
    input(),
  );

  const outcomes: RouteOutcome[] = [];
  const deliveries: NewDeliveryWithOutcome[] = [];
  const replies: ReplyContribution[] = [];
  let failure: HisbridgeError | undefined;

  for (const route of matched) {
    try {
      const r = route.ack === 'on-complete'
        ? await runInline(route, input(), deps, deliveries, replies, keyOf)
        : await prepareDeliveries(route, input(), deps, deliveries, keyOf);
      outcomes.push(r);
    } catch (e) {
      const err = toHisbridgeError(e);
      failure ??= err;
      outcomes.push({ route: route.name, outcome: 'failed', detail: err.message, errorCode: err.code });
      log.warn({ route: route.name, msgId: msg.controlId, code: err.code, retryable: err.retryable }, 'route failed before acknowledgement');
    }
  }

  let ackCode: AckCode = code('A');
  let noRouteError: HisbridgeError | undefined;
  if (matched.length === 0) {
    if (listener.noRoute === 'AR') {
      ackCode = code('R');
      noRouteError = new HisbridgeError('ENGINE_E_NO_ROUTE', { type: msg.type, sender: msg.sendingApp || '(empty MSH-3)' });
    }
  } else if (failure) {
    // The message is committed below all the same, with the failed step dead-lettered: CE would say "not committed".
    // Original mode: AE, only the record is kept and the sender's resend does the work again.
    // Enhanced mode: CA with an ERR: the sender will not resend, so the other routes' deliveries are committed too.
    ackCode = mode.enhanced ? 'CA' : 'AE';
  }
  const commitsWork = !failure || ackCode === 'CA';
  const failureErr = failure ? { hl7Code: hl7ErrorCode(failure), text: failure.message } : undefined;

  await yieldIfBig(frame.length);
  let messageId: number;
  let reusedOf: number | undefined;
  try {
    const accepted = await deps.store.accept(
      {
        source: listener.name,
        raw: frame,
        charset,
        sendingApp: msg.sendingApp,
        sendingFacility: msg.sendingFacility,
        type: msg.type,
        controlId: msg.controlId,
        patientId: patientIdOf(msg),
        receivedAt: Date.now(),
        ackCode,
        contentHash: digest,
        messageKey: msgKey,
        // A CA with an ERR is repeated to a resend with its ERR; an AE is not repeated (the resend is processed again).
        ...(failureErr ? (ackCode === 'CA' ? { ackReply: { text: failureErr.text, error: failureErr } } : {}) : { ackReply: replyOf(replies) }),
        ...(invalid ? { flags: ['invalid-bytes-replaced'] } : {}),
      },
      commitsWork ? deliveries : deliveries.filter((d) => d.final),
    );
    messageId = accepted.messageId;
    reusedOf = accepted.controlIdReusedOf;
    if (accepted.duplicate) {
      // A copy of the same (MSH-3, MSH-4, MSH-10) was committed first in the same batch: answer as that one was answered.
      log.info({ listener: listener.name, msgId: msg.controlId, messageId }, 'duplicate control id: re-acknowledged, not dispatched again');
      return finish(accepted.ackCode as AckCode, [], { messageId, duplicate: true, ...duplicateReply(accepted.ackReply) });
    }
  } catch (e) {
    const err = toHisbridgeError(e);
    log.error({ listener: listener.name, msgId: msg.controlId, code: err.code }, 'store commit failed: message not accepted');
    return finish(code('E'), outcomes, { error: err });
  }
  if (commitsWork && deliveries.some((d) => !d.final)) deps.onQueued();
  const reused = reusedOf !== undefined;
  if (reused) {
    const w = hbError('ENGINE_W_CONTROL_ID_REUSED');
    log.warn({ listener: listener.name, code: w.code, msgId: msg.controlId, messageId, earlierMessageId: reusedOf }, w.message);
  }

  log.info(
    { listener: listener.name, msgId: msg.controlId, type: msg.type, messageId, ack: ackCode, routes: outcomes.map((o) => `${o.route}:${o.outcome}`) },
    matched.length ? 'message accepted' : 'message accepted: no route',
  );
  const err = failure ?? noRouteError;
  return finish(ackCode, outcomes, { replies, messageId, ...(err ? { error: err } : {}), ...(reused ? { reused: true } : {}) });

  function reject(t: string, cs: string, e: HisbridgeError, c: 'AE' | 'AR'): IngestResult {
    const header = readAckHeader(t);
    const ackText = buildAck(header ?? { fieldSep: '|', encodingChars: '^~\\&' }, {
      code: c,
      controlId: ackId(),
      text: e.message,
      error: { hl7Code: hl7ErrorCode(e), text: e.message, severity: 'E' },
    });
    let ack: Buffer;
    try {
      ack = encodeText(ackText, cs);
    } catch {
      ack = Buffer.from(ackText, 'utf8');
    }
    return { ack, ackText, code: c, routes: [], errorCode: e.code, ...(header?.controlId ? { controlId: header.controlId } : {}) };
  }
}

/** The charset as people call it in a reject reason. */
function charsetLabel(cs: string): string {
  return cs === 'utf-8' || cs === 'ascii' ? 'UTF-8' : cs === 'gb18030' ? 'GB18030/GBK' : cs;
}

/** What the ACK carries beyond its code, kept with the message for duplicates. */
function replyOf(replies: ReplyContribution[]): AckReply {
  const segments = replies.flatMap((r) => r.segments ?? []);
  const text = replies.map((r) => r.text).find((t) => t !== undefined);
  return { ...(segments.length ? { segments } : {}), ...(text !== undefined ? { text } : {}) };
}

/** A duplicate gets the original ACK's segments and text again (a HIS resends when it lost the ACK). */
function duplicateReply(reply: AckReply | undefined): { replies: ReplyContribution[]; text: string; errSegment?: AckReply['error'] } {
  return {
    replies: reply?.segments ? [{ segments: reply.segments }] : [],
    text: reply?.text ?? 'duplicate: already accepted',
    ...(reply?.error ? { errSegment: reply.error } : {}),
  };
}

type KeyOf = (route: string, step: number) => string;

/** On-receive: runs the plan's inline steps now and queues one delivery per outbound step with the variables they set. */
async function prepareDeliveries(route: CompiledRoute, input: StepInput, deps: IngestDeps, out: NewDeliveryWithOutcome[], keyOf: KeyOf): Promise<RouteOutcome> {
  const plan = route.plan;
  const seg = await runSegment(route, input, plan.inline, {
    log: deps.log,
    signal: deps.signal,
    attempt: 1,
    idempotencyKey: (s) => keyOf(route.name, s.index),
  });
  if (seg.failed) throw seg.failed.error;
  if (seg.stopped) return { route: route.name, outcome: seg.stopped.detail === 'filtered' ? 'filtered' : 'skipped', detail: seg.stopped.detail };
  if (plan.deliveries.length === 0) return { route: route.name, outcome: 'ok' };
  const key = route.orderingKey ? route.orderingKey.render(input) : undefined;
  for (const { step } of plan.deliveries) {
    out.push({
      route: route.name,
      step: step.index,
      plugin: step.plugin,
      ...(key ? { orderingKey: `${route.name}:${key}` } : {}),
      retry: route.retry,
      vars: { ...input.vars },
      ...(step.as ? { as: step.as } : {}),
    });
  }
  return { route: route.name, outcome: 'queued', deliveries: plan.deliveries.length };
}

/**
 * On-complete: runs every step now. The outbound steps that ran are recorded as
 * done for the message browser; the step that failed, if a plugin step, is
 * recorded as dead (it can be replayed from the dead letters) and its error is
 * thrown for the ACK.
 */
async function runInline(route: CompiledRoute, input: StepInput, deps: IngestDeps, out: NewDeliveryWithOutcome[], replies: ReplyContribution[], keyOf: KeyOf): Promise<RouteOutcome> {
  const plan = route.plan;
  const seg = await runSegment(route, input, plan.inline, {
    log: deps.log,
    signal: deps.signal,
    attempt: 1,
    idempotencyKey: (s) => keyOf(route.name, s.index),
  });
  for (const s of plan.recorded) {
    const r = seg.byStep[s.index];
    if (!r) continue;
    out.push({ route: route.name, step: s.index, plugin: s.plugin, retry: route.retry, vars: {}, final: { state: 'done', ...(r.detail ? { reason: r.detail } : {}) } });
  }
  if (seg.failed) {
    const { step, error } = seg.failed;
    const err = toHisbridgeError(error);
    // The sender gets AE (or CA with an ERR) and the failed step waits in the dead letters.
    if (step.kind === 'plugin') {
      out.push({ route: route.name, step: step.index, plugin: step.plugin, retry: route.retry, vars: {}, final: { state: 'dead', errorCode: err.code, reason: err.message } });
    }
    deps.log.warn({ route: route.name, msgId: input.controlId, code: err.code, pid: maskId(input.hl7 ? patientIdOf(input.hl7) : '') }, 'on-complete route failed');
    throw isHisbridgeError(error) ? error : err;
  }
  replies.push(...seg.replies);
  if (seg.stopped) return { route: route.name, outcome: seg.stopped.detail === 'filtered' ? 'filtered' : 'skipped', detail: seg.stopped.detail };
  const last = seg.outcomes[seg.outcomes.length - 1];
  return { route: route.name, outcome: last?.outcome === 'skipped' ? 'skipped' : 'ok', ...(last?.detail ? { detail: last.detail } : {}) };
}
