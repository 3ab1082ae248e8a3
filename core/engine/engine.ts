/**
 * The engine: wiring only. It owns the store, the sources, the delivery
 * workers and the HTTP server, and joins them to the plugin side (PluginHost,
 * plugin-host.ts: site sections, simulators, plugin contexts, extension
 * services, workstation endpoints, routes with their inactive-route
 * decisions) and to the back-pressure controller (flow.ts).
 * `Engine.create` loads everything and fails before listening if anything is
 * wrong; `start()` opens the sockets; `stop()` drains and closes.
 */
import { setMaxListeners } from 'node:events';
import { lockDataDir, type DataDirLock } from './lock.js';
import { makeDataDir } from '../store/dirs.js';
import { dirname, resolve } from 'node:path';
import type { SiteConfig } from '../config/site.js';
import { LoadError } from '../config/yaml-source.js';
import { hbError, type HisbridgeError } from '../errors.js';
import { createHttpClient } from '../http/client.js';
import { startHttpServer, type HttpServer } from '../http/server.js';
import { loadTlsOptions } from '../config/tls.js';
import type { MllpServer } from '../mllp/server.js';
import { closeRoutes, type InactiveRoute } from '../routes/loader.js';
import { RouteTable } from '../routes/matcher.js';
import type { Registry } from '../registry.js';
import type { BlockOptions, BlockOutcome, HttpClient, HttpEndpoint, InboundMessage, IngestOutcome, Logger, PluginContext, RunningSimulator, RunningSource, SourceContext, SourceDefinition, SourceHttpEndpoint, Submit } from '../sdk.js';
import { Store } from '../store/sqlite.js';
import { DeliveryWorker } from '../delivery/worker.js';
import { createDeliveryRunner, ParsedCache } from './deliver.js';
import { ingest, legacyResult, type IngestResult, type Listener } from './ingest.js';
import { submitBlock } from './block.js';
import { errorReply, renderAck, withAckContext } from './ack.js';
import { FlowController } from './flow.js';
import { Ops } from '../ops/index.js';
import { engineOpsHost } from './ops-host.js';
import { listenError, pluginConcurrencyIssues, PluginHost } from './plugin-host.js';
import { healthBody, healthResponse, type HealthBody } from './health.js';
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
  /** The plugin side: sections, simulators, contexts, services, endpoints, routes (plugin-host.ts). */
  readonly pluginHost: PluginHost;
  /** The MLLP listeners started (what health, the console and `hisbridge start`'s banner show). */
  readonly listeners: { config: Listener & { host: string; port: number }; server: MllpServer; port?: number }[] = [];
  /** Every running source, listeners and Kafka, in start order. */
  readonly sources: { name: string; type: string; running: RunningSource }[] = [];
  httpServer?: HttpServer;
  #routes: RouteTable = new RouteTable([]);
  /** Routes loaded inactive: a platform they need is not configured (issue 14). */
  #inactive: InactiveRoute[] = [];
  #worker?: DeliveryWorker;
  /** Parsed stored messages shared by their deliveries, seeded by the ingest (core/engine/deliver.ts). */
  readonly #parsed = new ParsedCache();
  /** Decodes and parses of stored messages the deliveries had to do (the ingest's parse did not serve them). */
  get parsedLoads(): number {
    return this.#parsed.loads - this.#parsedSeeds;
  }
  #parsedSeeds = 0;
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
    this.pluginHost = new PluginHost({
      config: opts.config,
      registry: opts.registry,
      log: opts.log,
      http: this.http,
      signal: this.#abort.signal,
      audit: (entry) => {
        this.store.audit(entry);
        this.ops.metrics.onAudit(entry);
      },
      state: (namespace) => this.store.pluginState(namespace),
    });
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
    makeDataDir(opts.config.dataDir);
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
    try {
      const issues = pluginConcurrencyIssues(opts.registry, opts.config);
      if (issues.length) throw new LoadError(issues);
      await engine.pluginHost.start(opts.simulatorPorts ?? 'default');
      engine.#routes = new RouteTable(await engine.#loadRoutes());
    } catch (e) {
      await engine.pluginHost.close();
      engine.ops.close();
      store.close();
      throw e;
    }
    if (opts.workers !== false) {
      engine.#worker = new DeliveryWorker(store, createDeliveryRunner(() => engine.#routes, opts.log, engine.#parsed), {
        concurrency: opts.config.delivery.concurrency,
        perPluginConcurrency: engine.pluginHost.concurrency(),
        pollMs: opts.config.delivery.pollMs,
        log: opts.log,
        skipRoutes: () => engine.ops.pauses.names(),
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

  /** Resolved site sections (defaults + file), keyed by extension key. */
  get sections(): Record<string, Record<string, unknown>> {
    return this.pluginHost.sections;
  }

  /** The simulators running, by extension key. */
  get simulators(): Record<string, RunningSimulator> {
    return this.pluginHost.simulators;
  }

  /** The context a plugin or extension receives (PluginHost.contextFor). */
  contextFor(def: { name: string; siteKey?: string; stateNamespace?: string }, route?: string): PluginContext {
    return this.pluginHost.contextFor(def, route);
  }

  /** Routes loaded inactive, with the reason (for /readyz and the console). */
  get inactiveRoutes(): readonly InactiveRoute[] {
    return this.#inactive;
  }

  async #loadRoutes() {
    const { routes, inactive } = await this.pluginHost.loadRoutes(this.#routeInputs);
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
    const started = performance.now();
    let outcome: IngestOutcome;
    try {
      const r = await ingest(message, {
        routes: () => this.#routes,
        store: this.store,
        log: this.log,
        idempotencyWindowMs: this.config.store.idempotencyWindowMs,
        gate: () => this.#gate(),
        signal: this.#abort.signal,
        // The ingest's parse, handed to the deliveries (a 4.5 MB report was parsed again for its first delivery).
        committed: (id, bytes, msg, deliveries) => {
          this.#parsedSeeds++;
          this.#parsed.seed(id, bytes, msg, deliveries);
        },
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
    this.ops.metrics.onIngest(message.source, outcome.reply.code, outcome.routes, performance.now() - started);
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
      checkpoint: () => this.store.sourceCheckpoint(name),
      saveCheckpoint: (value) => this.store.setSourceCheckpoint(name, value),
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
      // A platform this site is not connected to: its workstation API stays off, the engine runs.
      endpoints.push(...(await this.pluginHost.endpoints()));
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
   * The health body (health.ts): `live` for /healthz, `ready` for /readyz.
   * "ok", "failing", "not-ready" or "stopping", with the reasons.
   */
  health(kind: 'live' | 'ready' = 'live'): HealthBody {
    return healthBody(kind, {
      ops: this.ops.health(),
      sources: this.sources,
      listeners: this.listeners,
      routes: this.#routes.routes.length,
      inactive: this.#inactive,
      pending: this.store.pendingCount(),
      paused: this.flow.paused,
      simulators: this.simulators,
      started: this.#startDone,
      stopping: this.#stopping,
    });
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
      await this.pluginHost.close();
      this.ops.close();
      this.store.close();
      this.log.info('engine stopped');
    } finally {
      this.#lock?.release();
    }
  }
}
