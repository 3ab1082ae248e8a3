/**
 * The outbound HTTP client given to plugins (`PluginContext.http`): undici
 * connection pools (keep-alive, one request per connection at a time), a
 * per-request deadline covering the whole exchange, an optional AbortSignal
 * (engine shutdown), JSON bodies, and catalogued transport errors that name
 * the target but never the URL (query strings can carry encrypted PHI or
 * tokens).
 *
 * Why undici and not node:http (issue 15): bench/http-client.ts measured
 * bare node:http at about twice the CPU per request of undici's dispatch()
 * (node:http's ClientRequest/IncomingMessage streams, agent bookkeeping and
 * events dominate). Requests go through `dispatch()` with a handler object,
 * not `request()`, which would wrap each response body in a stream again.
 * A delivery URL is parsed once and cached.
 */
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { hbError, isHisbridgeError, type HisbridgeError } from '../errors.js';
import type { HttpClient, HttpRequestOptions, HttpResponse } from '../sdk.js';

export interface HttpClientOptions {
  /** Deadline when a request gives none (default 10 s). */
  defaultTimeoutMs?: number;
  /** Concurrent connections per origin (default 64). */
  maxSockets?: number;
  /**
   * How long an idle connection is kept for reuse when the server does not
   * say (a `Keep-Alive: timeout=N` answer header shortens it); default 30 s.
   */
  idleSocketMs?: number;
  /** Sent unless the request sets its own. */
  userAgent?: string;
}

/** An HttpClient that owns its connection pool; `close()` drops its connections (tests, shutdown) and later calls open new ones. */
export interface OwnedHttpClient extends HttpClient {
  close(): void;
}

/** What a request needs from its URL, parsed once per distinct URL string. */
interface Endpoint {
  protocol: string;
  /** scheme://host[:port], the connection pool's key. */
  origin: string;
  /** Path and query. */
  path: string;
  /** host[:port], the default error target. */
  host: string;
  /** `Basic ...` from credentials in the URL, if any. */
  authorization: string | undefined;
}

/** Parsed URLs kept per client; cleared when full, so a client fed ever-new URLs stays bounded. */
const ENDPOINT_CACHE_MAX = 256;

function parseEndpoint(rawUrl: string): Endpoint {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw hbError('HTTP_E_BAD_REQUEST', { detail: 'invalid URL' });
  }
  const credentials = url.username || url.password ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : undefined;
  return {
    protocol: url.protocol,
    origin: url.origin,
    path: (url.pathname || '/') + url.search,
    host: url.host,
    authorization: credentials !== undefined ? `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}` : undefined,
  };
}

function hasHeader(headers: Record<string, string>, lower: string): boolean {
  for (const k in headers) if (k.length === lower.length && k.toLowerCase() === lower) return true;
  return false;
}

function encodeBody(body: unknown, headers: Record<string, string>): Buffer | undefined {
  if (body === undefined) return undefined;
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (!hasHeader(headers, 'content-type')) headers['content-type'] = 'application/json; charset=utf-8';
  return Buffer.from(JSON.stringify(body), 'utf8');
}

