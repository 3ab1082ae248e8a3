/**
 * The engine: owns the store, the routes, the listeners, the delivery
 * workers, the HTTP surface and (on embedded defaults) the simulators.
 * `Engine.create` loads everything and fails before listening if anything is
 * wrong; `start()` opens the sockets; `stop()` drains and closes.
 */
import { setMaxListeners } from 'node:events';
import { lockDataDir, type DataDirLock } from './lock.js';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { SiteConfig } from '../config/site.js';
import { LoadError } from '../config/yaml-source.js';
import { hbError, type HisbridgeError } from '../errors.js';
import { createHttpClient } from '../http/client.js';
import { startHttpServer, type HttpServer } from '../http/server.js';
import { loadTlsOptions } from '../config/tls.js';
import type { MllpServer } from '../mllp/server.js';
import { closeRoutes, listRouteFiles, loadRoutes, type InactiveRoute } from '../routes/loader.js';
import { simulatorPort } from './sim-ports.js';
import { RouteTable } from '../routes/matcher.js';
import type { Registry } from '../registry.js';
import type { BlockOptions, BlockOutcome, HttpClient, HttpEndpoint, InboundMessage, IngestOutcome, Logger, PluginContext, PluginDefinition, RunningSimulator, RunningSource, SourceContext, SourceDefinition, SourceHttpEndpoint, Submit } from '../sdk.js';
import { Store } from '../store/sqlite.js';
import { DeliveryWorker } from '../delivery/worker.js';
import { createDeliveryRunner } from './deliver.js';
import { ingest, legacyResult, type IngestResult, type Listener } from './ingest.js';
import { submitBlock } from './block.js';
import { errorReply, renderAck, withAckContext } from './ack.js';
import { FlowController } from './flow.js';
import { KafkaSource } from '../kafka/source.js';
import { Ops } from '../ops/index.js';
import { engineOpsHost } from '../ops/engine-host.js';
import { startAlerts, type AlertEvaluator } from '../alerts/index.js';

export interface EngineOptions {
  config: SiteConfig;
  registry: Registry;
  log: Logger;
  /** Route files or directories; default the config's routesDir. */
  routes?: string[];
  /** 'random' binds simulators to port 0 (tests, replay); default derives them from the HTTP port (core/engine/sim-ports.ts). */
  simulatorPorts?: 'default' | 'random';
  /** Do not start the delivery workers (CLI tools that only inspect). */
  workers?: boolean;
}

export class Engine {
  readonly config: SiteConfig;
  readonly registry: Registry;
  readonly log: Logger;
  readonly store: Store;
  readonly http: HttpClient;
  /** Resolved site sections (defaults + file), keyed by extension key. */
  readonly sections: Record<string, Record<string, unknown>> = {};
  readonly simulators: Record<string, RunningSimulator> = {};
  /** The MLLP listeners started (what health, the console and `hisbridge start`'s banner show). */
  readonly listeners: { config: Listener & { host: string; port: number }; server: MllpServer; port?: number }[] = [];
  /** Every running source, listeners and Kafka, in start order. */
  readonly sources: { name: string; type: string; running: RunningSource }[] = [];
  httpServer?: HttpServer;
  #routes: RouteTable = new RouteTable([]);
  /** Routes loaded inactive: a platform they need is not configured (issue 14). */
  #inactive: InactiveRoute[] = [];
  #worker?: DeliveryWorker;
  readonly #abort = new AbortController();
  #stopping = false;
  /** Back-pressure: one controller for every source. */
  readonly flow: FlowController;
  #purgeTimer?: NodeJS.Timeout;
  #routeInputs: string[];
  #started = false;
  /** start() finished: every listener it was asked for is bound and the sources run. */
  #startDone = false;
  /** The data directory lock, held from start() to stop(). */
  #lock?: DataDirLock;
  /** Metrics, call statistics, health details and the console (core/ops). */
  readonly ops: Ops;
  /** The alert evaluator (core/alerts), when the site has alert rules. */
  alerts?: AlertEvaluator;

