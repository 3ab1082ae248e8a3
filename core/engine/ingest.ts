/**
 * The ingress port (issue 13): one message in, a structured IngestOutcome
 * out. A format-specific READ stage (core/engine/read.ts: HL7, read-json.ts:
 * JSON events) is followed by the common stage: gate (back-pressure,
 * shutdown) → duplicate check → match routes → run local / on-complete steps
 * → commit message + deliveries. Never throws and builds no ACK: the sources
 * that speak HL7 render one from the outcome (core/engine/ack.ts).
 *
 * Outcome status (core/sdk.ts IngestOutcome):
 * - accepted: committed with AA/CA (CA with an ERR in enhanced mode after an
 *   on-complete failure: the message and the other routes' work are kept);
 * - duplicate: same sender, id and content accepted before: answered as then;
 * - rejected: unreadable (decode, invalid bytes, parse), no route under
 *   `noRoute: AR`, a non-retryable on-complete failure in original mode (AE);
 * - failed: refused for a passing reason (back-pressure under `overload:
 *   reject`, shutting down), the store write failed, or a retryable
 *   on-complete failure in original mode (AE: the sender resends).
 * CE/CR only when the message was not committed (docs/routes.md).
 */
import { REWRITTEN_HL7_VAR, rewrittenText } from '../routes/rewrite.js';
import { hbError, HisbridgeError, isHisbridgeError, toHisbridgeError } from '../errors.js';
import { maskId } from '../mask.js';
import { yieldIfBig } from '../cooperative.js';
import { runSegment } from '../routes/run.js';
import type { RouteTable } from '../routes/matcher.js';
import type { CompiledRoute } from '../routes/types.js';
import type { InboundMessage, IngestOutcome, IngestReply, Logger, ReplyContribution, RouteOutcome, StepInput } from '../sdk.js';
import { idempotencyKeyOf, messageKey } from '../store/identity.js';
import type { AckReply, NewDeliveryWithOutcome } from '../store/types.js';
import type { Store } from '../store/sqlite.js';
import type { Hl7Message } from '../hl7/index.js';
import { errorReply, hl7ErrorCode, renderAck, renderAckText, withAckContext } from './ack.js';
import { patientIdOf, readHl7, type ReadOk, type ReadResult } from './read.js';
import { readJson } from './read-json.js';

export type AckCode = IngestReply['code'];
export type { RouteOutcome };

export interface IngestDeps {
  routes(): RouteTable;
  store: Store;
  log: Logger;
  idempotencyWindowMs: number;
  /** Why new work must be refused now (overload: reject past the mark, shutting down); undefined when it is taken. */
  gate(): HisbridgeError | undefined;
  signal: AbortSignal;
  /**
   * Called after a commit that queued deliveries, with the parsed message when
   * no step changed it (it still reads as the stored bytes): the engine hands
   * it to the deliveries' parsed-message cache, so a big message is not
   * decoded and parsed again for its first delivery (issue 11).
   */
  committed?(messageId: number, rawBytes: number, msg: Hl7Message, deliveries: number): void;
}

/** What the port did: the outcome for the source, and whether the commit queued deliveries (the engine kicks the workers). */
export interface PortResult {
  outcome: IngestOutcome;
  /** The commit stored pending deliveries. */
  queued: boolean;
}

/**
 * The older shape of one message's result, kept for `engine.ingest` (route
 * tests, replay, tests): the outcome with its ACK rendered.
 */
export interface IngestResult {
  outcome: IngestOutcome;
  ack: Buffer;
  ackText: string;
  code: AckCode;
  controlId?: string;
  type?: string;
  messageId?: number;
  duplicate?: boolean;
  controlIdReused?: boolean;
  routes: RouteOutcome[];
  /** Catalogue code when the message was refused before it could be parsed (decode, charset, invalid bytes, parse). */
  errorCode?: string;
}

