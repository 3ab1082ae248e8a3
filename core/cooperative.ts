/**
 * Cooperative scheduling for big messages (issue 11, "no message blocks the
 * event loop for more than 50 ms"). The engine runs on one thread: a step
 * that works through a 100,000-segment message in one go stalls every ACK,
 * every socket and /healthz meanwhile. Such steps are linear, and they give
 * the event loop a turn between pieces of work with these helpers.
 */
import { performance } from 'node:perf_hooks';

/** Gives the event loop a turn (I/O callbacks, timers, other connections) before going on. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Above this many bytes a message's big synchronous steps (decode, parse,
 * routing, commit) are separated by a turn of the event loop. Smaller
 * messages, nearly all traffic, pay nothing.
 */
export const BIG_MESSAGE_BYTES = 64 * 1024;

/** A turn of the event loop when `bytes` is big (see BIG_MESSAGE_BYTES); nothing otherwise. */
export function yieldIfBig(bytes: number): Promise<void> | undefined {
  return bytes > BIG_MESSAGE_BYTES ? yieldToLoop() : undefined;
}

/**
 * Time slices for a long loop: `if (slice.due()) await slice.pause();` in the
 * loop body gives the event loop a turn once the loop has run `budgetMs`
 * since the last turn. The clock is read every `checkEvery` iterations only,
 * so a short loop costs a counter increment per iteration.
 */
export class TimeSlice {
  #start = performance.now();
  #n = 0;
  constructor(
    readonly budgetMs = 10,
    readonly checkEvery = 64,
  ) {}

  /** True when the loop has used its time slice. */
  due(): boolean {
    if (++this.#n % this.checkEvery !== 0) return false;
    return performance.now() - this.#start >= this.budgetMs;
  }

  /** Yields to the event loop and starts a new slice. */
  async pause(): Promise<void> {
    await yieldToLoop();
    this.#start = performance.now();
  }
}

/** True for a value JSON.stringify writes in one short call: a primitive, or an object or short array of primitives. */
function flat(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return true;
  if (Array.isArray(v)) {
    if (v.length > 64) return false;
    for (const x of v) if (x !== null && typeof x === 'object') return false;
    return true;
  }
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== null && typeof x === 'object') return false;
  }
  return true;
}

/**
 * `JSON.stringify(value)` for plain JSON data (objects, arrays, strings,
 * numbers, booleans, null; values with `toJSON`, such as Buffer or Date, are
 * written by JSON.stringify), giving the event loop a turn whenever the
 * slice is used up. The text is the same as JSON.stringify's. A 100,000-item
 * array is written item by item, each small item in one native call, so no
 * step holds the loop for more than a slice; the cost stays linear.
 */
export async function stringifyJsonYielding(value: unknown, slice: TimeSlice = new TimeSlice()): Promise<string> {
  if (flat(value)) return JSON.stringify(value);
  return (await stringifyJsonChunks(value, slice)).join('');
}

/**
 * Most flat array items written by one JSON.stringify call. TimeSlice reads
 * the clock every 64 checks, so 64 runs of this many small items is what can
 * pass between two reads (a few ms for lab results).
 */
const ARRAY_RUN = 32;

/** Parts joined into one chunk string at a time: a single join of a million parts would be one long turn. */
const JOIN_PARTS = 4096;

/**
 * The text of stringifyJsonYielding as a list of chunks (each up to a few
 * thousand parts joined), in order: a caller can hash and encode them one by
 * one without ever holding the loop for the whole text.
 */
export async function stringifyJsonChunks(value: unknown, slice: TimeSlice = new TimeSlice()): Promise<string[]> {
  const chunks: string[] = [];
  let parts: string[] = [];
  const push = (t: string): void => {
    parts.push(t);
    if (parts.length >= JOIN_PARTS) {
      chunks.push(parts.join(''));
      parts = [];
    }
  };
  const write = async (v: unknown, inArray: boolean): Promise<void> => {
    if (flat(v) || typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      const s = JSON.stringify(v);
      push(s === undefined ? (inArray ? 'null' : '') : s);
      return;
    }
    if (Array.isArray(v)) {
      push('[');
      let i = 0;
      while (i < v.length) {
        if (i > 0) push(',');
        // A run of flat items is written by one native call, the same text as
        // item by item: a 100,000-result lab report made 100,000 awaits and
        // as many small stringify calls (issue 11, its delivery time).
        let j = i;
        while (j < v.length && j - i < ARRAY_RUN && flat(v[j])) j++;
        if (j > i) {
          push(JSON.stringify(v.slice(i, j)).slice(1, -1));
          i = j;
        } else {
          await write(v[i], true);
          i++;
        }
        if (slice.due()) await slice.pause();
      }
      push(']');
      return;
    }
    push('{');
    let first = true;
    for (const k of Object.keys(v as object)) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
      push(first ? `${JSON.stringify(k)}:` : `,${JSON.stringify(k)}:`);
      first = false;
      await write(x, false);
      if (slice.due()) await slice.pause();
    }
    push('}');
  };
  await write(value, false);
  if (parts.length) chunks.push(parts.join(''));
  return chunks;
}