  private constructor(opts: EngineOptions, store: Store) {
    // Every source, plugin and in-flight call listens on the one shutdown signal: no listener cap (a site may have many listeners).
    setMaxListeners(0, this.#abort.signal);
    this.config = opts.config;
    this.registry = opts.registry;
    this.log = opts.log;
    this.store = store;
    this.http = createHttpClient();
    this.#routeInputs = opts.routes ?? [opts.config.routesDir];
    this.ops = new Ops(engineOpsHost(this, () => this.#worker?.kick()));
    this.flow = new FlowController({
      pending: () => this.store.pendingCount(),
      highWaterMark: opts.config.store.highWaterMark,
      overload: opts.config.store.overload,
      log: opts.log,
    });
  }

  /** Opens the store, starts simulators (if enabled), loads routes. Throws LoadError on invalid routes. */
  static async create(opts: EngineOptions): Promise<Engine> {
    mkdirSync(opts.config.dataDir, { recursive: true, mode: 0o700 });
    const store = Store.open(opts.config.dataDir, {
      synchronous: opts.config.store.synchronous,
      retentionDays: opts.config.store.retentionDays,
      metadataRetentionDays: opts.config.store.metadataRetentionDays,
      groupCommitMs: opts.config.store.groupCommitMs,
      idempotencyWindowMs: opts.config.store.idempotencyWindowMs,
      checkpointInWorker: true,
    });
    for (const p of store.tightened) {
      const mode = p === store.dir ? '0700' : '0600';
      opts.log.warn({ code: 'STORE_W_PERMISSIONS', path: p, mode }, hbError('STORE_W_PERMISSIONS', { path: p, mode }).message);
    }
    const engine = new Engine(opts, store);
    // kafka-publish (siteKey 'kafka') reads the shared connection from here.
    if (opts.config.kafka) engine.sections.kafka = { ...opts.config.kafka };
    try {
      await engine.#startSimulators(opts.simulatorPorts ?? 'default');
      engine.#routes = new RouteTable(await engine.#loadRoutes());
    } catch (e) {
      await engine.#closeSimulators();
      engine.ops.close();
      store.close();
      throw e;
    }
    if (opts.workers !== false) {
      engine.#worker = new DeliveryWorker(store, createDeliveryRunner(() => engine.#routes, opts.log), {
        concurrency: opts.config.delivery.concurrency,
        pollMs: opts.config.delivery.pollMs,
        log: opts.log,
        onSettled: (job, outcome, latencyMs, code) => {
          engine.ops.metrics.onSettled(job, outcome, latencyMs, code);
          engine.flow.check();
        },
      });
    }
    return engine;
  }

  get routes(): RouteTable {
    return this.#routes;
  }

  async #startSimulators(ports: 'default' | 'random'): Promise<void> {
    for (const ext of this.registry.extensions) {
      const user = (this.config.sections[ext.key] ?? {}) as Record<string, unknown>;
      if (this.config.simulators && ext.simulator) {
        // The simulator must verify with the same (demo) credentials the plugins get once pointed at it; its own URL is not known yet.
        const simSite = { ...ext.defaults({ simulatorUrl: 'http://127.0.0.1' }), ...user };
        const port = ports === 'random' ? 0 : simulatorPort(this.config, this.registry.extensions, ext.key);
        const sim = await ext.simulator.start({
          host: '127.0.0.1',
          port,
          site: simSite,
          log: this.log.child({ simulator: ext.key }),
        }).catch((e: unknown) => {
          throw listenError(`simulator ${ext.key}`, '127.0.0.1', port, e);
        });
        this.simulators[ext.key] = sim;
        this.log.info({ simulator: ext.key, url: sim.url }, 'simulator started');
        this.sections[ext.key] = { ...ext.defaults({ simulatorUrl: sim.url }), ...user };
      } else {
        this.sections[ext.key] = { ...ext.defaults({}), ...user };
      }
    }
  }

