/**
 * HL7 v2 → the platform's canonical payloads (schemas/recognition-*.schema.json).
 * Field choices follow SPEC §4 and samples/README.md; every payload is built
 * from segments in message order so MFN entries keep their MFE grouping.
 */
import { type Hl7Message, type Hl7Segment, maskName, TimeSlice } from '../../core/sdk.js';
import { recognitionError } from '../recognition/errors.js';
import { JsonArrayBytesWriter, type JsonArrayBytes } from '../recognition/json-text.js';
import { compact, first, patientRef, type Json } from '../recognition/hl7-patient.js';

export { DEFAULT_CARD_TYPES } from '../recognition/hl7-patient.js';
export type { Json };

/** XCN / subcomponent person `id^family^given` (or `id&family&given` inside a component) → {id, name}. */
function person(id: string, family: string, given: string): Json | undefined {
  if (!id) return undefined;
  return compact({ id, name: `${family}${given}` });
}

function xcn(seg: Hl7Segment | undefined, field: number): Json | undefined {
  if (!seg) return undefined;
  return person(seg.get(field, 1, 1), seg.get(field, 1, 2), seg.get(field, 1, 3));
}

function xcnSub(seg: Hl7Segment | undefined, field: number): Json | undefined {
  if (!seg) return undefined;
  return person(seg.get(field, 1, 1, 1), seg.get(field, 1, 1, 2), seg.get(field, 1, 1, 3));
}

export function patientPayload(msg: Hl7Message, org: Json, cardTypes: Readonly<Record<string, string>>): Json {
  const pid = first(msg, 'PID');
  const address = pid ? [4, 3, 9, 1, 2].map((c) => pid.get(11, 1, c)).join('') : '';
  return {
    ...org,
    patient: compact({
      ...patientRef(msg, cardTypes),
      phone: pid?.get(13, 1, 1) ?? '',
      address,
      nation: pid?.get(22, 1, 1) ?? '',
      updatedAt: first(msg, 'EVN')?.get(2) || msg.get('MSH-7'),
    }),
  };
}

const MFE_ACTIONS: Readonly<Record<string, 'add' | 'update' | 'delete'>> = { MAD: 'add', MUP: 'update', MDL: 'delete', MAC: 'update', MDC: 'delete' };

/** One dictionary entry per MFE, with the segments that follow it until the next MFE. */
function mfeGroups(msg: Hl7Message): { mfe: Hl7Segment; rest: Hl7Segment[] }[] {
  const groups: { mfe: Hl7Segment; rest: Hl7Segment[] }[] = [];
  for (const seg of msg.segments()) {
    if (seg.name === 'MFE') groups.push({ mfe: seg, rest: [] });
    else if (groups.length) groups[groups.length - 1]!.rest.push(seg);
  }
  return groups;
}

export function departmentPayloads(msg: Hl7Message, org: Json): Json[] {
  return mfeGroups(msg).map(({ mfe, rest }) => {
    const loc = rest.find((s) => s.name === 'LOC');
    const ldp = rest.find((s) => s.name === 'LDP');
    return compact({
      ...org,
      action: MFE_ACTIONS[mfe.get(1)] ?? 'update',
      deptCode: mfe.get(4, 1, 1),
      deptName: loc?.get(2) || mfe.get(4, 1, 4) || mfe.get(4, 1, 2),
      deptType: loc?.get(3, 1, 2) || loc?.get(3, 1, 1) || '',
      parentCode: ldp?.get(2, 1, 1) ?? '',
      serviceType: ldp?.get(3, 1, 2) || ldp?.get(3, 1, 1) || '',
    });
  });
}

