/**
 * Simulator of the provincial side: the gateway in front of codeAuthRec/save
 * (paasid, ±300 s timestamp window, nonce reuse, signature, JSON shape, SM4
 * of patientIdcard) and getPrivilege (decrypts `param`, checks fields and
 * appId, shows a masked page). Started by `hisbridge start` on embedded
 * defaults and by tests on port 0.
 *
 * Test/demo control, local only: `POST /__sim/faults` adds a fault rule,
 * `GET /__sim/calls` lists calls with decrypted fields, `POST /__sim/reset`.
 *
 * Idempotency: an authorization that carries an `idempotency-key` header and
 * succeeds is remembered (the last IDEMPOTENCY_CAP keys); a later request
 * with the same key that passes the gateway checks gets the first answer
 * again without authorizing a second time (the call is recorded with
 * `replayed: true`). Failed or refused requests are not remembered, so a
 * retry after a failure is acted on.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv } from 'ajv';
import { sm4DecryptHex, verifyGatewaySignature, isHisbridgeError, maskId, maskIdNumber, maskName, type Logger, type RunningSimulator } from '../../core/sdk.js';
import codeAuthRecSchema from '../../schemas/gd-ehr-codeauthrec.schema.json' with { type: 'json' };
import { CARD_TYPE_CODES, DEMO_SITE, readInstitutions, type GdEhrSite } from './site.js';
import { parseViewerParam } from './viewer-url.js';

/** One fault rule; the first matching rule with calls left applies. */
export interface FaultRule {
  /** Which endpoint (default authorize). */
  op?: 'authorize' | 'viewer';
  /** Answer this HTTP status instead of processing. */
  status?: number;
  /** Retry-After header sent with `status`. */
  retryAfter?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Verify as usual, then answer returnCode "0". */
  returnCode0?: boolean;
  returnDesc?: string;
  /** Close the connection without an answer. */
  drop?: boolean;
  /** Only for this patient (plain ID number, matched after decryption). */
  patientIdcard?: string;
  /** How many calls the rule applies to (default: until reset). */
  count?: number;
}

/** What the simulator saw. Test data only: fields are decrypted. */
export interface SimCall {
  op: 'authorize' | 'viewer';
  at: number;
  /** Gateway checks, shape and decryption passed. */
  verified: boolean;
  httpStatus: number;
  returnCode?: string;
  reason?: string;
  fault?: boolean;
  fields?: Record<string, unknown>;
  /** The request's `idempotency-key` header. */
  idempotencyKey?: string;
  /** Answered from an earlier call with the same idempotency key: not acted on. */
  replayed?: boolean;
  /** The institution whose credentials the call was verified with (orgCode). */
  institution?: string;
}

