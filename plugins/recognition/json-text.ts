/**
 * A JSON array already written as UTF-8 bytes: what a lab report's 100,000
 * results become when they are written straight from the OBX segments,
 * without an object or a string per result (issue 11: building, serializing,
 * encoding and collecting those was most of the delivery's time). The
 * recognition client copies the bytes into the request body as they stand;
 * `JSON.stringify` of a payload holding one writes the same text through
 * `toJSON`.
 */
import { TimeSlice } from '../../core/sdk.js';

export class JsonArrayBytes {
  constructor(
    /** The items' JSON as UTF-8, joined by ',' into chunks (no brackets); no chunk is empty. */
    readonly chunks: readonly Buffer[],
    /** Number of items. */
    readonly length: number,
    /** Every object key the items can have (at any depth): a key rename that touches none of them leaves the bytes as they are. */
    readonly keys: readonly string[],
  ) {}

  /** The items as values (one JSON.parse per chunk). */
  toJSON(): unknown[] {
    const out: unknown[] = [];
    for (const c of this.chunks) for (const v of JSON.parse(`[${c.toString('utf8')}]`) as unknown[]) out.push(v);
    return out;
  }

  /** toJSON in time slices: one chunk parsed per step (the clock is read after every chunk). */
  async itemsYielding(slice: TimeSlice = new TimeSlice(10, 1)): Promise<unknown[]> {
    const out: unknown[] = [];
    for (const c of this.chunks) {
      for (const v of JSON.parse(`[${c.toString('utf8')}]`) as unknown[]) out.push(v);
      if (slice.due()) await slice.pause();
    }
    return out;
  }
}

/** Bytes per chunk of a JsonArrayBytes being written (an item larger than this gets a chunk of its own). */
const CHUNK_BYTES = 128 * 1024;

/**
 * Writes the items of a JsonArrayBytes. Per item: `item(maxBytes)`, then the
 * item's JSON through `lit` (ASCII text such as keys) and `chars` (a range
 * of a string, UTF-8 encoded; the caller has made sure it needs no JSON
 * escaping and has no surrogate) or `text` (any JSON text).
 */
export class JsonArrayBytesWriter {
  #buf = Buffer.allocUnsafe(CHUNK_BYTES);
  #pos = 0;
  readonly #chunks: Buffer[] = [];
  #count = 0;

  get length(): number {
    return this.#count;
  }

  /** Starts an item of at most `maxBytes` bytes (a ',' is written before every item but the first of a chunk). */
  item(maxBytes: number): void {
    if (this.#pos + maxBytes + 1 > this.#buf.length) {
      this.#flush();
      if (maxBytes + 1 > this.#buf.length) this.#buf = Buffer.allocUnsafe(maxBytes + 1);
    }
    if (this.#pos > 0) this.#buf[this.#pos++] = 0x2c;
    this.#count++;
  }

  /** ASCII text (keys, numbers), a byte per character: for a few bytes a loop beats TypedArray.set. */
  lit(ascii: string): void {
    const b = this.#buf;
    let p = this.#pos;
    for (let i = 0; i < ascii.length; i++) b[p++] = ascii.charCodeAt(i);
    this.#pos = p;
  }

  /** s[from, to) as UTF-8 (at most 3 bytes per character: no surrogates). */
  chars(s: string, from: number, to: number): void {
    const b = this.#buf;
    let p = this.#pos;
    for (let i = from; i < to; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) b[p++] = c;
      else if (c < 0x800) {
        b[p++] = 0xc0 | (c >> 6);
        b[p++] = 0x80 | (c & 0x3f);
      } else {
        b[p++] = 0xe0 | (c >> 12);
        b[p++] = 0x80 | ((c >> 6) & 0x3f);
        b[p++] = 0x80 | (c & 0x3f);
      }
    }
    this.#pos = p;
  }

  /** Any text (item() must have allowed 3 bytes per UTF-16 unit). */
  text(s: string): void {
    this.#pos += this.#buf.write(s, this.#pos, 'utf8');
  }

  #flush(more = true): void {
    if (this.#pos === 0) return;
    this.#chunks.push(this.#buf.subarray(0, this.#pos));
    if (more) this.#buf = Buffer.allocUnsafe(CHUNK_BYTES);
    this.#pos = 0;
  }

  done(keys: readonly string[]): JsonArrayBytes {
    this.#flush(false);
    return new JsonArrayBytes(this.#chunks, this.#count, keys);
  }
}
