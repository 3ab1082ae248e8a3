/**
 * MLLP framing on bytes: `<VT> payload <FS><CR>` (0x0B ... 0x1C 0x0D).
 *
 * Frames are found on raw bytes, never on decoded text: the charset (MSH-18)
 * is only known once a whole frame is in hand, and GBK trail bytes can be `|`
 * or `^`. 0x0B and 0x1C cannot occur inside HL7 content in any charset we
 * accept (GBK/GB18030 trail bytes start at 0x30/0x40, UTF-8 continuation bytes
 * at 0x80), so a byte scan with `indexOf` is safe and fast.
 *
 * Tolerance choices, made on purpose:
 * - The trailing 0x0D is optional. A frame is complete at 0x1C and is emitted
 *   at once (a sender that omits the CR would otherwise wait forever for its
 *   ACK); a 0x0D directly after 0x1C, even in the next chunk, is swallowed.
 * - A 0x0B inside a frame means the sender abandoned the frame and started a
 *   new one: the abandoned bytes (with their start block) are reported as
 *   `garbage` and the new frame is decoded normally. (Not while skipping an
 *   oversized frame: that one ends only at its 0x1C.)
 * - Bytes between frames (including a stray LF after the CR) are `garbage`,
 *   summed per `push` call and reported after that call's frames, so a flood
 *   produces one event per chunk.
 */

export const START_BLOCK = 0x0b;
export const END_BLOCK = 0x1c;
export const CARRIAGE_RETURN = 0x0d;

/** Default maximum payload size of one frame: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** How much of an oversized frame is kept so the caller can read its MSH. */
export const TOO_LARGE_HEAD_BYTES = 4096;

/** What the decoder found in the byte stream. Byte counts never include the block characters. */
export type FrameEvent =
  | { kind: 'frame'; frame: Buffer }
  /** A frame over `joinAbove` bytes, still in the pieces it arrived in (the caller joins them, e.g. with concatYielding). */
  | { kind: 'frame-parts'; parts: Buffer[]; bytes: number }
  | { kind: 'garbage'; bytes: number }
  | { kind: 'too-large'; head: Buffer; bytes: number }
  | { kind: 'truncated'; bytes: number };

export interface FrameDecoderOptions {
  /** Largest accepted payload in bytes (default 16 MiB). Larger frames are skipped, not buffered. */
  maxFrameBytes?: number;
  /**
   * A complete frame over this many bytes is reported as `frame-parts` (its
   * pieces, not copied) instead of one Buffer: joining 4.5 MB in one go holds
   * the event loop for 20-70 ms on a busy machine (mostly first-touch page
   * faults of the new buffer), so the MLLP server joins it over several turns.
   * Default: never (every frame is one Buffer).
   */
  joinAbove?: number;
}

type State = 'between' | 'in-frame' | 'skipping';

/**
 * Per-connection MLLP decoder. Feed it every chunk read from the socket in
 * order; it returns the events found in that chunk. Payload pieces are kept as
 * sub-views of the incoming chunks and copied once, when the frame completes,
 * so a frame split over many packets costs O(size), not O(size²).
 *
 * Not shared between connections: each connection owns one instance.
 */
export class MllpFrameDecoder {
  readonly maxFrameBytes: number;
  readonly joinAbove: number;
  #state: State = 'between';
  #pieces: Buffer[] = [];
  #size = 0;
  #head: Buffer | null = null;
  #headLen = 0;
  #skipped = 0;
  #swallowCr = false;
  #framesEnded = 0;

