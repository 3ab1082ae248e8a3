import { describe, expect, it } from 'vitest';
import { MllpFrameDecoder, TOO_LARGE_HEAD_BYTES, encodeFrame, type FrameEvent } from '../../core/mllp/framing.js';

const VT = '\x0b';
const FS = '\x1c';
const CR = '\r';

function b(s: string, enc: BufferEncoding = 'latin1'): Buffer {
  return Buffer.from(s, enc);
}

function frames(events: FrameEvent[]): string[] {
  return events.flatMap((e) => (e.kind === 'frame' ? [e.frame.toString('latin1')] : []));
}

describe('MllpFrameDecoder', () => {
  it('decodes a frame fed one byte at a time, and swallows a CR that arrives in its own chunk', () => {
    const d = new MllpFrameDecoder();
    const wire = encodeFrame(b('MSH|^~\\&|A\rPID|1\r'));
    const events: FrameEvent[] = [];
    for (const byte of wire) events.push(...d.push(Buffer.from([byte])));
    expect(events).toEqual([{ kind: 'frame', frame: b('MSH|^~\\&|A\rPID|1\r') }]);
    expect(d.inFrame).toBe(false);
    expect(d.end()).toEqual([]);
  });

  it('decodes fifty frames from one chunk, in order', () => {
    const d = new MllpFrameDecoder();
    const wire = Buffer.concat(Array.from({ length: 50 }, (_, i) => encodeFrame(b(`MSH|^~\\&|${i}`))));
    expect(frames(d.push(wire))).toEqual(Array.from({ length: 50 }, (_, i) => `MSH|^~\\&|${i}`));
  });

  it('handles a frame boundary in the middle of a chunk with the next frame split across chunks', () => {
    const d = new MllpFrameDecoder();
    const wire = Buffer.concat([encodeFrame(b('first')), encodeFrame(b('second'))]);
    const out = [...d.push(wire.subarray(0, 12)), ...d.push(wire.subarray(12, 14)), ...d.push(wire.subarray(14))];
    expect(frames(out)).toEqual(['first', 'second']);
    expect(out.some((e) => e.kind === 'garbage')).toBe(false);
  });

  it('accepts a frame without the trailing CR and emits it at the end block', () => {
    const d = new MllpFrameDecoder();
    expect(frames(d.push(b(`${VT}one${FS}`)))).toEqual(['one']);
    expect(frames(d.push(b(`${VT}two${FS}${VT}three${FS}${CR}`)))).toEqual(['two', 'three']);
  });

  it('keeps GBK bytes that look like delimiters intact', () => {
    // 億 = 83 7C and 區 = 85 5E in GBK: second bytes are '|' and '^'.
    const payload = Buffer.from([0x4d, 0x53, 0x48, 0x7c, 0x83, 0x7c, 0x85, 0x5e, 0x0d]);
    const d = new MllpFrameDecoder();
    const ev = d.push(encodeFrame(payload));
    expect(ev).toHaveLength(1);
    expect(ev[0]).toEqual({ kind: 'frame', frame: payload });
  });

  it('reports bytes outside frames as garbage, once per chunk, with their count', () => {
    const d = new MllpFrameDecoder();
    const ev = d.push(b(`junk${VT}a${FS}${CR}\n\n${VT}b${FS}${CR}xy`));
    expect(frames(ev)).toEqual(['a', 'b']);
    expect(ev.filter((e) => e.kind === 'garbage')).toEqual([{ kind: 'garbage', bytes: 4 + 2 + 2 }]);
  });

  it('treats a start block inside a frame as an abandoned frame (garbage) and decodes the new one', () => {
    const d = new MllpFrameDecoder();
    const first = d.push(b(`${VT}half a mess`));
    expect(first).toEqual([]);
    const ev = d.push(b(`age${VT}whole${FS}${CR}`));
    expect(frames(ev)).toEqual(['whole']);
    expect(ev.filter((e) => e.kind === 'garbage')).toEqual([{ kind: 'garbage', bytes: 1 + 11 + 3 }]);
  });

  it('skips an oversized frame without buffering it, keeps its head, then decodes the next frame', () => {
    const d = new MllpFrameDecoder({ maxFrameBytes: 1024 });
    const big = b(`MSH|^~\\&|BIG|${'x'.repeat(10_000)}`);
    const wire = Buffer.concat([encodeFrame(big), encodeFrame(b('small'))]);
    const out: FrameEvent[] = [];
    for (let i = 0; i < wire.length; i += 700) {
      out.push(...d.push(wire.subarray(i, i + 700)));
      if (d.inFrame) expect(d.pendingBytes).toBeLessThanOrEqual(Math.max(1024, i + 700));
    }
    expect(out).toHaveLength(2);
    const tl = out[0]!;
    expect(tl.kind).toBe('too-large');
    if (tl.kind !== 'too-large') return;
    expect(tl.bytes).toBe(big.length);
    expect(tl.head.length).toBe(TOO_LARGE_HEAD_BYTES);
    expect(tl.head.toString('latin1').startsWith('MSH|^~\\&|BIG|xxx')).toBe(true);
    expect(frames(out)).toEqual(['small']);
  });

  it('accepts a frame of exactly maxFrameBytes', () => {
    const d = new MllpFrameDecoder({ maxFrameBytes: 8 });
    expect(frames(d.push(encodeFrame(b('12345678'))))).toEqual(['12345678']);
    expect(d.push(encodeFrame(b('123456789')))[0]).toMatchObject({ kind: 'too-large', bytes: 9 });
  });

  it('reports a frame left open at end() as truncated with its byte count, and resets', () => {
    const d = new MllpFrameDecoder();
    d.push(b(`${VT}MSH|partial`));
    expect(d.end()).toEqual([{ kind: 'truncated', bytes: 11 }]);
    expect(d.end()).toEqual([]);
    expect(frames(d.push(encodeFrame(b('next'))))).toEqual(['next']);
  });

  it('returns frames that do not share memory with the input chunk', () => {
    const d = new MllpFrameDecoder();
    const wire = encodeFrame(b('abc'));
    const [ev] = d.push(wire);
    wire.fill(0);
    expect(ev).toEqual({ kind: 'frame', frame: b('abc') });
  });

  it('rejects a nonsensical limit at construction', () => {
    expect(() => new MllpFrameDecoder({ maxFrameBytes: 0 })).toThrow(RangeError);
  });
});
