/**
 * The engine's HTTP surface: health, workstation APIs from site extensions,
 * metrics and the console. A tiny router on node:http (or node:https with
 * `http.tls`): exact paths with `:param` segments, JSON in and out, errors as
 * `{code, message}`.
 *
 * Before any handler runs:
 * - `/api/*` passes the API gate (api-auth.ts): bearer token, endpoint family,
 *   client address; or loopback only without `api.clients`.
 * - `/api/*` POST and PUT bodies must be `application/json` (else 415), so a
 *   web page cannot send a CORS "simple" request (text/plain, forms) to them.
 * - A state-changing request whose `Origin` is another site is refused (403).
 * No CORS header is ever sent, so browsers block cross-site reads.
 *
 * Source paths (`mountSource`, issue 13: HL7 over HTTP) pass the same gate
 * under their endpoint's family, take POST only, and get the raw body as a
 * Buffer up to the endpoint's own size cap; the content type is the source's
 * business.
 *
 * Connection limits (`http.maxConnections`, `http.headersTimeout`,
 * `http.requestTimeout`): node's own server settings. Connections over the cap
 * are closed at once by node:net (counted, one warn line per 10 s); a header
 * block not complete within headersTimeout, or a request whose body has not
 * fully arrived within requestTimeout, gets 408 and the connection is closed.
 * Node checks those timers every `connectionsCheckingInterval` (30 s by
 * default), so the server checks every second (more often for short timeouts).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TlsOptions } from 'node:tls';
import { errorText, hbError, isHisbridgeError } from '../errors.js';
import type { EndpointRequest, EndpointResponse, HttpEndpoint, Logger, SourceHttpEndpoint } from '../sdk.js';
import { ApiGate, isLoopbackAddress, normalizeAddress, type ApiConfig } from './api-auth.js';

const MAX_BODY = 1024 * 1024;

interface CompiledEndpoint {
  ep: HttpEndpoint;
  parts: string[];
}

export interface HttpServer {
  readonly url: string;
  readonly port: number;
  add(ep: HttpEndpoint): void;
  /**
   * Mounts a source's endpoint (HL7 over HTTP). Called on the running server
   * (after `startHttpServer` resolves); until then the path answers 404. The
   * path must start with `/`, must not lie under /api, /console, /healthz,
   * /readyz or /metrics, and must not be taken by another endpoint or source:
   * otherwise this throws an error naming the path.
   */
  mountSource(ep: SourceHttpEndpoint): void;
  close(): Promise<void>;
}

/** First path segments a source may not mount under (compared case-insensitively). */
const RESERVED = ['api', 'console', 'healthz', 'readyz', 'metrics'];
/** One path segment of a source path: no `.`/`..`, no `:param`, nothing that needs percent-encoding. */
const SOURCE_SEGMENT = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,99}$/;

function matchPath(parts: string[], segs: string[]): Record<string, string> | undefined {
  if (parts.length !== segs.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const s = segs[i]!;
    if (p.startsWith(':')) {
      try {
        params[p.slice(1)] = decodeURIComponent(s);
      } catch {
        return undefined;
      }
    } else if (p !== s) return undefined;
  }
  return params;
}

function send(res: http.ServerResponse, r: EndpointResponse): void {
  const headers: Record<string, string> = { 'cache-control': 'no-store', ...(r.headers ?? {}) };
  // No CORS, ever: whatever a handler set, browsers must not let other sites read our answers.
  for (const k of Object.keys(headers)) if (k.toLowerCase().startsWith('access-control-')) delete headers[k];
  let body: Buffer | string = '';
  if (r.body === undefined) body = '';
  else if (Buffer.isBuffer(r.body) || typeof r.body === 'string') body = r.body;
  else {
    body = JSON.stringify(r.body);
    headers['content-type'] ??= 'application/json; charset=utf-8';
  }
  res.writeHead(r.status, headers);
  res.end(body);
}

