/**
 * The engine's HTTP surface: health, workstation APIs from site extensions,
 * and later metrics/console. A tiny router on node:http: exact paths with
 * `:param` segments, JSON in and out, errors as `{code, message}`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isHisbridgeError } from '../errors.js';
import type { EndpointRequest, EndpointResponse, HttpEndpoint, Logger } from '../sdk.js';

const MAX_BODY = 1024 * 1024;

interface CompiledEndpoint {
  ep: HttpEndpoint;
  parts: string[];
}

export interface HttpServer {
  readonly url: string;
  readonly port: number;
  add(ep: HttpEndpoint): void;
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

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startHttpServer(opts: { host: string; port: number; log: Logger; endpoints?: HttpEndpoint[] }): Promise<HttpServer> {
  const routes: CompiledEndpoint[] = [];
  const add = (ep: HttpEndpoint) => routes.push({ ep, parts: ep.path.split('/').filter(Boolean) });
  (opts.endpoints ?? []).forEach(add);

  const server = http.createServer((req, res) => {
    void handle(req, res).catch((e) => {
      opts.log.error({ err: { message: (e as Error).message } }, 'http handler crashed');
      if (!res.headersSent) send(res, { status: 500, body: { code: 'ENGINE_E_INTERNAL', message: 'internal error' } });
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const segs = url.pathname.split('/').filter(Boolean);
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
      let raw: Buffer;
      try {
        raw = await readBody(req);
      } catch (e) {
        send(res, { status: (e as { status?: number }).status ?? 400, body: { code: 'HTTP_E_BAD_REQUEST', message: (e as Error).message } });
        return;
      }
      if (raw.length && (req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) {
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
      ...(req.socket.remoteAddress ? { remoteAddress: req.socket.remoteAddress } : {}),
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
    url: `http://${opts.host}:${port}`,
    port,
    add,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
