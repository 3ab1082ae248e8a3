/**
 * `recognition-upload`: real-time uploads to the recognition platform
 * (seed 004 items 1-11): patients (ADT^A04/A28/A31/A08), the department
 * (MFN^M05) and staff (MFN^M02) dictionaries, lab and exam reports with
 * their PDF (ORU^R01, MDM^T02). Which family a message is comes from the
 * step's `kind` (routes decide it with conditions on MSH-3 / OBR-24); the
 * operation comes from the message (see report.ts and README.md).
 */
import { hbError, compileTemplate, type Template, type PluginDefinition, type StepInput } from '../../core/sdk.js';
import { clientsFor } from '../recognition/hub.js';
import { INSTITUTION_KEY_SCHEMA, recognitionPicker } from '../recognition/institution.js';
import { DEFAULT_CARD_TYPES, DEFAULT_MAX_RESULTS, departmentPayloads, patientPayload, staffPayloads, type Json } from './payload.js';
import { processReport } from './report.js';

export interface RecognitionUploadConfig {
  /** `dictionary` picks department (MFN^M05) or staff (MFN^M02) from the message. */
  kind: 'patient' | 'department' | 'staff' | 'dictionary' | 'lab' | 'exam';
  /** Template of the report id; default `${OBR-3.1}` (filler order number), MDM: `${TXA-15.1}` then `${TXA-12.1}`. */
  reportId?: string;
  /** OBX-3.1 of the PDF; default: the first OBX with value type ED and subtype pdf. */
  pdfCode?: string;
  /** Fail (no retry) when a report has no PDF. Default false. */
  requirePdf?: boolean;
  /** Regular expressions on OBX-3 (code or name) for exam findings / impression. */
  findings?: string;
  impression?: string;
  /** Variable holding a sensitive-guard output; `mask: true` there masks the report. Default `sensitive`. */
  maskVar?: string;
  /** Identifier type → card type, merged over the defaults. */
  cardTypes?: Record<string, string>;
  /** Most results (non-ED OBX) one lab report may carry; more fails with RECOG_E_TOO_MANY_RESULTS (default: no limit). */
  maxResults?: number;
  /** orgCode of the recognition institution to upload under (default: the one whose senders list MSH-4). */
  institution?: string;
}

const DEFAULT_FINDINGS = '(^|[-_])FIND|所见';
const DEFAULT_IMPRESSION = '(^|[-_])(IMP|CONCL|DIAG)|诊断|意见|结论|印象';

function regex(src: string, name: string): RegExp {
  try {
    return new RegExp(src, 'i');
  } catch (e) {
    throw new Error(`${name} is not a valid regular expression: ${(e as Error).message}`);
  }
}

function reportIdOf(input: StepInput, custom: Template | undefined): string {
  if (custom) return custom.render(input).trim();
  const m = input.hl7!;
  return (m.messageCode === 'MDM' ? m.get('TXA-15.1') || m.get('TXA-12.1') || m.get('OBR-3.1') : m.get('OBR-3.1') || m.get('OBR-2.1')).trim();
}

/** MFN^M05 / MFI-1 LOC → departments; MFN^M02 / MFI-1 PRA or STF → staff. */
function dictionaryKind(trigger: string, mfi: string): 'department' | 'staff' | 'unknown' {
  if (trigger === 'M05' || mfi === 'LOC') return 'department';
  if (trigger === 'M02' || mfi === 'PRA' || mfi === 'STF') return 'staff';
  return 'unknown';
}

