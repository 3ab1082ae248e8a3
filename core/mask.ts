/**
 * Masking helpers: the only way an identifier may reach a log line, an error
 * message or a masked view. Keep them total (never throw) and cheap.
 */

/** Resident ID number (18 or 15 chars) or any long identifier: keep the first 6 and last 4. `440106********123X`. */
export function maskIdNumber(v: string | undefined | null): string {
  if (!v) return '';
  const s = String(v);
  if (s.length <= 4) return '*'.repeat(s.length);
  if (s.length <= 10) return s.slice(0, 1) + '*'.repeat(s.length - 3) + s.slice(-2);
  return s.slice(0, 6) + '*'.repeat(s.length - 10) + s.slice(-4);
}

/** Personal name: first character kept, the rest starred. `张*`, `欧**`, `J***`. */
export function maskName(v: string | undefined | null): string {
  if (!v) return '';
  const chars = Array.from(String(v));
  if (chars.length === 1) return '*';
  return chars[0] + '*'.repeat(chars.length - 1);
}

/** Phone number: keep the first 3 and last 4 digits. `138****5678`. */
export function maskPhone(v: string | undefined | null): string {
  if (!v) return '';
  const s = String(v);
  if (s.length <= 7) return '*'.repeat(s.length);
  return s.slice(0, 3) + '*'.repeat(s.length - 7) + s.slice(-4);
}

/** A secret (token, key, password): never shown, only its presence and length class. */
export function maskSecret(v: string | undefined | null): string {
  return v ? '***' : '';
}

/** Generic identifier (patient id, staff no): shorter mask that still lets an operator tell two apart. */
export function maskId(v: string | undefined | null): string {
  if (!v) return '';
  const s = String(v);
  if (s.length <= 2) return '*'.repeat(s.length);
  if (s.length <= 6) return s.slice(0, 1) + '*'.repeat(s.length - 2) + s.slice(-1);
  return s.slice(0, 2) + '*'.repeat(s.length - 4) + s.slice(-2);
}

/**
 * Finds the start of the next run of at least 11 digits; the run's end is
 * then found by a plain loop. No lookaround and no backtracking: a scan is
 * linear in the text, and a line without such a run costs one quick scan.
 */
const ELEVEN_DIGITS = /\d{11}/g;

const ID18_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID18_CHECK = '10X98765432';

/** ISO 7064 MOD 11-2 check character of an 18-character resident ID number. */
export function idCheckDigitValid(id: string): boolean {
  if (id.length !== 18) return false;
  let sum = 0;
  for (let i = 0; i < 17; i++) {
    const d = id.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    sum += d * ID18_WEIGHTS[i]!;
  }
  return ID18_CHECK[sum % 11] === id[17]!.toUpperCase();
}

/** yyyymmdd (or yymmdd for old IDs) at `from` looks like a birth date. */
function birthDate(s: string, from: number, yearDigits: 2 | 4): boolean {
  const y = s.slice(from, from + yearDigits);
  if (yearDigits === 4 && !/^(18|19|20)\d\d$/.test(y)) return false;
  const m = Number(s.slice(from + yearDigits, from + yearDigits + 2));
  const d = Number(s.slice(from + yearDigits + 2, from + yearDigits + 4));
  return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

/** A mainland mobile number (1, then 3-9) starts at `from`. */
function mobile(run: string, from: number): boolean {
  return run.charCodeAt(from) === 49 && run.charCodeAt(from + 1) >= 51;
}

/** One whole run of digits: masked when it has the shape of an ID number or a mobile number, else unchanged. */
function maskRun(run: string): string {
  const n = run.length;
  if (n === 18) return idCheckDigitValid(run) || birthDate(run, 6, 4) ? maskIdNumber(run) : run;
  const x = run.charCodeAt(n - 1) > 57;
  if (x) return maskRun(run.slice(0, -1)) + run[n - 1];
  if (n === 15 && birthDate(run, 6, 2)) return maskIdNumber(run);
  if (n === 11 && mobile(run, 0)) return maskPhone(run);
  // The same mobile number with the country code written as digits: 86 or 0086 (a `+` is not a digit).
  if (n === 13 && run.startsWith('86') && mobile(run, 2)) return '86' + maskPhone(run.slice(2));
  if (n === 15 && run.startsWith('0086') && mobile(run, 4)) return '0086' + maskPhone(run.slice(4));
  return run;
}

/**
 * Last line of defence for any text (log lines, remote error descriptions,
 * exception messages): masks values shaped like a resident ID number (18
 * characters with a valid ISO 7064 MOD 11-2 check digit, or with a birth
 * date in place; 15 digits with a birth date) or a mainland mobile number
 * (11 digits, 13x-19x, also after the country code 86 or 0086), wherever they appear, as whole runs of digits. In
 * JSON text a run may start with the four hex digits of a `\uXXXX` escape
 * (a control character before the value); those are kept and the rest is
 * checked. Linear in the text.
 */
export function scrubText(text: string): string {
  const re = ELEVEN_DIGITS;
  re.lastIndex = 0;
  let m = re.exec(text);
  if (!m) return text;
  const len = text.length;
  let out = '';
  let last = 0;
  while (m) {
    // The leftmost 11 digits start a run: a run starting earlier would have matched earlier.
    let start = m.index;
    let end = start + 11;
    while (end < len && isDigit(text.charCodeAt(end))) end++;
    if (end < len && (text.charCodeAt(end) | 32) === 120) end++;
    let keep = '';
    if (start >= 2 && text.charCodeAt(start - 1) === 117 && text.charCodeAt(start - 2) === 92) {
      keep = text.slice(start, start + 4);
      start += 4;
    }
    const run = text.slice(start, end);
    const masked = maskRun(run);
    if (masked !== run) {
      out += text.slice(last, start - keep.length) + keep + masked;
      last = end;
    }
    re.lastIndex = end;
    m = re.exec(text);
  }
  return last === 0 ? text : out + text.slice(last);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
