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
  // Every message names its charset (MSH-18 or the listener's): the names seen are few, so their answers are kept.
  const known = seenCharsets.get(chosen);
  if (known !== undefined) return known;
  const key = chosen.toUpperCase().replace(/[\s\-_/.]/g, '');
  const found = NAMES[key];
  if (!found) throw hbError('HL7_E_CHARSET', { charset: chosen.slice(0, 40) });
  // Bounded: only names that resolved are kept, and only short ones (a sender cannot grow it with junk labels).
  if (seenCharsets.size < SEEN_CHARSETS_MAX && chosen.length <= 40) seenCharsets.set(chosen, found);
  return found;
}

/** Charset names already resolved by normalizeCharset (exact spelling -> decoder name). */
const seenCharsets = new Map<string, CanonicalCharset>();
const SEEN_CHARSETS_MAX = 256;

const gbDecoder = new TextDecoder('gb18030');
const utf8Decoder = new TextDecoder('utf-8');
const gbStrict = new TextDecoder('gb18030', { fatal: true });
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/**
 * What is wrong with the bytes of a frame, first problem only:
 * - `bytes`: a sequence invalid in the charset (it became U+FFFD);
 * - `label`: the frame is labelled GB18030/GBK but its bytes are UTF-8 Chinese
 *   text (see `utf8UnderGbLabel`); `text` is the GB reading (mojibake);
 * - `control`: a C0 control character other than TAB, CR and LF inside the
 *   message (it became U+FFFD in `text`).
 */
export type InvalidKind = 'bytes' | 'label' | 'control';

/** Where the first byte sequence invalid in the charset sits, for the reject reason (never the bytes themselves). */
export interface InvalidBytes {
  /** What kind of problem; absent means `bytes`. */
  kind?: InvalidKind;
  /** For `control`: the byte, as two hex digits (`00`, `1A`). */
  byte?: string;
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

/** Offset of the first byte sequence the WHATWG UTF-8 decoder refuses (overlongs, surrogates, truncation), or -1. */
function firstInvalidUtf8(b: Buffer): number {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return i;
    const c1 = b[i + 1];
    if (c1 === undefined || c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= need; k++) {
      const ck = b[i + k];
      if (ck === undefined || ck < 0x80 || ck > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Offset of the first byte sequence the WHATWG GB18030 decoder refuses, or -1. */
function firstInvalidGb18030(b: Buffer): number {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i]!;
    if (c <= 0x80) {
      // 0x80 is the euro sign in the WHATWG decoder.
      i++;
      continue;
    }
    if (c === 0xff) return i;
    const c2 = b[i + 1];
    if (c2 === undefined) return i;
    if (c2 >= 0x30 && c2 <= 0x39) {
      const c3 = b[i + 2];
      const c4 = b[i + 3];
      if (c3 === undefined || c4 === undefined || c3 < 0x81 || c3 > 0xfe || c4 < 0x30 || c4 > 0x39) return i;
      const pointer = (((c - 0x81) * 10 + (c2 - 0x30)) * 126 + (c3 - 0x81)) * 10 + (c4 - 0x30);
      if ((pointer > 39419 && pointer < 189000) || pointer > 1237575) return i;
      i += 4;
      continue;
    }
    if ((c2 >= 0x40 && c2 <= 0x7e) || (c2 >= 0x80 && c2 <= 0xfe)) {
      i += 2;
      continue;
    }
    return i;
  }
  return -1;
}

/**
 * Finds the first invalid sequence of a frame the strict decoder refused:
 * one pass over the bytes, then the field is counted in the valid text of
 * its segment before the bad bytes (in GBK a trail byte can equal `|`, so
 * bytes are not counted). Segment starts are found on CR/LF, which are never
 * part of a multi-byte character in UTF-8 or GB18030.
 */
function locateInvalid(body: Buffer, base: number, charset: 'utf-8' | 'gb18030'): InvalidBytes {
  return locateAt(body, base, charset, charset === 'utf-8' ? firstInvalidUtf8(body) : firstInvalidGb18030(body));
}

/** Segment and field of byte offset `at` of `body` (see locateInvalid); `charset` says how to count separators. */
function locateAt(body: Buffer, base: number, charset: 'utf-8' | 'gb18030', at: number): InvalidBytes {
  if (at < 0) return { offset: base, segment: '?', field: 0, location: 'the message' };
  const segStart = Math.max(body.lastIndexOf(CR, at), body.lastIndexOf(LF, at)) + 1;
  const seg = body.subarray(segStart, at);
  let name = '?';
  let field = 0;
  if (charset === 'utf-8') {
    // In UTF-8 an ASCII byte is never part of another character: count separators on bytes, no decoding.
    const head = seg.subarray(0, 3).toString('latin1');
    if (seg.length >= 3 && /^[A-Z][A-Z0-9]{2}$/.test(head)) name = head;
    if (name !== '?' && seg.length > 3) {
      const sep = seg[3]!;
      for (let k = seg.indexOf(sep, 3); k >= 0; k = seg.indexOf(sep, k + 1)) field++;
    }
  } else {
    let before: string;
    try {
      before = gbStrict.decode(seg);
    } catch {
      before = gbDecoder.decode(seg);
    }
    if (/^[A-Z][A-Z0-9]{2}/.test(before)) name = before.slice(0, 3);
    if (name !== '?' && before.length > 3) {
      const sep = before[3]!;
      for (let k = before.indexOf(sep, 3); k >= 0; k = before.indexOf(sep, k + 1)) field++;
    }
  }
  if (name === 'MSH') field++;
  return { offset: base + at, segment: name, field, location: field > 0 ? `${name}-${field}` : name === '?' ? 'a segment name' : name };
}

/**
 * True when a code point is one a Chinese hospital's UTF-8 text plausibly
 * holds: CJK ideographs (with extension A, compatibility and the supplementary
 * planes), CJK and fullwidth punctuation and forms, general punctuation
 * (“ ” — …), letterlike symbols and number forms (℃, Ⅲ), circled numbers, and
 * the few Latin-1 signs used in names and units (· × ° ± µ).
 */
function plausibleInChineseText(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x3000 && cp <= 0x303f) ||
    (cp >= 0xff00 && cp <= 0xffef) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2000 && cp <= 0x206f) ||
    (cp >= 0x2100 && cp <= 0x218f) ||
    (cp >= 0x2460 && cp <= 0x24ff) ||
    (cp >= 0x20000 && cp <= 0x3134f) ||
    cp === 0xb7 ||
    cp === 0xd7 ||
    cp === 0xb0 ||
    cp === 0xb1 ||
    cp === 0xb5
  );
}