export function staffPayloads(msg: Hl7Message, org: Json, cardTypes: Readonly<Record<string, string>>): Json[] {
  return mfeGroups(msg).map(({ mfe, rest }) => {
    const stf = rest.find((s) => s.name === 'STF');
    const pra = rest.find((s) => s.name === 'PRA');
    let idNumber = '';
    if (stf) {
      // One pass over STF-2, whatever its number of repetitions.
      const ids = stf.getRepetitions(2, 1);
      const types = stf.getRepetitions(2, 5);
      for (let r = 0; r < ids.length && !idNumber; r++) if (cardTypes[types[r]!.toUpperCase()] === '01') idNumber = ids[r]!;
    }
    const action = MFE_ACTIONS[mfe.get(1)] ?? 'update';
    return compact({
      ...org,
      action,
      staffNo: mfe.get(4, 1, 1) || stf?.get(1, 1, 1) || '',
      name: stf ? `${stf.get(3, 1, 1)}${stf.get(3, 1, 2)}` : `${mfe.get(4, 1, 2)}${mfe.get(4, 1, 3)}`,
      idNumber,
      sex: stf?.get(5) ?? '',
      staffType: stf?.get(4, 1, 2) || stf?.get(4, 1, 1) || '',
      title: pra?.get(3, 1, 2) || pra?.get(3, 1, 1) || '',
      deptCode: stf?.get(8, 1, 1) ?? '',
      licenseNo: pra?.get(6, 1, 1) ?? '',
      active: action === 'delete' ? false : stf ? stf.get(7) !== 'I' : undefined,
    });
  });
}

/** The report PDF: an OBX with value type ED whose data is `^application^pdf^Base64^<data>` (or the configured code). */
export function findPdf(msg: Hl7Message, code?: string): { content: string; index: number } | undefined {
  for (const obx of msg.eachSegment()) {
    const pdf = pdfOf(obx, code);
    if (pdf) return pdf;
  }
  return undefined;
}

/**
 * findPdf in time slices (the same answer): a report with 100,000 OBX
 * results before its PDF took ~50 ms to search in one go (issue 11).
 */
export async function findPdfYielding(msg: Hl7Message, code?: string, slice: TimeSlice = new TimeSlice()): Promise<{ content: string; index: number } | undefined> {
  for (const obx of msg.eachSegment()) {
    const pdf = pdfOf(obx, code);
    if (pdf) return pdf;
    if (slice.due()) await slice.pause();
  }
  return undefined;
}

function pdfOf(obx: Hl7Segment, code: string | undefined): { content: string; index: number } | undefined {
  if (obx.name !== 'OBX' || obx.get(2) !== 'ED') return undefined;
  const isPdf = code ? obx.get(3, 1, 1) === code : obx.get(5, 1, 3).toLowerCase() === 'pdf';
  if (!isPdf) return undefined;
  return { content: obx.get(5, 1, 5).replace(/\s+/g, ''), index: Number(obx.get(1)) || 0 };
}

/** True when base64 text decodes to something starting with `%PDF-`. */
export function isPdfBase64(b64: string): boolean {
  return /^[A-Za-z0-9+/=]+$/.test(b64) && Buffer.from(b64.slice(0, 8), 'base64').subarray(0, 5).equals(Buffer.from('%PDF-'));
}

export interface ReportOptions {
  cardTypes: Readonly<Record<string, string>>;
  findings: RegExp;
  impression: RegExp;
  mask: boolean;
  /** Most results a lab report may carry (default DEFAULT_MAX_RESULTS: no limit); more fails with RECOG_E_TOO_MANY_RESULTS. */
  maxResults?: number;
}

/** Fields common to lab and exam reports (ORU: ORC/OBR; MDM: TXA). */
function reportCommon(msg: Hl7Message, org: Json, reportId: string, status: 'F' | 'C', o: ReportOptions): Json {
  const obr = first(msg, 'OBR');
  const orc = first(msg, 'ORC');
  const txa = first(msg, 'TXA');
  const pv1 = first(msg, 'PV1');
  const firstObx = first(msg, 'OBX');
  let patient = patientRef(msg, o.cardTypes);
  // Masked records keep the in-hospital id (the platform needs a key) but lose what identifies the person.
  if (o.mask) patient = compact({ patientId: patient.patientId, name: maskName(String(patient.name ?? '')), sex: patient.sex });
  return compact({
    ...org,
    reportId,
    status,
    patient,
    orderNo: orc?.get(2, 1, 1) || obr?.get(2, 1, 1) || txa?.get(14, 1, 1) || '',
    visitNo: pv1?.get(19, 1, 1) ?? '',
    item: compact({ code: obr?.get(4, 1, 1) || txa?.get(2, 1, 1) || '', name: obr?.get(4, 1, 2) || txa?.get(2, 1, 2) || '', system: obr?.get(4, 1, 3) || txa?.get(2, 1, 3) || '' }),
    deptCode: pv1?.get(3, 1, 1) ?? '',
    deptName: pv1?.get(3, 1, 4) ?? '',
    requestDoctor: xcn(obr, 16) ?? xcn(orc, 12) ?? xcn(pv1, 7),
    reporter: (txa ? xcn(txa, 5) : undefined) ?? xcn(firstObx, 16),
    reviewer: (txa ? xcn(txa, 22) : undefined) ?? xcnSub(obr, 32),
    requestTime: obr?.get(6) ?? '',
    collectTime: obr?.get(7) || txa?.get(6) || '',
    reportTime: obr?.get(22) || txa?.get(4) || msg.get('MSH-7'),
    ...(o.mask ? { sensitive: true } : {}),
  });
}

