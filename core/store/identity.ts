/**
 * What makes two received messages "the same message", and the idempotency
 * key sent to remotes. See docs/delivery.md ("Duplicates and idempotency keys").
 *
 * - Content digest: SHA-256 of the decoded text with segment terminators
 *   normalised to CR, trailing empty segments dropped, the separators that
 *   end a segment dropped (`PID|1||123^^|||` is `PID|1||123`: empty
 *   trailing fields and components, which HL7 gives no meaning and senders
 *   write or leave out as they please) and MSH-7 (the time the sender built the message, which
 *   a HIS sets anew on a resend) blanked. Nothing else is left out: every
 *   clinical field counts.
 * - Message key: a hash of (MSH-3, MSH-4, MSH-10, content digest). It does
 *   not depend on the instance, the store row or the time of receipt, so the
 *   same message re-read by another instance after a Kafka rebalance, or
 *   re-sent after a crash, has the same key.
 * - Idempotency key: a hash of (message key, route, step): 32 hex characters,
 *   free of PHI.
 */
import * as nodeCrypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { TimeSlice } from '../cooperative.js';

const SEP = '\u001f';

/** crypto.hash (Node >= 20.12): a one-shot digest without a Hash object, about half the cost for short inputs. */
const hashOnce = (nodeCrypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

function sha256(text: string): string {
  return hashOnce ? hashOnce('sha256', text, 'hex') : createHash('sha256').update(text, 'utf8').digest('hex');
}

const isBlank = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;

/** How the separators that end a segment are trimmed, for one delimiter set. */
interface Trim {
  /** Field, component and sub-component separators (as declared and usable). */
  seps: string;
  /** A run of them right before a CR, matched only where the run starts (the look-behind), so a run of k costs O(k) once. */
  beforeCr?: RegExp;
}

const NO_TRIM: Trim = { seps: '' };
const trims = new Map<string, Trim>();

function trimFor(fs: string, encoding: string): Trim {
  const key = fs + encoding;
  const hit = trims.get(key);
  if (hit) return hit;
  const [comp, rep, esc, sub] = [...encoding];
  const usable = (c: string | undefined, ...not: (string | undefined)[]): c is string => c !== undefined && c !== '\r' && c !== '\n' && c !== fs && !not.includes(c);
  // A short or odd MSH-2: only what is declared and distinct is trimmed (at least the field separator).
  const seps = fs + (usable(comp, esc) ? comp : '') + (usable(sub, comp, rep, esc) ? sub : '');
  const cls = seps.replace(/[\\\]\[^$.*+?(){}|\/-]/g, '\\$&');
  const t: Trim = { seps, beforeCr: new RegExp(`(?<![${cls}])[${cls}]+\\r`, 'g') };
  if (trims.size >= 64) trims.clear();
  trims.set(key, t);
  return t;
}

/**
 * `segments` (whole segments, CR-separated) with the run of field, component
 * and sub-component separators that ends each segment dropped:
 * `PID|1||123^^|||` is `PID|1||123`. Those are empty trailing fields,
 * components and sub-components, which HL7 gives no meaning and senders
 * write or leave out as they please. Repetition separators are kept (an
 * empty repetition is a position in a list), and so are empty pieces inside
 * a segment (`123^^|X` stays as it is). Linear: one regular-expression pass
 * (each run of separators is tried once, from its start), then the end of
 * the last segment.
 */
function trimPieces(s: string, t: Trim): string {
  if (!t.beforeCr) return s;
  const out = s.includes('\r') ? s.replace(t.beforeCr, '\r') : s;
  let k = out.length;
  while (k > 0 && t.seps.includes(out[k - 1]!)) k--;
  return k === out.length ? out : out.slice(0, k);
}

interface Canonical {
  /** MSH with MSH-7 blanked and its trailing pieces dropped. */
  msh: string;
  /** The rest: from the CR after MSH to the end of the last non-blank segment, not yet trimmed. */
  rest: string;
  trim: Trim;
}

/**
 * The canonical content in pieces (MSH, the rest), so a large message is
 * hashed without being copied segment by segment. Linear in the text length:
 * one line-ending replace at most, one scan back over trailing blank
 * segments, one split of the MSH segment, one trimming pass.
 */
function canonicalParts(input: string): Canonical {
  const text = input.includes('\n') ? input.replace(/\r\n|\n/g, '\r') : input;
  // Drop trailing segments that are empty or hold only blanks (a segment with content keeps its trailing blanks).
  let end = text.length;
  for (;;) {
    while (end > 0 && text.charCodeAt(end - 1) === 0x0d) end--;
    const start = text.lastIndexOf('\r', end - 1) + 1;
    let blank = true;
    for (let i = start; i < end && blank; i++) blank = isBlank(text.charCodeAt(i));
    if (!blank || end === 0) break;
    end = start;
  }
  const mshEnd = Math.min(end, (text.indexOf('\r') + 1 || end + 1) - 1);
  let msh = text.slice(0, mshEnd);
  let trim: Trim = NO_TRIM;
  if (msh.startsWith('MSH') && msh.length > 3) {
    const fs = msh[3]!;
    // MSH-1 is the separator itself: fields[1] is MSH-2, so fields[6] is MSH-7.
    const fields = msh.split(fs);
    trim = trimFor(fs, fields[1] ?? '');
    if (fields.length > 6) fields[6] = '';
    // MSH-1 and MSH-2 are the delimiters themselves, never trimmed.
    const head = fields.slice(0, 2).join(fs);
    const tail = fields.length > 2 ? trimPieces(fs + fields.slice(2).join(fs), trim) : '';
    msh = head + tail;
  }
  return { msh, rest: text.slice(mshEnd, end), trim };
}

/** The text a content digest is taken of (exported for tests and docs). */
export function canonicalContent(text: string): string {
  const c = canonicalParts(text);
  return c.msh + trimPieces(c.rest, c.trim);
}

/** SHA-256 (hex) of the message's canonical content. */
export function contentDigest(text: string): string {
  const c = canonicalParts(text);
  return sha256(c.msh + trimPieces(c.rest, c.trim));
}

/** Characters trimmed and hashed per event-loop turn by contentDigestYielding. */
const DIGEST_SLICE_CHARS = 64 * 1024;

/**
 * The same digest as `contentDigest`, for big messages: the text is trimmed
 * and hashed in slices with a turn of the event loop between them (hashing
 * 4.5 MB in one go took ~15 ms, issue 11). Slices end just after a segment
 * terminator (a segment longer than a slice is one slice), so trimming a
 * slice gives the same text as trimming the whole; UTF-8 encodes each
 * character on its own, so the bytes hashed are the same.
 */
export async function contentDigestYielding(text: string): Promise<string> {
  if (text.length <= DIGEST_SLICE_CHARS) return contentDigest(text);
  const { msh, rest, trim } = canonicalParts(text);
  const h = createHash('sha256').update(msh, 'utf8');
  let off = 0;
  while (off < rest.length) {
    const cr = rest.indexOf('\r', Math.min(off + DIGEST_SLICE_CHARS, rest.length) - 1);
    const end = cr < 0 ? rest.length : cr + 1;
    h.update(trimPieces(rest.slice(off, end), trim), 'utf8');
    off = end;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return h.digest('hex');
}

/** Identifies one message independently of the instance, the store and a restart. */
export function messageKey(sendingApp: string, sendingFacility: string, controlId: string, digest: string): string {
  return sha256(['m1', sendingApp, sendingFacility, controlId, digest].join(SEP)).slice(0, 32);
}

/** The key remotes receive as `idempotency-key` for one step of one route run on one message. */
export function idempotencyKeyOf(msgKey: string, route: string, step: number): string {
  return sha256(['k1', msgKey, route, String(step)].join(SEP)).slice(0, 32);
}

/** Nesting deeper than this is refused by `jsonContentDigest` (and so by the JSON reader). */
export const JSON_MAX_DEPTH = 64;

/** Thrown by `jsonContentDigest` for a value nested deeper than its limit. */
export class JsonTooDeep extends Error {
  constructor(readonly limit: number) {
    super(`nested deeper than ${limit} levels`);
  }
}

/** Text hashed per `update` call: many small updates cost more than the hashing. */
const JSON_HASH_CHUNK = 64 * 1024;

type Frame = { kind: 'array'; v: unknown[]; i: number } | { kind: 'object'; v: Record<string, unknown>; keys: string[]; i: number };

/**
 * SHA-256 (hex) of a parsed JSON event's canonical form: object keys sorted
 * (UTF-16 order), no blanks, strings and numbers as JSON.stringify writes
 * them. A resend of the same event has the same digest however the producer
 * spaced it or ordered its keys. One pass over the value (plus sorting each
 * object's keys), iterative (no recursion), giving the event loop a turn every
 * few ms: a 5 MB event of many small objects takes ~150 ms of work in all.
 * Rejects with JsonTooDeep past `maxDepth` levels of objects and arrays.
 */
export async function jsonContentDigest(value: unknown, maxDepth = JSON_MAX_DEPTH): Promise<string> {
  const h = createHash('sha256');
  const slice = new TimeSlice(8, 256);
  let buf = '';
  const put = (s: string) => {
    buf += s;
    if (buf.length >= JSON_HASH_CHUNK) {
      h.update(buf, 'utf8');
      buf = '';
    }
  };
  const stack: Frame[] = [];
  /** Writes a scalar, or opens an object or array (pushing its frame). */
  const open = (v: unknown): void => {
    if (v === null || typeof v !== 'object') {
      // undefined cannot come out of JSON.parse; written as null to stay total.
      put(v === undefined ? 'null' : JSON.stringify(v));
      return;
    }
    if (stack.length >= maxDepth) throw new JsonTooDeep(maxDepth);
    if (Array.isArray(v)) {
      put('[');
      stack.push({ kind: 'array', v, i: 0 });
    } else {
      put('{');
      stack.push({ kind: 'object', v: v as Record<string, unknown>, keys: Object.keys(v).sort(), i: 0 });
    }
  };
  open(value);
  while (stack.length) {
    if (slice.due()) await slice.pause();
    const f = stack[stack.length - 1]!;
    if (f.kind === 'array') {
      if (f.i >= f.v.length) {
        put(']');
        stack.pop();
        continue;
      }
      if (f.i) put(',');
      open(f.v[f.i++]);
    } else {
      if (f.i >= f.keys.length) {
        put('}');
        stack.pop();
        continue;
      }
      const k = f.keys[f.i++]!;
      put(f.i > 1 ? ',' : '');
      put(JSON.stringify(k));
      put(':');
      open(f.v[k]);
    }
  }
  h.update(buf, 'utf8');
  return h.digest('hex');
}
