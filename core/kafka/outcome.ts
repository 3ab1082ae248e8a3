/**
 * What the source does with a record once `engine.ingest` answered: commit
 * it (accepted), dead-letter it (it can never succeed) or try it again later
 * (a passing reason: store busy, engine refusing, a retryable remote failure
 * in an on-complete route). Decided from the IngestResult the MLLP listener
 * also gets, so both inputs share one meaning of AA/AE/AR.
 */
import type { IngestResult } from '../engine/ingest.js';
import { ERRORS, type ErrorCode, type HisbridgeError } from '../errors.js';
import { parseHl7 } from '../hl7/index.js';

export type RecordVerdict =
  | { kind: 'accepted'; duplicate: boolean }
  | { kind: 'dead' | 'retry'; code: string; reason: string; route: string };

/** ERR-3 (HL7 table 0357) back to our codes, for messages rejected before parsing completed. */
const FROM_HL7: Record<string, ErrorCode> = { '100': 'HL7_E_NO_MSH', '101': 'HL7_E_MISSING_FIELD', '102': 'HL7_E_PARSE', '200': 'ENGINE_E_NO_ROUTE' };

function ackReason(res: IngestResult): { text: string; hl7Code: string } {
  try {
    const ack = parseHl7(res.ackText);
    // Error texts come from the error catalog, which carries masked values only.
    return { text: ack.get('ERR-8') || ack.get('MSA-3'), hl7Code: ack.get('ERR-3.1') };
  } catch {
    return { text: '', hl7Code: '' };
  }
}

function isRetryable(code: string | undefined): boolean {
  if (!code) return true;
  const spec = (ERRORS as Record<string, { retryable: boolean }>)[code];
  return spec ? spec.retryable : true;
}

export function classify(res: IngestResult): RecordVerdict {
  if (res.code === 'AA' || res.code === 'CA') return { kind: 'accepted', duplicate: res.duplicate === true };
  const { text, hl7Code } = ackReason(res);
  // No type: decoding or parsing failed before the message existed; it never will parse.
  if (res.type === undefined) return { kind: 'dead', code: res.errorCode ?? FROM_HL7[hl7Code] ?? 'HL7_E_PARSE', reason: text || 'unparsable HL7', route: '' };
  const failed = res.routes.filter((r) => r.outcome === 'failed');
  if (res.code === 'AR' || res.code === 'CR') {
    const f = failed[0];
    return { kind: 'dead', code: f?.errorCode ?? FROM_HL7[hl7Code] ?? 'ENGINE_E_NO_ROUTE', reason: f?.detail ?? text, route: f?.route ?? '' };
  }
  if (failed.length === 0) {
    // AE with nothing failed in a route: refused (back-pressure, shutting down) or the store commit failed.
    return { kind: 'retry', code: 'ENGINE_E_INTERNAL', reason: text || 'not accepted', route: '' };
  }
  const retryable = failed.find((f) => isRetryable(f.errorCode));
  const f = retryable ?? failed[0]!;
  return { kind: retryable ? 'retry' : 'dead', code: f.errorCode ?? 'ENGINE_E_STEP_FAILED', reason: f.detail ?? text, route: f.route };
}

/** A verdict for a record rejected before ingest (bad envelope, empty value). */
export function payloadVerdict(err: HisbridgeError): Exclude<RecordVerdict, { kind: 'accepted' }> {
  return { kind: 'dead', code: err.code, reason: err.message, route: '' };
}
