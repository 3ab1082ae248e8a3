/**
 * The viewer URL (调阅接口, seed 001 §9.3): `viewerUrl?param=<SM4 hex>&appId=<appId>`
 * where param encrypts `orgCode=…&staffNo=…&staffName=…&cardType=…&idcard=…&patientName=…&patientId=…&callSysCode=…`
 * with raw values in exactly this order. Shared by the viewer plugin, the
 * workstation endpoint, the CLI and the simulator (which parses it back).
 */
import { sm4DecryptHex, sm4EncryptHex } from '../../core/sdk.js';
import { gdEhrError } from './errors.js';
import { CARD_TYPE_CODES } from './site.js';

/** The guide's field order; do not reorder. */
export const VIEWER_FIELDS = ['orgCode', 'staffNo', 'staffName', 'cardType', 'idcard', 'patientName', 'patientId', 'callSysCode'] as const;
export type ViewerField = (typeof VIEWER_FIELDS)[number];
export type ViewerFields = Record<ViewerField, string>;

// Values go into the query string raw (the province splits on & and =), so these would corrupt it.
const UNSAFE = /[&=\u0000-\u001f\u007f]/;

/** Checks one value: present and free of `&`, `=` and control characters. */
export function checkViewerValue(field: string, value: string | undefined): string {
  if (value === undefined || value === '') throw gdEhrError('GDEHR_E_MISSING_PARAM', { field });
  if (UNSAFE.test(value)) throw gdEhrError('GDEHR_E_UNSAFE_VALUE', { field });
  return value;
}

/** The plaintext of `param`, every field checked (GDEHR_E_MISSING_PARAM, GDEHR_E_UNSAFE_VALUE, GDEHR_E_BAD_CARD_TYPE). */
export function viewerParamPlaintext(fields: ViewerFields): string {
  const parts: string[] = [];
  for (const f of VIEWER_FIELDS) parts.push(`${f}=${checkViewerValue(f, fields[f])}`);
  if (!(CARD_TYPE_CODES as readonly string[]).includes(fields.cardType)) throw gdEhrError('GDEHR_E_BAD_CARD_TYPE', { value: fields.cardType.slice(0, 8) });
  return parts.join('&');
}

export interface ViewerUrlOptions {
  /** Base URL of getPrivilege. */
  viewerUrl: string;
  appId: string;
  /** 32 hex characters. */
  sm4Key: string;
  fields: ViewerFields;
}

/** Builds the URL the doctor's browser opens. The result carries encrypted PHI: do not log it. */
export function buildViewerUrl(o: ViewerUrlOptions): string {
  const param = sm4EncryptHex(o.sm4Key, viewerParamPlaintext(o.fields));
  const appId = checkViewerValue('appId', o.appId);
  const sep = o.viewerUrl.includes('?') ? '&' : '?';
  return `${o.viewerUrl}${sep}param=${param}&appId=${encodeURIComponent(appId)}`;
}

/**
 * Decrypts and parses `param` strictly: the eight fields, in the guide's
 * order, nothing else. Throws CRYPTO_E_* for a bad cipher and
 * GDEHR_E_MISSING_PARAM naming the first field out of place.
 */
export function parseViewerParam(sm4Key: string, cipherHex: string): ViewerFields {
  const plain = sm4DecryptHex(sm4Key, cipherHex);
  const pairs = plain.split('&');
  const out = {} as ViewerFields;
  VIEWER_FIELDS.forEach((f, i) => {
    const p = pairs[i];
    const eq = p === undefined ? -1 : p.indexOf('=');
    if (p === undefined || eq < 0 || p.slice(0, eq) !== f) throw gdEhrError('GDEHR_E_MISSING_PARAM', { field: f });
    out[f] = p.slice(eq + 1);
  });
  if (pairs.length !== VIEWER_FIELDS.length) throw gdEhrError('GDEHR_E_UNSAFE_VALUE', { field: 'param' });
  return out;
}
