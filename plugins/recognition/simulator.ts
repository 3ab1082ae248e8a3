/**
 * Simulator of the recognition platform: a real node:http server speaking
 * the contract the plugin defaults describe (site.ts), honouring the site's
 * path and field remapping so a remapped config can be tested end to end.
 * Every payload is validated against schemas/recognition-*.schema.json.
 *
 * Test hooks (never exposed by the real platform, and the simulator binds to
 * 127.0.0.1 by default): POST /__sim/faults, GET /__sim/calls ({calls}), GET /__sim/state,
 * POST /__sim/reset, POST /__sim/config {tokenTtlSeconds}, POST /__sim/tokens/expire,
 * GET /__sim/reports (each report without its data: status, resultCount), GET /__sim/patients/<id>.
 *
 * Idempotency: an operation that carries an `idempotency-key` header and
 * succeeds is remembered per (operation, key), the last IDEMPOTENCY_CAP of
 * them; a later request for the same operation with the same key that passes
 * the token and payload checks gets the first answer again without acting a
 * second time (recorded with `replayed: true`). Failures are not remembered,
 * so a retry after a failure is acted on. One plugin step may call several
 * operations with one key (revoke, then upload, then PDF): each operation
 * keeps its own first answer.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { concatYielding, parseJsonBytesYielding, type Logger, type RunningSimulator } from '../../core/sdk.js';
import { invertFields, OPERATIONS, readRecognitionInstitutions, renameKeys, type Operation, type RecognitionSite } from './site.js';
import { SimState } from './sim-state.js';
import { validateYielding, warmValidators } from './sim-schemas.js';
import { handleOperation, SimFailure } from './sim-ops.js';

/** One injected fault; consumed by the next `count` calls to `op` ('*' = any operation). */
export interface SimFault {
  op?: Operation | '*';
  /** HTTP status to answer with (e.g. 500, 503, 429, 401). */
  status?: number;
  /** Delay before answering (ms). */
  delayMs?: number;
  /** Business error: HTTP 200 with this code. */
  businessCode?: string;
  message?: string;
  retryAfter?: string;
  count?: number;
}

export interface SimCall {
  op: Operation;
  at: number;
  /** Request body with canonical field names. */
  body: Record<string, unknown>;
  /** 'ok' | 'fault' | 'unauthorized' | 'invalid' | business code. */
  result: string;
  /** The request's `idempotency-key` header. */
  idempotencyKey?: string;
  /** Answered from an earlier call with the same operation and idempotency key: not acted on. */
  replayed?: boolean;
  /** The institution (orgCode) whose account the call was verified with: the login's, or the token's. */
  institution?: string;
}

export interface RecognitionSimulator extends RunningSimulator {
  readonly state: SimState;
  readonly calls: SimCall[];
}

export const DEFAULT_SIM_PORT = 8482;
/** (operation, idempotency key) pairs remembered, least recently used dropped first: bounded memory. */
export const IDEMPOTENCY_CAP = 10_000;

/** Largest request body the simulator reads (default of `maxBodyBytes`); larger ones get 413. */
export const DEFAULT_SIM_MAX_BODY_BYTES = 64 * 1024 * 1024;

/** Thrown by readBody past the limit. */
class BodyTooLarge extends Error {}

/**
 * The request body as bytes, in the pieces it arrived in (joined over several
 * turns when big: a 13 MB upload is never copied or decoded in one step, the
 * simulator may run in the engine's process). Rejects with BodyTooLarge past
 * `limit` bytes.
 */
function readBodyBytes(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new BodyTooLarge());
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        parts.length = 0;
        req.destroy();
        reject(new BodyTooLarge());
        return;
      }
      parts.push(c);
    });
    req.on('end', () => concatYielding(parts, size).then(resolve, reject));
    req.on('error', reject);
  });
}