/**
 * Bytes labelled GB18030/GBK (MSH-18, the transport, or the listener default)
 * that are really UTF-8: read as GB they would become mojibake without any
 * invalid byte (锟斤拷-style names sent to the province). Returns the byte
 * offset of the first non-ASCII byte, or -1.
 *
 * The heuristic, chosen so genuine GBK text is not refused: the bytes must
 * (1) be valid UTF-8, (2) decode, read as UTF-8, to at least one CJK
 * ideograph, and (3) every non-ASCII character of that UTF-8 reading must be
 * one Chinese text plausibly holds (plausibleInChineseText). GBK text is
 * rarely valid UTF-8 at all; when it is (short runs such as 中文 = D6 D0 CE C4
 * read as UTF-8 are Hebrew and Greek letters), its UTF-8 reading is made of
 * Latin, Greek, Cyrillic, Hebrew or Arabic letters and fails (3), because a
 * CJK ideograph in UTF-8 takes a lead byte E3-E9 followed by two bytes 80-BF,
 * which common GBK characters (lead B0-F7, trail A1-FE) do not line up into
 * across a whole message. Linear: one native UTF-8 check, then one pass over
 * the non-ASCII characters.
 */
export function utf8UnderGbLabel(body: Buffer): number {
  let first = -1;
  for (let i = 0; i < body.length; i++) {
    if (body[i]! >= 0x80) {
      first = i;
      break;
    }
  }
  if (first < 0 || !isUtf8(body)) return -1;
  const text = body.toString('utf8', first);
  let ideograph = false;
  for (let i = 0; i < text.length; i++) {
    const cp = text.codePointAt(i)!;
    if (cp < 0x80) continue;
    if (cp > 0xffff) i++;
    if (!plausibleInChineseText(cp)) return -1;
    if ((cp >= 0x3400 && cp <= 0x9fff) || (cp >= 0xf900 && cp <= 0xfaff) || cp >= 0x20000) ideograph = true;
  }
  return ideograph ? first : -1;
}

/** C0 control characters allowed in a decoded message: TAB, LF and CR (segment terminators). */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f]/;
const CONTROL_ALL = /[\x00-\x08\x0b\x0c\x0e-\x1f]/g;

/**
 * The first C0 control byte (other than TAB, LF, CR) of `body`: HL7 carries
 * control characters escaped (\X00\), never raw, so a raw one is a broken
 * sender (a NUL-padded field, a stray MLLP start byte, a DOS end-of-file). In
 * UTF-8 and GB18030 a byte below 0x20 is never part of another character, so
 * the byte offset is found on bytes.
 */
