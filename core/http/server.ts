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
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TlsOptions } from 'node:tls';
import { isHisbridgeError } from '../errors.js';
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
  /** Mounts a source's endpoint (HL7 over HTTP) behind `api.clients` under its family (issue 13; added by the HTTP source work). */
  mountSource?(ep: SourceHttpEndpoint): void;
  close(): Promise<void>;
}

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

/** The declared Content-Length when it is over MAX_BODY (checked before reading anything). */
function declaredTooLarge(req: http.IncomingMessage): boolean {
  const n = Number(req.headers['content-length']);
  return Number.isFinite(n) && n > MAX_BODY;
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

const TOO_LARGE: EndpointResponse = {
  status: 413,
  body: { code: 'HTTP_E_TOO_LARGE', message: `request body larger than ${MAX_BODY} bytes` },
};

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    const onData = (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > MAX_BODY) {
        over = true;
        chunks.length = 0;
        req.off('data', onData);
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
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
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const routes: CompiledEndpoint[] = [];
  const add = (ep: HttpEndpoint) => routes.push({ ep, parts: ep.path.split('/').filter(Boolean) });
  (opts.endpoints ?? []).forEach(add);
  const gate = new ApiGate(opts.api ?? { open: false });
  if (gate.mode === 'open') opts.log.warn({ code: 'API_OPEN' }, 'api.open is true: the workstation APIs under /api answer anyone who can reach the HTTP port, without a token');

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void handle(req, res).catch((e) => {
      opts.log.error({ err: { message: (e as Error).message } }, 'http handler crashed');
      if (!res.headersSent) send(res, { status: 500, body: { code: 'ENGINE_E_INTERNAL', message: 'internal error' } });
    });
  };
  const server = opts.tls ? https.createServer(opts.tls, onRequest) : http.createServer(onRequest);
  // "Expect: 100-continue" with a declared body over the limit: answer 413 before the client sends it.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (declaredTooLarge(req)) {
      // The client waits for "100 Continue" before sending the body: close once answered, nothing is left unread.
      send(res, { ...TOO_LARGE, headers: { connection: 'close' } });
      return;
    }
    res.writeContinue();
    onRequest(req, res);
  });
  // A client that fails the TLS handshake (wrong or missing certificate) is dropped; note it without noise.
  server.on('tlsClientError', (e: Error) => opts.log.debug({ code: (e as NodeJS.ErrnoException).code }, 'https handshake refused'));

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const segs = url.pathname.split('/').filter(Boolean);
    const remoteAddress = normalizeAddress(req.socket.remoteAddress);
    const isApi = segs[0] === 'api';
    let client: string | undefined;
    if (isApi) {
      const family = segs[1] ?? '';
      let verdict = gate.check(FAMILY.test(family) ? family : '?', req.headers.authorization, remoteAddress);
      // Without tokens the only proof is the loopback address, and a page in a browser on this machine can
      // reach that by DNS rebinding (evil.example resolving to 127.0.0.1): then Host names the other site.
      if (verdict.ok && gate.mode === 'loopback' && !isLoopbackHostHeader(req.headers.host)) {
        verdict = { ok: false, status: 403, code: 'API_E_FORBIDDEN', message: 'without api.clients the workstation APIs answer only requests addressed to localhost or a loopback address (Host header)' };
      }
      if (!verdict.ok) {
        req.resume();
        send(res, { status: verdict.status, ...(verdict.status === 401 ? { headers: { 'www-authenticate': 'Bearer' } } : {}), body: { code: verdict.code, message: verdict.message } });
        return;
      }
      client = verdict.client;
    }
    if (STATE_CHANGING.has(req.method ?? '') && crossOrigin(req)) {
      req.resume();
      send(res, { status: 403, body: { code: 'HTTP_E_CROSS_ORIGIN', message: 'requests from pages of other sites are refused' } });
      return;
    }
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
      send(res, pathMatched ? { status: 405, body: { code: 'HTTP_E_METHOD', message: `method ${req.method} not allowed` } } : { status: 404, body: { code: 'HTTP_E_NOT_FOUND', message: 'no such endpoint' } });
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
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
