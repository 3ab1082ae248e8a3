/**
 * Splits one block of bytes (an MLLP frame, a Kafka record, a file) into the
 * HL7 messages it holds, before anything is decoded: in GBK the second byte
 * of a character can be `|` or `^`, but never CR or LF, so segment
 * boundaries are safe to find on bytes, and a segment named MSH (or FHS, BHS,
 * BTS, FTS) right after a terminator starts a new unit.
 *
 * A block is a list of units, in order:
 * - a message: bytes from its MSH to the next boundary;
 * - a batch: FHS/BHS ... BTS/FTS (BHS without FHS too, several BHS inside
 *   one FHS too) with the messages it encloses.
 * The listener (core/engine/block.ts), `hisbridge replay` and
 * `hisbridge send` all use this one function, so they cannot disagree.
 *
 * Terminators may be CR, LF or CRLF. A block that does not start with one
 * of those five segments is one message as received (the ingest then
 * answers why it is not HL7). A block that starts with MSH is split on MSH
 * only (batch segments inside it stay segments of the message before them).
 * Linear in the size: unit boundaries are found with the platform's byte
 * search, and only lines outside messages are visited one by one.
 */

export interface BatchInfo {
  /** The request's BHS line (or FHS when the batch has no BHS), for the batch ACK. */
  header: Buffer;
  /** Batches (BHS segments) seen; 0 for FHS without BHS. */
  batches: number;
  /** Sentences about trailers that disagree with what was received (no payload in them). */
  problems: string[];
}

export type BlockUnit =
  | { kind: 'message'; bytes: Buffer }
  | { kind: 'batch'; bytes: Buffer; messages: Buffer[]; batch: BatchInfo };

export interface SplitBlock {
  units: BlockUnit[];
  /** Messages in all units. */
  messageCount: number;
  /** Non-blank lines that belong to no message (between a batch header and its first MSH, or after a trailer). */
  strayLines: number;
}

const CR = 0x0d;
const LF = 0x0a;
const VT = 0x0b;
const FS = 0x1c;

type Boundary = 'MSH' | 'FHS' | 'BHS' | 'BTS' | 'FTS';

function isSeparatorByte(b: number | undefined): boolean {
  if (b === undefined) return true; // a bare "BTS" at the very end
  if (b <= 0x20 || b === 0x7f) return b === CR || b === LF;
  return !((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a));
}

function boundaryAt(buf: Buffer, i: number): Boundary | undefined {
  if (i + 3 > buf.length) return undefined;
  const a = buf[i]!;
  const b = buf[i + 1]!;
  const c = buf[i + 2]!;
  if (!isSeparatorByte(buf[i + 3])) return undefined;
  if (a === 0x4d && b === 0x53 && c === 0x48) return 'MSH';
  if (b === 0x48 && c === 0x53) {
    // ?HS
    if (a === 0x46) return 'FHS';
    if (a === 0x42) return 'BHS';
    return undefined;
  }
  if (b === 0x54 && c === 0x53) {
    // ?TS
    if (a === 0x42) return 'BTS';
    if (a === 0x46) return 'FTS';
  }
  return undefined;
}

/** The first field of a trailer (BTS-1, FTS-1) as a count, or undefined when empty or not a number. */
function trailerCount(buf: Buffer, start: number, end: number): number | undefined {
  if (start + 4 >= end) return undefined;
  const sep = buf[start + 3]!;
  let n = 0;
  let digits = 0;
  for (let i = start + 4; i < end && buf[i] !== sep; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) {
      if (buf[i] === 0x20 && digits === 0) continue;
      return undefined;
    }
    if (++digits > 9) return undefined;
    n = n * 10 + d;
  }
  return digits ? n : undefined;
}

function isBlank(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b !== 0x20 && b !== 0x09 && b !== VT && b !== FS) return false;
  }
  return true;
}

/**
 * `end` moved back over MLLP envelope bytes (files copied from a capture keep
 * them) and the blank lines around them, keeping the last segment's own
 * terminator (CR, LF or CRLF) when it had one.
 */
