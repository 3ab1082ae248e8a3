/**
 * Operations surface of one engine: Prometheus metrics, call statistics,
 * health details and the web console. The engine creates one `Ops`, feeds
 * the metric hooks, and mounts `endpoints()` on its HTTP server.
 */
import type { Logger } from '../log.js';
import type { EndpointRequest, EndpointResponse, HttpEndpoint, SegmentDefinition } from '../sdk.js';
import type { Store } from '../store/sqlite.js';
import { ConsoleAuth, DEFAULT_CONSOLE, type ConsoleConfig } from './console/auth.js';
import type { Overview } from './console/pages.js';
import { consoleEndpoints } from './console/endpoints.js';
import { SqliteSessionStore } from './console/sessions.js';
import { RemoteProbes, type CheckResult, type HealthCheck, type RemoteStatus } from './health.js';
import { EngineMetrics } from './metrics.js';
import { OpsQueries, parseTimeBounds, type StatsBy } from './queries.js';
import { OperatorActions } from './actions.js';
import { routesApi } from './routes-api.js';
import { RoutePauses } from './route-pauses.js';

export { EngineMetrics } from './metrics.js';
export { OpsQueries } from './queries.js';
export type { ConsoleConfig } from './console/auth.js';

/** What Ops needs from the engine (kept narrow so Ops never reaches into engine internals). */
export interface OpsHost {
  store: Store;
  log: Logger;
  console?: ConsoleConfig;
  /** Routes as loaded now. */
  routes(): Overview['routes'];
  listeners(): Overview['listeners'];
  /** Remote base URLs to probe (name → URL); read lazily, after simulators started. */
  remoteUrls(): Record<string, string | undefined>;
  /** The engine's own health body (listeners, kafka...). */
  engineHealth(): Record<string, unknown>;
  kick(): void;
  /** Site segments (ZCN, ZRC...) defined by the registered plugins and extensions, for the message tree's names. */
  segments?(): ReadonlyMap<string, SegmentDefinition>;
}

export interface OpsHealth {
  store: CheckResult;
  checks: Record<string, CheckResult & { critical: boolean }>;
  /** Informational: never fails readiness. */
  remotes: Record<string, RemoteStatus>;
  /** Issue 18: event-loop delay in seconds (p99 since the last /metrics scrape, max since start). */
  eventLoop: { p99: number; maxSinceStart: number };
}

const JSON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

export class Ops {
  readonly metrics: EngineMetrics;
  readonly queries: OpsQueries;
  readonly auth: ConsoleAuth;
  /** Issue 18: routes paused by an operator (persisted) and the operator actions. */
  readonly pauses: RoutePauses;
  readonly actions: OperatorActions;
  readonly #host: OpsHost;
  readonly #checks: HealthCheck[] = [];
  readonly #console: ConsoleConfig;
  readonly #sessions: SqliteSessionStore;
  #remotes?: RemoteProbes;

