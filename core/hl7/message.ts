/**
 * The HL7 v2 message model. Parsing splits segments and the MSH eagerly (every
 * message needs its header for routing and the ACK) and every other segment
 * on first access, so a route that reads five fields pays for five fields.
 *
 * Value contract (see fields.ts `leaf`): leaves are unescaped, values that
 * still contain delimiters are returned as sent; absent means ''.
 */
import { hbError } from '../errors.js';
import { delimitersFrom, type Hl7Delimiters } from './delimiters.js';
import { escapeHl7 } from './escape.js';
import { componentOfEach, findRepetition, joinFields, nth, repetitionsOf, selectRepetition, within, writeValue } from './fields.js';
import { compilePath, type FieldPath } from './path.js';
import { TimeSlice } from '../cooperative.js';

export type { Hl7Delimiters } from './delimiters.js';

function splitFields(line: string, d: Hl7Delimiters): string[] {
  const parts = line.split(d.field);
  // Keep field numbers equal to array indexes: MSH-1 is the separator itself.
  if (parts[0] === 'MSH') parts.splice(1, 0, d.field);
  return parts;
}

/** Above this many segments, reads by segment name use an index built once instead of a scan. */
const SCAN_LIMIT = 32;

/**
 * The message keeps the split fields of its first this-many segments (MSH,
 * PID, PV1, ORC, OBR: the ones routes read again and again). A later
 * segment's fields are split on each read and kept only by the Hl7Segment
 * object that asked for them: a 100,000-OBX report read segment by segment
 * (sensitive scan, lab payload) kept 100,000 arrays and 1.5 million field
 * strings alive as long as the message, and copying them is what made the
 * garbage collector's pauses 30-110 ms long (issue 11).
 */
const FIELD_CACHE_SEGMENTS = 64;

function isSegmentName(line: string, sep: string): boolean {
  if (line.length < 3 || (line.length > 3 && line[3] !== sep)) return false;
  const a = line.charCodeAt(0);
  if (a < 0x41 || a > 0x5a) return false;
  for (let i = 1; i < 3; i++) {
    const c = line.charCodeAt(i);
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39))) return false;
  }
  return true;
}

/** One segment of a message, read on demand. Obtained from `Hl7Message.segments()`. */
export class Hl7Segment {
  /** @internal built by Hl7Message */
  constructor(
    /** Segment name, e.g. `OBX`. */
    readonly name: string,
    /** 0-based position of the segment in the message. */
    readonly index: number,
    private readonly fieldsOf: () => string[],
    private readonly d: Hl7Delimiters,
  ) {}

  /** A value of this segment, with the same rules as `Hl7Message.get` (all numbers 1-based). */
  get(field: number, rep = 1, comp?: number, sub?: number): string {
    const fields = this.fieldsOf();
    if (this.name === 'MSH' && field <= 2) return fields[field] ?? '';
    const f = fields[field];
    if (!f) return '';
    return within(nth(f, this.d.repetition, rep), this.d, comp, sub);
  }

  /** Highest field number present (MSH counts MSH-1). */
  get fieldCount(): number {
    return this.fieldsOf().length - 1;
  }

  /**
   * A field's text exactly as sent, every repetition included ('' when empty
   * or absent): for one-pass scans that must not build an array per
   * repetition (see plugins/recognition/hl7-patient.ts).
   */
  raw(field: number): string {
    return this.fieldsOf()[field] ?? '';
  }

  /** Number of repetitions of a field; 0 when it is empty or absent. */
  repetitions(field: number): number {
    if (this.name === 'MSH' && field <= 2) return this.fieldsOf()[field] ? 1 : 0;
    return repetitionsOf(this.fieldsOf()[field], this.d).length;
  }

  /**
   * One value per repetition of a field (component/subcomponent and leaf rule
   * as in `get`), in one pass over the field: use it instead of calling
   * `get(field, r, ...)` for r = 1..n, which rescans the field from its start
   * each time and is quadratic in the number of repetitions. [] when the
   * field is empty or absent.
   */
  getRepetitions(field: number, comp?: number, sub?: number): string[] {
    const f = this.fieldsOf()[field];
    if (!f) return [];
    if (this.name === 'MSH' && field <= 2) return [f];
    return componentOfEach(f, this.d, comp, sub);
  }
}

