/**
 * Workstation endpoint: `GET /api/gd-ehr/viewer-url?orgCode=&patientId=&staffNo=&staffName=&idcard=&cardType=&patientName=`
 * (orgCode: which gdEhr institution; required when several are configured;
 * an API client limited by `institutions:` gets 403 GDEHR_E_INSTITUTION_FORBIDDEN for another)
 * → 302 to the provincial viewer (or `&format=json` → `{"url": …}`); a
 * missing or unsafe parameter → 400 `{code, message}`. Every request is
 * audited: who asked (staffNo, client address), for which patient, result.
 */
import { isHisbridgeError, toHisbridgeError, type HisbridgeError, requestOrigin, type EndpointRequest, type EndpointResponse, type HttpEndpoint, type PluginContext } from '../../core/sdk.js';
import { gdEhrError } from './errors.js';
import { requestInstitution } from '../shared/institutions.js';
import { cardTypeFor, readInstitutions, type GdEhrInstitution, type GdEhrInstitutions } from './site.js';
import { buildViewerUrl, type ViewerFields } from './viewer-url.js';

const NO_STORE = { 'cache-control': 'no-store' };

function errorResponse(e: HisbridgeError, status = e.status ?? 400): EndpointResponse {
  return { status, headers: NO_STORE, body: { code: e.code, message: e.message } };
}

/**
 * cardType may be given as a code (01…99) or as an HL7 identifier type (NI, PPN…) looked up in the site table.
 * `strict` (the workstation endpoint): an identifier type the table does not know is GDEHR_E_BAD_CARD_TYPE
 * (400) instead of 99 "other", so a typo never mints a URL with the wrong document type.
 */
export function resolveCardType(value: string | undefined, table: Readonly<Record<string, string>>, strict = false): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^\d{2}$/.test(value)) return value;
  if (strict && !knownIdentifierType(value, table)) throw gdEhrError('GDEHR_E_BAD_CARD_TYPE', { value: value.slice(0, 8).replace(/[^\w-]/g, '?') });
  return cardTypeFor(value, table);
}

function knownIdentifierType(value: string, table: Readonly<Record<string, string>>): boolean {
  const v = value.trim();
  return Object.prototype.hasOwnProperty.call(table, v.toUpperCase()) || Object.prototype.hasOwnProperty.call(table, v);
}

/**
 * The institution of one workstation request: `orgCode` (required when
 * several are configured, else the single one), which the API client must be
 * allowed (`api.clients[].institutions`). The orgCode is echoed in errors only
 * when it is a configured one; anything else is shown cleaned and short.
 */
export function pickInstitution(all: GdEhrInstitutions, orgCode: string | undefined, allowed: readonly string[] | undefined): GdEhrInstitution {
  return requestInstitution(all, orgCode, allowed, {
    required: () => gdEhrError('GDEHR_E_INSTITUTION_REQUIRED'),
    unknown: (o) => gdEhrError('GDEHR_E_UNKNOWN_INSTITUTION', { orgCode: o }),
    forbidden: (o) => gdEhrError('GDEHR_E_INSTITUTION_FORBIDDEN', { orgCode: o }),
  });
}

/** The endpoint list for the `gdEhr` extension. */
export function gdEhrEndpoints(ctx: PluginContext): HttpEndpoint[] {
  let all: GdEhrInstitutions | undefined;
  let siteError: HisbridgeError | undefined;
  try {
    all = readInstitutions(ctx.site, ['viewerUrl', 'orgCode', 'callSysCode', 'appId', 'sm4Key']);
  } catch (e) {
    // Answer every call with the reason rather than refuse to start the engine for a feature that is not configured.
    siteError = toHisbridgeError(e);
  }

  async function handler(req: EndpointRequest): Promise<EndpointResponse> {
    const started = performance.now();
    const q = req.query;
    let site: GdEhrInstitution | undefined;
    const audit = (result: string, detail?: string) =>
      ctx.audit({
        plugin: 'gd-ehr',
        operation: 'viewer-url',
        // The institution asked for, when it is a configured one (a refused request is audited against it too).
        ...(site ? { orgCode: site.orgCode } : q.orgCode && all?.byOrgCode(q.orgCode) ? { orgCode: q.orgCode } : {}),
        ...(q.staffNo ? { staffNo: q.staffNo } : {}),
        ...(q.patientId ? { patientId: q.patientId } : {}),
        ...(q.idcard ? { idNumber: q.idcard } : {}),
        ...requestOrigin(req),
        result,
        latencyMs: performance.now() - started,
        detail: [detail, req.remoteAddress ? `from ${req.remoteAddress}` : undefined].filter(Boolean).join(' '),
      });
    if (!all) {
      audit('failed', siteError!.code);
      return errorResponse(siteError!, 503);
    }
    try {
      site = pickInstitution(all, q.orgCode, req.institutions);
      const fields: ViewerFields = {
        orgCode: site.orgCode,
        staffNo: q.staffNo ?? '',
        staffName: q.staffName ?? '',
        cardType: resolveCardType(q.cardType, site.cardTypes, true) ?? '',
        idcard: q.idcard ?? '',
        patientName: q.patientName ?? '',
        patientId: q.patientId ?? '',
        callSysCode: site.callSysCode,
      };
      const url = buildViewerUrl({ viewerUrl: site.viewerUrl, appId: site.appId, sm4Key: site.sm4Key, fields });
      audit('ok');
      if (q.format === 'json') return { status: 200, headers: NO_STORE, body: { url } };
      return { status: 302, headers: { ...NO_STORE, location: url } };
    } catch (e) {
      const err = toHisbridgeError(e);
      audit(err.code === 'GDEHR_E_INSTITUTION_FORBIDDEN' ? 'forbidden' : 'failed', err.code);
      ctx.log.info({ plugin: 'gd-ehr', operation: 'viewer-url', code: err.code }, 'viewer URL refused');
      return errorResponse(err, isHisbridgeError(e) && err.status ? err.status : 400);
    }
  }

  return [{ method: 'GET', path: '/api/gd-ehr/viewer-url', handler }];
}