function parseJson(res: { headers: Record<string, string>; body: Buffer }): unknown {
  const type = res.headers['content-type'] ?? '';
  const first = res.body.length ? res.body[0] : undefined;
  // Some gateways label JSON as text/plain or text/html; sniff the first byte as well.
  if (!type.includes('json') && first !== 0x7b && first !== 0x5b) return undefined;
  try {
    return JSON.parse(res.body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Header values as one string each (repeated headers joined with `, `), names already lower-case. */
function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in h) {
    const v = h[k];
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/**
 * Set on a socket error when the socket had already carried an earlier
 * exchange (it read bytes before this request's answer began): the error
 * then means a kept-alive connection the server closed while idle.
 */
const kReusedSocket = Symbol('hisbridge.reusedSocket');

type TaggedError = Error & { code?: string; [kReusedSocket]?: boolean; socket?: { bytesRead?: number } };

/** undici's default connector (TLS with the system CAs, session reuse, SNI), tagging socket errors of reused connections. */
function taggingConnector(): buildConnector.connector {
  const base = buildConnector({});
  return (options, callback) => {
    base(options, (err, socket) => {
      if (socket) {
        socket.prependListener('error', (e: TaggedError) => {
          if (socket.bytesRead > 0 && e && typeof e === 'object') e[kReusedSocket] = true;
        });
      }
      // The connector's callback is overloaded: (error, null) or (null, socket).
      (callback as (e: Error | null, s: unknown) => void)(err, socket);
    });
  };
}

/** Whether an error before any answer byte means a kept-alive connection the server had closed while idle. */
function staleConnection(e: TaggedError): boolean {
  if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return e[kReusedSocket] === true;
  // undici's "other side closed" / "closed": the FIN arrived after the request was written.
  if (e.code === 'UND_ERR_SOCKET') return (e.socket?.bytesRead ?? 0) > 0;
  return false;
}

/** A transport error's detail for HTTP_E_NETWORK: its code, never its message (undici messages are generic, but a cause can echo input). */
function detailOf(e: TaggedError): string {
  switch (e.code) {
    case undefined:
      return 'request failed';
    case 'UND_ERR_SOCKET':
      return 'connection closed by the remote';
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connect timeout';
    case 'UND_ERR_DESTROYED':
    case 'UND_ERR_CLOSED':
      return 'client closed';
    default:
      return e.code;
  }
}

interface Settings {
  /** The client's agent, made on first use and again after close(). */
  dispatcher(): Agent;
}

/**
 * One call: the promise the caller awaits, its deadline and abort listener,
 * and the undici handler of its current attempt (a kept-alive connection the
 * server closed while idle gets one more attempt on another connection).
 */
class Call implements Dispatcher.DispatchHandler {
  #resolve!: (r: HttpResponse) => void;
  #reject!: (e: unknown) => void;
  readonly promise: Promise<HttpResponse>;
  #settled = false;
  #timer: NodeJS.Timeout | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #retried = false;
  /** The answer of this attempt has begun (its first byte arrived): no retry from then on. */
  #answering = false;
  #status = 0;
  #headers: Record<string, string> = {};
  #chunks: Buffer[] = [];
  readonly #started = performance.now();
  readonly #onAbort = (): void => this.#abort();

  constructor(
    readonly settings: Settings,
    readonly opts: Dispatcher.DispatchOptions,
    readonly target: string,
    readonly timeoutMs: number,
    readonly signal: AbortSignal | undefined,
  ) {
    this.promise = new Promise<HttpResponse>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    if (signal?.aborted) {
      this.#fail(aborted(target, signal));
      return;
    }
    this.#timer = setTimeout(() => this.#expire(), timeoutMs);
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#send();
  }

  #send(): void {
    this.#controller = undefined;
    this.#answering = false;
    this.#status = 0;
    this.#chunks = [];
    // dispatch() reports its own synchronous failures through onResponseError.
    this.settings.dispatcher().dispatch(this.opts, this);
  }

  #expire(): void {
    this.#fail(hbError('HTTP_E_TIMEOUT', { ms: this.timeoutMs, target: this.target }));
  }

  #abort(): void {
    this.#fail(aborted(this.target, this.signal!));
  }

  /** Rejects once and drops the exchange: undici destroys the connection of a request aborted while it runs. */
  #fail(e: unknown): void {
    if (this.#settled) return;
    this.#settle();
    this.#reject(e);
    this.#controller?.abort(e instanceof Error ? e : new Error('call failed'));
  }

  #settle(): void {
    this.#settled = true;
    clearTimeout(this.#timer);
    this.signal?.removeEventListener('abort', this.#onAbort);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // A call that ended while it waited for a connection is never written.
    if (this.#settled) {
      controller.abort(new Error('call already ended'));
      return;
    }
    this.#controller = controller;
  }

  onResponseStarted(): void {
    this.#answering = true;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.#answering = true;
    // 1xx answers (100 Continue) come before the final one; keep the last.
    this.#status = statusCode;
    this.#headers = flattenHeaders(headers);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    this.#settle();
    const chunks = this.#chunks;
    const out: HttpResponse = {
      status: this.#status,
      headers: this.#headers,
      body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
      latencyMs: performance.now() - this.#started,
    };
    const json = parseJson(out);
    if (json !== undefined) out.json = json;
    this.#resolve(out);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.#settled) return;
    const e = err as TaggedError;
    // A kept-alive connection the server closed while idle: the request never reached it, so one more attempt is safe.
    if (!this.#retried && !this.#answering && staleConnection(e)) {
      this.#retried = true;
      this.#send();
      return;
    }
    this.#fail(hbError('HTTP_E_NETWORK', { target: this.target, detail: detailOf(e) }, { cause: err }));
  }
}

/**
 * Connection-level (hop-by-hop) headers are the client's own business: it
 * keeps connections alive, frames the body with content-length and never
 * upgrades. undici refuses a request that sets them, which would turn a
 * route's harmless `connection: keep-alive` header into a delivery failing
 * on every retry; they are dropped instead (node:http sent them as given).
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'proxy-connection', 'te', 'trailer']);

/** The request's headers, less the hop-by-hop ones (a copy the client may add to). */
function ownHeaders(given: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!given) return out;
  for (const k in given) {
    if (!HOP_BY_HOP.has(k.toLowerCase())) out[k] = given[k]!;
  }
  return out;
}