  async #closeSimulators(): Promise<void> {
    await Promise.allSettled(Object.values(this.simulators).map((s) => s.close()));
  }

  /** The context a plugin or extension receives; its state lives under `stateNamespace` when given, else under its name. */
  contextFor(def: { name: string; siteKey?: string; stateNamespace?: string }, route?: string): PluginContext {
    const log = this.log.child({ plugin: def.name, ...(route ? { route } : {}) });
    return {
      log,
      http: this.http,
      signal: this.#abort.signal,
      site: def.siteKey ? this.sections[def.siteKey] ?? {} : {},
      audit: (entry) => this.store.audit({ ...(route && !entry.route ? { route } : {}), ...entry }),
      state: this.store.pluginState(def.stateNamespace ?? def.name),
    };
  }

  /** Routes loaded inactive, with the reason (for /readyz and the console). */
  get inactiveRoutes(): readonly InactiveRoute[] {
    return this.#inactive;
  }

  async #loadRoutes() {
    const files = listRouteFiles(this.#routeInputs);
    const inactive: InactiveRoute[] = [];
    const routes = await loadRoutes(files, {
      registry: this.registry,
      contextFor: (def: PluginDefinition, route: string) => this.contextFor(def, route),
      sources: [...this.config.listeners.map((l) => l.name), ...KafkaSource.sourceNames(this.config.kafka)],
      unconfiguredSite: (key) => !this.config.simulators && Object.keys(this.config.sections[key] ?? {}).length === 0, // same rule as core/cli/common.ts unconfiguredSite
      onInactive: (r) => inactive.push(r),
    });
    // Adopted only with a set that loaded; one warning per route.
    this.#inactive = inactive;
    for (const r of inactive) this.log.warn({ route: r.name, code: 'CONFIG_E_SITE_MISSING', reason: r.reason }, `route ${r.name} inactive: ${r.reason}`);
    return routes;
  }

  /** Re-reads the route files; on any problem the running set is kept. */
  async reload(): Promise<{ ok: true; routes: number } | { ok: false; issues: string[] }> {
    try {
      const fresh = await this.#loadRoutes();
      const old = this.#routes;
      this.#routes = new RouteTable(fresh);
      await closeRoutes(old.routes);
      this.log.info({ routes: fresh.length }, 'routes reloaded');
      this.store.audit({ plugin: 'engine', operation: 'route-reload', result: 'ok', detail: `${fresh.length} routes` });
      return { ok: true, routes: fresh.length };
    } catch (e) {
      const issues = e instanceof LoadError ? e.issues.map(String) : [(e as Error).message];
      this.log.error({ issues }, 'route reload refused: keeping the running routes');
      this.store.audit({ plugin: 'engine', operation: 'route-reload', result: 'failed', detail: `${issues.length} issues` });
      return { ok: false, issues };
    }
  }

  #gate(): HisbridgeError | undefined {
    if (this.#stopping) return hbError('ENGINE_E_SHUTTING_DOWN');
    if (this.config.store.overload === 'reject' && this.store.pendingCount() >= this.config.store.highWaterMark) {
      return hbError('ENGINE_E_BACKPRESSURE', { pending: this.store.pendingCount() });
    }
    return undefined;
  }

  /**
   * The ingress port (issue 13): one message in, its outcome out, once it is
   * committed or refused. Never rejects. Sources get it as `submit`.
   */
  readonly submit: Submit = async (message: InboundMessage): Promise<IngestOutcome> => {
    let outcome: IngestOutcome;
    try {
      const r = await ingest(message, {
        routes: () => this.#routes,
        store: this.store,
        log: this.log,
        idempotencyWindowMs: this.config.store.idempotencyWindowMs,
        gate: () => this.#gate(),
        signal: this.#abort.signal,
      });
      outcome = r.outcome;
      if (r.queued) {
        this.#worker?.kick();
        // Checked on every commit that queued work, so the mark is not overshot between timer ticks.
        this.flow.check();
      }
    } catch (e) {
      // The port does not throw; should it, the source hears "offer it again later", never a crash.
      const err = hbError('ENGINE_E_INTERNAL', { detail: 'ingress failed' }, { cause: e });
      this.log.error({ listener: message.source, code: err.code, err: { message: (e as Error).message } }, 'ingress failed');
      outcome = withAckContext({ status: 'failed', code: err.code, reason: err.message, routes: [], reply: errorReply('AE', err) }, { charset: 'utf-8' });
    }
    this.ops.metrics.onIngest(message.source, outcome.reply.code, outcome.routes);
    if (outcome.controlIdReused) this.ops.metrics.onControlIdReused(message.source);
    return outcome;
  };

  /** `SourceContext.submitBlock`: splits an HL7 block, submits each message in order, builds the replies. */
  submitBlock(bytes: Buffer, opts: BlockOptions): Promise<BlockOutcome> {
    return submitBlock(bytes, opts, {
      submit: this.submit,
      log: this.log,
      onRefused: (source, o) => this.ops.metrics.onIngest(source, o.reply.code, o.routes),
    });
  }

  /** `SourceContext.renderAck`: the HL7 ACK of an outcome, in its message's charset. */
  renderAck(outcome: IngestOutcome): Buffer {
    return renderAck(outcome);
  }

  /** One message with the older result shape (route tests, tests): the outcome with its ACK rendered. Never throws. */
  async ingest(frame: Buffer, listener: Listener): Promise<IngestResult> {
    return legacyResult(await this.submit({
      source: listener.name, bytes: frame, defaultCharset: listener.charset, noRoute: listener.noRoute,
      ...(listener.invalidBytes ? { invalidBytes: listener.invalidBytes } : {}),
    }));
  }

  /** The context a source plugin receives. */
  sourceContext(name: string, config: Record<string, unknown>): SourceContext {
    const http = this.httpServer;
    return {
      log: this.log.child({ listener: name }),
      signal: this.#abort.signal,
      config,
      baseDir: this.config.file ? dirname(resolve(this.config.file)) : process.cwd(),
      dataDir: this.config.dataDir,
      submitBlock: (bytes, opts) => this.submitBlock(bytes, opts),
      renderAck: (o) => renderAck(o),
      flow: this.flow,
      ...(http ? {
        mountHttp: (endpoints: SourceHttpEndpoint[]) => {
          for (const ep of endpoints) http.mountSource(ep);
        },
      } : {}),
      metric: (metric, labels) => {
        if (metric === 'connection_refused') this.ops.metrics.onConnectionRefused(labels?.listener ?? name);
      },
      gauge: (metric, value, labels) => {
        if (metric === 'kafka_lag') this.ops.metrics.setKafkaLag(labels.topic ?? '', Number(labels.partition ?? 0), value);
      },
    };
  }

  /** Starts one source through its definition; a start failure (ENGINE_E_LISTEN for a bind failure) stops the start. */
  async #startSource(def: SourceDefinition, name: string, config: Record<string, unknown>): Promise<RunningSource> {
    const running = await def.start(this.sourceContext(name, config), this.submit);
    this.sources.push({ name, type: def.type, running });
    const bound = running as RunningSource & { server?: MllpServer; host?: string; port?: number };
    if (def.type === 'mllp' && bound.server) {
      const l = this.config.listeners.find((x) => x.name === name)!;
      const listener: Listener = { name, charset: l.charset, noRoute: l.noRoute, multiMessageBlocks: l.multiMessageBlocks, invalidBytes: l.invalidBytes };
      this.listeners.push({ config: { ...listener, host: bound.host ?? l.host, port: bound.port ?? l.port }, server: bound.server, ...(bound.port !== undefined ? { port: bound.port } : {}) });
    }
    return running;
  }

  async start(opts: { mllp?: boolean; http?: boolean; kafka?: boolean } = {}): Promise<void> {
    if (this.#started) return;
    // One running engine per data directory (core/engine/lock.ts): refused before anything binds.
    this.#lock = lockDataDir(this.config.dataDir);
    if (this.#lock.stale !== undefined) this.log.warn({ pid: this.#lock.stale }, 'data directory lock left by a process that is gone: taken over');
    this.#started = true;
    this.store.recover();
    this.#worker?.start();
    if (opts.http !== false && this.config.http.enabled) {
      const endpoints: HttpEndpoint[] = [
        // The code follows the body's status: 200 only with "ok".
        { method: 'GET', path: '/healthz', handler: async () => healthResponse(this.health('live')) },
        { method: 'GET', path: '/readyz', handler: async () => healthResponse(this.health('ready')) },
      ];
      endpoints.push(...this.ops.endpoints());
      for (const ext of this.registry.extensions) {
        if (!ext.endpoints) continue;
        try {
          endpoints.push(...(await ext.endpoints(this.contextFor({ name: ext.key, siteKey: ext.key }))));
        } catch (e) {
          // A platform this site is not connected to: its workstation API stays off, the engine runs.
          this.log.warn({ extension: ext.key, code: (e as HisbridgeError).code, reason: (e as Error).message }, 'workstation API not mounted: site section incomplete');
        }
      }
      this.httpServer = await startHttpServer({
        host: this.config.http.host, port: this.config.http.port, log: this.log, endpoints, api: this.config.api,
        ...(this.config.http.tls ? { tls: loadTlsOptions(this.config.http.tls) } : {}),
        maxConnections: this.config.http.maxConnections, headersTimeoutMs: this.config.http.headersTimeoutMs, requestTimeoutMs: this.config.http.requestTimeoutMs,
        onRefused: () => this.ops.metrics.onConnectionRefused('http'),
      }).catch((e: unknown) => {
        throw listenError('http', this.config.http.host, this.config.http.port, e);
      });
      this.log.info({ url: this.httpServer.url }, 'http listening');
    }
    if (opts.mllp !== false) {
      // Every listener through its source plugin (`type:`, mllp by default).
      for (const l of this.config.listeners) {
        const def = this.registry.getSource(l.type);
        if (!def) throw hbError('ENGINE_E_LISTEN', { what: `listener ${l.name}`, host: l.host, port: l.port, detail: `no source of type "${l.type}" (known: ${this.registry.sources.map((x) => x.type).join(', ')})` });
        await this.#startSource(def, l.name, l.options);
      }
    }
    if (opts.kafka !== false && this.config.kafka?.topics.length) {
      const def = this.registry.getSource('kafka');
      if (!def) throw hbError('ENGINE_E_LISTEN', { what: 'kafka', host: '-', port: 0, detail: 'no kafka source registered' });
      await this.#startSource(def, 'kafka', this.config.kafka as unknown as Record<string, unknown>);
    }
    this.flow.start();
    this.#purgeTimer = setInterval(() => this.#purge(), 3_600_000);
    this.#purgeTimer.unref();
    this.#purge();
    this.alerts = await startAlerts(this);
    this.#startDone = true;
  }

  /** Retention: bodies of delivered messages after retentionDays, metadata and audit after metadataRetentionDays. */
  #purge(): void {
    try {
      const r = this.store.purge();
      if (r.bodiesPurged || r.messagesDeleted || r.auditDeleted) this.log.info({ ...r }, 'retention purge');
    } catch (e) {
      this.log.error({ err: { message: (e as Error).message } }, 'retention purge failed');
    }
  }

  /**
   * Why the engine cannot do its job now (empty when it can): the store's
   * last write failed or the store does not answer, or a configured MLLP
   * listener is not bound. /healthz fails on these.
   */
  #faults(store: { ok: boolean; detail?: string }): string[] {
    const out: string[] = [];
    if (!store.ok) out.push(`store: ${store.detail ?? 'failing'}`);
    for (const s of this.sources) {
      const h = s.running.health?.();
      if (h && !h.live) out.push(`${s.type === 'kafka' ? 'kafka' : `listener ${s.name}`}: ${h.detail ?? 'not live'}`);
    }
    return out;
  }

  /**
   * The health body. `live` (/healthz): "ok", "failing" (see #faults) or
   * "stopping". `ready` (/readyz) adds "not-ready": not started yet, the
   * Kafka group not joined, or a critical registered check failing. Remote
   * platforms are informational and never fail either. `reasons` says why.
   */
  health(kind: 'live' | 'ready' = 'live'): Record<string, unknown> & { status: 'ok' | 'failing' | 'not-ready' | 'stopping'; reasons: string[] } {
    const ops = this.ops.health();
    const reasons = this.#faults(ops.store);
    let status: 'ok' | 'failing' | 'not-ready' | 'stopping' = reasons.length ? 'failing' : 'ok';
    if (kind === 'ready') {
      const waits: string[] = [];
      if (!this.#startDone) waits.push('engine: not started');
      for (const s of this.sources) {
        const h = s.running.health?.();
        if (h && h.live && !h.ready) waits.push(`${s.type === 'kafka' ? 'kafka' : `listener ${s.name}`}: ${h.detail ?? 'not ready'}`);
      }
      for (const [name, c] of Object.entries(ops.checks)) if (c.critical && !c.ok) waits.push(`check ${name}: ${c.detail ?? 'failing'}`);
      if (waits.length && status === 'ok') status = 'not-ready';
      reasons.push(...waits);
    }
    if (this.#stopping) {
      status = 'stopping';
      reasons.unshift('engine: stopping');
    }
    return {
      status,
      reasons,
      listeners: this.listeners.map((l) => ({ name: l.config.name, port: l.port, connections: l.server.connectionCount })),
      sources: this.sources.map((s) => {
        const h = s.running.health?.();
        return { name: s.name, type: s.type, ...(h ? { live: h.live, ready: h.ready, ...(h.detail ? { detail: h.detail } : {}) } : {}) };
      }),
      routes: this.#routes.routes.length,
      inactiveRoutes: this.#inactive.map((r) => ({ name: r.name, reason: r.reason })),
      pendingDeliveries: this.store.pendingCount(),
      paused: this.flow.paused,
      simulators: Object.fromEntries(Object.entries(this.simulators).map(([k, s]) => [k, s.url])),
      ...kafkaStatus(this.sources),
      ...ops,
    };
  }

  ready(): boolean {
    return this.health('ready').status === 'ok';
  }

  /** Stops accepting, drains deliveries for up to graceMs, closes everything. Safe to call twice. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    try {
      this.flow.stop();
      await this.alerts?.stop();
      if (this.#purgeTimer) clearInterval(this.#purgeTimer);
      // Kafka first: in-flight records finish and their offsets are committed before the store closes.
      const kafka = this.sources.filter((s) => s.type === 'kafka');
      await Promise.allSettled(kafka.map((s) => s.running.close(graceMs)));
      await Promise.allSettled(this.sources.filter((s) => s.type !== 'kafka').map((s) => s.running.close(Math.min(graceMs, 5000))));
      await this.#worker?.stop(graceMs);
      this.#abort.abort();
      await this.httpServer?.close();
      await closeRoutes(this.#routes.routes);
      await this.#closeSimulators();
      this.ops.close();
      this.store.close();
      this.log.info('engine stopped');
    } finally {
      this.#lock?.release();
    }
  }
}

/** The Kafka source's status for the health body (under `kafka`), when it runs. */
function kafkaStatus(sources: readonly { type: string; running: RunningSource }[]): { kafka?: Record<string, unknown> } {
  const k = sources.find((s) => s.type === 'kafka');
  const info = k?.running.health?.().info;
  return info ? { kafka: info } : {};
}

/** The HTTP answer for a health body: 200 only when its status is "ok". */
function healthResponse(body: { status: string }): { status: number; headers: Record<string, string>; body: unknown } {
  return { status: body.status === 'ok' ? 200 : 503, headers: { 'cache-control': 'no-store' }, body };
}

/** A bind failure that names what could not listen, and where. */
function listenError(what: string, host: string, port: number, e: unknown): HisbridgeError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const detail = code === 'EADDRINUSE' ? 'address already in use' : code === 'EACCES' ? 'permission denied' : code ?? (e instanceof Error ? e.message : String(e));
  return hbError('ENGINE_E_LISTEN', { what, host, port, detail }, { cause: e });
}
