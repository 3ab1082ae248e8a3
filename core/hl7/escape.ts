/**
 * HL7 v2 escape sequences (v2.5 section 2.7): \F\ \S\ \T\ \R\ \E\ (and \P\
 * when a truncation character is declared), \Xhh..\ hex data, \.br\ line
 * breaks. Formatting and charset-switch sequences we do not interpret
 * (\H\, \N\, \.sp\, \Cxxyy\, \Zxx\ ...) are kept verbatim so nothing is lost.
 */
import { isUtf8 } from 'node:buffer';
import type { Hl7Delimiters } from './delimiters.js';

export type { Hl7Delimiters } from './delimiters.js';

const HEX = /^(?:[0-9A-Fa-f]{2})+$/;

function decodeHex(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  return isUtf8(bytes) ? bytes.toString('utf8') : bytes.toString('latin1');
}

function expand(seq: string, d: Hl7Delimiters): string | undefined {
  switch (seq) {
    case 'F':
      return d.field;
    case 'S':
      return d.component;
    case 'T':
      // Without a declared sub-component separator (\r stands for none) \T\ stands for nothing: kept as sent.
      return d.subcomponent === '\r' ? undefined : d.subcomponent;
    case 'R':
      return d.repetition;
    case 'E':
      return d.escape;
    case 'P':
      return d.truncation;
    case '.br':
      return '\n';
  }
  if (seq.length > 1 && (seq[0] === 'X' || seq[0] === 'x') && HEX.test(seq.slice(1))) return decodeHex(seq.slice(1));
  return undefined;
}

/** Replaces escape sequences in a leaf value (component or subcomponent) by the characters they stand for. */
export function unescapeHl7(value: string, delims: Hl7Delimiters): string {
  const esc = delims.escape;
  let at = value.indexOf(esc);
  if (at < 0) return value;
  let out = '';
  let from = 0;
  while (at >= 0) {
    const close = value.indexOf(esc, at + 1);
    // A lone escape character is data, not the start of a sequence.
    if (close < 0) break;
    const seq = value.slice(at + 1, close);
    const rep = seq === '' ? undefined : expand(seq, delims);
    if (rep === undefined) {
      // Unknown: keep it, and resume after it so its closing character is not taken as an opener.
      out += value.slice(from, close + 1);
    } else {
      out += value.slice(from, at) + rep;
    }
    from = close + 1;
    at = value.indexOf(esc, from);
  }
  return out + value.slice(from);
}

function needsEscape(value: string, d: Hl7Delimiters): boolean {
  return (
    value.includes(d.escape) ||
    value.includes(d.field) ||
    value.includes(d.component) ||
    value.includes(d.repetition) ||
    value.includes(d.subcomponent) ||
    (d.truncation !== undefined && value.includes(d.truncation)) ||
    value.includes('\n') ||
    value.includes('\r')
  );
}

/**
 * Escapes a value so that it is one leaf when placed in a segment: every
 * delimiter becomes its sequence, a line break (\n or \r\n) becomes \.br\ and
 * a lone \r (which would end the segment) becomes \X0D\.
 */
export function escapeHl7(value: string, delims: Hl7Delimiters): string {
  if (!needsEscape(value, delims)) return value;
  const e = delims.escape;
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === e) out += `${e}E${e}`;
    else if (ch === delims.field) out += `${e}F${e}`;
    else if (ch === delims.component) out += `${e}S${e}`;
    else if (ch === '\n') out += `${e}.br${e}`;
    else if (ch === '\r') {
      // Checked before the sub-component separator: a message without one (MSH-2 of three characters) uses \r as its placeholder.
      if (value[i + 1] === '\n') {
        out += `${e}.br${e}`;
        i++;
      } else out += `${e}X0D${e}`;
    } else if (ch === delims.subcomponent) out += `${e}T${e}`;
    else if (ch === delims.repetition) out += `${e}R${e}`;
    else if (ch === delims.truncation) out += `${e}P${e}`;
    else out += ch;
  }
  return out;
}