export function labPayload(msg: Hl7Message, org: Json, reportId: string, status: 'F' | 'C', o: ReportOptions): Json {
  const max = o.maxResults ?? DEFAULT_MAX_RESULTS;
  const results: Json[] = [];
  for (const obx of msg.segments('OBX')) {
    const r = labResult(obx);
    if (!r) continue;
    // Past the limit the upload is refused before anything big is built or sent.
    if (results.length >= max) throw recognitionError('RECOG_E_TOO_MANY_RESULTS', { limit: max });
    results.push(r);
  }
  return labReport(msg, org, reportId, status, o, results);
}

/**
 * labPayload in time slices (the same payload): a lab report with 100,000
 * results takes a few hundred ms to build, and that must not hold the event
 * loop in one piece (issue 11).
 */
export async function labPayloadYielding(msg: Hl7Message, org: Json, reportId: string, status: 'F' | 'C', o: ReportOptions, slice: TimeSlice = new TimeSlice()): Promise<Json> {
  return (await labPayloadAndPdfYielding(msg, org, reportId, status, o, undefined, slice)).payload;
}

/**
 * labPayloadYielding and, when `pdf` is given, findPdf (its `code`) in the
 * same walk over the segments: each OBX is read once, not once for the
 * results and again for the PDF search. `pdf` undefined: no search.
 *
 * The results come back as a JsonArrayBytes: each result's JSON is written
 * as UTF-8 straight from its OBX text (no object, field list or string per
 * result, no second pass to serialize and encode them): the same text
 * `JSON.stringify` makes of labPayload's result objects. An OBX whose text
 * has an escape sequence, a repetition or a character JSON must escape goes
 * through labResult and JSON.stringify.
 */
export async function labPayloadAndPdfYielding(
  msg: Hl7Message,
  org: Json,
  reportId: string,
  status: 'F' | 'C',
  o: ReportOptions,
  pdf: { code?: string | undefined } | undefined,
  slice: TimeSlice = new TimeSlice(),
): Promise<{ payload: Json; pdf?: { content: string; index: number } }> {
  const max = o.maxResults ?? DEFAULT_MAX_RESULTS;
  const d = msg.delimiters;
  const out = new JsonArrayBytesWriter();
  let found: { content: string; index: number } | undefined;
  const n = msg.segmentCount;
  for (let i = 0; i < n; i++) {
    if (slice.due()) await slice.pause();
    if (msg.segmentName(i) !== 'OBX') continue;
    const line = msg.segmentText(i);
    if (plainLine(line, d)) {
      fieldBounds(line, d.field.charCodeAt(0));
      // An ED OBX (the PDF) is never a result; the PDF search reads it as a segment.
      if (isField(line, 2, 'ED')) {
        if (pdf && !found) found = pdfOf(msg.segmentAt(i)!, pdf.code);
        continue;
      }
      component(line, FB[6]!, FB[7]!, d.component, 1);
      if (CA === CB) continue;
      if (out.length >= max) throw recognitionError('RECOG_E_TOO_MANY_RESULTS', { limit: max });
      writeLabResult(out, line, d.component);
    } else {
      const obx = msg.segmentAt(i)!;
      if (pdf && !found) found = pdfOf(obx, pdf.code);
      const r = labResult(obx);
      if (!r) continue;
      if (out.length >= max) throw recognitionError('RECOG_E_TOO_MANY_RESULTS', { limit: max });
      const text = JSON.stringify(r);
      out.item(text.length * 3);
      out.text(text);
    }
  }
  return { payload: labReport(msg, org, reportId, status, o, out.done(LAB_RESULT_KEYS)), ...(found ? { pdf: found } : {}) };
}