const plugin: PluginDefinition<RecognitionUploadConfig> = {
  name: 'recognition-upload',
  summary: 'Upload patients, dictionaries and lab/exam reports (data + PDF, corrections, revokes) to the recognition platform',
  kind: 'outbound',
  siteKey: 'recognition',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['kind'],
    properties: {
      kind: { enum: ['patient', 'department', 'staff', 'dictionary', 'lab', 'exam'], description: 'What the message carries; dictionary = department for MFN^M05, staff for MFN^M02' },
      reportId: { type: 'string', minLength: 1, description: 'Template of the report id (default ${OBR-3.1}; MDM ${TXA-15.1} or ${TXA-12.1})' },
      pdfCode: { type: 'string', minLength: 1, description: 'OBX-3.1 of the report PDF (default: the OBX with value type ED, ^application^pdf^Base64^...)' },
      requirePdf: { type: 'boolean', description: 'A report without PDF fails instead of uploading data only (default false)' },
      findings: { type: 'string', description: `Exam findings OBX: regular expression on OBX-3 code or name (default ${DEFAULT_FINDINGS})` },
      impression: { type: 'string', description: `Exam impression OBX (default ${DEFAULT_IMPRESSION})` },
      maskVar: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Variable of a sensitive-guard step (as:); mask: true there masks the upload (default sensitive)' },
      cardTypes: { type: 'object', additionalProperties: { enum: ['01', '02', '03', '04', '05', '06', '07', '08', '99'] }, description: 'Identifier type (PID-3.5) → card type code' },
      maxResults: { type: 'integer', minimum: 1, maximum: 1000000, description: 'Most results (non-ED OBX) one lab report upload may carry; a larger report fails with RECOG_E_TOO_MANY_RESULTS and goes to the dead letter (default: no limit, the whole report is sent in one upload)' },
      institution: INSTITUTION_KEY_SCHEMA,
    },
  },
  examples: [
    { title: 'Lab report from the LIS', yaml: 'plugin: recognition-upload\nconfig: { kind: lab }' },
    { title: 'Exam report with site-specific OBX codes', yaml: 'plugin: recognition-upload\nconfig: { kind: exam, findings: "^RPT-1$", impression: "^RPT-2$" }' },
  ],
  create(ctx, config) {
    const clients = clientsFor(ctx, 'recognition-upload');
    const picker = recognitionPicker(ctx, config.institution, 'recognition-upload');
    const cardTypes = { ...DEFAULT_CARD_TYPES, ...(config.cardTypes ?? {}) };
    const customId = config.reportId ? compileTemplate(config.reportId) : undefined;
    const findings = regex(config.findings ?? DEFAULT_FINDINGS, 'findings');
    const impression = regex(config.impression ?? DEFAULT_IMPRESSION, 'impression');
    const maskVar = config.maskVar ?? 'sensitive';

    return {
      admit(input) {
        picker.pick(input);
      },
      async process(input, call) {
        const msg = input.hl7;
        if (!msg) throw hbError('HL7_E_PARSE', { detail: 'recognition-upload needs an HL7 message' });
        // The institution this message goes out under: its account, its orgCode in every payload.
        const site = picker.pick(input);
        const client = clients.get(site.orgCode)!;
        const org: Json = { orgCode: site.orgCode, orgName: site.orgName };
        const meta = { route: call.route, messageId: input.controlId, idempotencyKey: call.idempotencyKey, signal: call.signal };
        const kind = config.kind === 'dictionary' ? dictionaryKind(msg.triggerEvent, msg.get('MFI-1.1')) : config.kind;
        switch (kind) {
          case 'patient': {
            const payload = patientPayload(msg, org, cardTypes);
            const patientId = String((payload.patient as Json).patientId ?? '');
            if (!patientId) throw hbError('HL7_E_MISSING_FIELD', { path: 'PID-3' });
            await client.call('patient', payload, { ...meta, patientId });
            return { outcome: 'ok', output: { kind: 'patient', operation: 'upsert', calls: 1 } };
          }
          case 'department':
          case 'staff': {
            const entries = kind === 'department' ? departmentPayloads(msg, org) : staffPayloads(msg, org, cardTypes);
            if (entries.length === 0) return { outcome: 'skipped', detail: 'no MFE entry', output: { kind, calls: 0 } };
            // One call per MFE, in message order: a delete after an add of the same code must land last.
            for (const e of entries) await client.call(kind, e, { ...meta, ...(kind === 'staff' ? { staffNo: String(e.staffNo ?? '') } : {}) });
            return { outcome: 'ok', output: { kind, actions: entries.map((e) => `${String(e.action)}`), calls: entries.length } };
          }
          case 'unknown':
            return { outcome: 'skipped', detail: `not a department or staff dictionary (MFI-1 ${msg.get('MFI-1.1') || 'empty'})`, output: { kind: 'dictionary', calls: 0 } };
          default: {
            const reportId = reportIdOf(input, customId);
            if (!reportId) throw hbError('HL7_E_MISSING_FIELD', { path: customId ? customId.source : 'OBR-3.1' });
            const guard = input.vars[maskVar] as { mask?: unknown } | undefined;
            return processReport(client, ctx.state, input, call, {
              kind,
              reportId,
              ...(config.pdfCode ? { pdfCode: config.pdfCode } : {}),
              requirePdf: config.requirePdf ?? false,
              options: { cardTypes, findings, impression, mask: guard?.mask === true, maxResults: config.maxResults ?? DEFAULT_MAX_RESULTS },
              org,
            });
          }
        }
      },
    };
  },
};

export default plugin;