/** The older result shape from an outcome (renders its ACK). */
export function legacyResult(o: IngestOutcome): IngestResult {
  return {
    outcome: o,
    ack: renderAck(o),
    ackText: renderAckText(o),
    code: o.reply.code,
    routes: o.routes,
    ...(o.controlId !== undefined ? { controlId: o.controlId } : {}),
    ...(o.type !== undefined ? { type: o.type } : {}),
    ...(o.messageId !== undefined ? { messageId: o.messageId } : {}),
    ...(o.status === 'duplicate' ? { duplicate: true } : {}),
    ...(o.controlIdReused ? { controlIdReused: true } : {}),
    // As before: set when the message was refused before it could be parsed.
    ...(o.type === undefined && (o.status === 'rejected' || o.status === 'failed') ? { errorCode: o.code } : {}),
  };
}

/** The options of an HL7 listener that the port and the block splitter read (the legacy `engine.ingest` shape). */
export interface Listener {
  name: string;
  charset: string;
  noRoute: 'AA' | 'AR';
  /** Bytes invalid in the message's charset: refuse with AE (default) or keep them as U+FFFD and mark the message. */
  invalidBytes?: 'reject' | 'replace';
  /** Several messages in one block (see block.ts): each processed on its own (default), or all refused with AR. */
  multiMessageBlocks?: 'split' | 'reject';
}

/** The READ stage for the message's format. */
export function readMessage(inbound: InboundMessage, log: Logger): Promise<ReadResult> {
  return inbound.format === 'json' ? readJson(inbound) : readHl7(inbound, log);
}

/** One message through the port. Never throws. */
export async function ingest(inbound: InboundMessage, deps: IngestDeps): Promise<PortResult> {
  let read: ReadResult;
  try {
    read = await readMessage(inbound, deps.log);
  } catch (e) {
    // A reader must not throw; if one does, the message is refused for a passing reason rather than lost.
    const err = toHisbridgeError(e);
    deps.log.error({ listener: inbound.source, code: err.code }, 'message reader failed');
    return { outcome: withAckContext({ status: 'failed', code: err.code, reason: err.message, routes: [], reply: errorReply('AE', err) }, { charset: 'utf-8' }), queued: false };
  }
  if (!read.ok) return { outcome: read.outcome, queued: false };
  return common(inbound, read, deps);
}

