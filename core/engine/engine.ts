/**
 * The engine: owns the store, the routes, the listeners, the delivery
 * workers, the HTTP surface and (on embedded defaults) the simulators.
 * `Engine.create` loads everything and fails before listening if anything is
 * wrong; `start()` opens the sockets; `stop()` drains and closes.
 */
import { mkdirSync } from 'node:fs';
import type { SiteConfig } from '../config/site.js';
import { LoadError } from '../config/yaml-source.js';
import { hbError, type HisbridgeError } from '../errors.js';
import { createHttpClient } from '../http/client.js';
import { startHttpServer, type HttpServer } from '../http/server.js';
import { loadTlsOptions } from '../config/tls.js';
import { createMllpServer, type MllpServer } from '../mllp/server.js';
import { closeRoutes, listRouteFiles, loadRoutes } from '../routes/loader.js';
import { RouteTable } from '../routes/matcher.js';
import type { Registry } from '../registry.js';
import type { HttpClient, HttpEndpoint, Logger, PluginContext, PluginDefinition, RunningSimulator } from '../sdk.js';
import { Store } from '../store/sqlite.js';
import { DeliveryWorker } from '../delivery/worker.js';
import { createDeliveryRunner } from './deliver.js';
import { ingest, type IngestResult, type Listener } from './ingest.js';
import { processBlock, type BlockResult } from './block.js';
import { buildAck, readAckHeader } from '../hl7/index.js';
import { KafkaSource } from '../kafka/source.js';
import { Ops } from '../ops/index.js';
import { engineOpsHost } from '../ops/engine-host.js';

export interface EngineOptions {
  config: SiteConfig;
  registry: Registry;
  log: Logger;
  /** Route files or directories; default the config's routesDir. */
  routes?: string[];
  /** 'random' binds simulators to port 0 (tests, replay); default uses their fixed default ports. */
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
  readonly listeners: { config: Listener & { host: string; port: number }; server: MllpServer; port?: number }[] = [];
  httpServer?: HttpServer;
  #routes: RouteTable = new RouteTable([]);
  #worker?: DeliveryWorker;
  readonly #abort = new AbortController();
  #stopping = false;
  #paused = false;
  #monitor?: NodeJS.Timeout;
  #purgeTimer?: NodeJS.Timeout;
  #routeInputs: string[];
  #started = false;
  /** start() opened the MLLP listeners, so each configured one must stay bound. */
  #mllpExpected = false;
  /** start() finished: every listener it was asked for is bound and the sources run. */
  #startDone = false;
  #kafka?: KafkaSource;
  /** Metrics, call statistics, health details and the console (core/ops). */
  readonly ops: Ops;

