/**
 * One received block (an MLLP frame, a Kafka record, a replayed file) to its
 * replies, above the single-message ingest (ingest.ts stays one message):
 *
 * - split on bytes (core/hl7/batch.ts) into messages and batches;
 * - several messages: each is ingested on its own, in order, and answered
 *   with its own ACK frame, in order; with `multiMessageBlocks: reject`
 *   every one of them gets AR and none is routed;
 * - a batch (FHS/BHS ... BTS/FTS): each enclosed message is ingested on its
 *   own, and the reply is one frame: BHS, one ACK message per enclosed
 *   message in order, BTS with their count. Trailer counts that disagree are
 *   logged at warn and the messages processed anyway.
 *
 * Log lines carry counts and codes, never payload.
 */
import { randomUUID } from 'node:crypto';
import { hbError, type HisbridgeError } from '../errors.js';
import { buildAck, buildBatchAckEnvelope, decodeHl7, encodeText, readAckHeader } from '../hl7/index.js';
import { messagesOf, splitBlock, type SplitBlock } from '../hl7/batch.js';
import type { Logger } from '../sdk.js';
import type { IngestResult, Listener } from './ingest.js';

export interface BlockDeps {
  /** The single-message ingest (engine.ingest). */
  ingest(message: Buffer, listener: Listener): Promise<IngestResult>;
  log: Logger;
  /** Called for each message refused here without ingest (multiMessageBlocks: reject), for metrics. */
  onRefused?(listener: Listener, result: IngestResult): void;
}

export interface BlockResult {
  /** Reply frames (payloads, unframed), in order. */
  replies: Buffer[];
  /** One result per message, in block order (batches flattened). */
  results: IngestResult[];
  /** How the block was read (tests, replay). */
  split: SplitBlock;
}

function batchId(): string {
  return `B${randomUUID().replace(/-/g, '').slice(0, 19)}`;
}

/** An AR for one message of a refused block, echoing its MSH-10, in its charset. */
export function refuseMessage(bytes: Buffer, listener: Listener, err: HisbridgeError): IngestResult {
  let text: string;
  let charset = 'latin1';
  try {
    ({ text, charset } = decodeHl7(bytes, listener.charset));
  } catch {
    text = bytes.toString('latin1');
  }
  const header = readAckHeader(text);
  const ackText = buildAck(header ?? { fieldSep: '|', encodingChars: '^~\\&' }, {
    code: 'AR',
    controlId: randomUUID().replace(/-/g, '').slice(0, 20),
    text: err.message,
    error: { hl7Code: '207', text: err.message, severity: 'E' },
  });
  let ack: Buffer;
  try {
    ack = encodeText(ackText, charset);
  } catch {
    ack = Buffer.from(ackText, 'utf8');
  }
  return { ack, ackText, code: 'AR', routes: [], errorCode: err.code, ...(header?.controlId ? { controlId: header.controlId } : {}) };
}

/** Splits, ingests and answers one block. Never throws more than `deps.ingest` does (which never throws). */
export async function processBlock(frame: Buffer, listener: Listener, deps: BlockDeps): Promise<BlockResult> {
  const split = splitBlock(frame);
  const only = split.units.length === 1 ? split.units[0]! : undefined;
  if (only?.kind === 'message') {
    const r = await deps.ingest(only.bytes, listener);
    return { replies: [r.ack], results: [r], split };
  }
  const log = deps.log;
  const where = { listener: listener.name, units: split.units.length, messages: split.messageCount };
  if (split.strayLines) log.warn({ ...where, lines: split.strayLines }, 'block: lines outside any message ignored');
  const refuse = (listener.multiMessageBlocks ?? 'split') === 'reject' && split.units.length > 1;
  const refusal = refuse ? hbError('HL7_E_MULTI_MESSAGE_BLOCK', { count: split.messageCount }) : undefined;
  if (refusal) log.warn({ ...where, code: refusal.code }, 'block of several messages refused (multiMessageBlocks: reject)');
  else if (split.units.length > 1) log.info(where, 'block of several messages: each processed on its own');

  const one = async (bytes: Buffer): Promise<IngestResult> => {
    if (!refusal) return deps.ingest(bytes, listener);
    const r = refuseMessage(bytes, listener, refusal);
    deps.onRefused?.(listener, r);
    return r;
  };

  const replies: Buffer[] = [];
  const results: IngestResult[] = [];
  for (const unit of split.units) {
    if (unit.kind === 'message') {
      const r = await one(unit.bytes);
      results.push(r);
      replies.push(r.ack);
      continue;
    }
    for (const p of unit.batch.problems) log.warn({ ...where, code: 'HL7_W_BATCH_TRAILER', problem: p }, hbError('HL7_W_BATCH_TRAILER', { detail: p }).message);
    const acks: Buffer[] = [];
    for (const m of unit.messages) {
      const r = await one(m);
      results.push(r);
      acks.push(r.ack);
    }
    // The header echoes ASCII fields; latin1 keeps the request's bytes as they were.
    const env = buildBatchAckEnvelope(unit.batch.header.toString('latin1'), acks.length, { controlId: batchId() });
    // Each ACK ends with \r and is in its own message's charset: concatenated as bytes.
    replies.push(Buffer.concat([Buffer.from(env.header, 'latin1'), ...acks, Buffer.from(env.trailer, 'latin1')]));
  }
  return { replies, results, split };
}

/** The messages a block holds (batches flattened), for callers that only need them. */
export function blockMessages(frame: Buffer): Buffer[] {
  return messagesOf(splitBlock(frame));
}
