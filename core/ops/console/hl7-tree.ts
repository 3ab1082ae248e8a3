/**
 * A stored HL7 message as a segment/field tree for the message browser, with
 * PHI masked unless the operator asked (and was audited) to reveal it.
 *
 * Masking is by position, not by guessing: in segments that describe a
 * person (PID, NK1, MRG, GT1, IN1...) every field is masked except a short
 * list of harmless ones (set id, sex...); names get the name mask. In every
 * other segment, free text is scrubbed for anything shaped like an ID number
 * or a mobile number. Long values (embedded PDFs) are summarised.
 */
import { maskId, maskIdNumber, maskName, maskPhone, scrubText } from '../../mask.js';
import { html, type Html } from './html.js';

/** Segments whose fields are about a person. */
const PERSON_SEGMENTS = new Set(['PID', 'PD1', 'NK1', 'MRG', 'GT1', 'IN1', 'IN2', 'IN3', 'ROL', 'PV2', 'ZCN']);
/** Fields of person segments that identify nobody (shown as they are). */
const HARMLESS: Record<string, number[]> = { PID: [1, 8, 10, 15, 17, 22, 24, 25, 26, 27, 28, 30], NK1: [1, 3], ZCN: [1, 2, 3, 4], PV2: [] };
/** Person-name fields (XPN), masked as names. */
const NAME_FIELDS: Record<string, number[]> = { PID: [5, 6, 9], NK1: [2], MRG: [7], GT1: [3], IN1: [16] };
const LONG = 160;

export interface TreeField {
  index: number;
  value: string;
  masked: boolean;
}

export interface TreeSegment {
  name: string;
  fields: TreeField[];
}

const ID_NUMBER = /^\d{14,17}[\dXx]$/;
const MOBILE = /^1[3-9]\d{9}$/;

/** One component: ID numbers and phones keep their usual masked shape, so operators still recognise them. */
function maskComponent(c: string, asName: boolean): string {
  if (c === '') return c;
  if (asName) return maskName(c);
  if (ID_NUMBER.test(c)) return maskIdNumber(c);
  if (MOBILE.test(c)) return maskPhone(c);
  return maskId(c);
}

function maskValue(seg: string, field: number, value: string, sep: { comp: string; rep: string }): { value: string; masked: boolean } {
  if (value === '') return { value, masked: false };
  if (PERSON_SEGMENTS.has(seg) && !(HARMLESS[seg] ?? [1]).includes(field)) {
    const asName = NAME_FIELDS[seg]?.includes(field);
    const masked = value.split(sep.rep).map((rep) => rep.split(sep.comp).map((c) => maskComponent(c, asName === true)).join(sep.comp)).join(sep.rep);
    return { value: masked, masked: true };
  }
  const scrubbed = scrubText(value);
  return { value: scrubbed, masked: scrubbed !== value };
}

/** Segments shown in the tree; the rest of a longer message is summarised in one line (a browser cannot show 100,000 segments anyway). */
export const MAX_TREE_SEGMENTS = 1000;
/**
 * Characters of a field that are masked before it is cut to its 40-character
 * summary: work per field is bounded whatever the sender put in it, and what
 * is shown (the first 40 characters) is always masked in full.
 */
const MASK_WINDOW = 4 * LONG;

/**
 * Splits decoded HL7 text into segments and fields; `reveal` keeps the plain
 * values. Time is linear in the text and the work per segment is bounded: at
 * most MAX_TREE_SEGMENTS segments are listed (then one `…` entry with the
 * count of the others), and a field longer than LONG is masked on its first
 * MASK_WINDOW characters only, then summarised.
 */
export function hl7Tree(text: string, reveal = false): TreeSegment[] {
  const terminator = /\r\n|\r|\n/g;
  let fs = '|';
  let sep = { comp: '^', rep: '~' };
  const out: TreeSegment[] = [];
  let hidden = 0;
  let from = 0;
  let first = true;
  while (from <= text.length) {
    const m = terminator.exec(text);
    const end = m ? m.index : text.length;
    const start = from;
    from = m ? end + m[0].length : text.length + 1;
    if (out.length >= MAX_TREE_SEGMENTS) {
      // Past the shown segments only count them: a line that starts with a printable character is one.
      if (end > start && (text.charCodeAt(start) > 0x20 || text.slice(start, end).trim() !== '')) hidden++;
      if (!m) break;
      continue;
    }
    const line = text.slice(start, end);
    if (line.trim() === '') {
      if (!m) break;
      continue;
    }
    if (first) {
      first = false;
      if (line.startsWith('MSH')) {
        fs = line[3] ?? '|';
        const enc = line.slice(4, 8);
        sep = { comp: enc[0] ?? '^', rep: enc[1] ?? '~' };
      }
    }
    out.push(segmentOf(line, fs, sep, reveal));
    if (!m) break;
  }
  if (hidden > 0) out.push({ name: '…', fields: [{ index: 0, value: `${hidden} more segment${hidden > 1 ? 's' : ''} not shown`, masked: false }] });
  return out;
}

function segmentOf(line: string, fs: string, sep: { comp: string; rep: string }, reveal: boolean): TreeSegment {
  const parts = line.split(fs);
  const name = parts[0]!.slice(0, 3);
  const fields: TreeField[] = [];
  // MSH-1 is the separator itself: field numbers of MSH are shifted by one.
  const offset = name === 'MSH' ? 1 : 0;
  if (name === 'MSH') fields.push({ index: 1, value: fs, masked: false });
  for (let i = 1; i < parts.length; i++) {
    const index = i + offset;
    const raw = parts[i]!;
    if (raw === '') continue;
    const window = raw.length > MASK_WINDOW ? raw.slice(0, MASK_WINDOW) : raw;
    let f = reveal || (name === 'MSH' && index === 2) ? { value: window, masked: false } : maskValue(name, index, window, sep);
    if (raw.length > LONG || f.value.length > LONG) f = { value: `${f.value.slice(0, 40)}… (${raw.length} characters)`, masked: f.masked };
    fields.push({ index, ...f });
  }
  return { name, fields };
}

/** The tree as nested lists. */
export function renderTree(segments: TreeSegment[]): Html {
  return html`<div class="tree"><ul>${segments.map((s) => s.name === '…' ? html`<li class="more">… ${s.fields[0]?.value ?? ''}</li>` : html`<li><span class="seg">${s.name}</span><ul>${s.fields.map((f) =>
    html`<li><span class="fld">${s.name}-${f.index}</span> <span class="${f.masked ? 'masked' : 'val'}">${f.value}</span></li>`)}</ul></li>`)}</ul></div>`;
}
