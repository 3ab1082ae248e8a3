/**
 * HL7 v2 delimiters as declared by MSH-1 (field separator) and MSH-2
 * (encoding characters: component, repetition, escape, subcomponent and, from
 * v2.7, truncation). Any characters are accepted as long as they are distinct
 * and cannot be confused with data or segment terminators.
 *
 * Older senders declare only three encoding characters (`|^~\|`, no
 * sub-component separator), and python-hl7 and HAPI accept that. Such a
 * message has no sub-components: `&` is plain data. Internally its
 * `subcomponent` is `NO_SUBCOMPONENT` (a carriage return, which can never
 * occur inside a segment, so nothing is ever split on it), and MSH-2 of a
 * reply echoes the same three characters.
 */

export interface Hl7Delimiters {
  readonly field: string;
  readonly component: string;
  readonly repetition: string;
  readonly escape: string;
  readonly subcomponent: string;
  /** v2.7 truncation character (5th character of MSH-2), when the sender declared one. */
  readonly truncation?: string;
}

/** Stands for "no sub-component separator declared" (MSH-2 of three characters). */
export const NO_SUBCOMPONENT = '\r';

/** `|^~\&`, used when a reply has no request to copy delimiters from. */
export const DEFAULT_DELIMITERS: Hl7Delimiters = Object.freeze({
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
});

function isUsableDelimiter(ch: string): boolean {
  const c = ch.charCodeAt(0);
  // Letters and digits are data; CR/LF terminate segments; other controls would be invisible in logs.
  if (c < 0x20 || c === 0x7f) return false;
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return false;
  return c !== 0x20;
}

/**
 * Builds the delimiter set from MSH-1 and MSH-2, or returns a human-readable
 * reason why they are unusable (the caller wraps it in its own error).
 */
export function delimitersFrom(fieldSep: string, encodingChars: string): Hl7Delimiters | string {
  if (fieldSep.length !== 1 || !isUsableDelimiter(fieldSep)) return 'MSH-1 (field separator) is missing or not a punctuation character';
  if (encodingChars.length < 3 || encodingChars.length > 5) {
    return `MSH-2 (encoding characters) must be 3 to 5 characters, got ${encodingChars.length}`;
  }
  const all = fieldSep + encodingChars;
  for (let i = 0; i < all.length; i++) {
    const ch = all[i]!;
    if (!isUsableDelimiter(ch)) return `MSH-2 (encoding characters) character ${i} is not a punctuation character`;
    if (all.indexOf(ch) !== i) return `MSH-2 (encoding characters) repeats "${ch}"`;
  }
  const d: Hl7Delimiters = {
    field: fieldSep,
    component: encodingChars[0]!,
    repetition: encodingChars[1]!,
    escape: encodingChars[2]!,
    subcomponent: encodingChars.length >= 4 ? encodingChars[3]! : NO_SUBCOMPONENT,
    ...(encodingChars.length === 5 ? { truncation: encodingChars[4]! } : {}),
  };
  return d;
}

/** MSH-2 text for a delimiter set. */
export function encodingCharsOf(d: Hl7Delimiters): string {
  return d.component + d.repetition + d.escape + (d.subcomponent === NO_SUBCOMPONENT ? '' : d.subcomponent) + (d.truncation ?? '');
}
