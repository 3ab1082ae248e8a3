/**
 * Client of the authorization API (授权接口, seed 001 §9.2). Results are
 * checked in the guide's order: transport (connect, timeout, HTTP status),
 * then the business `returnCode`, then anything else, and turned into
 * catalogued errors whose `retryable` drives the delivery policy.
 */
import { hbError, classifyHttpStatus, gatewayHeaders, sm4EncryptHex, scrubText, type HttpClient } from '../../core/sdk.js';
import { gdEhrError } from './errors.js';
import type { GdEhrSite } from './site.js';

export interface AuthorizeRequest {
  /** Plain ID number; encrypted here. */
  idNumber: string;
  patientName: string;
  /** "1" grant, "0" withdraw. */
  status: '0' | '1';
  /** Default: the site's authDays (30). */
  authDays?: number;
}

export interface AuthorizeResult {
  returnCode: string;
  returnDesc: string;
  status: number;
  latencyMs: number;
}

/** The JSON body of codeAuthRec/save (field order as in the guide). */
export function authorizeBody(site: GdEhrSite, req: AuthorizeRequest): { codeAuthRec: Record<string, unknown> } {
  return {
    codeAuthRec: {
      authDays: req.authDays ?? site.authDays,
      patientIdcard: sm4EncryptHex(site.sm4Key, req.idNumber),
      patientName: req.patientName,
      orgCode: site.orgCode,
      orgName: site.orgName,
      status: req.status,
      appId: site.appId,
    },
  };
}

const TARGET = 'gd-ehr authorization';

/**
 * Sends one authorization. Throws HTTP_E_NETWORK / HTTP_E_TIMEOUT /
 * HTTP_E_STATUS_RETRYABLE, HTTP_E_ABORTED (retryable), GDEHR_E_BAD_SIGNATURE (401/403),
 * HTTP_E_STATUS (other 4xx), GDEHR_E_BUSINESS (returnCode "0") and
 * HTTP_E_BAD_BODY (no returnCode), all permanent unless stated.
 */
export async function authorize(http: HttpClient, site: GdEhrSite, req: AuthorizeRequest, opts: { idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<AuthorizeResult> {
  const headers: Record<string, string> = { ...gatewayHeaders({ paasId: site.paasId, paasToken: site.paasToken }), accept: 'application/json' };
  if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
  const res = await http.request(site.authUrl, { method: 'POST', headers, body: authorizeBody(site, req), timeoutMs: site.timeoutMs, target: TARGET, ...(opts.signal ? { signal: opts.signal } : {}) });
  if (res.status === 401 || res.status === 403) throw gdEhrError('GDEHR_E_BAD_SIGNATURE', {}, { data: { status: res.status } });
  const statusErr = classifyHttpStatus(res.status, res.headers, TARGET);
  if (statusErr) throw statusErr;
  const body = res.json as { returnCode?: unknown; returnDesc?: unknown } | undefined;
  // The guide's own samples show " 1" with a stray space: compare trimmed.
  const returnCode = body && (typeof body.returnCode === 'string' || typeof body.returnCode === 'number') ? String(body.returnCode).trim() : undefined;
  const returnDesc = body && typeof body.returnDesc === 'string' ? scrubText(body.returnDesc).slice(0, 200) : '';
  if (returnCode === '1') return { returnCode, returnDesc, status: res.status, latencyMs: res.latencyMs };
  if (returnCode === '0') throw gdEhrError('GDEHR_E_BUSINESS', { returnCode, returnDesc }, { data: { returnCode, returnDesc } });
  throw hbError('HTTP_E_BAD_BODY', { target: TARGET, detail: returnCode === undefined ? 'no returnCode' : `unknown returnCode "${returnCode.slice(0, 8)}"` });
}