  private constructor(opts: EngineOptions, store: Store) {
    this.config = opts.config;
    this.registry = opts.registry;
    this.log = opts.log;
    this.store = store;
    this.http = createHttpClient();
    this.#routeInputs = opts.routes ?? [opts.config.routesDir];
    this.ops = new Ops(engineOpsHost(this, () => this.#worker?.kick()));
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
        onSettled: (job, outcome, latencyMs, code) => engine.ops.metrics.onSettled(job, outcome, latencyMs, code),
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
        const port = ports === 'random' ? 0 : ext.simulator.defaultPort;
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

  async #loadRoutes() {
    const files = listRouteFiles(this.#routeInputs);
    return loadRoutes(files, {
      registry: this.registry,
      contextFor: (def: PluginDefinition, route: string) => this.contextFor(def, route),
      sources: [...this.config.listeners.map((l) => l.name), ...KafkaSource.sourceNames(this.config.kafka)],
    });
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

  #refusal(): HisbridgeError | undefined {
    if (this.#stopping) return hbError('ENGINE_E_SHUTTING_DOWN');
    if (this.config.store.overload === 'reject' && this.store.pendingCount() >= this.config.store.highWaterMark) {
      return hbError('ENGINE_E_BACKPRESSURE', { pending: this.store.pendingCount() });
    }
    return undefined;
  }

  /** Processes one received frame (MLLP, replay, tests). Never throws. */
  async ingest(frame: Buffer, listener: Listener): Promise<IngestResult> {
    const result = await ingest(frame, listener, {
      routes: () => this.#routes,
      store: this.store,
      log: this.log,
      idempotencyWindowMs: this.config.store.idempotencyWindowMs,
      onQueued: () => {
        this.#worker?.kick();
        // Checked on every commit, not only by the monitor, so the mark is not overshot between ticks.
        this.#checkBackpressure();
      },
      refuse: () => this.#refusal(),
      signal: this.#abort.signal,
    });
    this.ops.metrics.onIngest(listener.name, result.code, result.routes);
    if (result.controlIdReused) this.ops.metrics.onControlIdReused(listener.name);
    return result;
  }

  /**
   * Processes one received block (MLLP frame, replayed file): several
   * messages or a batch are split on bytes and each message ingested on its
   * own (core/engine/block.ts). Never throws.
   */
  async ingestBlock(frame: Buffer, listener: Listener): Promise<BlockResult> {
    return processBlock(frame, listener, {
      ingest: (m, l) => this.ingest(m, l),
      log: this.log,
      onRefused: (l, r) => this.ops.metrics.onIngest(l.name, r.code, r.routes),
    });
  }

  async start(opts: { mllp?: boolean; http?: boolean; kafka?: boolean } = {}): Promise<void> {
    if (this.#started) return;
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
      }).catch((e: unknown) => {
        throw listenError('http', this.config.http.host, this.config.http.port, e);
      });
      this.log.info({ url: this.httpServer.url }, 'http listening');
    }
    if (opts.mllp !== false) {
      for (const l of this.config.listeners) {
        const listener: Listener = { name: l.name, charset: l.charset, noRoute: l.noRoute, multiMessageBlocks: l.multiMessageBlocks, invalidBytes: l.invalidBytes };
        const server = createMllpServer({
          name: l.name,
          host: l.host,
          port: l.port,
          maxFrameBytes: l.maxFrameBytes,
          idleTimeoutMs: l.idleTimeoutMs,
          ...(l.tls ? { tls: loadTlsOptions(l.tls) } : {}),
          frameTimeoutMs: l.frameTimeoutMs,
          maxConnections: l.maxConnections,
          log: this.log.child({ listener: l.name }),
          handler: async (frame) => (await this.ingestBlock(frame, listener)).replies,
          onBadFrame: (ev) => (ev.kind === 'too-large' ? this.#errorAck(ev.head, hbError('MLLP_E_FRAME_TOO_LARGE', { limit: l.maxFrameBytes }), 'AR') : null),
          onHandlerError: (err, frame) => {
            this.log.error({ listener: l.name, err: { message: (err as Error).message } }, 'listener handler failed');
            return this.#errorAck(frame.subarray(0, 4096), hbError('ENGINE_E_INTERNAL', { detail: 'message handler failed' }), 'AE');
          },
        });
        server.on('refused', () => this.ops.metrics.onConnectionRefused(l.name));
        const addr = await server.listen().catch((e: unknown) => {
          throw listenError(`listener ${l.name}`, l.host, l.port, e);
        });
        this.listeners.push({ config: { ...listener, host: l.host, port: addr.port }, server, port: addr.port });
        this.log.info({ listener: l.name, host: addr.host, port: addr.port, tls: l.tls ? (l.tls.requestCert ? 'mutual' : 'server') : 'off' }, 'mllp listening');
      }
      this.#mllpExpected = true;
    }
    if (opts.kafka !== false && this.config.kafka?.topics.length) await this.#startKafka();
    this.#monitor = setInterval(() => this.#checkBackpressure(), 100);
    this.#monitor.unref();
    this.#purgeTimer = setInterval(() => this.#purge(), 3_600_000);
    this.#purgeTimer.unref();
    this.#purge();
    this.#startDone = true;
  }

  async #startKafka(): Promise<void> {
    const kafka = this.config.kafka!;
    // Loaded only when Kafka is configured, so sites without it never load kafkajs.
    const { createKafkaClient } = await import('../kafka/client.js');
    const log = this.log.child({ source: 'kafka' });
    this.#kafka = new KafkaSource({
      config: kafka,
      client: createKafkaClient(kafka, log),
      ingest: (frame, listener) => this.ingest(frame, listener),
      pending: () => this.store.pendingCount(),
      highWaterMark: this.config.store.highWaterMark,
      log,
      onLag: (topic, partition, lag) => this.ops.metrics.setKafkaLag(topic, partition, lag),
    });
    await this.#kafka.start();
    this.log.info({ group: kafka.groupId, topics: kafka.topics.map((t) => t.name) }, 'kafka source started');
  }

  /** An error ACK built from the head of a frame (too large, handler failure), echoing its MSH-10 when readable. */
  #errorAck(head: Buffer | undefined, err: HisbridgeError, code: 'AE' | 'AR'): Buffer | null {
    const text = head ? head.toString('latin1') : '';
    const header = readAckHeader(text);
    if (!header) return null;
    return Buffer.from(buildAck(header, { code, controlId: `E${Date.now()}${Math.floor(Math.random() * 1e6)}`, text: err.message, error: { hl7Code: '207', text: err.message, severity: 'E' } }), 'latin1');
  }

  #checkBackpressure(): void {
    if (this.config.store.overload !== 'pause') return;
    const pending = this.store.pendingCount();
    const high = this.config.store.highWaterMark;
    if (!this.#paused && pending >= high) {
      this.#paused = true;
      for (const l of this.listeners) l.server.pauseAll();
      this.log.warn({ pending, highWaterMark: high }, 'back-pressure: listeners paused');
    } else if (this.#paused && pending < high * 0.8) {
      this.#paused = false;
      for (const l of this.listeners) l.server.resumeAll();
      this.log.info({ pending }, 'back-pressure released: listeners resumed');
    }
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
    if (this.#mllpExpected) {
      for (const l of this.config.listeners) {
        const bound = this.listeners.find((x) => x.config.name === l.name);
        if (!bound || !bound.server.listening) out.push(`listener ${l.name}: not listening on ${l.host}:${bound?.port ?? l.port}`);
      }
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
      if (this.#kafka && !this.#kafka.ready) waits.push('kafka: not joined to the consumer group');
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
      routes: this.#routes.routes.length,
      pendingDeliveries: this.store.pendingCount(),
      paused: this.#paused,
      simulators: Object.fromEntries(Object.entries(this.simulators).map(([k, s]) => [k, s.url])),
      ...(this.#kafka ? { kafka: this.#kafka.status } : {}),
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
    if (this.#monitor) clearInterval(this.#monitor);
    if (this.#purgeTimer) clearInterval(this.#purgeTimer);
    // Kafka first: in-flight records finish and their offsets are committed before the store closes.
    await this.#kafka?.stop();
    await Promise.allSettled(this.listeners.map((l) => l.server.close(Math.min(graceMs, 5000))));
    await this.#worker?.stop(graceMs);
    this.#abort.abort();
    await this.httpServer?.close();
    await closeRoutes(this.#routes.routes);
    await this.#closeSimulators();
    this.ops.close();
    this.store.close();
    this.log.info('engine stopped');
  }
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