/** The common stage: gate, duplicates, match, run, commit. */
async function common(inbound: InboundMessage, m: ReadOk, deps: IngestDeps): Promise<PortResult> {
  const log = deps.log;
  const source = inbound.source;
  const size = inbound.bytes.length;
  const code = (c: 'A' | 'E' | 'R'): AckCode => (m.enhanced ? `C${c}` : `A${c}`) as AckCode;
  const ackCtx = { ...(m.header ? { header: m.header } : {}), charset: m.charset };
  const base = { controlId: m.id, type: m.type };
  const done = (o: Omit<IngestOutcome, 'controlId' | 'type'>, queued = false): PortResult => ({ outcome: withAckContext({ ...o, ...base }, ackCtx), queued });
  const refused = (status: 'failed' | 'rejected', err: HisbridgeError, routes: RouteOutcome[] = []): PortResult =>
    done({ status, code: err.code, reason: err.message, routes, reply: errorReply(code('E'), err) });
  const duplicate = (messageId: number, ackCode: string, reply: AckReply | undefined): PortResult =>
    done({ status: 'duplicate', code: 'DUPLICATE', reason: '', routes: [], messageId, reply: duplicateReply(ackCode as AckCode, reply) });

  const refusal = deps.gate();
  if (refusal) {
    log.warn({ listener: source, msgId: m.id, code: refusal.code }, 'message refused');
    return refused('failed', refusal);
  }

  // Content-aware duplicates and instance-independent idempotency keys (core/store/identity.ts, docs/delivery.md).
  const msgKey = messageKey(m.app, m.facility, m.id, m.digest);
  const keyOf = (route: string, step: number) => idempotencyKeyOf(msgKey, route, step);
  await yieldIfBig(size);
  const input = (): StepInput => ({ ...m.input, vars: {} });
  const matched = deps.routes().match({ source, type: m.type, sendingApp: m.app, sendingFacility: m.facility }, input());

  // A duplicate is caught by the store at commit (a UNIQUE index, no query). It is looked for beforehand only when
  // a matched route would act before the commit: an on-complete route, or a local plugin step before the first
  // outbound one that has effects (a log line written again for a resent message is none: PluginDefinition.effectFree).
  const actsBeforeCommit = matched.some((r) => r.ack === 'on-complete' || r.steps.some((s) => s.kind === 'plugin' && !s.outbound && !s.def.effectFree));
  try {
    const dup = actsBeforeCommit ? deps.store.findDuplicate(m.app, m.facility, m.id, deps.idempotencyWindowMs, m.digest) : undefined;
    if (dup) {
      log.info({ listener: source, msgId: m.id, messageId: dup.messageId }, 'duplicate control id: re-acknowledged, not dispatched again');
      return duplicate(dup.messageId, dup.ackCode, dup.ackReply);
    }
  } catch (e) {
    const err = toHisbridgeError(e);
    log.error({ listener: source, msgId: m.id, code: err.code }, 'duplicate check failed');
    return refused('failed', err);
  }

  const outcomes: RouteOutcome[] = [];
  const deliveries: NewDeliveryWithOutcome[] = [];
  const replies: ReplyContribution[] = [];
  const failures: HisbridgeError[] = [];

  // A plugin step that can never handle this message (PluginInstance.admit) refuses it whole with AR: nothing runs or is queued.
  let admitError: HisbridgeError | undefined;
  if (matched.length) {
    const probe = input();
    for (const route of matched) {
      for (const s of route.steps) {
        if (s.kind !== 'plugin' || !s.instance.admit) continue;
        try {
          s.instance.admit(probe);
        } catch (e) {
          admitError = toHisbridgeError(e);
          outcomes.push({ route: route.name, outcome: 'failed', detail: admitError.message, errorCode: admitError.code });
          log.warn({ route: route.name, msgId: m.id, code: admitError.code }, 'message refused by a route step');
          break;
        }
      }
      if (admitError) break;
    }
  }

  for (const route of admitError ? [] : matched) {
    try {
      const r = route.ack === 'on-complete'
        ? await runInline(route, input(), deps, deliveries, replies, keyOf)
        : await prepareDeliveries(route, input(), deps, deliveries, keyOf);
      outcomes.push(r);
    } catch (e) {
      const err = toHisbridgeError(e);
      failures.push(err);
      outcomes.push({ route: route.name, outcome: 'failed', detail: err.message, errorCode: err.code });
      log.warn({ route: route.name, msgId: m.id, code: err.code, retryable: err.retryable }, 'route failed before acknowledgement');
    }
  }
  const failure = failures[0];

  let ackCode: AckCode = code('A');
  let noRouteError: HisbridgeError | undefined;
  if (matched.length === 0) {
    if ((inbound.noRoute ?? 'AA') === 'AR') {
      ackCode = code('R');
      noRouteError = new HisbridgeError('ENGINE_E_NO_ROUTE', { type: m.type, sender: m.app || '(empty MSH-3)' });
    }
  } else if (admitError) {
    ackCode = code('R');
  } else if (failure) {
    // The message is committed below all the same, with the failed step dead-lettered: CE would say "not committed".
    // Original mode: AE, only the record is kept and the sender's resend does the work again.
    // Enhanced mode: CA with an ERR: the sender will not resend, so the other routes' deliveries are committed too.
    ackCode = m.enhanced ? 'CA' : 'AE';
  }
  const commitsWork = !failure || ackCode === 'CA';
  // Only a message that will be accepted once committed lets the source hand over the next one of its key early.
  const pipeline = inbound.pipeline && !noRouteError && !admitError && commitsWork ? inbound.pipeline : undefined;
  const failureErr = failure ? { hl7Code: hl7ErrorCode(failure.code), text: failure.message } : undefined;

  await yieldIfBig(size);
  let messageId: number;
  let reusedOf: number | undefined;
  try {
    const accepted = await deps.store.accept(
      messageRecord(inbound, m, {
        ackCode,
        messageKey: msgKey,
        // A CA with an ERR is repeated to a resend with its ERR; an AE is not repeated (the resend is processed again).
        ackReply: admitError
          ? { text: admitError.message, error: { hl7Code: hl7ErrorCode(admitError.code), text: admitError.message } }
          : failureErr ? (ackCode === 'CA' ? { text: failureErr.text, error: failureErr } : undefined) : replyOf(replies),
      }),
      commitsWork ? deliveries : deliveries.filter((d) => d.final),
      pipeline,
    );
    messageId = accepted.messageId;
    reusedOf = accepted.controlIdReusedOf;
    if (accepted.duplicate) {
      // A copy of the same (MSH-3, MSH-4, MSH-10) was committed first in the same batch: answer as that one was answered.
      log.info({ listener: source, msgId: m.id, messageId }, 'duplicate control id: re-acknowledged, not dispatched again');
      return duplicate(messageId, accepted.ackCode, accepted.ackReply);
    }
  } catch (e) {
    const err = toHisbridgeError(e);
    log.error({ listener: source, msgId: m.id, code: err.code }, 'store commit failed: message not accepted');
    return refused('failed', err, outcomes);
  }
  const queued = commitsWork && deliveries.some((d) => !d.final);
  if (queued && deps.committed && m.input.hl7 && m.input.hl7.revision === 0) deps.committed(messageId, size, m.input.hl7, deliveries.filter((d) => !d.final).length);
  const reused = reusedOf !== undefined;
  if (reused) {
    const w = hbError('ENGINE_W_CONTROL_ID_REUSED');
    log.warn({ listener: source, code: w.code, msgId: m.id, messageId, earlierMessageId: reusedOf }, w.message);
  }

  log.info(
    { listener: source, msgId: m.id, type: m.type, messageId, ack: ackCode, routes: outcomes.map((o) => `${o.route}:${o.outcome}`) },
    matched.length ? 'message accepted' : 'message accepted: no route',
  );

  const err = failure ?? admitError ?? noRouteError;
  const segments = replies.flatMap((r) => r.segments ?? []);
  const replyText = replies.map((r) => r.text).find((t) => t !== undefined);
  const reply: IngestReply = {
    code: ackCode,
    ...(replyText !== undefined ? { text: replyText } : err ? { text: err.message } : {}),
    ...(err ? { error: { hl7Code: hl7ErrorCode(err.code), text: err.message } } : {}),
    ...(segments.length ? { segments } : {}),
  };
  let status: IngestOutcome['status'] = 'accepted';
  let decisive = err;
  if (noRouteError || admitError) status = 'rejected';
  else if (failure && ackCode !== 'CA') {
    // Original mode: the sender is told AE. Worth offering again only when a failure was for a passing reason.
    const retryable = failures.find((f) => f.retryable);
    status = retryable ? 'failed' : 'rejected';
    decisive = retryable ?? failure;
  }
  return done({
    status,
    code: decisive ? decisive.code : 'OK',
    reason: decisive ? (outcomes.find((o) => o.errorCode === decisive!.code)?.detail ?? decisive.message) : '',
    routes: outcomes,
    reply,
    messageId,
    ...(reused ? { controlIdReused: true } : {}),
  }, queued);
}