  constructor(host: OpsHost) {
    this.#host = host;
    this.#console = host.console ?? DEFAULT_CONSOLE;
    // Sessions live in the store, hashed, so an engine restart does not log everyone out.
    this.#sessions = SqliteSessionStore.open(host.store.dir);
    this.auth = new ConsoleAuth(this.#console, this.#sessions);
    this.queries = OpsQueries.open(host.store.dir);
    this.metrics = new EngineMetrics({
      queueDepth: () => host.store.pendingCount(),
      connections: () => Object.fromEntries(host.listeners().map((l) => [l.name, l.connections])),
      deadLetters: () => this.queries.deadCount(),
      deadByRoute: () => this.queries.deadByRoute(),
      storeOk: () => this.queries.ping() && host.store.writeHealth().ok,
      listenersLive: () => Object.fromEntries(((host.engineHealth().sources ?? []) as { name: string; live?: boolean }[]).map((s) => [s.name, s.live !== false])),
      remotesReachable: () => Object.fromEntries(Object.entries(this.remotes.status()).map(([k, r]) => [k, r.reachable])),
      sqlCounts: () => host.store.sqlCounts(),
    });
    this.pauses = RoutePauses.open(host.store.dir);
    this.actions = new OperatorActions({
      store: host.store, queries: this.queries, pauses: this.pauses, metrics: this.metrics, log: host.log,
      routes: () => host.routes().map((r) => ({ name: r.name, ack: r.ack, ...(r.inactive ? { inactive: r.inactive } : {}) })),
      kick: () => host.kick(),
    });
  }

  /** Adds a health check (e.g. a source's connection); critical ones fail /readyz. */
  registerCheck(check: HealthCheck): void {
    this.#checks.push(check);
  }

  get remotes(): RemoteProbes {
    return (this.#remotes ??= new RemoteProbes(this.#host.remoteUrls()));
  }

  health(): OpsHealth {
    const checks: OpsHealth['checks'] = {};
    for (const c of this.#checks) {
      let r: CheckResult;
      try {
        r = c.run();
      } catch (e) {
        r = { ok: false, detail: (e as Error).message };
      }
      checks[c.name] = { ...r, critical: c.critical };
    }
    const w = this.#host.store.writeHealth();
    const store: CheckResult = !this.queries.ping() ? { ok: false, detail: 'store does not answer' } : w.ok ? { ok: true } : { ok: false, detail: `failing: ${w.detail}` };
    const loop = this.metrics.eventLoopDelay();
    return { store, checks, remotes: this.remotes.status(), eventLoop: { p99: loop.p99, maxSinceStart: loop.maxSinceStart } };
  }

  /** Store answers and every critical check passes. */
  ready(): boolean {
    const h = this.health();
    return h.store.ok && Object.values(h.checks).every((c) => c.ok || !c.critical);
  }

  overview(): Overview {
    return {
      routes: this.#host.routes(),
      listeners: this.#host.listeners(),
      pending: this.#host.store.pendingCount(),
      dead: this.queries.deadCount(),
      health: { ...this.#host.engineHealth() },
    };
  }

  /** GET /metrics, GET /api/stats and (when enabled) the console. */
  endpoints(): HttpEndpoint[] {
    const eps: HttpEndpoint[] = [
      {
        method: 'GET', path: '/metrics',
        handler: async () => {
          const m = await this.metrics.text();
          return { status: 200, headers: { 'content-type': m.contentType, 'cache-control': 'no-store' }, body: m.body };
        },
      },
      { method: 'GET', path: '/api/stats', handler: async (req) => this.#stats(req) },
      ...routesApi(this.actions),
    ];
    if (this.#console.enabled) {
      eps.push(...consoleEndpoints({
        auth: this.auth, store: this.#host.store, queries: this.queries, metrics: this.metrics, log: this.#host.log,
        overview: () => this.overview(), kick: () => this.#host.kick(),
        actions: this.actions, pauses: this.pauses, engineHealth: () => this.#host.engineHealth(),
        ...(this.#host.segments ? { segments: this.#host.segments() } : {}),
      }));
    }
    return eps;
  }

  /**
   * Call statistics as JSON; needs a console session or the console bearer
   * token (it names institutions and volumes), or, with `api.clients`, an API
   * client the HTTP server let through for the `stats` family.
   */
  async #stats(req: EndpointRequest): Promise<EndpointResponse> {
    if (!req.client && !this.auth.principal(req.headers)) return { status: 401, headers: JSON_HEADERS, body: { code: 'OPS_E_UNAUTHENTICATED', message: 'log in to the console or send the bearer token' } };
    const by = (req.query.by ?? 'org') as StatsBy;
    if (!['org', 'route', 'operation'].includes(by)) return { status: 400, headers: JSON_HEADERS, body: { code: 'OPS_E_BAD_QUERY', message: 'by must be org, route or operation' } };
    let since: number | undefined;
    let until: number | undefined;
    try {
      ({ since, until } = parseTimeBounds(req.query));
    } catch (e) {
      return { status: 400, headers: JSON_HEADERS, body: { code: 'OPS_E_BAD_QUERY', message: (e as Error).message } };
    }
    // An API client limited to some institutions (api.clients[].institutions) reads only theirs: `org` must be one of
    // them, and may be left out only when the client has exactly one.
    let org = req.query.org || undefined;
    if (req.institutions) {
      if (org !== undefined && !req.institutions.includes(org)) return { status: 403, headers: JSON_HEADERS, body: { code: 'API_E_FORBIDDEN', message: `client ${req.client ?? '?'} may not read the statistics of institution "${org.slice(0, 32).replace(/[^\w.-]/g, '?')}"` } };
      if (org === undefined && req.institutions.length === 1) org = req.institutions[0];
      if (org === undefined) return { status: 400, headers: JSON_HEADERS, body: { code: 'OPS_E_BAD_QUERY', message: `org is required: client ${req.client ?? '?'} is limited to several institutions (${req.institutions.join(', ')})` } };
    }
    const report = this.queries.stats(by, { ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}), ...(org ? { orgCode: org } : {}) });
    return { status: 200, headers: JSON_HEADERS, body: report };
  }

  close(): void {
    this.metrics.close();
    this.queries.close();
    this.pauses.close();
    this.#sessions.close();
  }
}