function trimEnvelope(buf: Buffer, start: number, end: number): number {
  let e = end;
  while (e > start && (buf[e - 1] === VT || buf[e - 1] === FS || buf[e - 1] === CR || buf[e - 1] === LF)) e--;
  if (e === end) return end;
  if (buf[e] === CR) e++;
  if (buf[e] === LF && e < end) e++;
  return e;
}

interface OpenBatch {
  start: number;
  header?: Buffer;
  messages: Buffer[];
  batches: number;
  /** Messages since the last BHS, for BTS-1. */
  inBatch: number;
  /** A BHS without its BTS yet. */
  batchOpen: boolean;
  hasFile: boolean;
  problems: string[];
}

const ALL_NAMES = ['MSH', 'FHS', 'BHS', 'BTS', 'FTS'].map((n) => Buffer.from(n, 'latin1'));
const MSH_ONLY = ALL_NAMES.slice(0, 1);

/**
 * Line starts (after any VT/FS bytes) of every segment that may start or end
 * a unit, in order: found with the platform's byte search, so the segments
 * inside a message are never visited one by one.
 */
function candidateLines(buf: Buffer, from: number, names: Buffer[]): number[] {
  const out: number[] = [];
  for (const name of names) {
    for (let p = buf.indexOf(name, from); p >= 0; p = buf.indexOf(name, p + 3)) {
      let q = p;
      while (q > from && (buf[q - 1] === VT || buf[q - 1] === FS)) q--;
      if (q === from || buf[q - 1] === CR || buf[q - 1] === LF) out.push(q);
    }
  }
  return out.sort((a, b) => a - b);
}

