/**
 * A stored JSON event (format json, issue 13) as operators see it: pretty
 * printed, with PHI masked unless the operator asked (and was audited) to
 * reveal it. Used by the console's message view and `hisbridge messages show`.
 *
 * Masking, like the HL7 tree, is by position rather than by guessing where
 * the event says who it is about: every text or number inside an object
 * describing a person (`patient`, `person`, `contact`...) is masked, except a
 * few harmless keys (gender, sex); keys that name an identifier, a name, a
 * phone or an address are masked wherever they are; every other text is
 * scrubbed for anything shaped like an ID number or a mobile number. Long
 * texts (embedded PDFs) are summarised, and at most MAX_VIEW_NODES values are
 * shown: the work is linear and bounded whatever the event holds.
 */
import { HARMLESS_KEYS, PERSON_KEYS, maskedKey } from '../../mask-fields.js';
import { maskId, maskIdNumber, maskName, maskPhone, scrubText } from '../../mask.js';
import { html, type Html } from './html.js';

const ID_NUMBER = /^\d{14,17}[\dXx]$/;
const MOBILE = /^1[3-9]\d{9}$/;
/** Texts longer than this are summarised (first 40 characters, masked, and the length). */
const LONG = 160;
/** Values shown at most; the rest are counted. */
export const MAX_VIEW_NODES = 5000;
/** Nesting shown at most (stored events have at most 64 levels: core/engine/read-json.ts). */
const MAX_DEPTH = 64;

type Rule = 'idNumber' | 'name' | 'phone' | 'hide' | 'id' | 'scrub';

function ruleFor(key: string, inPerson: boolean): Rule {
  const kind = maskedKey(key);
  if (kind === 'address') return 'hide';
  if (kind === 'birthDate') return 'id';
  if (kind) return kind;
  if (inPerson && /name$/i.test(key)) return 'name';
  if (inPerson) return HARMLESS_KEYS.test(key) ? 'scrub' : 'id';
  return 'scrub';
}

function maskText(v: string, rule: Rule): string {
  if (v === '') return v;
  switch (rule) {
    case 'idNumber': return ID_NUMBER.test(v) ? maskIdNumber(v) : maskId(v);
    case 'name': return maskName(v);
    case 'phone': return MOBILE.test(v) || /\d{5}/.test(v) ? maskPhone(v) : maskId(v);
    case 'hide': return '***';
    case 'id': return ID_NUMBER.test(v) ? maskIdNumber(v) : MOBILE.test(v) ? maskPhone(v) : maskId(v);
    case 'scrub': return scrubText(v);
  }
}

/**
 * A copy of `value` fit to show: masked (unless `reveal`), long texts
 * summarised, at most MAX_VIEW_NODES values and MAX_DEPTH levels (the rest
 * replaced by a note). `masked` tells whether anything was masked.
 */
export function jsonForView(value: unknown, reveal = false): { value: unknown; masked: boolean; hidden: number } {
  let nodes = 0;
  let hidden = 0;
  let masked = false;
  const leaf = (v: unknown, rule: Rule): unknown => {
    if (typeof v === 'string') {
      const window = v.length > 4 * LONG ? v.slice(0, 4 * LONG) : v;
      let out = reveal ? window : maskText(window, rule);
      if (out !== window) masked = true;
      if (v.length > LONG) out = `${out.slice(0, 40)}… (${v.length} characters)`;
      return out;
    }
    if (typeof v === 'number' && !reveal && rule !== 'scrub') {
      masked = true;
      return maskText(String(v), rule);
    }
    return v;
  };
  const walk = (v: unknown, rule: Rule, inPerson: boolean, depth: number): unknown => {
    if (++nodes > MAX_VIEW_NODES) {
      hidden++;
      return '…';
    }
    if (v === null || typeof v !== 'object') return leaf(v, rule);
    if (depth >= MAX_DEPTH) return '… (nested too deep)';
    if (Array.isArray(v)) return v.map((x) => walk(x, rule, inPerson, depth + 1));
    // No prototype: a key "__proto__" (JSON.parse makes it an own key) stays a key.
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const k of Object.keys(v)) {
      const person = inPerson || PERSON_KEYS.test(k);
      out[k] = walk((v as Record<string, unknown>)[k], ruleFor(k, person), person, depth + 1);
    }
    return out;
  };
  const shown = walk(value, 'scrub', false, 0);
  return { value: shown, masked, hidden };
}

/** The stored bytes as pretty-printed JSON text (masked unless `reveal`), or a note when they are not JSON. */
export function jsonViewText(raw: Buffer, reveal = false): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    return `(the stored body is not valid JSON: ${raw.length} bytes)`;
  }
  const v = jsonForView(parsed, reveal);
  const text = JSON.stringify(v.value, null, 2);
  return v.hidden ? `${text}\n… ${v.hidden} more value${v.hidden > 1 ? 's' : ''} not shown` : text;
}

/** The console's view of a stored JSON event. */
export function renderJsonView(raw: Buffer, reveal = false): Html {
  return html`<pre class="json">${jsonViewText(raw, reveal)}</pre>`;
}