/** The stored message record: the one place it is built (a `format` column joins here). */
function messageRecord(inbound: InboundMessage, m: ReadOk, ack: { ackCode: AckCode; messageKey: string; ackReply: AckReply | undefined }) {
  return {
    source: inbound.source,
    raw: inbound.bytes,
    charset: m.charset,
    sendingApp: m.app,
    sendingFacility: m.facility,
    type: m.type,
    controlId: m.id,
    patientId: m.patientId,
    receivedAt: Date.now(),
    ackCode: ack.ackCode,
    contentHash: m.digest,
    messageKey: ack.messageKey,
    ...(ack.ackReply ? { ackReply: ack.ackReply } : {}),
    ...(m.flags ? { flags: m.flags } : {}),
    format: m.format,
    ...(inbound.checkpoint !== undefined ? { checkpoint: { source: inbound.source, value: inbound.checkpoint } } : {}),
    // The parsed message, for deliveries started at accept, while no step changed it.
    ...(m.input.hl7 && m.input.hl7.changes === 0 ? { prepared: m.input.hl7 } : {}),
  };
}

/** What the ACK carries beyond its code, kept with the message for duplicates. */
function replyOf(replies: ReplyContribution[]): AckReply {
  const segments = replies.flatMap((r) => r.segments ?? []);
  const text = replies.map((r) => r.text).find((t) => t !== undefined);
  return { ...(segments.length ? { segments } : {}), ...(text !== undefined ? { text } : {}) };
}

