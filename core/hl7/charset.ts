/**
 * Character sets of HL7 v2 frames. Bytes must never become a JS string before
 * the charset is known: in GBK the second byte of a character can be `|`, `^`,
 * `~` or `\` (億 = 83 7C, 區 = 85 5E), so splitting decoded-as-latin1 text
 * would cut names apart. The listener frames on bytes, reads MSH-18 from the
 * bytes here, then decodes once.
 */
import { isUtf8 } from 'node:buffer';
import iconv from 'iconv-lite';
import { hbError } from '../errors.js';

/** Decoder names this module produces. */
export type CanonicalCharset = 'utf-8' | 'gb18030' | 'latin1' | 'ascii';

const CR = 0x0d;
const LF = 0x0a;

function bomLength(frame: Buffer): number {
  return frame.length >= 3 && frame[0] === 0xef && frame[1] === 0xbb && frame[2] === 0xbf ? 3 : 0;
}

function mshEnd(frame: Buffer, start: number): number {
  for (let i = start; i < frame.length; i++) {
    const b = frame[i];
    if (b === CR || b === LF) return i;
  }
  return frame.length;
}

/**
 * Reads MSH-18 (first repetition) from raw bytes without decoding the frame.
 * Returns undefined when the frame does not start with MSH or MSH-18 is empty.
 *
 * The fields before MSH-18 are normally ASCII, but MSH-4 sometimes carries a
 * Chinese facility name: when the MSH segment is not valid UTF-8, GBK
 * double-byte characters are stepped over as a whole so that a trail byte
 * equal to the field separator is not counted.
 */
export function readMsh18(frame: Buffer): string | undefined {
  const start = bomLength(frame);
  if (frame.length < start + 4 || frame[start] !== 0x4d || frame[start + 1] !== 0x53 || frame[start + 2] !== 0x48) return undefined;
  const sep = frame[start + 3]!;
  if (sep === CR || sep === LF) return undefined;
  const end = mshEnd(frame, start + 4);
  const rep = end > start + 5 ? frame[start + 5]! : -1;
  const gbk = !isUtf8(frame.subarray(start, end));

  // MSH-1 is the separator itself, so the byte after it starts MSH-2.
  let field = 2;
  let valueStart = -1;
  for (let i = start + 4; i < end; i++) {
    const b = frame[i]!;
    if (gbk && b >= 0x81 && b <= 0xfe && i + 1 < end) {
      i++;
      continue;
    }
    if (b === sep) {
      if (field === 18) return cleanName(frame, valueStart, i);
      field++;
      if (field === 18) valueStart = i + 1;
    } else if (field === 18 && b === rep) {
      return cleanName(frame, valueStart, i);
    }
  }
  return field === 18 ? cleanName(frame, valueStart, end) : undefined;
}

function cleanName(frame: Buffer, from: number, to: number): string | undefined {
  if (from < 0 || to <= from) return undefined;
  const s = frame.toString('latin1', from, to).trim();
  return s === '' ? undefined : s;
}

/**
 * HL7 table 0211 names (and the names Chinese HIS vendors actually send)
 * keyed by their upper-case form with spaces, dashes, underscores, slashes
 * and dots removed.
 */
const NAMES: Record<string, CanonicalCharset> = {
  GB180302000: 'gb18030',
  GB180302005: 'gb18030',
  GB18030: 'gb18030',
  GBK: 'gb18030',
  GB2312: 'gb18030',
  GB23121980: 'gb18030',
  CP936: 'gb18030',
  EUCCN: 'gb18030',
  // Strictly UCS-2 in HL7, but in practice senders write UNICODE for UTF-8 (a
  // UTF-16 frame could not carry an ASCII MSH over MLLP anyway).
  UNICODE: 'utf-8',
  UNICODEUTF8: 'utf-8',
  UTF8: 'utf-8',
  ISOIR192: 'utf-8',
  ASCII: 'ascii',
  USASCII: 'ascii',
  ISOIR6: 'ascii',
  '88591': 'latin1',
  ISOIR100: 'latin1',
  ISO88591: 'latin1',
  LATIN1: 'latin1',
};

/**
 * Maps an HL7 charset name (MSH-18 or a listener setting) to a decoder name.
 * An empty or absent name falls back to `fallback` (itself an HL7 or
 * canonical name). Unknown names throw HL7_E_CHARSET.
 */
export function normalizeCharset(name: string | undefined, fallback: string): CanonicalCharset {
  const chosen = name === undefined || name.trim() === '' ? fallback : name;
  const key = chosen.toUpperCase().replace(/[\s\-_/.]/g, '');
  const found = NAMES[key];
  if (!found) throw hbError('HL7_E_CHARSET', { charset: chosen.slice(0, 40) });
  return found;
}

