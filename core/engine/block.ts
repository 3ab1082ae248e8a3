/**
 * One received block (an MLLP frame, an HTTP body, a file) to its outcomes
 * and replies, above the single-message port (ingest.ts stays one message).
 * This is `SourceContext.submitBlock`:
 *
 * - split on bytes (core/hl7/batch.ts) into messages and batches;
 * - several messages: each is submitted on its own, in order, and answered
 *   with its own ACK, in order; with `multiMessageBlocks: reject` every one
 *   of them gets AR (status rejected) and none is routed;
 * - a batch (FHS/BHS ... BTS/FTS): each enclosed message is submitted on its
 *   own, and the reply is one batch ACK: BHS, one ACK message per enclosed
 *   message in order, BTS with their count. Trailer counts that disagree are
 *   logged at warn and the messages processed anyway;
 * - `before(index)` may skip a message (no outcome, no ACK) and
 *   `after(index, outcome)` is awaited before the next message is submitted.
 *
 * ACKs come from the one ACK builder (ack.ts). Log lines carry counts and
 * codes, never payload.
 */
import { hbError, type HisbridgeError } from '../errors.js';
import { decodeHl7, readAckHeader } from '../hl7/index.js';
import { messagesOf, splitBlock } from '../hl7/batch.js';
import type { BlockOptions, BlockOutcome, IngestOutcome, Logger, Submit } from '../sdk.js';
import { errorReply, renderAck, renderBatchAck, withAckContext } from './ack.js';

export interface BlockDeps {
  /** The ingress port. */
  submit: Submit;
  log: Logger;
  /** Called for each message refused here without the port (multiMessageBlocks: reject), for metrics. */
  onRefused?(source: string, outcome: IngestOutcome): void;
}

/** An AR for one message of a refused block, echoing its MSH-10, in its charset. */
export function refuseMessage(bytes: Buffer, defaultCharset: string, err: HisbridgeError, declared?: string): IngestOutcome {
  let text: string;
  let charset = 'latin1';
  try {
    ({ text, charset } = decodeHl7(bytes, defaultCharset, declared));
  } catch {
    text = bytes.toString('latin1');
  }
  const header = readAckHeader(text);
  const reply = errorReply('AR', err);
  reply.error = { ...reply.error!, hl7Code: '207' };
  const outcome: IngestOutcome = {
    status: 'rejected', code: err.code, reason: err.message, routes: [], reply,
    ...(header?.controlId ? { controlId: header.controlId } : {}),
  };
  return withAckContext(outcome, { ...(header ? { header } : {}), charset });
}

/** Splits, submits and answers one block. Never throws more than `submit`, `before` or `after` do. */
export async function submitBlock(bytes: Buffer, opts: BlockOptions, deps: BlockDeps): Promise<BlockOutcome> {
  const split = splitBlock(bytes);
  const log = deps.log;
  const where = { listener: opts.source, units: split.units.length, messages: split.messageCount };
  if (split.units.length > 1 || split.units[0]?.kind === 'batch') {
    if (split.strayLines) log.warn({ ...where, lines: split.strayLines }, 'block: lines outside any message ignored');
  }
  const refuse = (opts.multiMessageBlocks ?? 'split') === 'reject' && split.units.length > 1;
  const refusal = refuse ? hbError('HL7_E_MULTI_MESSAGE_BLOCK', { count: split.messageCount }) : undefined;
  if (refusal) log.warn({ ...where, code: refusal.code }, 'block of several messages refused (multiMessageBlocks: reject)');
  else if (split.units.length > 1) log.info(where, 'block of several messages: each processed on its own');

  let index = 0;
  const outcomes: IngestOutcome[] = [];
  const one = async (m: Buffer): Promise<IngestOutcome | undefined> => {
    const i = index++;
    if (opts.before && !opts.before(i)) return undefined;
    let o: IngestOutcome;
    if (refusal) {
      o = refuseMessage(m, opts.defaultCharset ?? 'gb18030', refusal, opts.charset);
      deps.onRefused?.(opts.source, o);
    } else {
      o = await deps.submit({
        source: opts.source,
        bytes: m,
        ...(opts.charset ? { charset: opts.charset } : {}),
        ...(opts.defaultCharset ? { defaultCharset: opts.defaultCharset } : {}),
        ...(opts.noRoute ? { noRoute: opts.noRoute } : {}),
        ...(opts.invalidBytes ? { invalidBytes: opts.invalidBytes } : {}),
      });
    }
    outcomes.push(o);
    await opts.after?.(i, o);
    return o;
  };

  const replies: Buffer[] = [];
  for (const unit of split.units) {
    if (unit.kind === 'message') {
      const o = await one(unit.bytes);
      if (o) replies.push(renderAck(o));
      continue;
    }
    for (const p of unit.batch.problems) log.warn({ ...where, code: 'HL7_W_BATCH_TRAILER', problem: p }, hbError('HL7_W_BATCH_TRAILER', { detail: p }).message);
    const acks: IngestOutcome[] = [];
    for (const m of unit.messages) {
      const o = await one(m);
      if (o) acks.push(o);
    }
    replies.push(renderBatchAck(unit.batch.header, acks));
  }
  return { outcomes, replies, units: split.units.map((u) => ({ kind: u.kind, messages: u.kind === 'message' ? 1 : u.messages.length })) };
}

/** The messages a block holds (batches flattened), for callers that only need them. */
export function blockMessages(frame: Buffer): Buffer[] {
  return messagesOf(splitBlock(frame));
}
