/**
 * A stored HL7 message as a segment/field tree for the message browser, with
 * PHI masked unless the operator asked (and was audited) to reveal it.
 *
 * Every segment and field is named for the message's own version (MSH-12,
 * hl7-dict.ts): `PID-5 Patient Name (XPN)`, with its components named when
 * the field is expanded. Site segments are named by the plugins that define
 * them.
 *
 * Masking is by meaning (core/mask-fields.ts): the fields that identify a
 * person (ID numbers, names, phones, addresses, birth dates, record numbers)
 * are masked, and within them only the components that do; codes
 * (assigning authority, identifier type, country, sex, marital status...)
 * are shown as they are. Every other value is scrubbed for anything shaped
 * like an ID number or a mobile number. Long values (embedded PDFs) are
 * summarised.
 */
import { maskedField, type MaskKind } from '../../mask-fields.js';
import { maskId, maskIdNumber, maskName, maskPhone, scrubText } from '../../mask.js';
import type { SegmentDefinition } from '../../sdk.js';
import { Hl7Names, type Named } from './hl7-dict.js';
import { html, type Html } from './html.js';

const LONG = 160;

export interface TreeComponent {
  /** `PID-3.1`, or `PID-3[2].1` in the second repetition. */
  path: string;
  name?: string;
  datatype?: string;
  value: string;
  masked: boolean;
}

export interface TreeField {
  index: number;
  name?: string;
  datatype?: string;
  value: string;
  masked: boolean;
  /** The components, when the field has more than one (shown on expansion). */
  components?: TreeComponent[];
}

export interface TreeSegment {
  name: string;
  description?: string;
  fields: TreeField[];
  /** On the last entry (`…`) of a longer message: segments not shown. */
  hidden?: number;
}

const ID_NUMBER = /^\d{14,17}[\dXx]$/;
const MOBILE = /^1[3-9]\d{9}$/;

/** A birth (or death) date keeps its year only: `1990****`. */
function maskDate(c: string): string {
  return c.length <= 4 ? '*'.repeat(c.length) : c.slice(0, 4) + '*'.repeat(c.length - 4);
}

/** One component of a masked field: ID numbers and phones keep their usual masked shape, so operators still recognise them. */
function maskComponent(c: string, kind: MaskKind, wholeName: boolean): string {
  if (c === '') return c;
  // A whole name in one component keeps its first character (`李*`); a name split into family and given names shows none of them.
  if (kind === 'name') return wholeName ? maskName(c) : '*'.repeat(Array.from(c).length);
  if (kind === 'address') return '***';
  if (kind === 'birthDate') return maskDate(c);
  if (ID_NUMBER.test(c)) return maskIdNumber(c);
  if (MOBILE.test(c)) return maskPhone(c);
  if (kind === 'idNumber') return maskIdNumber(c);
  if (kind === 'phone') return maskPhone(c);
  return maskId(c);
}

interface Seps {
  comp: string;
  rep: string;
}

/**
 * A field's repetitions and components, each masked by the list (or
 * scrubbed when the field is not on it) unless `reveal`.
 */
function splitField(seg: string, field: number, value: string, sep: Seps, reveal: boolean): { parts: { value: string; masked: boolean }[][]; masked: boolean } {
  const rule = reveal ? undefined : maskedField(seg, field);
  let any = false;
  const parts = value.split(sep.rep).map((rep) => rep.split(sep.comp)).map((comps) => {
    const filled = comps.filter((c) => c !== '').length;
    return comps.map((c, i) => {
      if (reveal || c === '') return { value: c, masked: false };
      if (rule && (!rule.components || rule.components.includes(i + 1))) {
        any = true;
        return { value: maskComponent(c, rule.kind, filled === 1), masked: true };
      }
      const scrubbed = scrubText(c);
      if (scrubbed !== c) any = true;
      return { value: scrubbed, masked: scrubbed !== c };
    });
  });
  return { parts, masked: any };
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
 * Splits decoded HL7 text into segments and fields, named for the message's
 * version (MSH-12) and the site segments given; `reveal` keeps the plain
 * values. Time is linear in the text and the work per segment is bounded: at
 * most MAX_TREE_SEGMENTS segments are listed (then one `…` entry with the
 * count of the others), and a field longer than LONG is masked on its first
 * MASK_WINDOW characters only, then summarised.
 */
export function hl7Tree(text: string, reveal = false, site?: ReadonlyMap<string, SegmentDefinition>): TreeSegment[] {
  const terminator = /\r\n|\r|\n/g;
  let fs = '|';
  let sep: Seps = { comp: '^', rep: '~' };
  let names: Hl7Names | undefined;
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
      let version: string | undefined;
      if (line.startsWith('MSH')) {
        fs = line[3] ?? '|';
        const enc = line.slice(4, 8);
        sep = { comp: enc[0] ?? '^', rep: enc[1] ?? '~' };
        // MSH-12 is the 11th part after the segment name (MSH-1 is the separator itself).
        version = line.slice(0, 2000).split(fs)[11];
      }
      names = new Hl7Names(version, site);
    }
    out.push(segmentOf(line, fs, sep, reveal, names!));
    if (!m) break;
  }
  if (hidden > 0) out.push({ name: '…', hidden, fields: [{ index: 0, value: `${hidden} more segment${hidden > 1 ? 's' : ''} not shown`, masked: false }] });
  return out;
}

