/**
 * Remote client of the recognition platform. Payloads are built with our
 * canonical field names and renamed with the site's `fields` map on the way
 * out (answers are renamed back), so the plugins never see the platform's
 * spelling. Check order: transport, HTTP status, then the business code.
 * Every call is audited here, once, with its latency and result.
 */
import { createHash } from 'node:crypto';
import { auditedCall, classifyHttpStatus, hbError, maskId, scrubText, concatYielding, stringifyJsonChunks, TimeSlice, type AuditEntry, type HttpClient, type HttpResponse } from '../../core/sdk.js';
import { recognitionError } from './errors.js';
import { invertFields, renameKeys, type Operation, type RecognitionSite } from './site.js';
import { JsonArrayBytes } from './json-text.js';
import type { TokenClient } from './token.js';

/** Who a call is made for: copied into its audit row. */
export interface CallMeta {
  route?: string;
  messageId?: string;
  patientId?: string;
  staffNo?: string;
  /**
   * The step's idempotency key. Each call sends `Idempotency-Key` derived from
   * it, the operation and the payload (callKey), so a retried call repeats its
   * key while the several calls one step makes (revoke then upload, one per
   * dictionary entry or per item) each have their own.
   */
  idempotencyKey?: string;
  /** The step's `call.signal`: aborts the call (and its wait for a token) on engine shutdown. */
  signal?: AbortSignal;
}

/** The `Idempotency-Key` of one call: 32 hex characters from the step's key, the operation and the payload as sent. */
export function callKey(stepKey: string, op: Operation, body: unknown): string {
  return createHash('sha256').update(`${stepKey}\u001f${op}\u001f`).update(JSON.stringify(body ?? null)).digest('hex').slice(0, 32);
}

/** A payload with a top-level array longer than this is renamed, serialized and hashed in time slices. */
const BIG_ARRAY = 256;

function isBig(payload: Record<string, unknown>): boolean {
  for (const v of Object.values(payload)) if (v instanceof JsonArrayBytes || (Array.isArray(v) && v.length > BIG_ARRAY)) return true;
  return false;
}

/** renameKeys in time slices (the same result). */
async function renameKeysYielding(value: unknown, map: Readonly<Record<string, string>>, slice: TimeSlice): Promise<unknown> {
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      out[i] = renameKeys(value[i], map);
      if (slice.due()) await slice.pause();
    }
    return out;
  }
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[map[k] ?? k] = await renameKeysYielding(v, map, slice);
    return out;
  }
  return value;
}

/**
 * A big payload (a lab report with 100,000 results, sent whole: the platform
 * has no paged upload) as the JSON text to send and its call key, built in
 * time slices so that no step holds the event loop for long (issue 11). The
 * text and the key are the ones the one-piece path makes. A JsonArrayBytes
 * value (results already written as JSON) is copied in as it stands unless
 * the site renames one of its keys.
 */
async function bigBody(stepKey: string | undefined, op: Operation, payload: Record<string, unknown>, fields: Readonly<Record<string, string>>): Promise<{ body: Buffer; key?: string }> {
  const slice = new TimeSlice();
  const renames = Object.keys(fields).length > 0;
  // The top level renamed as renameKeys does it (same key order, same result when two keys get one name).
  let top: Record<string, unknown> = payload;
  if (renames) {
    top = {};
    for (const [k, v] of Object.entries(payload)) {
      const asIs = v instanceof JsonArrayBytes && !v.keys.some((x) => Object.hasOwn(fields, x));
      top[fields[k] ?? k] = asIs ? v : await renameKeysYielding(v instanceof JsonArrayBytes ? await v.itemsYielding() : v, fields, slice);
    }
  }
  // The body in pieces, in order, as JSON.stringify(top) writes it.
  const parts: Buffer[] = [];
  let text = '';
  const flushText = (): void => {
    if (text) parts.push(Buffer.from(text, 'utf8'));
    text = '';
  };
  let first = true;
  for (const k of Object.keys(top)) {
    const v = top[k];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    text += `${first ? '{' : ','}${JSON.stringify(k)}:`;
    first = false;
    if (v instanceof JsonArrayBytes) {
      text += '[';
      flushText();
      v.chunks.forEach((c, i) => {
        if (i) parts.push(COMMA);
        parts.push(c);
      });
      text = ']';
    } else {
      for (const c of await stringifyJsonChunks(v, slice)) {
        text += c;
        if (text.length > 64 * 1024) flushText();
      }
    }
    if (slice.due()) await slice.pause();
  }
  text += first ? '{}' : '}';
  flushText();
  const h = stepKey ? createHash('sha256').update(`${stepKey}\u001f${op}\u001f`) : undefined;
  let bytes = 0;
  const step = new TimeSlice(10, 1);
  for (const p of parts) {
    h?.update(p);
    bytes += p.length;
    if (step.due()) await step.pause();
  }
  const key = h?.digest('hex').slice(0, 32);
  const body = await concatYielding(parts, bytes);
  return { body, ...(key ? { key } : {}) };
}