const JSON_WS = /[ \t\n\r]*/y;
const NON_ASCII = /[^\x00-\x7f]/;
const JSON_PLAIN_STRING = /"[^"\\\u0000-\u001f]*"/y;
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** Longest array-item object read by one JSON.parse call in JsonSlicer (a few µs of native work). */
const SMALL_OBJECT_CHARS = 4096;

/** Most characters of consecutive array-item objects read by one JSON.parse call in JsonSlicer (well under a millisecond of native work). */
const ITEM_RUN_CHARS = 128 * 1024;

/** Failed tries at a run of items after which JsonSlicer stops trying in a text: the wasted work stays a few ITEM_RUN_CHARS. */
const MAX_RUN_FAILURES = 8;

/** A value from JSON.parse with every object key mapped by `rename`, in order; `__proto__` stays an own property. */
function renameKeys(v: unknown, rename: (key: string) => string): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = renameKeys(v[i], rename);
    return v;
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const key = rename(k);
    const x = renameKeys((v as Record<string, unknown>)[k], rename);
    if (key === '__proto__') Object.defineProperty(out, key, { value: x, enumerable: true, writable: true, configurable: true });
    else out[key] = x;
  }
  return out;
}

type JsonFrame = { array: unknown[]; object?: undefined; key?: undefined; noRuns?: boolean } | { array?: undefined; object: Record<string, unknown>; key: string | undefined };

/**
 * An iterative JSON parser that can stop between any two values and go on
 * later: `parseJsonYielding` runs it in time slices. Strings and numbers are
 * read with native regular expressions (a string with escapes through
 * JSON.parse), so the cost is linear in the text. Errors are SyntaxErrors,
 * as JSON.parse throws. A key `__proto__` becomes an own property, as with
 * JSON.parse, never the object's prototype.
 */
class JsonSlicer {
  #i = 0;
  #stack: JsonFrame[] = [];
  #mode: 'value' | 'after' | 'key' = 'value';
  #root: unknown;
  #done = false;
  /** Failed tries at a run of array items; past MAX_RUN_FAILURES no more are made in this text (each costs a scan). */
  #runFailures = 0;
  constructor(
    readonly text: string,
    readonly renameKey?: (key: string) => string,
    /**
     * When given, `text` is these bytes read as latin1 (one character per
     * byte, so positions are byte offsets) and every string, run or item is
     * decoded from the bytes as UTF-8 where it has a byte over 0x7f.
     */
    readonly bytes?: Buffer,
  ) {}

