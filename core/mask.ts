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

const ID18 = /\b\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]\b/g;
const MOBILE = /(?<!\d)1[3-9]\d{9}(?!\d)/g;

/**
 * Last line of defence for free text (remote error descriptions, exception
 * messages): masks anything shaped like a resident ID number or a mobile number.
 */
export function scrubText(text: string): string {
  return text.replace(ID18, (m) => maskIdNumber(m)).replace(MOBILE, (m) => maskPhone(m));
}