const nameOf = (n: Named | undefined) => (n ? { name: n.name, ...(n.datatype ? { datatype: n.datatype } : {}) } : {});

function segmentOf(line: string, fs: string, sep: Seps, reveal: boolean, names: Hl7Names): TreeSegment {
  const parts = line.split(fs);
  const name = parts[0]!.slice(0, 3);
  const fields: TreeField[] = [];
  // MSH-1 is the separator itself: field numbers of MSH are shifted by one.
  const offset = name === 'MSH' ? 1 : 0;
  if (name === 'MSH') fields.push({ index: 1, ...nameOf(names.field(name, 1)), value: fs, masked: false });
  for (let i = 1; i < parts.length; i++) {
    const index = i + offset;
    const raw = parts[i]!;
    if (raw === '') continue;
    const named = nameOf(names.field(name, index));
    const window = raw.length > MASK_WINDOW ? raw.slice(0, MASK_WINDOW) : raw;
    if (name === 'MSH' && index === 2) {
      fields.push({ index, ...named, value: window, masked: false });
      continue;
    }
    const split = splitField(name, index, window, sep, reveal);
    let value = split.parts.map((rep) => rep.map((c) => c.value).join(sep.comp)).join(sep.rep);
    const long = raw.length > LONG || value.length > LONG;
    if (long) value = `${value.slice(0, 40)}… (${raw.length} characters)`;
    const f: TreeField = { index, ...named, value, masked: split.masked };
    // Components are listed when the field has more than one (in any repetition) and is not summarised.
    if (!long && split.parts.some((rep) => rep.length > 1)) {
      const many = split.parts.length > 1;
      f.components = split.parts.flatMap((rep, r) => rep.flatMap((c, ci) => c.value === '' ? [] : [{
        path: `${name}-${index}${many ? `[${r + 1}]` : ''}.${ci + 1}`,
        ...nameOf(names.component(name, index, ci + 1)),
        value: c.value,
        masked: c.masked,
      }]));
    }
    fields.push(f);
  }
  const description = names.segment(name);
  return { name, ...(description ? { description } : {}), fields };
}

const label = (n: { name?: string; datatype?: string }) => (n.name ? html` <span class="fname">${n.name}${n.datatype ? ` (${n.datatype})` : ''}</span>` : '');

/**
 * The tree as nested lists: a field with components is a `<details>` whose
 * summary is the whole field and whose body names each component.
 * `more(n)` words the line that counts segments not shown.
 */
export function renderTree(segments: TreeSegment[], more: (n: number) => string = (n) => `${n} more segment${n > 1 ? 's' : ''} not shown`): Html {
  return html`<div class="tree"><ul>${segments.map((s) => s.name === '…' ? html`<li class="more">… ${more(s.hidden ?? 0)}</li>` : html`<li><span class="seg">${s.name}</span>${s.description ? html` <span class="segname">${s.description}</span>` : ''}<ul>${s.fields.map((f) => {
    const head = html`<span class="fld">${s.name}-${f.index}</span>${label(f)} <span class="${f.masked ? 'masked' : 'val'}">${f.value}</span>`;
    if (!f.components) return html`<li>${head}</li>`;
    return html`<li><details><summary>${head}</summary><ul>${f.components.map((c) =>
      html`<li><span class="fld">${c.path}</span>${label(c)} <span class="${c.masked ? 'masked' : 'val'}">${c.value}</span></li>`)}</ul></details></li>`;
  })}</ul></li>`)}</ul></div>`;
}