  /** text[from, to) as the JSON text it stands for (UTF-8 decoded from the bytes when it is not plain ASCII). */
  #slice(from: number, to: number): string {
    const t = this.text.slice(from, to);
    return this.bytes && NON_ASCII.test(t) ? this.bytes.toString('utf8', from, to) : t;
  }

  get result(): unknown {
    return this.#root;
  }

  #fail(what: string): never {
    throw new SyntaxError(`${what} in JSON at position ${this.#i}`);
  }

  #ws(): void {
    // Compact JSON (what the engine sends) has no whitespace between tokens: one character read instead of a regular expression per token.
    const c = this.text.charCodeAt(this.#i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
    JSON_WS.lastIndex = this.#i;
    JSON_WS.exec(this.text);
    this.#i = JSON_WS.lastIndex;
  }

  #string(): string {
    const s = this.text;
    JSON_PLAIN_STRING.lastIndex = this.#i;
    const m = JSON_PLAIN_STRING.exec(s);
    if (m) {
      const from = this.#i + 1;
      this.#i = JSON_PLAIN_STRING.lastIndex;
      return this.bytes ? this.#slice(from, this.#i - 1) : m[0].slice(1, -1);
    }
    // Escapes (or a control character, which JSON.parse refuses): find the closing quote, then let JSON.parse read it.
    let j = this.#i + 1;
    for (;;) {
      const q = s.indexOf('"', j);
      if (q < 0) this.#fail('Unterminated string');
      let b = q - 1;
      while (b > this.#i && s.charCodeAt(b) === 0x5c) b--;
      if ((q - 1 - b) % 2 === 0) {
        const v = JSON.parse(this.#slice(this.#i, q + 1)) as string;
        this.#i = q + 1;
        return v;
      }
      j = q + 1;
    }
  }

  #emit(v: unknown): void {
    const top = this.#stack[this.#stack.length - 1];
    if (!top) {
      this.#root = v;
      this.#ws();
      if (this.#i !== this.text.length) this.#fail('Unexpected non-whitespace character after JSON');
      this.#done = true;
      return;
    }
    if (top.array) top.array.push(v);
    else {
      const k = top.key!;
      if (k === '__proto__') Object.defineProperty(top.object, k, { value: v, enumerable: true, writable: true, configurable: true });
      else top.object[k] = v;
    }
    this.#mode = 'after';
  }

  /**
   * The index just past the `}` that closes the object starting at the
   * current position, when it is within SMALL_OBJECT_CHARS; else -1. Strings
   * are skipped with their escapes, so a brace inside a string does not count.
   */
  #smallObjectEnd(): number {
    const s = this.text;
    const limit = Math.min(s.length, this.#i + SMALL_OBJECT_CHARS);
    let depth = 0;
    for (let j = this.#i; j < limit; j++) {
      const c = s.charCodeAt(j);
      if (c === 0x22) {
        for (j++; j < limit; j++) {
          const d = s.charCodeAt(j);
          if (d === 0x5c) j++;
          else if (d === 0x22) break;
        }
      } else if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) {
        if (--depth === 0) return j + 1;
      }
    }
    return -1;
  }

  /** Reads up to `budget` values; true when the text is fully parsed. */
  run(budget: number): boolean {
    const s = this.text;
    while (!this.#done && budget-- > 0) {
      this.#ws();
      const c = s.charCodeAt(this.#i);
      if (this.#mode === 'key') {
        if (c !== 0x22) this.#fail('Expected property name');
        const key = this.#string();
        this.#ws();
        if (s.charCodeAt(this.#i) !== 0x3a) this.#fail("Expected ':' after property name");
        this.#i++;
        (this.#stack[this.#stack.length - 1] as { key: string }).key = this.renameKey ? this.renameKey(key) : key;
        this.#mode = 'value';
        continue;
      }
      if (this.#mode === 'after') {
        const top = this.#stack[this.#stack.length - 1]!;
        const close = top.array ? 0x5d : 0x7d;
        if (c === 0x2c) {
          this.#i++;
          this.#mode = top.array ? 'value' : 'key';
        } else if (c === close) {
          this.#i++;
          this.#stack.pop();
          this.#emit(top.array ?? top.object);
        } else this.#fail(`Expected ',' or '${String.fromCharCode(close)}'`);
        continue;
      }
      // A value.
      const frame = this.#stack[this.#stack.length - 1];
      const inArray = frame?.array;
      if (c === 0x7b && inArray && !frame.noRuns && this.#runFailures < MAX_RUN_FAILURES) {
        // A run of objects that are array items (100,000 lab results): cut
        // after the last `},{` within ITEM_RUN_CHARS and read the run with
        // one JSON.parse call. Success proves the cut falls between two
        // items of this array: a cut inside a string leaves it unterminated,
        // one inside a nested value or past the array's end leaves a bracket
        // unbalanced. A failure turns runs off for this array (items with
        // nested objects, whitespace between items, an error to locate).
        const limit = this.#i + ITEM_RUN_CHARS;
        const cut = limit < s.length ? s.lastIndexOf('},{', limit) : s.lastIndexOf('},{');
        let items: unknown[] | undefined;
        if (cut > this.#i) {
          try {
            items = JSON.parse(`[${this.#slice(this.#i, cut + 1)}]`) as unknown[];
          } catch {
            items = undefined;
          }
        }
        if (items) {
          budget -= (cut + 1 - this.#i) >> 5;
          this.#i = cut + 1;
          for (const v of items) inArray.push(this.renameKey ? renameKeys(v, this.renameKey) : v);
          this.#mode = 'after';
          continue;
        }
        frame.noRuns = true;
        this.#runFailures++;
      }
      if (c === 0x7b && inArray) {
        // An object that is an array item (a lab result among 100,000) and
        // short: found by one scan and read by JSON.parse in one native call,
        // instead of token by token. Counted against the budget by its length.
        const end = this.#smallObjectEnd();
        if (end > 0) {
          let v: unknown;
          try {
            v = JSON.parse(this.#slice(this.#i, end));
          } catch {
            v = undefined;
          }
          if (v !== undefined) {
            budget -= (end - this.#i) >> 5;
            this.#i = end;
            this.#emit(this.renameKey ? renameKeys(v, this.renameKey) : v);
            continue;
          }
          // Invalid inside: the token reader below finds and names the error.
        }
      }
      if (c === 0x7b || c === 0x5b) {
        this.#i++;
        this.#ws();
        const empty = s.charCodeAt(this.#i) === (c === 0x7b ? 0x7d : 0x5d);
        if (empty) {
          this.#i++;
          this.#emit(c === 0x7b ? {} : []);
        } else if (c === 0x7b) {
          this.#stack.push({ object: {}, key: undefined });
          this.#mode = 'key';
        } else {
          this.#stack.push({ array: [] });
          this.#mode = 'value';
        }
      } else if (c === 0x22) this.#emit(this.#string());
      else if (s.startsWith('true', this.#i)) {
        this.#i += 4;
        this.#emit(true);
      } else if (s.startsWith('false', this.#i)) {
        this.#i += 5;
        this.#emit(false);
      } else if (s.startsWith('null', this.#i)) {
        this.#i += 4;
        this.#emit(null);
      } else {
        JSON_NUMBER.lastIndex = this.#i;
        const m = JSON_NUMBER.exec(s);
        if (!m || m[0] === '' || m[0] === '-') this.#fail(this.#i >= s.length ? 'Unexpected end' : 'Unexpected token');
        this.#i = JSON_NUMBER.lastIndex;
        this.#emit(Number(m[0]));
      }
    }
    return this.#done;
  }
}

/**
 * `JSON.parse(text)` in time slices: a big text (over BIG_MESSAGE_BYTES) is
 * read a few thousand values at a time with a turn of the event loop whenever
 * the slice is used up; a small one goes to JSON.parse at once. `renameKey`
 * maps each object key as it is read (no second walk over the result).
 * Throws SyntaxError on invalid JSON, as JSON.parse does.
 */
export async function parseJsonYielding(text: string, opts: { slice?: TimeSlice; renameKey?: (key: string) => string } = {}): Promise<unknown> {
  if (text.length <= BIG_MESSAGE_BYTES && !opts.renameKey) return JSON.parse(text) as unknown;
  const slice = opts.slice ?? new TimeSlice(10, 1);
  const p = new JsonSlicer(text, opts.renameKey);
  while (!p.run(2048)) if (slice.due()) await slice.pause();
  return p.result;
}

/**
 * parseJsonYielding of UTF-8 bytes (a request body), without ever making the
 * whole text one JavaScript string of UTF-16: the bytes are read as latin1
 * (a byte per character, a plain copy) and each string, run of items or
 * short item with a byte over 0x7f is decoded as UTF-8 where it stands. A
 * 13 MB lab report with one Chinese name in it made a 26 MB two-byte string
 * before (issue 11: its decode and flattening were a third of the
 * simulator's read). Invalid UTF-8 reads as U+FFFD, as Buffer#toString does.
 * Throws SyntaxError on invalid JSON.
 */
export async function parseJsonBytesYielding(bytes: Buffer, opts: { slice?: TimeSlice; renameKey?: (key: string) => string } = {}): Promise<unknown> {
  // A leading byte order mark is dropped, as TextDecoder does.
  const body = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
  if (body.length <= BIG_MESSAGE_BYTES && !opts.renameKey) return JSON.parse(body.toString('utf8')) as unknown;
  const slice = opts.slice ?? new TimeSlice(10, 1);
  const p = new JsonSlicer(body.toString('latin1'), opts.renameKey, body);
  while (!p.run(2048)) if (slice.due()) await slice.pause();
  return p.result;
}

/** Bytes copied per event-loop turn by concatYielding. */
const CONCAT_SLICE_BYTES = 1024 * 1024;

/**
 * `Buffer.concat(parts, bytes)` over several turns of the event loop: at most
 * about 1 MiB is copied per turn. The result is a fresh buffer (it does not
 * pin the parts). Linear in `bytes`.
 */
export async function concatYielding(parts: readonly Buffer[], bytes: number): Promise<Buffer> {
  if (bytes <= CONCAT_SLICE_BYTES) return Buffer.concat(parts as Buffer[], bytes);
  const out = Buffer.allocUnsafe(bytes);
  let off = 0;
  let sinceTurn = 0;
  for (const p of parts) {
    const n = Math.min(p.length, bytes - off);
    p.copy(out, off, 0, n);
    off += n;
    sinceTurn += n;
    if (off >= bytes) break;
    if (sinceTurn >= CONCAT_SLICE_BYTES) {
      sinceTurn = 0;
      await yieldToLoop();
    }
  }
  if (off < bytes) out.fill(0, off);
  return out;
}
