/**
 * Lab and exam reports: upload (OBR-25 F), correction (C) and revoke (X, or
 * ORC-1 / ORC-5 CA; MDM^T11). The operation follows from the message.
 *
 * Order (SPEC §6): the route's `delivery.orderingKey` makes deliveries of one
 * patient run one after another. On top of that the plugin keeps, per report,
 * the message time (MSH-7) of the last change applied (PluginState), so that
 *  - a message older than one already applied is skipped ("superseded"),
 *    never applied over a newer revoke or correction;
 *  - a revoke of a report the platform does not know and we never uploaded
 *    fails *retryable* (RECOG_E_REVOKE_BEFORE_UPLOAD): it is held back by the
 *    retry policy until its upload lands, and dead-letters if it never does.
 */
import { hbError, isHisbridgeError, type Hl7Message, type CallContext, type PluginState, type StepInput, type StepResult } from '../../core/sdk.js';
import { recognitionError } from '../recognition/errors.js';
import type { CallMeta, RecognitionClient } from '../recognition/client.js';
import { examPayload, findPdfYielding, isPdfBase64, labPayloadAndPdfYielding, type Json, type ReportOptions } from './payload.js';

export type ReportKind = 'lab' | 'exam';
export type ReportOperation = 'upload' | 'correct' | 'revoke' | 'ignore';

export interface ReportRecord {
  status: 'uploaded' | 'revoked';
  /** MSH-7 of the message that made this change, as 14 digits. */
  at: string;
  controlId: string;
}

/** Upload, correction, revoke or nothing, from OBR-25 / ORC-1 / ORC-5 (ORU) or the trigger and TXA-17 (MDM). */
export function reportOperation(msg: Hl7Message): ReportOperation {
  if (msg.messageCode === 'MDM') {
    const t = msg.triggerEvent;
    if (t === 'T11' || t === 'T12') return 'revoke';
    if (['T04', 'T06', 'T08', 'T10'].includes(t)) return 'correct';
    const status = msg.get('TXA-17');
    return ['', 'AU', 'LA'].includes(status) ? 'upload' : 'ignore';
  }
  if (msg.get('ORC-1') === 'CA' || msg.get('ORC-5') === 'CA') return 'revoke';
  switch (msg.get('OBR-25')) {
    case 'F':
      return 'upload';
    case 'C':
      return 'correct';
    case 'X':
      return 'revoke';
    default:
      return 'ignore';
  }
}

/** HL7 TS → 14 comparable digits (missing parts as zeros). */
export function ts14(v: string): string {
  return (v.replace(/\D/g, '').slice(0, 14) + '00000000000000').slice(0, 14);
}

export interface ReportJob {
  kind: ReportKind;
  reportId: string;
  pdfCode?: string;
  requirePdf: boolean;
  options: ReportOptions;
  org: Json;
}

export async function processReport(client: RecognitionClient, state: PluginState, input: StepInput, call: CallContext, job: ReportJob): Promise<StepResult> {
  const msg = input.hl7!;
  const op = reportOperation(msg);
  const base = { kind: job.kind, reportId: job.reportId, operation: op };
  if (op === 'ignore') return { outcome: 'skipped', detail: `result status "${msg.get('OBR-25') || msg.get('TXA-17')}" is not sent`, output: base };

  const key = `report:${job.kind}:${job.reportId}`;
  const at = ts14(msg.get('MSH-7'));
  const prev = await state.get<ReportRecord>(key);
  if (prev && prev.at > at && prev.controlId !== input.controlId) {
    return { outcome: 'skipped', detail: `superseded by a later ${prev.status === 'revoked' ? 'revoke' : 'upload'}`, output: { ...base, superseded: true } };
  }
  const meta: CallMeta = { route: call.route, messageId: input.controlId, idempotencyKey: call.idempotencyKey, signal: call.signal, patientId: msg.get('PID-3[5=PI].1') || msg.get('PID-3.1') };
  const ops = job.kind === 'lab' ? { report: 'labReport', pdf: 'labPdf', revoke: 'labRevoke' } as const : { report: 'examReport', pdf: 'examPdf', revoke: 'examRevoke' } as const;
  const revokePayload = (): Json => ({
    ...job.org,
    reportId: job.reportId,
    ...(revokeReason(msg) ? { reason: revokeReason(msg) } : {}),
    revokedAt: msg.get('OBR-22') || msg.get('MSH-7'),
  });

  if (op === 'revoke') {
    try {
      await client.call(ops.revoke, revokePayload(), meta);
    } catch (e) {
      if (isHisbridgeError(e) && e.code === 'RECOG_E_UNKNOWN_REPORT' && prev?.status !== 'uploaded') {
        throw recognitionError('RECOG_E_REVOKE_BEFORE_UPLOAD', { reportId: job.reportId }, { cause: e });
      }
      throw e;
    }
    await state.set(key, { status: 'revoked', at, controlId: input.controlId } satisfies ReportRecord);
    return { outcome: 'ok', output: { ...base, calls: 1 } };
  }

  const status = op === 'correct' ? 'C' : 'F';
  // A lab report's PDF is looked for in the same walk as its results (each OBX split once).
  const lab = job.kind === 'lab' ? await labPayloadAndPdfYielding(msg, job.org, job.reportId, status, job.options, job.options.mask ? undefined : { code: job.pdfCode }) : undefined;
  const payload = lab ? lab.payload : examPayload(msg, job.org, job.reportId, status, job.options);
  const pdf = job.options.mask ? undefined : lab ? lab.pdf : await findPdfYielding(msg, job.pdfCode);
  if (pdf && !isPdfBase64(pdf.content)) throw recognitionError('RECOG_E_BAD_PDF', { path: `OBX[${pdf.index}]-5.5` });
  if (!pdf && job.requirePdf && !job.options.mask) throw hbError('HL7_E_MISSING_FIELD', { path: 'OBX (ED PDF)' });

  let calls = 0;
  if (op === 'correct' && client.site.correction === 'revoke-then-upload') {
    try {
      await client.call(ops.revoke, { ...revokePayload(), reason: revokeReason(msg) || 'corrected report follows' }, meta);
      calls++;
    } catch (e) {
      // Nothing to revoke (the original predates us or was withheld): the correction is uploaded as the report.
      if (!(isHisbridgeError(e) && e.code === 'RECOG_E_UNKNOWN_REPORT')) throw e;
    }
  }
  await client.call(ops.report, payload, meta);
  calls++;
  if (pdf) {
    await client.call(ops.pdf, { ...job.org, reportId: job.reportId, fileName: `${job.reportId}.pdf`, contentType: 'application/pdf', content: pdf.content }, meta);
    calls++;
  }
  await state.set(key, { status: 'uploaded', at, controlId: input.controlId } satisfies ReportRecord);
  return { outcome: 'ok', output: { ...base, status, pdf: pdf !== undefined, masked: job.options.mask, calls } };
}

/** Why a report is revoked: NTE-3, else ORC-16 text. */
function revokeReason(msg: Hl7Message): string {
  return (msg.get('NTE-3') || msg.get('ORC-16.2') || msg.get('ORC-16.1')).slice(0, 200);
}