  constructor(opts: FrameDecoderOptions = {}) {
    const max = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxFrameBytes must be a positive integer (got ${max})`);
    this.maxFrameBytes = max;
    this.joinAbove = opts.joinAbove ?? Number.POSITIVE_INFINITY;
  }

  /** Bytes of the frame currently being received (0 between frames). */
  get pendingBytes(): number {
    return this.#state === 'skipping' ? this.#skipped : this.#size;
  }

  /** True while a frame has started and its end block has not arrived. */
  get inFrame(): boolean {
    return this.#state !== 'between';
  }

  /**
   * Frames ended so far (completed, too large, or cut by `end()`). A caller
   * timing the open frame restarts its clock when this changes; a 0x0B that
   * abandons a frame and starts another does not count, so a sender cannot
   * keep one frame open forever by restarting it.
   */
  get framesEnded(): number {
    return this.#framesEnded;
  }

  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let garbage = 0;
    let pos = 0;
    const len = chunk.length;
    if (len > 0 && this.#swallowCr) {
      this.#swallowCr = false;
      if (chunk[0] === CARRIAGE_RETURN) pos = 1;
    }
    while (pos < len) {
      if (this.#state === 'between') {
        const sb = chunk.indexOf(START_BLOCK, pos);
        if (sb < 0) {
          garbage += len - pos;
          break;
        }
        garbage += sb - pos;
        this.#state = 'in-frame';
        pos = sb + 1;
        continue;
      }
      const eb = chunk.indexOf(END_BLOCK, pos);
      const stop = eb < 0 ? len : eb;
      if (this.#state === 'skipping') {
        this.#fillHead(chunk, pos, stop);
        this.#skipped += stop - pos;
      } else {
        const restart = stop > pos ? chunk.subarray(pos, stop).lastIndexOf(START_BLOCK) : -1;
        if (restart >= 0) {
          // Everything before the last 0x0B in this span was an abandoned frame.
          garbage += 1 + this.#size + restart;
          this.#reset();
          this.#state = 'in-frame';
          pos += restart + 1;
        }
        this.#append(chunk, pos, stop);
      }
      if (eb < 0) break;
      events.push(this.#complete());
      pos = eb + 1;
      if (pos < len) {
        if (chunk[pos] === CARRIAGE_RETURN) pos++;
      } else {
        this.#swallowCr = true;
      }
    }
    if (garbage > 0) events.push({ kind: 'garbage', bytes: garbage });
    return events;
  }

  /**
   * The connection ended: reports a frame left open as `truncated` (its bytes
   * are lost) and resets the decoder.
   */
  end(): FrameEvent[] {
    const events: FrameEvent[] = [];
    if (this.#state !== 'between') {
      events.push({ kind: 'truncated', bytes: this.pendingBytes });
      this.#framesEnded++;
    }
    this.#reset();
    this.#swallowCr = false;
    return events;
  }

  #append(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    const n = to - from;
    if (this.#size + n <= this.maxFrameBytes) {
      this.#pieces.push(chunk.subarray(from, to));
      this.#size += n;
      return;
    }
    // Over the limit: keep a copy of the head for MSH, drop everything else.
    this.#head = Buffer.allocUnsafe(TOO_LARGE_HEAD_BYTES);
    this.#headLen = 0;
    for (const p of this.#pieces) this.#fillHead(p, 0, p.length);
    this.#fillHead(chunk, from, to);
    this.#skipped = this.#size + n;
    this.#pieces = [];
    this.#size = 0;
    this.#state = 'skipping';
  }

  #fillHead(src: Buffer, from: number, to: number): void {
    if (!this.#head || this.#headLen >= this.#head.length || to <= from) return;
    this.#headLen += src.copy(this.#head, this.#headLen, from, to);
  }

  #complete(): FrameEvent {
    this.#framesEnded++;
    let ev: FrameEvent;
    if (this.#state === 'skipping') {
      ev = { kind: 'too-large', head: this.#head ? this.#head.subarray(0, this.#headLen) : Buffer.alloc(0), bytes: this.#skipped };
    } else if (this.#size > this.joinAbove && this.#pieces.length > 1) {
      ev = { kind: 'frame-parts', parts: this.#pieces, bytes: this.#size };
    } else {
      // Always a fresh copy: a frame must not pin the (larger) socket chunks it came from.
      ev = { kind: 'frame', frame: Buffer.concat(this.#pieces, this.#size) };
    }
    this.#reset();
    return ev;
  }

  #reset(): void {
    this.#state = 'between';
    this.#pieces = [];
    this.#size = 0;
    this.#head = null;
    this.#headLen = 0;
    this.#skipped = 0;
  }
}

/** Wraps a payload in an MLLP frame: `0x0B payload 0x1C 0x0D`. */
export function encodeFrame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(payload.length + 3);
  out[0] = START_BLOCK;
  payload.copy(out, 1);
  out[payload.length + 1] = END_BLOCK;
  out[payload.length + 2] = CARRIAGE_RETURN;
  return out;
}