const gbDecoder = new TextDecoder('gb18030');
const utf8Decoder = new TextDecoder('utf-8');
const gbStrict = new TextDecoder('gb18030', { fatal: true });
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Where the first byte sequence invalid in the charset sits, for the reject reason (never the bytes themselves). */
export interface InvalidBytes {
  /** Byte offset in the frame. */
  offset: number;
  /** Segment name, e.g. `PID` (`?` when the segment name itself is not readable). */
  segment: string;
  /** Field number (MSH counts MSH-1 as the separator); 0 in the segment name. */
  field: number;
  /** `PID-5`, or `PID` when the name itself is broken. */
  location: string;
}

/** A decoded frame; `invalid` is set when some bytes were not valid in the charset and became U+FFFD. */
export interface DecodedHl7 {
  text: string;
  charset: CanonicalCharset;
  invalid?: InvalidBytes;
}

/** Length of the character starting with `b` in UTF-8 or GB18030, or 0 when no character starts with it. */
function charLength(charset: 'utf-8' | 'gb18030', buf: Buffer, i: number): number {
  const b = buf[i]!;
  if (b < 0x80) return 1;
  if (charset === 'utf-8') {
    if (b >= 0xc2 && b <= 0xdf) return 2;
    if (b >= 0xe0 && b <= 0xef) return 3;
    if (b >= 0xf0 && b <= 0xf4) return 4;
    return 0;
  }
  if (b === 0x80) return 1; // WHATWG gb18030 maps 0x80 to the euro sign
  if (b === 0xff) return 0;
  const b2 = buf[i + 1];
  return b2 !== undefined && b2 >= 0x30 && b2 <= 0x39 ? 4 : 2;
}

/**
 * Finds the first invalid sequence of a frame the strict decoder refused.
 * Linear: segments are found on CR/LF bytes (never part of a multi-byte
 * character in UTF-8 or GB18030), only the first failing segment is walked
 * character by character, and the field is counted in the valid text before
 * the bad bytes (in GBK a trail byte can equal `|`, so bytes are not counted).
 */
function locateInvalid(body: Buffer, base: number, charset: 'utf-8' | 'gb18030'): InvalidBytes {
  const strict = charset === 'utf-8' ? utf8Strict : gbStrict;
  let start = 0;
  while (start < body.length) {
    let end = start;
    while (end < body.length && body[end] !== CR && body[end] !== LF) end++;
    const seg = body.subarray(start, end);
    let ok = true;
    try {
      strict.decode(seg);
    } catch {
      ok = false;
    }
    if (!ok) {
      let i = 0;
      while (i < seg.length) {
        const n = charLength(charset, seg, i);
        let valid = n > 0 && i + n <= seg.length;
        if (valid && n > 1) {
          try {
            strict.decode(seg.subarray(i, i + n));
          } catch {
            valid = false;
          }
        }
        if (!valid) break;
        i += n;
      }
      const before = strict.decode(seg.subarray(0, i));
      const name = /^[A-Z][A-Z0-9]{2}/.test(before) ? before.slice(0, 3) : '?';
      let field = 0;
      if (name !== '?' && before.length > 3) {
        const sep = before[3]!;
        for (let k = 3; k < before.length; k++) if (before[k] === sep) field++;
        if (name === 'MSH') field++;
      }
      return { offset: base + start + i, segment: name, field, location: field > 0 ? `${name}-${field}` : name };
    }
    start = end + 1;
  }
  return { offset: base, segment: '?', field: 0, location: '?' };
}

/**
 * Decodes a frame (MLLP envelope already removed). MSH-18 wins over
 * `defaultCharset` (the listener's setting for senders that leave it empty).
 * `ascii` frames are decoded as UTF-8 so that a sender that claims ASCII but
 * sends UTF-8 does not lose characters; `latin1` is true ISO 8859-1.
 * A UTF-8 byte order mark is dropped.
 *
 * Bytes invalid in the charset become U+FFFD in `text`, and `invalid` says
 * where the first such sequence is: the caller decides whether to refuse the
 * message (listener `invalidBytes: reject`) or keep it marked (`replace`).
 * The strict check is the platform's fatal TextDecoder: one native pass.
 */
export function decodeHl7(frame: Buffer, defaultCharset: string): DecodedHl7 {
  const charset = normalizeCharset(readMsh18(frame), defaultCharset);
  const bom = bomLength(frame);
  const body = frame.subarray(bom);
  if (charset === 'latin1') return { text: body.toString('latin1'), charset };
  const kind = charset === 'gb18030' ? 'gb18030' : 'utf-8';
  try {
    return { text: (kind === 'gb18030' ? gbStrict : utf8Strict).decode(body), charset };
  } catch {
    const text = (kind === 'gb18030' ? gbDecoder : utf8Decoder).decode(body);
    return { text, charset, invalid: locateInvalid(body, bom, kind) };
  }
}

/**
 * Encodes text for the wire in `charset` (canonical or HL7 name). GB18030
 * covers GBK and GB2312: characters in GBK get their GBK bytes back.
 */
export function encodeText(text: string, charset: string): Buffer {
  switch (normalizeCharset(charset, charset)) {
    case 'gb18030':
      return iconv.encode(text, 'gb18030');
    case 'latin1':
      return Buffer.from(text, 'latin1');
    default:
      return Buffer.from(text, 'utf8');
  }
}
