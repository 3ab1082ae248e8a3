/**
 * Token client shared by the recognition plugins (用户认证获取token).
 * One token request at a time (single-flight): concurrent callers wait on the
 * same promise. A token is reused until `tokenSkewMs` before its expiry; a 401
 * from the platform invalidates exactly the token that was refused, so 100
 * calls failing with the same stale token cause one refresh, not 100.
 * The password and the token never reach a log line or an error message.
 */
import { auditedCall, hbError, isHisbridgeError, type AuditEntry, type HttpClient } from '../../core/sdk.js';
import { recognitionError } from './errors.js';
import { invertFields, renameKeys, type RecognitionSite } from './site.js';

export interface TokenClient {
  /**
   * A valid token, fetched when none is cached or the cached one is about to
   * expire. `signal` abandons this caller's wait (HTTP_E_ABORTED); the shared
   * request goes on for the other callers.
   */
  get(signal?: AbortSignal): Promise<string>;
  /** Forgets `token` if it is still the cached one (called after a 401). */
  invalidate(token: string): void;
  /** Number of token requests made (for diagnostics and tests). */
  readonly requests: number;
}

interface Cached {
  token: string;
  /** When to fetch a new one: the skew before expiry, at most half the lifetime. */
  refreshAt: number;
}

/** Expiry used when the platform does not say (seconds). */
const DEFAULT_TTL_S = 3600;

/** `shared` as seen by one caller who stops waiting when `signal` aborts. */
function abandonable(shared: Promise<string>, signal: AbortSignal): Promise<string> {
  const aborted = () => hbError('HTTP_E_ABORTED', { target: 'recognition platform (token)' });
  if (signal.aborted) return Promise.reject(aborted());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(aborted());
    signal.addEventListener('abort', onAbort, { once: true });
    shared.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export function createTokenClient(http: HttpClient, site: RecognitionSite, audit?: (e: AuditEntry) => void, now: () => number = Date.now): TokenClient {
  let cached: Cached | undefined;
  let inFlight: Promise<string> | undefined;
  let requests = 0;
  const inverse = invertFields(site.fields);

  async function fetchToken(): Promise<string> {
    requests++;
    return auditedCall((e) => audit?.(e), { plugin: 'recognition', operation: 'token', orgCode: site.orgCode }, requestToken);
  }

  async function requestToken(): Promise<string> {
    const target = 'recognition platform (token)';
    const body = renameKeys({ username: site.username, password: site.password }, site.fields);
    let res;
    try {
      res = await http.request(site.baseUrl + site.paths.token, { method: 'POST', body, timeoutMs: site.timeoutMs, target });
    } catch (e) {
      throw recognitionError('RECOG_E_AUTH', { detail: isHisbridgeError(e) ? e.code : 'network error' }, { cause: e, retryable: true });
    }
    if (res.status === 401 || res.status === 403) throw recognitionError('RECOG_E_AUTH', { detail: `HTTP ${res.status}, check recognition.username/password` }, { retryable: false });
    if (res.status < 200 || res.status >= 300) throw recognitionError('RECOG_E_AUTH', { detail: `HTTP ${res.status}` }, { retryable: res.status === 429 || res.status >= 500 });
    const env = renameKeys(res.json, inverse) as Record<string, unknown> | undefined;
    const code = env ? String(env[site.response.codeField] ?? '') : '';
    if (!env || !site.response.successCodes.includes(code)) throw recognitionError('RECOG_E_AUTH', { detail: `business code ${code || '(none)'}` }, { retryable: false });
    const data = (site.response.dataField ? env[site.response.dataField] : env) as Record<string, unknown> | undefined;
    const token = data?.token;
    if (typeof token !== 'string' || !token) throw recognitionError('RECOG_E_AUTH', { detail: 'answer carries no token' }, { retryable: false });
    const ttl = typeof data?.expiresIn === 'number' && data.expiresIn > 0 ? data.expiresIn : DEFAULT_TTL_S;
    cached = { token, refreshAt: now() + ttl * 1000 - Math.min(site.tokenSkewMs, (ttl * 1000) / 2) };
    return token;
  }

  return {
    get(signal) {
      if (cached && now() < cached.refreshAt) return Promise.resolve(cached.token);
      if (!inFlight) {
        inFlight = fetchToken().finally(() => {
          inFlight = undefined;
        });
      }
      return signal ? abandonable(inFlight, signal) : inFlight;
    },
    invalidate(token) {
      if (cached?.token === token) cached = undefined;
    },
    get requests() {
      return requests;
    },
  };
}