/** Creates a client with its own connection pools. */
export function createHttpClient(opts: HttpClientOptions = {}): OwnedHttpClient {
  const defaultTimeout = opts.defaultTimeoutMs ?? 10_000;
  const agentOpts: Agent.Options = {
    connections: opts.maxSockets ?? 64,
    pipelining: 1,
    keepAliveTimeout: opts.idleSocketMs ?? 30_000,
    // The call's own deadline covers connect, headers and body; undici's separate timers would only duplicate it.
    headersTimeout: 0,
    bodyTimeout: 0,
  };
  let agent: Agent | undefined;
  const settings: Settings = {
    dispatcher: () => (agent ??= new Agent({ ...agentOpts, connect: taggingConnector() })),
  };
  const endpoints = new Map<string, Endpoint>();

  function endpointOf(rawUrl: string): Endpoint {
    let ep = endpoints.get(rawUrl);
    if (!ep) {
      ep = parseEndpoint(rawUrl);
      if (endpoints.size >= ENDPOINT_CACHE_MAX) endpoints.clear();
      endpoints.set(rawUrl, ep);
    }
    return ep;
  }

  return {
    async request(rawUrl, o: HttpRequestOptions = {}) {
      const url = endpointOf(rawUrl);
      const target = o.target ?? url.host;
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw hbError('HTTP_E_BAD_REQUEST', { detail: `unsupported protocol ${url.protocol} for ${target}` });
      const headers = ownHeaders(o.headers);
      const body = encodeBody(o.body, headers);
      if (body) headers['content-length'] = String(body.length);
      if (opts.userAgent && !hasHeader(headers, 'user-agent')) headers['user-agent'] = opts.userAgent;
      if (url.authorization !== undefined && !hasHeader(headers, 'authorization')) headers['authorization'] = url.authorization;
      const dispatchOpts: Dispatcher.DispatchOptions = { origin: url.origin, path: url.path, method: o.method ?? (body ? 'POST' : 'GET'), headers, ...(body ? { body } : {}) };
      try {
        return await new Call(settings, dispatchOpts, target, o.timeoutMs ?? defaultTimeout, o.signal).promise;
      } catch (e) {
        if (isHisbridgeError(e)) throw e;
        throw hbError('HTTP_E_NETWORK', { target, detail: detailOf(e as TaggedError) }, { cause: e });
      }
    },
    close() {
      const old = agent;
      agent = undefined;
      // destroy(), not close(): close() would wait for calls in flight; these fail as HTTP_E_NETWORK.
      old?.destroy().catch(() => undefined);
    },
  };
}

function aborted(target: string, signal: AbortSignal): HisbridgeError {
  return hbError('HTTP_E_ABORTED', { target }, signal.reason instanceof Error ? { cause: signal.reason } : {});
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * What a response status means for the delivery policy: 2xx → undefined;
 * 429 and 5xx → retryable HTTP_E_STATUS_RETRYABLE carrying Retry-After as
 * `retryAfterMs`; anything else (3xx, 4xx) → permanent HTTP_E_STATUS.
 */
export function classifyHttpStatus(status: number, headers: Record<string, string>, target: string, now = Date.now()): HisbridgeError | undefined {
  if (status >= 200 && status < 300) return undefined;
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(headers['retry-after'], now);
    return hbError('HTTP_E_STATUS_RETRYABLE', { status, target }, { data: { status }, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
  }
  return hbError('HTTP_E_STATUS', { status, target }, { data: { status } });
}