/** A parsed HL7 v2 message. Create with `parseHl7`. */
export class Hl7Message {
  /** Delimiters declared by MSH-1 and MSH-2; replies and encoding use the same. */
  readonly delimiters: Hl7Delimiters;
  readonly #lines: string[];
  readonly #names: string[];
  readonly #fields: (string[] | undefined)[];
  #byName: Map<string, number[]> | undefined;
  /** Bumped by every change (set, addSegment): a segment's own copy of its fields is stale after it. */
  #version = 0;

  /** How many changes (set, addSegment) the message had since it was parsed: 0 while it is as received. */
  get changes(): number {
    return this.#version;
  }

  /** @internal use parseHl7 */
  constructor(lines: string[], names: string[], msh: string[], delimiters: Hl7Delimiters, byName?: Map<string, number[]>) {
    this.#lines = lines;
    this.#names = names;
    this.#byName = byName;
    this.#fields = new Array<string[] | undefined>(lines.length);
    this.#fields[0] = msh;
    this.delimiters = delimiters;
  }

  #fieldsOf(i: number): string[] {
    let f = this.#fields[i];
    if (f === undefined) {
      f = splitFields(this.#lines[i]!, this.delimiters);
      if (i < FIELD_CACHE_SEGMENTS) this.#fields[i] = f;
    }
    return f;
  }