/** A duplicate gets the original ACK's code, segments and text again (a HIS resends when it lost the ACK). */
function duplicateReply(code: AckCode, reply: AckReply | undefined): IngestReply {
  return {
    code,
    text: reply?.text ?? 'duplicate: already accepted',
    ...(reply?.error ? { error: { hl7Code: reply.error.hl7Code, text: reply.error.text } } : {}),
    ...(reply?.segments?.length ? { segments: reply.segments } : {}),
  };
}

type KeyOf = (route: string, step: number) => string;

/** Runs the plan's inline steps on the first attempt, with each step's instance-independent idempotency key. */
function runInlineSteps(route: CompiledRoute, input: StepInput, deps: IngestDeps, keyOf: KeyOf) {
  return runSegment(route, input, route.plan.inline, {
    log: deps.log,
    signal: deps.signal,
    attempt: 1,
    idempotencyKey: (s) => keyOf(route.name, s.index),
  });
}

/** On-receive: runs the plan's inline steps now and queues one delivery per outbound step with the variables they set. */
async function prepareDeliveries(route: CompiledRoute, input: StepInput, deps: IngestDeps, out: NewDeliveryWithOutcome[], keyOf: KeyOf): Promise<RouteOutcome> {
  const plan = route.plan;
  const seg = await runInlineSteps(route, input, deps, keyOf);
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

/** Of an on-complete route's variables, only the message an hl7 step rewrote (shown by the console, used by a replay). */
function rewrittenVars(vars: Record<string, unknown>): Record<string, unknown> {
  const text = rewrittenText(vars);
  return text === undefined ? {} : { [REWRITTEN_HL7_VAR]: text };
}

/**
 * On-complete: runs every step now. The outbound steps that ran are recorded as
 * done for the message browser; the step that failed, if a plugin step, is
 * recorded as dead (it can be replayed from the dead letters) and its error is
 * thrown for the ACK.
 */
async function runInline(route: CompiledRoute, input: StepInput, deps: IngestDeps, out: NewDeliveryWithOutcome[], replies: ReplyContribution[], keyOf: KeyOf): Promise<RouteOutcome> {
  const plan = route.plan;
  const seg = await runInlineSteps(route, input, deps, keyOf);
  for (const s of plan.recorded) {
    const r = seg.byStep[s.index];
    if (!r) continue;
    out.push({ route: route.name, step: s.index, plugin: s.plugin, retry: route.retry, vars: rewrittenVars(input.vars), final: { state: 'done', ...(r.detail ? { reason: r.detail } : {}) } });
  }
  if (seg.failed) {
    const { step, error } = seg.failed;
    const err = toHisbridgeError(error);
    // The sender gets AE (or CA with an ERR) and the failed step waits in the dead letters.
    if (step.kind === 'plugin') {
      out.push({ route: route.name, step: step.index, plugin: step.plugin, retry: route.retry, vars: rewrittenVars(input.vars), final: { state: 'dead', errorCode: err.code, reason: err.message } });
    }
    deps.log.warn({ route: route.name, msgId: input.controlId, code: err.code, pid: maskId(input.hl7 ? patientIdOf(input.hl7) : '') }, 'on-complete route failed');
    throw isHisbridgeError(error) ? error : err;
  }
  replies.push(...seg.replies);
  if (seg.stopped) return { route: route.name, outcome: seg.stopped.detail === 'filtered' ? 'filtered' : 'skipped', detail: seg.stopped.detail };
  const last = seg.outcomes[seg.outcomes.length - 1];
  return { route: route.name, outcome: last?.outcome === 'skipped' ? 'skipped' : 'ok', ...(last?.detail ? { detail: last.detail } : {}) };
}