const WINDOW_S = 300;
/** Idempotency keys remembered (least recently used dropped first): bounded memory. */
export const IDEMPOTENCY_CAP = 10_000;
const MAX_BODY = 1 << 20;
const ajv = new Ajv({ allErrors: false, strict: false });
const validateAuth = ajv.compile(codeAuthRecSchema);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const isText = typeof body === 'string';
  res.writeHead(status, { 'content-type': isText ? 'text/html; charset=utf-8' : 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(isText ? body : JSON.stringify(body));
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) reject(new Error('body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const html = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The simulator's state and request handling, separate from the socket so it stays testable. */
class GdEhrSim {
  faults: FaultRule[] = [];
  calls: SimCall[] = [];
  readonly #nonces = new Map<string, number>();
  /** idempotency key → the first successful answer (insertion order = least recently used first). */
  readonly #answered = new Map<string, { status: number; body: unknown }>();

  /** Several institutions: each verified with its own paasid, token, appId and SM4 key. */
  constructor(readonly sites: readonly GdEhrSite[], readonly log: Logger, readonly idempotencyCap = IDEMPOTENCY_CAP) {}

  reset(): void {
    this.faults = [];
    this.calls = [];
    this.#nonces.clear();
    this.#answered.clear();
  }

  #remembered(key: string | undefined): { status: number; body: unknown } | undefined {
    if (!key) return undefined;
    const hit = this.#answered.get(key);
    if (hit) {
      this.#answered.delete(key);
      this.#answered.set(key, hit);
    }
    return hit;
  }

  #remember(key: string | undefined, status: number, body: unknown): void {
    if (!key) return;
    this.#answered.set(key, { status, body });
    if (this.#answered.size > this.idempotencyCap) this.#answered.delete(this.#answered.keys().next().value as string);
  }

  #takeFault(op: 'authorize' | 'viewer', idcard: string | undefined): FaultRule | undefined {
    const rule = this.faults.find((f) => (f.op ?? 'authorize') === op && (f.count === undefined || f.count > 0) && (f.patientIdcard === undefined || f.patientIdcard === idcard));
    if (rule && rule.count !== undefined) rule.count--;
    return rule;
  }

  /**
   * Gateway checks in the order a gateway does them; returns the institution
   * whose paasid and token signed the call, or the reason it is refused.
   */
  #gateway(h: http.IncomingHttpHeaders): { site: GdEhrSite } | { reason: string } {
    const one = (k: string) => (typeof h[k] === 'string' ? (h[k] as string) : '');
    const candidates = this.sites.filter((x) => x.paasId === one('x-tif-paasid'));
    if (candidates.length === 0) return { reason: 'unknown paasid' };
    const ts = one('x-tif-timestamp');
    if (!/^\d{9,11}$/.test(ts)) return { reason: 'timestamp is not unix seconds' };
    if (Math.abs(Number(ts) - Date.now() / 1000) > WINDOW_S) return { reason: 'timestamp outside the 300 s window' };
    const nonce = one('x-tif-nonce');
    if (!nonce) return { reason: 'missing nonce' };
    const site = candidates.find((x) => verifyGatewaySignature(ts, x.paasToken, nonce, one('x-tif-signature')));
    if (!site) return { reason: 'bad signature' };
    const now = Date.now();
    for (const [n, exp] of this.#nonces) if (exp < now) this.#nonces.delete(n);
    if (this.#nonces.has(nonce)) return { reason: 'nonce reused' };
    this.#nonces.set(nonce, now + 2 * WINDOW_S * 1000);
    return { site };
  }

  async authorize(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const call: SimCall = { op: 'authorize', at: Date.now(), verified: false, httpStatus: 0 };
    const keyHeader = req.headers['idempotency-key'];
    const idemKey = typeof keyHeader === 'string' && keyHeader ? keyHeader.slice(0, 200) : undefined;
    if (idemKey) call.idempotencyKey = idemKey;
    this.calls.push(call);
    const done = (status: number, body: unknown, reason?: string, headers?: Record<string, string>) => {
      call.httpStatus = status;
      if (reason) call.reason = reason;
      if (body && typeof body === 'object' && 'returnCode' in body) call.returnCode = String((body as { returnCode: unknown }).returnCode);
      this.log.info({ sim: 'gd-ehr', op: 'authorize', status, returnCode: call.returnCode, reason }, 'simulator call');
      send(res, status, body, headers);
    };
    const raw = await readBody(req);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const rec = (parsed as { codeAuthRec?: Record<string, unknown> } | undefined)?.codeAuthRec;
    // Decrypt with the key of the institution the body names (for faults and the call list); verified against the signer below.
    const named = rec && typeof rec.orgCode === 'string' ? this.sites.find((x) => x.orgCode === rec.orgCode) : undefined;
    const decrypt = (site: GdEhrSite | undefined): string | undefined => {
      if (!site || !rec || typeof rec.patientIdcard !== 'string') return undefined;
      try {
        return sm4DecryptHex(site.sm4Key, rec.patientIdcard);
      } catch {
        return undefined;
      }
    };
    let idcard = decrypt(named ?? this.sites[0]);
    if (rec) call.fields = { ...rec, patientIdcard: idcard ?? null };

    const fault = this.#takeFault('authorize', idcard);
    if (fault) call.fault = true;
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (fault?.drop) {
      call.reason = 'fault: connection dropped';
      req.socket.destroy();
      return;
    }
    if (fault?.status) return done(fault.status, { code: 'SIM_FAULT', message: `injected HTTP ${fault.status}` }, 'fault: status', fault.retryAfter ? { 'retry-after': fault.retryAfter } : {});

    const gw = this.#gateway(req.headers);
    if ('reason' in gw) return done(401, { code: 'GATEWAY_REJECTED', message: gw.reason }, gw.reason);
    const site = gw.site;
    call.institution = site.orgCode;
    if (parsed === undefined) return done(400, { code: 'BAD_JSON', message: 'body is not JSON' }, 'body is not JSON');
    if (!validateAuth(parsed)) {
      const e = validateAuth.errors?.[0];
      const reason = `body shape: ${e?.instancePath || '/'} ${e?.message ?? 'invalid'}`;
      return done(400, { code: 'BAD_SHAPE', message: reason }, reason);
    }
    const r = rec as Record<string, string>;
    const refuse = (desc: string) => done(200, { returnCode: '0', returnDesc: desc }, desc);
    // Everything is checked against the institution that signed: its appId, its orgCode, its SM4 key.
    if (r.appId !== site.appId) return refuse('appId 不匹配');
    if (r.orgCode !== site.orgCode) return refuse('机构代码不匹配');
    if (site !== named) idcard = decrypt(site);
    if (idcard === undefined) return refuse('patientIdcard 解密失败');
    if (call.fields) call.fields.patientIdcard = idcard;
    if (!/^[0-9A-Za-z]{6,20}$/.test(idcard)) return refuse('患者证件号码格式错误');
    call.verified = true;
    if (fault?.returnCode0) return refuse(fault.returnDesc ?? '模拟失败(fault injection)');
    // Injected faults win; otherwise a key that already succeeded gets its first answer and nothing is authorized again.
    const first = this.#remembered(idemKey);
    if (first) {
      call.replayed = true;
      return done(first.status, first.body);
    }
    const ok = { returnCode: '1', returnDesc: '成功' };
    this.#remember(idemKey, 200, ok);
    return done(200, ok);
  }

  async viewer(url: URL, res: http.ServerResponse): Promise<void> {
    const call: SimCall = { op: 'viewer', at: Date.now(), verified: false, httpStatus: 0 };
    this.calls.push(call);
    const bad = (reason: string) => {
      call.httpStatus = 400;
      call.reason = reason;
      send(res, 400, `<!doctype html><meta charset="utf-8"><title>调阅失败</title><p>调阅失败: ${html(reason)}</p>`);
    };
    const fault = this.#takeFault('viewer', undefined);
    if (fault) call.fault = true;
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (fault?.status) {
      call.httpStatus = fault.status;
      return send(res, fault.status, '<p>injected fault</p>');
    }
    const appId = url.searchParams.get('appId');
    const param = url.searchParams.get('param');
    if (!appId) return bad('missing appId');
    const site = this.sites.find((x) => x.appId === appId);
    if (!site) return bad('appId 不匹配');
    call.institution = site.orgCode;
    if (!param) return bad('missing param');
    let f;
    try {
      f = parseViewerParam(site.sm4Key, param);
    } catch (e) {
      return bad(isHisbridgeError(e) ? `${e.code}: ${e.message}` : 'param does not decrypt');
    }
    call.fields = { ...f };
    if (f.orgCode !== site.orgCode) return bad('机构代码不匹配');
    if (f.callSysCode !== site.callSysCode) return bad('集成方代码不匹配');
    if (!(CARD_TYPE_CODES as readonly string[]).includes(f.cardType)) return bad(`unknown cardType ${f.cardType.slice(0, 4)}`);
    for (const k of ['staffNo', 'staffName', 'idcard', 'patientName', 'patientId'] as const) if (!f[k]) return bad(`empty ${k}`);
    call.verified = true;
    call.httpStatus = 200;
    this.log.info({ sim: 'gd-ehr', op: 'viewer', status: 200 }, 'simulator call');
    send(
      res,
      200,
      `<!doctype html><meta charset="utf-8"><title>广东健康档案互通系统 (simulator)</title>` +
        `<h1>健康档案 (simulator)</h1><p>患者: ${html(maskName(f.patientName))} 证件(${html(f.cardType)}): ${html(maskIdNumber(f.idcard))} 院内号: ${html(maskId(f.patientId))}</p>` +
        `<p>医生: ${html(maskName(f.staffName))} (${html(maskId(f.staffNo))}) 机构: ${html(f.orgCode)}</p>`,
    );
  }

  async control(req: http.IncomingMessage, url: URL, res: http.ServerResponse): Promise<void> {
    if (req.method === 'GET' && url.pathname === '/__sim/calls') return send(res, 200, { calls: this.calls });
    if (req.method === 'POST' && url.pathname === '/__sim/reset') {
      this.reset();
      return send(res, 200, { ok: true });
    }
    if (req.method === 'POST' && url.pathname === '/__sim/faults') {
      let rule: unknown;
      try {
        rule = JSON.parse((await readBody(req)).toString('utf8'));
      } catch {
        return send(res, 400, { code: 'BAD_JSON', message: 'fault rule must be JSON' });
      }
      const rules = Array.isArray(rule) ? rule : [rule];
      if (!rules.every((x) => x && typeof x === 'object')) return send(res, 400, { code: 'BAD_RULE', message: 'a fault rule is an object' });
      this.faults.push(...(rules as FaultRule[]));
      return send(res, 200, { faults: this.faults.length });
    }
    return send(res, 404, { code: 'NOT_FOUND', message: 'unknown simulator control path' });
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    if (url.pathname.startsWith('/__sim/')) return this.control(req, url, res);
    if (req.method === 'POST' && url.pathname.endsWith('/codeAuthRec/save')) return this.authorize(req, res);
    if (req.method === 'GET' && url.pathname.endsWith('/privilege/getPrivilege')) return this.viewer(url, res);
    if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });
    send(res, 404, { code: 'NOT_FOUND', message: 'no such endpoint' });
  }
}