/** Splits a block into messages and batches; see the file comment. */
export function splitBlock(buf: Buffer): SplitBlock {
  const units: BlockUnit[] = [];
  let messageCount = 0;
  let strayLines = 0;
  let msgStart = -1;
  let batch: OpenBatch | undefined;
  let first = true;
  // Cached positions of the next CR and LF: each indexOf scans a byte once, so the whole loop is linear.
  let nextCr = -2;
  let nextLf = -2;
  const bom = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  let pos = bom;
  // Found on first need: a block that starts with MSH is split on MSH only (one byte search); batch segments matter in a batch.
  let candidates: number[] | undefined;
  let batchBlock = false;
  let nextCandidate = 0;

  const closeMessage = (end: number): void => {
    if (msgStart < 0) return;
    const e = trimEnvelope(buf, msgStart, end);
    const bytes = buf.subarray(msgStart, e);
    msgStart = -1;
    messageCount++;
    if (batch) {
      batch.messages.push(bytes);
      batch.inBatch++;
    } else units.push({ kind: 'message', bytes });
  };
  const closeBatch = (end: number): void => {
    if (!batch) return;
    if (batch.batchOpen) batch.problems.push(`batch ${batch.batches} has no BTS trailer`);
    if (batch.hasFile) batch.problems.push('file has no FTS trailer');
    units.push({
      kind: 'batch',
      bytes: buf.subarray(batch.start, trimEnvelope(buf, batch.start, end)),
      messages: batch.messages,
      batch: { header: batch.header ?? Buffer.alloc(0), batches: batch.batches, problems: batch.problems },
    });
    batch = undefined;
  };
  const openBatch = (start: number, hasFile: boolean): OpenBatch => ({ start, messages: [], batches: 0, inBatch: 0, batchOpen: false, hasFile, problems: [] });

  while (pos < buf.length) {
    if (msgStart >= 0) {
      // Inside a message every line belongs to it until the next unit boundary: jump there.
      candidates ??= candidateLines(buf, bom, batchBlock ? ALL_NAMES : MSH_ONLY);
      while (nextCandidate < candidates.length && candidates[nextCandidate]! < pos) nextCandidate++;
      if (nextCandidate >= candidates.length) break;
      pos = candidates[nextCandidate]!;
    }
    if (nextCr !== -1 && nextCr < pos) nextCr = buf.indexOf(CR, pos);
    if (nextLf !== -1 && nextLf < pos) nextLf = buf.indexOf(LF, pos);
    const end = nextCr < 0 ? (nextLf < 0 ? buf.length : nextLf) : nextLf < 0 ? nextCr : Math.min(nextCr, nextLf);
    let s = pos;
    while (s < end && (buf[s] === VT || buf[s] === FS)) s++;
    const lineStart = s;
    pos = end + 1;
    if (lineStart >= end || isBlank(buf, lineStart, end)) continue;
    const kind = boundaryAt(buf, lineStart);
    if (first) {
      first = false;
      // Not HL7 as far as this splitter can tell: the ingest gives the specific answer.
      if (!kind || kind === 'BTS' || kind === 'FTS') return { units: [{ kind: 'message', bytes: buf }], messageCount: 1, strayLines: 0 };
      batchBlock = kind !== 'MSH';
    }
    switch (kind) {
      case 'MSH':
        closeMessage(lineStart);
        // A message at the very start keeps its byte order mark: a single message is stored exactly as received.
        msgStart = lineStart === bom && units.length === 0 && !batch ? 0 : lineStart;
        break;
      case 'FHS':
        closeMessage(lineStart);
        closeBatch(lineStart);
        batch = openBatch(lineStart, true);
        batch.header = buf.subarray(lineStart, end);
        break;
      case 'BHS':
        closeMessage(lineStart);
        if (batch && !batch.hasFile) closeBatch(lineStart);
        if (batch?.batchOpen) batch.problems.push(`batch ${batch.batches} has no BTS trailer`);
        batch ??= openBatch(lineStart, false);
        batch.batches++;
        batch.inBatch = 0;
        batch.batchOpen = true;
        // The ACK echoes the first BHS; an FHS stands in only when there is none.
        if (batch.batches === 1) batch.header = buf.subarray(lineStart, end);
        break;
      case 'BTS': {
        closeMessage(lineStart);
        if (!batch) {
          strayLines++;
          break;
        }
        const declared = trailerCount(buf, lineStart, end);
        const counted = batch.batches ? batch.inBatch : batch.messages.length;
        if (declared !== undefined && declared !== counted) batch.problems.push(`BTS-1 says ${declared} messages, batch ${Math.max(batch.batches, 1)} holds ${counted}`);
        batch.batchOpen = false;
        if (!batch.hasFile) closeBatch(Math.min(pos, buf.length));
        break;
      }
      case 'FTS': {
        closeMessage(lineStart);
        if (!batch || !batch.hasFile) {
          strayLines++;
          break;
        }
        const declared = trailerCount(buf, lineStart, end);
        if (declared !== undefined && declared !== batch.batches) batch.problems.push(`FTS-1 says ${declared} batches, the file holds ${batch.batches}`);
        if (batch.batchOpen) {
          batch.problems.push(`batch ${batch.batches} has no BTS trailer`);
          batch.batchOpen = false;
        }
        batch.hasFile = false;
        closeBatch(Math.min(pos, buf.length));
        break;
      }
      default:
        if (msgStart < 0) strayLines++;
    }
  }
  const lastStart = msgStart;
  closeMessage(buf.length);
  closeBatch(buf.length);
  // Nothing but blank lines: one (empty) message as received, so the ingest answers for it rather than nobody.
  if (units.length === 0) return { units: [{ kind: 'message', bytes: buf }], messageCount: 1, strayLines };
  const only = units.length === 1 ? units[0]! : undefined;
  if (only?.kind === 'message' && lastStart === 0 && only.bytes !== buf) {
    // One message and only blank lines after it: keep the block byte for byte.
    let tail = only.bytes.length;
    while (tail < buf.length && (buf[tail] === CR || buf[tail] === LF || buf[tail] === 0x20 || buf[tail] === 0x09)) tail++;
    if (tail === buf.length) only.bytes = buf;
  }
  return { units, messageCount, strayLines };
}

/** Every message of a block in order, batches flattened. */
export function messagesOf(split: SplitBlock): Buffer[] {
  return split.units.flatMap((u) => (u.kind === 'message' ? [u.bytes] : u.messages));
}