function firstControlByte(body: Buffer): number {
  for (let i = 0; i < body.length; i++) {
    const b = body[i]!;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return i;
  }
  return -1;
}

/**
 * After a clean decode: the `label` and `control` checks. `text` is the
 * decoded text; a control character becomes U+FFFD in the returned text (the
 * same at ingest and at every later decode of the stored bytes).
 */
function checkDecoded(body: Buffer, bom: number, charset: CanonicalCharset, text: string): DecodedHl7 {
  if (charset === 'gb18030') {
    const at = utf8UnderGbLabel(body);
    if (at >= 0) return { text: CONTROL.test(text) ? text.replace(CONTROL_ALL, '\ufffd') : text, charset, invalid: { ...locateAt(body, bom, 'utf-8', at), kind: 'label' } };
  }
  if (!CONTROL.test(text)) return { text, charset };
  const at = firstControlByte(body);
  const where = locateAt(body, bom, charset === 'gb18030' ? 'gb18030' : 'utf-8', at);
  return { text: text.replace(CONTROL_ALL, '\ufffd'), charset, invalid: { ...where, kind: 'control', byte: (body[at] ?? 0).toString(16).toUpperCase().padStart(2, '0') } };
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
 * The same holds for UTF-8 bytes under a GB label and for raw C0 control
 * characters (`invalid.kind`, see InvalidKind).
 * The strict check is the platform's fatal TextDecoder: one native pass.
 *
 * `declared` is a charset the transport declared (an HTTP Content-Type
 * `charset`): it wins over MSH-18 and the default.
 */
export function decodeHl7(frame: Buffer, defaultCharset: string, declared?: string): DecodedHl7 {
  const charset = declared ? normalizeCharset(declared, defaultCharset) : normalizeCharset(readMsh18(frame), defaultCharset);
  const bom = bomLength(frame);
  const body = frame.subarray(bom);
  if (charset === 'latin1') return checkDecoded(body, bom, charset, body.toString('latin1'));
  const kind = charset === 'gb18030' ? 'gb18030' : 'utf-8';
  let strict: string;
  try {
    strict = (kind === 'gb18030' ? gbStrict : utf8Strict).decode(body);
  } catch {
    const text = (kind === 'gb18030' ? gbDecoder : utf8Decoder).decode(body);
    return { text: CONTROL.test(text) ? text.replace(CONTROL_ALL, '\ufffd') : text, charset, invalid: { ...locateInvalid(body, bom, kind), kind: 'bytes' } };
  }
  return checkDecoded(body, bom, charset, strict);
}

/** Frames above this size are decoded in slices of this size by decodeHl7Yielding. */
export const DECODE_SLICE_BYTES = 256 * 1024;

/**
 * The same result as `decodeHl7`, for big frames: the strict decode runs in
 * slices (a streaming fatal TextDecoder), with a turn of the event loop
 * between slices, so a 4.5 MB message does not hold the event loop for the
 * tens of ms one decode takes (issue 11). A frame with invalid bytes, or one
 * of at most one slice, takes `decodeHl7` itself.
 */
export async function decodeHl7Yielding(frame: Buffer, defaultCharset: string, sliceBytes = DECODE_SLICE_BYTES, declared?: string): Promise<DecodedHl7> {
  if (frame.length <= sliceBytes) return decodeHl7(frame, defaultCharset, declared);
  const charset = declared ? normalizeCharset(declared, defaultCharset) : normalizeCharset(readMsh18(frame), defaultCharset);
  if (charset === 'latin1') return decodeHl7(frame, defaultCharset, declared);
  const bom = bomLength(frame);
  const body = frame.subarray(bom);
  const decoder = new TextDecoder(charset === 'gb18030' ? 'gb18030' : 'utf-8', { fatal: true });
  const parts: string[] = [];
  try {
    for (let off = 0; off < body.length; off += sliceBytes) {
      parts.push(decoder.decode(body.subarray(off, Math.min(off + sliceBytes, body.length)), { stream: true }));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    parts.push(decoder.decode());
  } catch {
    // Invalid bytes: the one-shot path replaces them and says where the first one is.
    return decodeHl7(frame, defaultCharset, declared);
  }
  // The checks after a clean decode are native searches and one pass over non-ASCII text: not sliced.
  await new Promise<void>((resolve) => setImmediate(resolve));
  return checkDecoded(body, bom, charset, parts.join(''));
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
