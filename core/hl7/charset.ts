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

/**
 * Decodes a frame (MLLP envelope already removed). MSH-18 wins over
 * `defaultCharset` (the listener's setting for senders that leave it empty).
 * `ascii` frames are decoded as UTF-8 so that a sender that claims ASCII but
 * sends UTF-8 does not lose characters; `latin1` is true ISO 8859-1.
 * A UTF-8 byte order mark is dropped.
 */
export function decodeHl7(frame: Buffer, defaultCharset: string): { text: string; charset: CanonicalCharset } {
  const charset = normalizeCharset(readMsh18(frame), defaultCharset);
  const body = frame.subarray(bomLength(frame));
  let text: string;
  switch (charset) {
    case 'gb18030':
      text = gbDecoder.decode(body);
      break;
    case 'latin1':
      text = body.toString('latin1');
      break;
    default:
      text = utf8Decoder.decode(body);
  }
  return { text, charset };
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