export interface GdEhrSimulator extends RunningSimulator {
  /** In-process view of the calls (the same as GET /__sim/calls). */
  readonly calls: readonly SimCall[];
  addFault(rule: FaultRule): void;
  reset(): void;
}

function stripEmpty(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ''));
}

/** Starts the simulator for a `gdEhr` site section (its keys are the ones it verifies against). */
export async function startGdEhrSimulator(opts: { host: string; port: number; site: Record<string, unknown>; log: Logger; idempotencyCap?: number }): Promise<GdEhrSimulator> {
  // Keys the site leaves unset take the demo values, as the plugins' defaults do when pointed at a simulator.
  // With `institutions`, every profile is verified separately (each with its own paasid, token, appId and key).
  const needed = ['paasId', 'paasToken', 'sm4Key', 'appId', 'orgCode', 'callSysCode'] as const;
  const sites = readInstitutions({ ...DEMO_SITE, ...stripEmpty(opts.site) }, needed).list;
  const sim = new GdEhrSim(sites, opts.log, opts.idempotencyCap);
  const server = http.createServer((req, res) => {
    sim.handle(req, res).catch((e: unknown) => {
      opts.log.warn({ sim: 'gd-ehr', err: isHisbridgeError(e) ? e.code : 'internal' }, 'simulator error');
      if (!res.headersSent) send(res, 500, { code: 'SIM_ERROR', message: 'simulator error' });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    get calls() {
      return sim.calls;
    },
    addFault: (r) => sim.faults.push(r),
    reset: () => sim.reset(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