  /** What an Hl7Segment reads its fields with: past FIELD_CACHE_SEGMENTS, split once per segment object (and again after a change). */
  #fieldsFn(i: number): () => string[] {
    if (i < FIELD_CACHE_SEGMENTS) return () => this.#fieldsOf(i);
    let own: string[] | undefined;
    let at = -1;
    return () => {
      if (own === undefined || at !== this.#version) {
        own = this.#fieldsOf(i);
        at = this.#version;
      }
      return own;
    };
  }

  #indexesOf(name: string): number[] {
    if (!this.#byName) {
      const m = new Map<string, number[]>();
      this.#names.forEach((n, i) => {
        const l = m.get(n);
        if (l) l.push(i);
        else m.set(n, [i]);
      });
      this.#byName = m;
    }
    return this.#byName.get(name) ?? [];
  }

  #segmentIndex(name: string, occurrence: number): number {
    if (this.#byName) return this.#byName.get(name)?.[occurrence - 1] ?? -1;
    // A long message is indexed once: a scan per read would make every read cost the whole message.
    if (this.#names.length > SCAN_LIMIT) return this.#indexesOf(name)[occurrence - 1] ?? -1;
    // Most messages are short and read a handful of times: a scan beats building the index.
    const names = this.#names;
    for (let i = 0, seen = 0; i < names.length; i++) {
      if (names[i] === name && ++seen === occurrence) return i;
    }
    return -1;
  }

  #msh(field: number, comp?: number): string {
    const f = this.#fields[0]![field];
    return f ? within(nth(f, this.delimiters.repetition, 1), this.delimiters, comp) : '';
  }

  /** MSH-10. */
  get controlId(): string {
    return this.#msh(10);
  }
  /** `ADT^A04`: MSH-9.1 and MSH-9.2 joined by `^` whatever the component separator (the form routes match on). */
  get type(): string {
    const t = this.triggerEvent;
    return t ? `${this.messageCode}^${t}` : this.messageCode;
  }
  /** MSH-9.1, e.g. `ADT`. */
  get messageCode(): string {
    return this.#msh(9, 1);
  }
  /** MSH-9.2, e.g. `A04`. */
  get triggerEvent(): string {
    return this.#msh(9, 2);
  }
  /** MSH-9.3 message structure, e.g. `ADT_A01`. */
  get structure(): string {
    return this.#msh(9, 3);
  }
  /** MSH-3.1. */
  get sendingApp(): string {
    return this.#msh(3, 1);
  }
  /** MSH-4.1. */
  get sendingFacility(): string {
    return this.#msh(4, 1);
  }
  /** MSH-5.1. */
  get receivingApp(): string {
    return this.#msh(5, 1);
  }
  /** MSH-6.1. */
  get receivingFacility(): string {
    return this.#msh(6, 1);
  }
  /** MSH-11.1, e.g. `P`. */
  get processingId(): string {
    return this.#msh(11, 1);
  }
  /** MSH-12.1, e.g. `2.5`. */
  get version(): string {
    return this.#msh(12, 1);
  }
  /** MSH-15 accept acknowledgment type (enhanced mode when set). */
  get acceptAckType(): string {
    return this.#msh(15);
  }
  /** MSH-16 application acknowledgment type (enhanced mode when set). */
  get appAckType(): string {
    return this.#msh(16);
  }
  /** MSH-18 as sent (first repetition), e.g. `GB 18030-2000`; '' when empty. */
  get charsetField(): string {
    return this.#msh(18);
  }
  /** Number of segments. */
  /** How many changes (set, addSegment) were made since the parse: 0 means the message still reads as its bytes. */
  get revision(): number {
    return this.#version;
  }

  get segmentCount(): number {
    return this.#lines.length;
  }

  /**
   * One value: the first segment occurrence and first repetition unless the
   * path says otherwise. Leaves are unescaped; a value that still contains
   * delimiters (e.g. `PID-5` with components) is returned as sent. '' when absent.
   */
  get(path: string | FieldPath): string {
    return this.#read(typeof path === 'string' ? compilePath(path) : path, false);
  }

  /** Like `get` but never unescapes: the value exactly as sent (for copying it into another message with the same delimiters). */
  getRaw(path: string | FieldPath): string {
    return this.#read(typeof path === 'string' ? compilePath(path) : path, true);
  }

  #read(p: FieldPath, raw: boolean): string {
    const i = this.#segmentIndex(p.segment, p.occurrence ?? 1);
    if (i < 0) return '';
    const fields = this.#fieldsOf(i);
    if (p.segment === 'MSH' && p.field <= 2) return fields[p.field] ?? '';
    const f = fields[p.field];
    if (!f) return '';
    const d = this.delimiters;
    let rep: string;
    if (p.selector) {
      const found = findRepetition(f, p.selector, d);
      if (found === undefined) return '';
      rep = found;
    } else rep = nth(f, d.repetition, p.repetition ?? 1);
    return within(rep, d, p.component, p.subcomponent, raw);
  }

  /**
   * Every value the path addresses: each segment occurrence (unless `[n]`)
   * times each repetition (unless `[r]`; with a selector, every matching
   * repetition). A present segment with an empty field contributes one ''
   * so that lists from sibling paths (OBX-3, OBX-5) stay aligned.
   */
  getAll(path: string | FieldPath): string[] {
    const p = typeof path === 'string' ? compilePath(path) : path;
    const d = this.delimiters;
    const all = this.#indexesOf(p.segment);
    const indexes = p.occurrence === undefined ? all : all[p.occurrence - 1] === undefined ? [] : [all[p.occurrence - 1]!];
    const out: string[] = [];
    for (const i of indexes) {
      const fields = this.#fieldsOf(i);
      if (p.segment === 'MSH' && p.field <= 2) {
        out.push(fields[p.field] ?? '');
        continue;
      }
      const reps = (fields[p.field] ?? '').split(d.repetition);
      if (p.selector) {
        for (const r of reps) {
          if (selectRepetition([r], p.selector, d) === 0) out.push(within(r, d, p.component, p.subcomponent));
        }
      } else if (p.repetition !== undefined) {
        out.push(within(reps[p.repetition - 1] ?? '', d, p.component, p.subcomponent));
      } else {
        for (const r of reps) out.push(within(r, d, p.component, p.subcomponent));
      }
    }
    return out;
  }

  /** True when the path addresses a non-empty value. */
  has(path: string | FieldPath): boolean {
    return this.get(path) !== '';
  }

  /** The `occurrence`th (1-based) segment named `name`, without listing the others; undefined when absent. */
  segment(name: string, occurrence = 1): Hl7Segment | undefined {
    const i = this.#segmentIndex(name, occurrence);
    return i < 0 ? undefined : new Hl7Segment(name, i, this.#fieldsFn(i), this.delimiters);
  }

  /** Segments in message order, one at a time: nothing is built for the segments a loop does not reach (or before it reaches them). */
  *eachSegment(): IterableIterator<Hl7Segment> {
    for (let i = 0; i < this.#names.length; i++) yield new Hl7Segment(this.#names[i]!, i, this.#fieldsFn(i), this.delimiters);
  }

  /** Name of the segment at 0-based position `i` ('' past the end). */
  segmentName(i: number): string {
    return this.#names[i] ?? '';
  }

  /**
   * Text of the segment at 0-based position `i` exactly as it stands (as
   * received unless set or added since), without its terminator; '' past the
   * end. For one-pass readers of long messages that take the few fields they
   * need from the text without splitting every field of every segment.
   */
  segmentText(i: number): string {
    return this.#lines[i] ?? '';
  }

  /** The segment at 0-based position `i`, or undefined past the end. */
  segmentAt(i: number): Hl7Segment | undefined {
    return i >= 0 && i < this.#names.length ? new Hl7Segment(this.#names[i]!, i, this.#fieldsFn(i), this.delimiters) : undefined;
  }

  /** Segments in message order, optionally only those named `name`. */
  segments(name?: string): Hl7Segment[] {
    const idx = name === undefined ? this.#names.map((_, i) => i) : this.#indexesOf(name);
    return idx.map((i) => new Hl7Segment(this.#names[i]!, i, this.#fieldsFn(i), this.delimiters));
  }

  /**
   * Writes an unescaped value (it is escaped here). Missing segments,
   * fields, repetitions and components are created; a selector that matches
   * nothing appends a repetition carrying the selector value.
   */
  set(path: string | FieldPath, value: string): void {
    const p = typeof path === 'string' ? compilePath(path) : path;
    if (p.segment === 'MSH' && p.field <= 2) {
      throw hbError('ROUTE_E_BAD_PATH', { path: p.source, detail: 'MSH-1 and MSH-2 (delimiters) cannot be set' });
    }
    const occurrence = p.occurrence ?? 1;
    let i = this.#segmentIndex(p.segment, occurrence);
    while (i < 0) {
      this.addSegment([p.segment]);
      i = this.#segmentIndex(p.segment, occurrence);
    }
    const fields = this.#fieldsOf(i);
    writeValue(fields, p, value, this.delimiters);
    this.#lines[i] = joinFields(fields, this.delimiters);
    this.#version++;
  }

  /**
   * Appends a segment: `fields[0]` is its name, then one entry per field
   * (a string[] entry is the field's components). Values are escaped.
   */
  addSegment(fields: readonly (string | readonly string[])[]): void {
    const name = fields[0];
    const d = this.delimiters;
    if (typeof name !== 'string' || !isSegmentName(name, d.field) || name === 'MSH') {
      throw hbError('HL7_E_PARSE', { detail: 'a new segment needs a name of 3 upper-case letters or digits (not MSH)' });
    }
    const parts: string[] = [name];
    for (let k = 1; k < fields.length; k++) {
      const f = fields[k]!;
      parts.push(typeof f === 'string' ? escapeHl7(f, d) : f.map((c) => escapeHl7(c, d)).join(d.component));
    }
    const i = this.#lines.length;
    this.#lines.push(parts.join(d.field));
    this.#names.push(name);
    this.#fields.push(parts);
    this.#version++;
    if (this.#byName) {
      const l = this.#byName.get(name);
      if (l) l.push(i);
      else this.#byName.set(name, [i]);
    }
  }

  /** The message text with `\r` after every segment; unmodified segments are exactly as received. */
  encode(): string {
    return this.#lines.join('\r') + '\r';
  }
}

function parseError(detail: string): never {
  throw hbError('HL7_E_PARSE', { detail });
}

function isBlank(line: string): boolean {
  return line.length === 0 || (line.charCodeAt(0) <= 0x20 && line.trim() === '');
}

/**
 * Parses decoded HL7 text (see charset.ts `decodeHl7`). Segment terminators
 * may be `\r`, `\n` or `\r\n`; blank lines are ignored. Throws HL7_E_NO_MSH or
 * HL7_E_PARSE with a detail naming the segment or field (never its content).
 */
export function parseHl7(text: string): Hl7Message {
  const body = bodyOf(text);
  // One native split; the array is only copied when it has blank lines to drop.
  const raw = body.includes('\n') ? body.split(/\r\n|\r|\n/) : body.split('\r');
  let lines = raw;
  for (let k = 0; k < raw.length; k++) {
    if (!isBlank(raw[k]!)) continue;
    lines = [];
    for (const l of raw) if (!isBlank(l)) lines.push(l);
    break;
  }
  const p = startParse(lines);
  for (let k = 1; k < lines.length; k++) nameSegment(p, k);
  return finishParse(p);
}

/** Above this many characters parseHl7Yielding works in time slices. */
const YIELD_CHARS = 64 * 1024;

/**
 * The same result as `parseHl7`, for big messages: the segments are split
 * and named in time slices (a few ms each) with a turn of the event loop
 * between them, so a 100,000-segment message does not hold the event loop
 * for the whole parse (issue 11). Small messages are parsed in one go.
 */
export async function parseHl7Yielding(text: string): Promise<Hl7Message> {
  if (text.length <= YIELD_CHARS) return parseHl7(text);
  const body = bodyOf(text);
  const slice = new TimeSlice(8, 256);
  const lines: string[] = [];
  // One pass: each indexOf scans each character once (the next CR and LF positions are kept until passed).
  const n = body.length;
  let pos = 0;
  let nextCr = -2;
  let nextLf = -2;
  while (pos < n) {
    if (nextCr !== -1 && nextCr < pos) nextCr = body.indexOf('\r', pos);
    if (nextLf !== -1 && nextLf < pos) nextLf = body.indexOf('\n', pos);
    const end = nextCr < 0 ? (nextLf < 0 ? n : nextLf) : nextLf < 0 ? nextCr : Math.min(nextCr, nextLf);
    const line = body.slice(pos, end);
    // After a CR LF the LF starts an empty line, dropped as blank like every other.
    pos = end + 1;
    if (!isBlank(line)) lines.push(line);
    if (slice.due()) await slice.pause();
  }
  const p = startParse(lines);
  // The index by segment name is built here too, in the same slices: built on the first read it took ~12 ms in one go.
  const byName = new Map<string, number[]>([['MSH', [0]]]);
  for (let k = 1; k < lines.length; k++) {
    nameSegment(p, k);
    const name = p.names[k]!;
    const l = byName.get(name);
    if (l) l.push(k);
    else byName.set(name, [k]);
    if (slice.due()) await slice.pause();
  }
  return finishParse(p, byName);
}

/** The text from its MSH on (a BOM and leading white space dropped); HL7_E_NO_MSH when it does not start with one. */
function bodyOf(text: string): string {
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (start < text.length && text.charCodeAt(start) <= 0x20) start++;
  if (!text.startsWith('MSH', start)) throw hbError('HL7_E_NO_MSH');
  return start ? text.slice(start) : text;
}

interface ParseState {
  lines: string[];
  names: string[];
  sep: string;
  mshParts: string[];
  d: Hl7Delimiters;
  /** Segment names repeat (100,000 OBX): one string per distinct name instead of one per segment, less for the GC. */
  seen: Map<number, string>;
}

function startParse(lines: string[]): ParseState {
  const head = lines[0]!;
  if (head.length < 4) parseError('MSH-1 (field separator) is missing');
  const sep = head[3]!;
  const mshParts = head.split(sep);
  const d = delimitersFrom(sep, mshParts[1] ?? '');
  if (typeof d === 'string') parseError(d);
  mshParts.splice(1, 0, sep);
  const names = new Array<string>(lines.length);
  names[0] = 'MSH';
  return { lines, names, sep, mshParts, d, seen: new Map() };
}

function nameSegment(p: ParseState, k: number): void {
  const l = p.lines[k]!;
  if (!isSegmentName(l, p.sep)) parseError(`segment ${k + 1} has an invalid name (expected 3 upper-case letters or digits, then the field separator)`);
  const key = (l.charCodeAt(0) << 16) | (l.charCodeAt(1) << 8) | l.charCodeAt(2);
  let name = p.seen.get(key);
  if (name === undefined) p.seen.set(key, (name = l.slice(0, 3)));
  p.names[k] = name;
}

function finishParse(p: ParseState, byName?: Map<string, number[]>): Hl7Message {
  const msg = new Hl7Message(p.lines, p.names, p.mshParts, p.d, byName);
  if (msg.messageCode === '') parseError('MSH-9 (message type) is empty');
  if (msg.controlId === '') parseError('MSH-10 (message control id) is empty');
  if (msg.version === '') parseError('MSH-12 (version id) is empty');
  return msg;
}