/** Keys of a lab result object, in the order labResult writes them. */
const LAB_RESULT_KEYS: readonly string[] = Object.freeze(['seq', 'code', 'name', 'valueType', 'units', 'range', 'abnormalFlag', 'status', 'observedAt', 'value']);

/** A character JSON.stringify would escape (or a surrogate, which it may): such text takes the object path. */
const JSON_UNSAFE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * True when every value of the segment reads as its plain text: no escape
 * character (nothing to unescape), no repetition separator (the first
 * repetition is the whole field) and nothing JSON must escape. Then get(f)
 * and get(f, 1, c) are the field and its c-th component as they stand.
 */
function plainLine(line: string, d: Hl7Message['delimiters']): boolean {
  return (d.escape === '' || !line.includes(d.escape)) && !line.includes(d.repetition) && !JSON_UNSAFE.test(line);
}

/** Fields 0-14 of the segment last given to fieldBounds: FB[2k], FB[2k + 1] = start and end of field k (an absent field is empty). */
const FB = new Int32Array(30);

function fieldBounds(line: string, sep: number): void {
  const n = line.length;
  let k = 0;
  let start = 0;
  for (let j = 0; j < n && k < 15; j++) {
    if (line.charCodeAt(j) !== sep) continue;
    FB[2 * k] = start;
    FB[2 * k + 1] = j;
    k++;
    start = j + 1;
  }
  if (k < 15) {
    FB[2 * k] = start;
    FB[2 * k + 1] = n;
    k++;
  }
  for (; k < 15; k++) FB[2 * k] = FB[2 * k + 1] = n;
}

/** Start and end of the component last found by component(). */
let CA = 0;
let CB = 0;

/** Component c (1-based) of line[from, to), as nth() splits it: an empty range when there is none. */
function component(line: string, from: number, to: number, sep: string, c: number): void {
  let s = from;
  for (let m = 1; m < c; m++) {
    const at = line.indexOf(sep, s);
    if (at < 0 || at >= to) {
      CA = CB = to;
      return;
    }
    s = at + 1;
  }
  const e = line.indexOf(sep, s);
  CA = s;
  CB = e < 0 || e >= to ? to : e;
}

function isField(line: string, k: number, v: string): boolean {
  return FB[2 * k + 1]! - FB[2 * k]! === v.length && line.startsWith(v, FB[2 * k]!);
}

const K_SEQ = '{"seq":';
const K_CODE_AFTER_SEQ = ',"code":"';
const K_CODE_FIRST = '{"code":"';
const K_NAME = '","name":"';
const K_VALUE_TYPE = '","valueType":"';
const K_UNITS = '","units":"';
const K_RANGE = '","range":"';
const K_FLAG = '","abnormalFlag":"';
const K_STATUS = '","status":"';
const K_OBSERVED = '","observedAt":"';
const K_VALUE = '","value":"';
const K_END = '"}';

/** A key and field k, when the field is not empty. */
function optional(out: JsonArrayBytesWriter, line: string, k: number, key: string): void {
  if (FB[2 * k] === FB[2 * k + 1]) return;
  out.lit(key);
  out.chars(line, FB[2 * k]!, FB[2 * k + 1]!);
}

/**
 * labResult's JSON, written from a plain OBX (see plainLine) whose fields
 * fieldBounds has found and whose OBX-3.1 is not empty: the same keys, order
 * and values (optional ones left out when empty).
 */