/** The request body as text (the test hooks' small bodies). */
async function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new TextDecoder('utf-8').decode(await readBodyBytes(req, limit));
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** Starts the simulator for a `recognition:` section (defaults are applied for missing keys). */
export async function startRecognitionSimulator(opts: {
  host?: string;
  port?: number;
  site?: Record<string, unknown>;
  log?: Logger;
  idempotencyCap?: number;
  /** Largest request body read (default DEFAULT_SIM_MAX_BODY_BYTES, 64 MiB); larger ones get 413 with code 413. */
  maxBodyBytes?: number;
}): Promise<RecognitionSimulator> {
  const idempotencyCap = opts.idempotencyCap ?? IDEMPOTENCY_CAP;
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_SIM_MAX_BODY_BYTES;
  if (!(Number.isSafeInteger(maxBodyBytes) && maxBodyBytes > 0)) throw new RangeError(`maxBodyBytes must be a positive integer (got ${maxBodyBytes})`);
  const section = { username: 'demo-hospital', password: 'demo-password-not-a-secret', orgCode: 'H4413020001', baseUrl: 'http://127.0.0.1', ...(opts.site ?? {}) };
  // With `institutions`, one account per institution, each verified separately; the shared keys (paths, fields, response) are common.
  const accounts = readRecognitionInstitutions(section).list;
  const site: RecognitionSite = accounts[0]!;
  const inverse = invertFields(site.fields);
  const hasRenames = Object.keys(inverse).length > 0;
  const byPath = new Map<string, Operation>(OPERATIONS.map((op) => [site.paths[op], op]));
  const state = new SimState();
  const calls: SimCall[] = [];
  let faults: SimFault[] = [];
  let tokenTtlSeconds = 7200;
  /** token → its expiry and the institution whose account it was issued to. */
  const tokens = new Map<string, { exp: number; orgCode: string }>();
  /** `${op} ${key}` → the first successful answer (insertion order = least recently used first). */
  const answered = new Map<string, Record<string, unknown>>();
  let baseUrl = '';

  const envelope = (code: string, message: string, data?: unknown): Record<string, unknown> => {
    const r = site.response;
    const out: Record<string, unknown> = { [r.codeField]: code, [r.messageField]: message };
    if (data !== undefined) {
      const renamed = renameKeys(data, site.fields);
      if (r.dataField) out[r.dataField] = renamed;
      else Object.assign(out, renamed);
    }
    return out;
  };
  const okCode = site.response.successCodes[0] ?? '0';

  function takeFault(op: Operation): SimFault | undefined {
    const i = faults.findIndex((f) => (f.op ?? '*') === '*' || f.op === op);
    if (i < 0) return undefined;
    const f = faults[i]!;
    const left = (f.count ?? 1) - 1;
    if (left <= 0) faults.splice(i, 1);
    else faults[i] = { ...f, count: left };
    return f;
  }

  /** The institution (orgCode) of a valid token, or undefined. */
  function authorized(req: http.IncomingMessage): string | undefined {
    const raw = req.headers[site.tokenHeader.toLowerCase()];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (!value) return undefined;
    const token = site.tokenScheme ? value.replace(new RegExp(`^${site.tokenScheme}\\s+`), '') : value;
    const t = tokens.get(token);
    return t !== undefined && Date.now() < t.exp ? t.orgCode : undefined;
  }

  async function handleSim(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> {
    if (req.method === 'GET' && path === '/__sim/calls') return sendJson(res, 200, { calls });
    if (req.method === 'GET' && path === '/__sim/state') return sendJson(res, 200, state.snapshot());
    // Reports without their data: status, versions, PDF or not and the number of results (a 100,000-result report stays small here).
    if (req.method === 'GET' && path === '/__sim/reports') return sendJson(res, 200, { reports: state.reportSummaries() });
    if (req.method === 'GET' && path.startsWith('/__sim/patients/')) {
      const p = state.patients.get(decodeURIComponent(path.slice('/__sim/patients/'.length)));
      return p ? sendJson(res, 200, p) : sendJson(res, 404, { error: 'no such patient' });
    }
    const body = await readBody(req, maxBodyBytes);
    const json = body ? (JSON.parse(body) as unknown) : {};
    if (path === '/__sim/reset') {
      state.reset();
      calls.length = 0;
      faults = [];
      tokens.clear();
      answered.clear();
      tokenTtlSeconds = 7200;
    } else if (path === '/__sim/faults') {
      faults.push(...(Array.isArray(json) ? (json as SimFault[]) : [json as SimFault]));
    } else if (path === '/__sim/config') {
      const c = json as { tokenTtlSeconds?: number };
      if (typeof c.tokenTtlSeconds === 'number') tokenTtlSeconds = c.tokenTtlSeconds;
    } else if (path === '/__sim/tokens/expire') {
      tokens.clear();
    } else return sendJson(res, 404, { error: 'unknown simulator hook' });
    sendJson(res, 200, { ok: true });
  }

  async function handleOp(req: http.IncomingMessage, res: http.ServerResponse, op: Operation): Promise<void> {
    let raw: Buffer;
    try {
      raw = await readBodyBytes(req, maxBodyBytes);
    } catch (e) {
      if (!(e instanceof BodyTooLarge)) throw e;
      calls.push({ op, at: Date.now(), body: {}, result: 'too-large' });
      return sendJson(res, 413, envelope('413', `request body larger than ${maxBodyBytes} bytes`), { connection: 'close' });
    }
    let body: Record<string, unknown>;
    try {
      // In time slices, renamed while read: a 10 MB lab report must not hold the (engine's) event loop in one piece.
      const parsed = raw.length ? await parseJsonBytesYielding(raw, hasRenames ? { renameKey: (k) => inverse[k] ?? k } : {}) : {};
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new SyntaxError('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      calls.push({ op, at: Date.now(), body: {}, result: 'invalid' });
      return sendJson(res, 400, envelope('1000', 'body is not JSON'));
    }
    const call: SimCall = { op, at: Date.now(), body, result: 'ok' };
    const keyHeader = req.headers['idempotency-key'];
    const idemKey = op !== 'token' && typeof keyHeader === 'string' && keyHeader ? `${op} ${keyHeader.slice(0, 200)}` : undefined;
    if (idemKey) call.idempotencyKey = keyHeader as string;
    calls.push(call);
    const fault = takeFault(op);
    if (fault?.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault?.status) {
      call.result = 'fault';
      return sendJson(res, fault.status, envelope(String(fault.status), fault.message ?? 'injected fault'), fault.retryAfter ? { 'retry-after': fault.retryAfter } : {});
    }
    const tokenOrg = op === 'token' ? undefined : authorized(req);
    if (op !== 'token' && !tokenOrg) {
      call.result = 'unauthorized';
      return sendJson(res, 401, envelope('401', 'token missing, invalid or expired'));
    }
    if (tokenOrg) call.institution = tokenOrg;
    if (fault?.businessCode) {
      call.result = fault.businessCode;
      return sendJson(res, 200, envelope(fault.businessCode, fault.message ?? 'injected business error'));
    }
    const errors = await validateYielding(op, body);
    if (errors) {
      call.result = 'invalid';
      const detail = errors.map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`).join('; ');
      return sendJson(res, 200, envelope('1001', `invalid payload: ${detail}`));
    }
    if (op === 'token') {
      const account = accounts.find((a) => a.username === body.username);
      if (!account || body.password !== account.password) {
        call.result = '1002';
        return sendJson(res, 200, envelope('1002', 'bad username or password'));
      }
      call.institution = account.orgCode;
      const token = randomBytes(16).toString('hex');
      tokens.set(token, { exp: Date.now() + tokenTtlSeconds * 1000, orgCode: account.orgCode });
      return sendJson(res, 200, envelope(okCode, 'ok', { token, expiresIn: tokenTtlSeconds }));
    }
    // A token speaks for one institution only: a payload naming another is refused.
    if (typeof body.orgCode === 'string' && body.orgCode !== tokenOrg) {
      call.result = '1003';
      return sendJson(res, 200, envelope('1003', 'orgCode does not match the account of the token'));
    }
    const first = idemKey ? answered.get(idemKey) : undefined;
    if (idemKey && first) {
      answered.delete(idemKey);
      answered.set(idemKey, first);
      call.replayed = true;
      return sendJson(res, 200, first);
    }
    try {
      const data = handleOperation(state, op, body, { baseUrl, codes: site.response });
      const answer = envelope(okCode, 'ok', data);
      if (idemKey) {
        answered.set(idemKey, answer);
        if (answered.size > idempotencyCap) answered.delete(answered.keys().next().value as string);
      }
      sendJson(res, 200, answer);
    } catch (e) {
      if (!(e instanceof SimFailure)) throw e;
      call.result = e.code;
      sendJson(res, 200, envelope(e.code, e.message));
    }
  }

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const run = async (): Promise<void> => {
      if (path.startsWith('/__sim/')) return handleSim(req, res, path);
      if (req.method === 'GET' && path.startsWith('/view/')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end('<html><body>recognition simulator viewer</body></html>');
        return;
      }
      const op = byPath.get(path);
      if (!op || req.method !== 'POST') return sendJson(res, 404, envelope('404', 'no such endpoint'));
      return handleOp(req, res, op);
    };
    run().catch((e: unknown) => {
      if (e instanceof BodyTooLarge) {
        if (!res.headersSent) sendJson(res, 413, envelope('413', `request body larger than ${maxBodyBytes} bytes`), { connection: 'close' });
        return;
      }
      opts.log?.error({ err: { message: (e as Error).message } }, 'recognition simulator error');
      if (!res.headersSent) sendJson(res, 500, envelope('500', 'simulator error'));
    });
  });
  server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
  await once(server, 'listening');
  // In the background, a schema per turn: the first big upload does not pay for compiling its validators.
  warmValidators().catch(() => undefined);
  const addr = server.address() as AddressInfo;
  baseUrl = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  return {
    url: baseUrl,
    state,
    calls,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