/** Bytes of an oversized body read and thrown away before the connection is closed anyway. */
const MAX_DISCARD = 8 * 1024 * 1024;
/** How long an oversized body is drained (so the client can read the 413) before the connection is closed. */
const LINGER_MS = 2000;

/** The declared Content-Length when it is over `limit` (checked before reading anything). */
function declaredTooLarge(req: http.IncomingMessage, limit = MAX_BODY): boolean {
  const n = Number(req.headers['content-length']);
  return Number.isFinite(n) && n > limit;
}

/**
 * After a 413 sent while the client is still sending: reads and throws away
 * the rest of the body (node parses it, so the connection stays usable), but
 * at most MAX_DISCARD bytes or LINGER_MS; past that the connection is closed.
 * Closing at once would reset it and the client would never see the 413.
 */
function drainOrClose(req: http.IncomingMessage): void {
  let discarded = 0;
  const close = () => req.socket.destroy();
  const timer = setTimeout(close, LINGER_MS);
  timer.unref();
  req.on('data', (c: Buffer) => {
    discarded += c.length;
    if (discarded > MAX_DISCARD) close();
  });
  req.on('end', () => clearTimeout(timer));
  req.socket.once('close', () => clearTimeout(timer));
  req.resume();
}

function tooLarge(limit: number): EndpointResponse {
  return { status: 413, body: { code: 'HTTP_E_TOO_LARGE', message: `request body larger than ${limit} bytes` } };
}

const TOO_LARGE = tooLarge(MAX_BODY);

/**
 * Reads the body up to `limit` bytes. Rejects with status 413 past the limit,
 * and with a plain error when the client goes away before the end.
 */
function readBody(req: http.IncomingMessage, limit = MAX_BODY): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    let ended = false;
    // With a declared length (at most `limit`, checked before), each chunk is copied into place as it arrives,
    // so a 16 MiB body never costs one 16 MiB copy in a single turn of the event loop.
    const declared = Number(req.headers['content-length']);
    const into = Number.isSafeInteger(declared) && declared > 64 * 1024 && declared <= limit ? Buffer.allocUnsafe(declared) : undefined;
    const onData = (c: Buffer) => {
      if (over) return;
      if (size + c.length > limit || (into && size + c.length > into.length)) {
        over = true;
        chunks.length = 0;
        req.off('data', onData);
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        return;
      }
      if (into) c.copy(into, size);
      else chunks.push(c);
      size += c.length;
    };
    req.on('data', onData);
    req.on('end', () => {
      ended = true;
      resolve(into ? into.subarray(0, size) : Buffer.concat(chunks, size));
    });
    req.on('error', reject);
    // A client that disconnects mid-body: no 'end' will come (settling twice is harmless).
    req.on('close', () => {
      if (!ended) reject(new Error('client closed the connection before the end of the body'));
    });
  });
}

/** The media type of a Content-Type header, lower case, without parameters. */
function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** `application/json` with or without parameters (charset=utf-8). */
export function isJsonContentType(header: string | undefined): boolean {
  return mediaType(header) === 'application/json';
}

/** True when a browser says the request comes from a page of another site (or an opaque origin). */
function crossOrigin(req: http.IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== (req.headers.host ?? '');
  } catch {
    return true; // "null" (sandboxed frames, file: pages) and garbage
  }
}

/** True when a Host header names this machine by a loopback name or address (with or without a port). */
function isLoopbackHostHeader(host: string | undefined): boolean {
  if (!host) return false;
  let name: string;
  try {
    name = new URL(`http://${host}`).hostname.toLowerCase();
  } catch {
    return false;
  }
  if (name.startsWith('[') && name.endsWith(']')) name = name.slice(1, -1);
  return name === 'localhost' || name.endsWith('.localhost') || isLoopbackAddress(name);
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);
const FAMILY = /^[a-z0-9][a-z0-9-]{0,63}$/;