function writeLabResult(out: JsonArrayBytesWriter, line: string, comp: string): void {
  // Every value is a range of the line, each character at most 3 bytes; the keys are under 160 bytes.
  out.item(line.length * 3 + 160);
  const seq = Number(line.slice(FB[2]!, FB[3]!)) || undefined;
  if (seq !== undefined) {
    out.lit(K_SEQ);
    // JSON.stringify's text of a number.
    out.lit(Number.isFinite(seq) ? String(seq) : 'null');
    out.lit(K_CODE_AFTER_SEQ);
  } else out.lit(K_CODE_FIRST);
  component(line, FB[6]!, FB[7]!, comp, 1);
  out.chars(line, CA, CB);
  component(line, FB[6]!, FB[7]!, comp, 2);
  if (CA !== CB) {
    out.lit(K_NAME);
    out.chars(line, CA, CB);
  }
  optional(out, line, 2, K_VALUE_TYPE);
  component(line, FB[12]!, FB[13]!, comp, 1);
  if (CA !== CB) {
    out.lit(K_UNITS);
    out.chars(line, CA, CB);
  }
  optional(out, line, 7, K_RANGE);
  optional(out, line, 8, K_FLAG);
  optional(out, line, 11, K_STATUS);
  optional(out, line, 14, K_OBSERVED);
  out.lit(K_VALUE);
  if (isField(line, 2, 'CE') || isField(line, 2, 'CWE')) {
    component(line, FB[10]!, FB[11]!, comp, 2);
    if (CA === CB) component(line, FB[10]!, FB[11]!, comp, 1);
    out.chars(line, CA, CB);
  } else out.chars(line, FB[10]!, FB[11]!);
  out.lit(K_END);
}

function labReport(msg: Hl7Message, org: Json, reportId: string, status: 'F' | 'C', o: ReportOptions, results: Json[] | JsonArrayBytes): Json {
  const obr = first(msg, 'OBR');
  return { ...reportCommon(msg, org, reportId, status, o), ...compact({ specimen: obr?.get(15, 1, 1, 2) || obr?.get(15, 1, 1, 1) || '' }), results };
}

/** One result of a lab report from its OBX; undefined for an ED OBX (the PDF) or one without a code. */
function labResult(obx: Hl7Segment): Json | undefined {
  const valueType = obx.get(2);
  if (valueType === 'ED') return undefined;
  const code = obx.get(3, 1, 1);
  if (code === '') return undefined;
  // Optional fields stay absent rather than empty (as compact() does), in a fixed key order.
  const r: Json = {};
  const seq = Number(obx.get(1)) || undefined;
  if (seq !== undefined) r.seq = seq;
  r.code = code;
  put(r, 'name', obx.get(3, 1, 2));
  put(r, 'valueType', valueType);
  put(r, 'units', obx.get(6, 1, 1));
  put(r, 'range', obx.get(7));
  put(r, 'abnormalFlag', obx.get(8));
  put(r, 'status', obx.get(11));
  put(r, 'observedAt', obx.get(14));
  // Kept even when empty: the schema requires a value per result.
  r.value = labValue(obx);
  return r;
}

/**
 * Default `maxResults` of recognition-upload: no limit. A lab report with
 * 100,000 results is pathological but not invalid, and the platform's upload
 * has no paging, so it is sent whole, in one upload (built and serialized in
 * time slices). A route may still set a limit.
 */
export const DEFAULT_MAX_RESULTS = Number.POSITIVE_INFINITY;

function put(o: Json, key: string, v: string): void {
  if (v !== '') o[key] = v;
}

function labValue(obx: Hl7Segment): string {
  const t = obx.get(2);
  if (t === 'CE' || t === 'CWE') return obx.get(5, 1, 2) || obx.get(5, 1, 1);
  return obx.get(5);
}

export function examPayload(msg: Hl7Message, org: Json, reportId: string, status: 'F' | 'C', o: ReportOptions): Json {
  const texts = msg.segments('OBX').filter((obx) => ['TX', 'FT', 'ST'].includes(obx.get(2)));
  const pick = (re: RegExp): Hl7Segment | undefined => texts.find((obx) => re.test(obx.get(3, 1, 1)) || re.test(obx.get(3, 1, 2)));
  const findings = pick(o.findings) ?? texts[0];
  const impression = pick(o.impression) ?? texts.find((t) => t !== findings);
  const obr = first(msg, 'OBR');
  return {
    ...reportCommon(msg, org, reportId, status, o),
    ...compact({
      modality: obr?.get(24) || first(msg, 'TXA')?.get(2, 1, 1) || '',
      findings: findings ? findings.get(5) : '',
      impression: impression ? impression.get(5) : '',
    }),
  };
}