const COMMA = Buffer.from(',');

export interface PlatformAnswer {
  /** The `data` part of the envelope, with canonical field names. */
  data: Record<string, unknown>;
  /** Raw response, for downloads that answer with bytes. */
  response: HttpResponse;
}

export interface RecognitionClient {
  readonly site: RecognitionSite;
  readonly token: TokenClient;
  /** POSTs `payload` to the operation's path; throws catalogued errors (see module comment). */
  call(op: Operation, payload: Record<string, unknown>, meta?: CallMeta): Promise<PlatformAnswer>;
}

export function createRecognitionClient(opts: {
  http: HttpClient;
  site: RecognitionSite;
  token: TokenClient;
  audit: (entry: AuditEntry) => void;
  plugin: string;
}): RecognitionClient {
  const { http, site, token } = opts;
  const inverse = invertFields(site.fields);

  async function post(op: Operation, payload: Record<string, unknown>, meta: CallMeta): Promise<HttpResponse> {
    const target = `recognition platform (${op})`;
    const big = isBig(payload) ? await bigBody(meta.idempotencyKey, op, payload, site.fields) : undefined;
    const body = big ? big.body : renameKeys(payload, site.fields);
    for (let attempt = 1; ; attempt++) {
      const t = await token.get(meta.signal);
      const headers: Record<string, string> = { [site.tokenHeader]: site.tokenScheme ? `${site.tokenScheme} ${t}` : t };
      if (big) headers['content-type'] = 'application/json; charset=utf-8';
      if (meta.idempotencyKey) headers['idempotency-key'] = big?.key ?? callKey(meta.idempotencyKey, op, body);
      const res = await http.request(site.baseUrl + site.paths[op], { method: 'POST', headers, body, timeoutMs: site.timeoutMs, target, ...(meta.signal ? { signal: meta.signal } : {}) });
      // A token the platform stopped accepting (restart, revoked session): one fresh token, one retry.
      if (res.status === 401 && attempt === 1) {
        token.invalidate(t);
        continue;
      }
      return res;
    }
  }

  return {
    site,
    token,
    async call(op, payload, meta = {}) {
      const target = `recognition platform (${op})`;
      const entry = {
        plugin: opts.plugin,
        operation: op,
        orgCode: site.orgCode,
        ...(meta.route ? { route: meta.route } : {}),
        ...(meta.messageId ? { messageId: meta.messageId } : {}),
        ...(meta.patientId ? { patientId: meta.patientId } : {}),
        ...(meta.staffNo ? { staffNo: meta.staffNo } : {}),
      };
      return auditedCall(opts.audit, entry, async () => {
        const res = await post(op, payload, meta);
        const statusErr = classifyHttpStatus(res.status, res.headers, target);
        if (statusErr) throw statusErr;
        if (!res.json) {
          if (op === 'download' && res.body.length) {
            return { data: {}, response: res };
          }
          throw hbError('HTTP_E_BAD_BODY', { target, detail: 'not JSON' });
        }
        const env = renameKeys(res.json, inverse) as Record<string, unknown>;
        const code = String(env[site.response.codeField] ?? '');
        if (!site.response.successCodes.includes(code)) {
          // Remote text may name the patient; only plain-ASCII text (codes, validation messages) is kept, scrubbed.
          const remote = scrubText(String(env[site.response.messageField] ?? '')).slice(0, 200);
          const text = /^[\x20-\x7e]*$/.test(remote) ? remote : '';
          if (site.response.unknownReportCodes.includes(code)) {
            throw recognitionError('RECOG_E_UNKNOWN_REPORT', { reportId: String(payload.reportId ?? '') }, { data: { code } });
          }
          if (site.response.unknownPatientCodes.includes(code)) {
            throw recognitionError('RECOG_E_UNKNOWN_PATIENT', { patientId: maskId(String(payload.patientId ?? '')) || '(none)' }, { data: { code } });
          }
          throw recognitionError('RECOG_E_BUSINESS', { detail: `code ${code || '(none)'} ${text}`.trim() }, { data: { code } });
        }
        const data = (site.response.dataField ? env[site.response.dataField] : env) ?? {};
        return { data: (typeof data === 'object' ? data : { value: data }) as Record<string, unknown>, response: res };
      }, { failed: (e) => (e.data?.code !== undefined ? `${e.code} ${String(e.data.code)}` : e.code) });
    },
  };
}