export interface HttpServerOptions {
  host: string;
  port: number;
  log: Logger;
  endpoints?: HttpEndpoint[];
  /** The `api:` section; default: /api/* answers loopback callers only. */
  api?: ApiConfig;
  /** Serve HTTPS with these options (from loadTlsOptions). */
  tls?: TlsOptions;
  /** Open connections at most (default 1024); more are closed at once. */
  maxConnections?: number;
  /** Time for a client to send the whole header block, in ms (default 10 s). */
  headersTimeoutMs?: number;
  /** Time for a client to send the whole request, body included, in ms (default 120 s). */
  requestTimeoutMs?: number;
  /** Called once per connection refused over maxConnections (the engine counts it in its metrics). */
  onRefused?: () => void;
}

export const HTTP_DEFAULT_MAX_CONNECTIONS = 1024;
export const HTTP_DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const HTTP_DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
/** At most one warn line about refused connections in this period. */
const REFUSED_LOG_EVERY_MS = 10_000;

/** Checks the limits and returns node's server options for them; throws a plain error naming the bad one. */
function limitOptions(opts: HttpServerOptions): { maxConnections: number; headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } {
  const maxConnections = opts.maxConnections ?? HTTP_DEFAULT_MAX_CONNECTIONS;
  const headersTimeout = opts.headersTimeoutMs ?? HTTP_DEFAULT_HEADERS_TIMEOUT_MS;
  const requestTimeout = opts.requestTimeoutMs ?? HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
  if (!(Number.isSafeInteger(maxConnections) && maxConnections >= 1)) throw new Error('http.maxConnections must be a positive integer');
  if (!(Number.isFinite(headersTimeout) && headersTimeout >= 1)) throw new Error('http.headersTimeout must be at least 1ms');
  if (!(Number.isFinite(requestTimeout) && requestTimeout >= 1)) throw new Error('http.requestTimeout must be at least 1ms');
  if (headersTimeout > requestTimeout) throw new Error('http.headersTimeout must not be longer than http.requestTimeout');
  // Node checks the two timers only this often: a second, or half the shorter timeout when that is less.
  const connectionsCheckingInterval = Math.max(50, Math.min(1000, Math.floor(headersTimeout / 2)));
  return { maxConnections, headersTimeout: Math.round(headersTimeout), requestTimeout: Math.round(requestTimeout), connectionsCheckingInterval };
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const routes: CompiledEndpoint[] = [];
  /** Mounted source endpoints by their normalised path (`/hl7/his`). */
  const sources = new Map<string, SourceHttpEndpoint>();
  const add = (ep: HttpEndpoint) => {
    const parts = ep.path.split('/').filter(Boolean);
    const key = `/${parts.join('/')}`;
    if (sources.has(key)) throw new Error(`cannot add endpoint ${ep.method} ${ep.path}: the path is taken by a source`);
    routes.push({ ep, parts });
  };
  (opts.endpoints ?? []).forEach(add);
  const mountSource = (ep: SourceHttpEndpoint): void => {
    const refuse = (why: string): never => {
      throw new Error(`cannot mount source path "${String(ep.path).slice(0, 200)}": ${why}`);
    };
    if (typeof ep.path !== 'string' || !ep.path.startsWith('/')) refuse('it must start with /');
    const parts = ep.path.split('/').filter(Boolean);
    if (parts.length === 0) refuse('it must name at least one segment, e.g. /hl7/his');
    if (!parts.every((p) => SOURCE_SEGMENT.test(p))) refuse('segments may hold only letters, digits and . _ ~ - (not starting with a dot)');
    if (RESERVED.includes(parts[0]!.toLowerCase())) refuse(`/${parts[0]} is reserved for the engine (/api, /console, /healthz, /readyz, /metrics)`);
    if (ep.method !== 'POST') refuse('sources take POST only');
    if (!FAMILY.test(ep.family)) refuse(`family "${String(ep.family).slice(0, 64)}" is not a valid endpoint family`);
    if (!(Number.isSafeInteger(ep.maxBodyBytes) && ep.maxBodyBytes > 0)) refuse('maxBodyBytes must be a positive integer');
    const key = `/${parts.join('/')}`;
    if (sources.has(key)) refuse('another source is mounted there');
    if (routes.some((r) => matchPath(r.parts, parts))) refuse('an engine endpoint answers there');
    sources.set(key, ep);
  };
  /** The mounted source a path names, if any (the path as split by the router). */
  const sourceAt = (pathname: string): SourceHttpEndpoint | undefined => (sources.size ? sources.get(`/${pathname.split('/').filter(Boolean).join('/')}`) : undefined);
  const gate = new ApiGate(opts.api ?? { open: false });
  if (gate.mode === 'open') opts.log.warn({ code: 'API_OPEN' }, 'api.open is true: the workstation APIs under /api answer anyone who can reach the HTTP port, without a token');

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void handle(req, res).catch((e) => {
      opts.log.error({ err: { message: (e as Error).message } }, 'http handler crashed');
      if (!res.headersSent) send(res, { status: 500, body: { code: 'ENGINE_E_INTERNAL', message: 'internal error' } });
    });
  };
  const limits = limitOptions(opts);
  const serverOptions = { headersTimeout: limits.headersTimeout, requestTimeout: limits.requestTimeout, connectionsCheckingInterval: limits.connectionsCheckingInterval };
  const server = opts.tls ? https.createServer({ ...opts.tls, ...serverOptions }, onRequest) : http.createServer(serverOptions, onRequest);
  server.maxConnections = limits.maxConnections;
  // node:net closed a connection over maxConnections: counted, and one warn line per period (no address: no PHI, no noise).
  let refusedTotal = 0;
  let refusedUnlogged = 0;
  let refusedLoggedAt = 0;
  let refusedLogTimer: NodeJS.Timeout | undefined;
  const flushRefusedLog = (): void => {
    if (refusedUnlogged === 0) return;
    const count = refusedUnlogged;
    refusedUnlogged = 0;
    refusedLoggedAt = Date.now();
    opts.log.warn(
      { code: 'HTTP_E_TOO_MANY_CONNECTIONS', listener: 'http', refused: count, refusedTotal, limit: limits.maxConnections },
      hbError('HTTP_E_TOO_MANY_CONNECTIONS', { count, limit: limits.maxConnections }).message,
    );
  };
  server.on('drop', () => {
    refusedTotal++;
    refusedUnlogged++;
    try {
      opts.onRefused?.();
    } catch {
      // A metrics hook must not break the server.
    }
    const now = Date.now();
    if (now - refusedLoggedAt >= REFUSED_LOG_EVERY_MS) flushRefusedLog();
    else if (!refusedLogTimer) {
      refusedLogTimer = setTimeout(() => {
        refusedLogTimer = undefined;
        flushRefusedLog();
      }, refusedLoggedAt + REFUSED_LOG_EVERY_MS - now);
      refusedLogTimer.unref();
    }
  });
  // "Expect: 100-continue" with a declared body over the limit: answer 413 before the client sends it.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    let limit = MAX_BODY;
    try {
      limit = sourceAt(new URL(req.url ?? '/', 'http://localhost').pathname)?.maxBodyBytes ?? MAX_BODY;
    } catch {
      // An unparsable URL gets its 404 from the handler.
    }
    if (declaredTooLarge(req, limit)) {
      // The client waits for "100 Continue" before sending the body: close once answered, nothing is left unread.
      send(res, { ...tooLarge(limit), headers: { connection: 'close' } });
      return;
    }
    res.writeContinue();
    onRequest(req, res);
  });
  // A client that fails the TLS handshake (wrong or missing certificate) is dropped; note it without noise.
  server.on('tlsClientError', (e: Error) => opts.log.debug({ code: (e as NodeJS.ErrnoException).code }, 'https handshake refused'));

  /**
   * The API gate for one request under `family`: sends the 401/403 and
   * returns undefined when refused, else the client's name (if any).
   */
  function passGate(req: http.IncomingMessage, res: http.ServerResponse, family: string, remoteAddress: string | undefined, resource: string): { client?: string; institutions?: readonly string[] } | undefined {
    let verdict = gate.check(family, req.headers.authorization, remoteAddress, resource);
    // Without tokens the only proof is the loopback address, and a page in a browser on this machine can
    // reach that by DNS rebinding (evil.example resolving to 127.0.0.1): then Host names the other site.
    if (verdict.ok && gate.mode === 'loopback' && !isLoopbackHostHeader(req.headers.host)) {
      verdict = { ok: false, status: 403, code: 'API_E_FORBIDDEN', message: 'without api.clients the workstation APIs answer only requests addressed to localhost or a loopback address (Host header)' };
    }
    if (!verdict.ok) {
      req.resume();
      send(res, { status: verdict.status, ...(verdict.status === 401 ? { headers: { 'www-authenticate': 'Bearer' } } : {}), body: { code: verdict.code, message: verdict.message } });
      return undefined;
    }
    return { ...(verdict.client ? { client: verdict.client } : {}), ...(verdict.institutions ? { institutions: verdict.institutions } : {}) };
  }

  function refuseCrossOrigin(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (!(STATE_CHANGING.has(req.method ?? '') && crossOrigin(req))) return false;
    req.resume();
    send(res, { status: 403, body: { code: 'HTTP_E_CROSS_ORIGIN', message: 'requests from pages of other sites are refused' } });
    return true;
  }

  /** A request to a mounted source path: gate, POST only, raw body up to the source's cap, then its handler. */
  async function handleSource(req: http.IncomingMessage, res: http.ServerResponse, ep: SourceHttpEndpoint, remoteAddress: string | undefined): Promise<void> {
    const passed = passGate(req, res, ep.family, remoteAddress, ep.path);
    if (!passed) return;
    if (refuseCrossOrigin(req, res)) return;
    if (req.method !== 'POST') {
      req.resume();
      send(res, { status: 405, headers: { allow: 'POST' }, body: { code: 'HTTP_E_METHOD', message: errorText('HTTP_E_METHOD', { method: String(req.method).slice(0, 20), hint: ': send POST' }) } });
      return;
    }
    if (declaredTooLarge(req, ep.maxBodyBytes)) {
      send(res, tooLarge(ep.maxBodyBytes));
      drainOrClose(req);
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, ep.maxBodyBytes);
    } catch (e) {
      if ((e as { status?: number }).status === 413) {
        send(res, tooLarge(ep.maxBodyBytes));
        drainOrClose(req);
        return;
      }
      // Mostly a client gone mid-body: nothing to answer, nothing was handed to the source.
      opts.log.debug({ path: ep.path, reason: (e as Error).message }, 'source request body not read');
      if (!res.headersSent && !req.socket.destroyed) send(res, { status: 400, body: { code: 'HTTP_E_BAD_REQUEST', message: 'the request body could not be read' } });
      return;
    }
    let answer: EndpointResponse;
    try {
      answer = await ep.handler({
        body,
        headers: req.headers as Record<string, string | undefined>,
        ...(remoteAddress ? { remoteAddress } : {}),
        ...(passed.client ? { client: passed.client } : {}),
      });
    } catch (e) {
      if (isHisbridgeError(e)) answer = { status: e.status ?? (e.retryable ? 503 : 400), body: { code: e.code, message: e.message } };
      else {
        opts.log.error({ path: ep.path, err: { message: (e as Error).message } }, 'source endpoint failed');
        answer = { status: 500, body: { code: 'ENGINE_E_INTERNAL', message: 'internal error' } };
      }
    }
    // The client may have gone while the source worked: the outcome stands (a resend is answered as a duplicate).
    if (res.destroyed || req.socket.destroyed) return;
    send(res, answer);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const segs = url.pathname.split('/').filter(Boolean);
    const remoteAddress = normalizeAddress(req.socket.remoteAddress);
    const source = sourceAt(url.pathname);
    if (source) return handleSource(req, res, source, remoteAddress);
    const isApi = segs[0] === 'api';
    let client: string | undefined;
    let institutions: readonly string[] | undefined;
    if (isApi) {
      const family = segs[1] ?? '';
      const checked = FAMILY.test(family) ? family : '?';
      const passed = passGate(req, res, checked, remoteAddress, `/api/${checked}`);
      if (!passed) return;
      client = passed.client;
      institutions = passed.institutions;
    }
    if (refuseCrossOrigin(req, res)) return;
    let found: { ep: HttpEndpoint; params: Record<string, string> } | undefined;
    let pathMatched = false;
    for (const r of routes) {
      const params = matchPath(r.parts, segs);
      if (!params) continue;
      pathMatched = true;
      if (r.ep.method === req.method || (req.method === 'HEAD' && r.ep.method === 'GET')) {
        found = { ep: r.ep, params };
        break;
      }
    }
    if (!found) {
      send(res, pathMatched ? { status: 405, body: { code: 'HTTP_E_METHOD', message: errorText('HTTP_E_METHOD', { method: String(req.method).slice(0, 20), hint: '' }) } } : { status: 404, body: { code: 'HTTP_E_NOT_FOUND', message: errorText('HTTP_E_NOT_FOUND') } });
      return;
    }
    let body: unknown;
    if (req.method === 'POST' || req.method === 'PUT') {
      if (isApi && !isJsonContentType(req.headers['content-type'])) {
        req.resume();
        send(res, { status: 415, body: { code: 'HTTP_E_UNSUPPORTED_MEDIA_TYPE', message: 'send the body as application/json' } });
        return;
      }
      if (declaredTooLarge(req)) {
        send(res, TOO_LARGE);
        drainOrClose(req);
        return;
      }
      let raw: Buffer;
      try {
        raw = await readBody(req);
      } catch (e) {
        if ((e as { status?: number }).status === 413) {
          send(res, TOO_LARGE);
          drainOrClose(req);
          return;
        }
        send(res, { status: 400, body: { code: 'HTTP_E_BAD_REQUEST', message: 'the request body could not be read' } });
        return;
      }
      if (raw.length && mediaType(req.headers['content-type']) === 'application/x-www-form-urlencoded') {
        // Plain HTML forms (the console without JavaScript).
        body = Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
      } else if (raw.length) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          send(res, { status: 400, body: { code: 'HTTP_E_BAD_REQUEST', message: 'body is not valid JSON' } });
          return;
        }
      }
    }
    const request: EndpointRequest = {
      params: found.params,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers as Record<string, string | undefined>,
      body,
      ...(remoteAddress ? { remoteAddress } : {}),
      ...(client ? { client } : {}),
      ...(institutions ? { institutions } : {}),
    };
    try {
      send(res, await found.ep.handler(request));
    } catch (e) {
      if (isHisbridgeError(e)) {
        send(res, { status: e.status ?? (e.retryable ? 503 : 400), body: { code: e.code, message: e.message } });
      } else {
        opts.log.error({ path: found.ep.path, err: { message: (e as Error).message } }, 'endpoint failed');
        send(res, { status: 500, body: { code: 'ENGINE_E_INTERNAL', message: 'internal error' } });
      }
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.keepAliveTimeout = 5000;
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`,
    port,
    add,
    mountSource,
    close: () =>
      new Promise<void>((resolve) => {
        clearTimeout(refusedLogTimer);
        flushRefusedLog();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
