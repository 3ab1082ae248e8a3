/**
 * Prometheus metrics (prom-client) for one engine. Each engine owns its own
 * registry (never prom-client's global one) so tests and several engines in a
 * process do not share counters.
 *
 * Label values are only configuration names (listener, route, plugin), ACK
 * codes, outcomes and catalogued error codes: never anything read from a
 * message, so no PHI can reach a label.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Outcome of one delivery attempt as the worker reports it. */
export type AttemptOutcome = 'done' | 'skipped' | 'retry' | 'dead' | 'released';

/** Live values read at scrape time. */
export interface MetricSources {
  /** Open deliveries (pending, in flight, waiting to retry). */
  queueDepth(): number;
  /** Open MLLP connections per listener name. */
  connections(): Record<string, number>;
  /** Deliveries in the dead letter now. */
  deadLetters(): number;
  /** Issue 18: deliveries in the dead letter now, by route (the dashboard's "dead now"). */
  deadByRoute?(): Record<string, number>;
  /** Issue 16 (alert kinds as metrics): the store's last durable write succeeded and it answers. */
  storeOk?(): boolean;
  /** Issue 16: each listener and source (Kafka too) by name: live (bound, connected) or not. */
  listenersLive?(): Record<string, boolean>;
  /** Issue 16: each remote platform (site extension key): reachable at the last probe; undefined before the first probe. */
  remotesReachable?(): Record<string, boolean | undefined>;
  /** Issue 15: statements run and WAL bytes written by the store, only while HISBRIDGE_COUNT_SQL=1 (core/store/sql-count.ts). */
  sqlCounts?(): { statements: number; walBytes: number } | undefined;
}

/** In-process totals since start, for the console dashboard (cheaper than a scrape parse). */
export interface LiveCounts {
  received: Record<string, number>;
  acked: Record<string, Record<string, number>>;
  routes: Record<string, number>;
  deliveries: Record<string, Record<AttemptOutcome, number>>;
}

/** Per-route counts on the dashboard (issue 18), each read from a /metrics series. */
export interface RouteDashboard {
  /** hisbridge_route_matches_total{route}: messages the route matched. */
  matched: number;
  /**
   * Delivered: deliveries settled done or skipped by the workers
   * (hisbridge_deliveries_total{outcome=done|skipped}) plus messages the route
   * finished at receipt (hisbridge_route_matches_total{outcome="ok"}): an
   * on-complete route runs its steps before the ACK, so its messages are
   * delivered when the ACK goes out and never reach the workers.
   */
  delivered: number;
  /** hisbridge_deliveries_total{outcome="retry"}: failed attempts scheduled for a retry. */
  retries: number;
  /** hisbridge_dead_letters_total{route}: moved to the dead letter since the engine started. */
  deadLettered: number;
  /** hisbridge_dead_letters_current{route}: in the dead letter now (includes dead letters from before a restart, less replayed ones). */
  deadNow: number;
}

/** Every count on the console dashboard, computed from the same series /metrics exposes. */
export interface Dashboard {
  received: number;
  /** ACKs other than AA and CA. */
  errors: number;
  accepted: number;
  delivered: number;
  retries: number;
  deadLettered: number;
  deadNow: number;
  /** hisbridge_queue_depth: open deliveries. */
  pending: number;
  listeners: Record<string, { received: number; errors: number }>;
  routes: Record<string, RouteDashboard>;
}

/** Sampling period of the event-loop delay monitor (ms): a stall is seen to within this. */
const LOOP_RESOLUTION_MS = 10;

/** Event-loop delay in seconds: since the last scrape (p50, p99, max) and the largest since start. */
export interface EventLoopDelay {
  p50: number;
  p99: number;
  max: number;
  maxSinceStart: number;
}

/** Audit results kept as a label value; anything else (a remote's own code) counts as 'other'. */
const CALL_RESULTS = new Set(['ok', 'failed', 'skipped', 'forbidden']);
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function bump<K extends string>(m: Record<K, number>, k: K, by = 1): void {
  m[k] = (m[k] ?? 0) + by;
}

export class EngineMetrics {
  readonly registry = new Registry();
  readonly #received: Counter<'listener'>;
  readonly #acked: Counter<'listener' | 'code'>;
  readonly #routeMatches: Counter<'route' | 'outcome'>;
  readonly #deliveries: Counter<'route' | 'plugin' | 'outcome'>;
  readonly #latency: Histogram<'plugin'>;
  readonly #retries: Counter<'plugin'>;
  readonly #dead: Counter<'route' | 'plugin' | 'code'>;
  readonly #replays: Counter<'via'>;
  readonly #reused: Counter<'listener'>;
  readonly #kafkaLag: Gauge<'topic' | 'partition'>;
  readonly #refused: Counter<'listener'>;
  readonly #ackLatency: Histogram<'listener'>;
  readonly #calls: Counter<'plugin' | 'operation' | 'org' | 'result'>;
  readonly #callLatency: Histogram<'plugin' | 'operation' | 'org'>;
  readonly #live: LiveCounts = { received: {}, acked: {}, routes: {}, deliveries: {} };
  /** Event-loop delay since the last scrape, and since start (perf_hooks.monitorEventLoopDelay). */
  readonly #loop: IntervalHistogram;
  readonly #loopTotal: IntervalHistogram;

  constructor(sources: MetricSources, opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.#received = new Counter({ name: 'hisbridge_messages_received_total', help: 'HL7 messages received, by listener', labelNames: ['listener'], registers });
    this.#acked = new Counter({ name: 'hisbridge_messages_acked_total', help: 'ACKs sent, by listener and ACK code (AA, AE, AR, CA...)', labelNames: ['listener', 'code'], registers });
    this.#routeMatches = new Counter({ name: 'hisbridge_route_matches_total', help: 'Messages matched by a route, by route and receive-time outcome', labelNames: ['route', 'outcome'], registers });
    this.#deliveries = new Counter({ name: 'hisbridge_deliveries_total', help: 'Delivery attempts settled, by route, plugin and outcome (done, skipped, retry, dead, released)', labelNames: ['route', 'plugin', 'outcome'], registers });
    this.#latency = new Histogram({ name: 'hisbridge_delivery_latency_seconds', help: 'Delivery attempt latency, by plugin', labelNames: ['plugin'], buckets: LATENCY_BUCKETS, registers });
    this.#retries = new Counter({ name: 'hisbridge_delivery_retries_total', help: 'Failed attempts scheduled for a retry, by plugin', labelNames: ['plugin'], registers });
    this.#dead = new Counter({ name: 'hisbridge_dead_letters_total', help: 'Deliveries moved to the dead letter, by route, plugin and error code', labelNames: ['route', 'plugin', 'code'], registers });
    this.#replays = new Counter({ name: 'hisbridge_dead_letter_replays_total', help: 'Dead deliveries requeued by an operator, by channel (console, api)', labelNames: ['via'], registers });
    this.#reused = new Counter({ name: 'hisbridge_control_id_reused_total', help: 'Messages stored as new although their sender and MSH-10 were accepted before with other content, by listener', labelNames: ['listener'], registers });
    this.#kafkaLag = new Gauge({ name: 'hisbridge_kafka_lag', help: 'Kafka consumer lag in records, by topic and partition', labelNames: ['topic', 'partition'], registers });
    this.#refused = new Counter({ name: 'hisbridge_mllp_connections_refused_total', help: 'Connections closed at once because the listener had maxConnections open, by listener (listener="http": the engine\'s HTTP server, http.maxConnections)', labelNames: ['listener'], registers });
    this.#calls = new Counter({ name: 'hisbridge_calls_total', help: 'Audited calls (outbound calls to remote platforms, workstation requests), by plugin, operation, institution (orgCode, "" when none) and result (ok, failed, skipped, forbidden, other)', labelNames: ['plugin', 'operation', 'org', 'result'], registers });
    this.#callLatency = new Histogram({ name: 'hisbridge_call_latency_seconds', help: 'Latency of audited calls that report one, by plugin, operation and institution (orgCode)', labelNames: ['plugin', 'operation', 'org'], buckets: LATENCY_BUCKETS, registers });
    this.#ackLatency = new Histogram({ name: 'hisbridge_ack_latency_seconds', help: 'Time from a message handed to the engine to its ACK outcome (stored and committed, or refused), by listener', labelNames: ['listener'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    // Issue 16: the built-in alert kinds store-failing, listener-down and remote-failing as metrics, for Prometheus rules (deploy/).
    if (sources.storeOk) {
      const ok = sources.storeOk.bind(sources);
      new Gauge({
        name: 'hisbridge_store_up', help: '1 when the store answers and its last durable write succeeded, 0 while writes fail (the store-failing alert)', registers,
        collect() { this.set(ok() ? 1 : 0); },
      });
    }
    // Issue 15: the store's statement and WAL counters, present only while HISBRIDGE_COUNT_SQL=1.
    const counts = sources.sqlCounts?.bind(sources);
    if (counts?.()) {
      new Gauge({ name: 'hisbridge_store_sql_statements_total', help: 'SQL statements the store ran since it opened (HISBRIDGE_COUNT_SQL=1 only)', registers, collect() { this.set(counts()?.statements ?? 0); } });
      new Gauge({ name: 'hisbridge_store_wal_bytes', help: 'Bytes the WAL grew by since the store opened, checkpoints suspended (HISBRIDGE_COUNT_SQL=1 only)', registers, collect() { this.set(counts()?.walBytes ?? 0); } });
    }
    if (sources.listenersLive) {
      const live = sources.listenersLive.bind(sources);
      new Gauge({
        name: 'hisbridge_listener_up', help: '1 when the listener or source is live (bound, or connected for Kafka), 0 when not (the listener-down alert), by listener', labelNames: ['listener'], registers,
        collect() {
          this.reset();
          for (const [listener, up] of Object.entries(live())) this.set({ listener }, up ? 1 : 0);
        },
      });
    }
    if (sources.remotesReachable) {
      const reach = sources.remotesReachable.bind(sources);
      new Gauge({
        name: 'hisbridge_remote_up', help: '1 when the remote platform answered the last TCP probe (every 30 s at most), 0 when not, by site extension key (the hisbridge.yaml section of the platform); absent before the first probe', labelNames: ['remote'], registers,
        collect() {
          this.reset();
          for (const [remote, up] of Object.entries(reach())) if (up !== undefined) this.set({ remote }, up ? 1 : 0);
        },
      });
    }
    if (sources.deadByRoute) {
      const byRoute = sources.deadByRoute.bind(sources);
      new Gauge({
        name: 'hisbridge_dead_letters_current', help: 'Deliveries in the dead letter now, by route (hisbridge_dead_letters_total counts those moved there since start)', labelNames: ['route'], registers,
        collect() {
          this.reset();
          for (const [route, n] of Object.entries(byRoute())) this.set({ route }, n);
        },
      });
    }
    new Gauge({
      name: 'hisbridge_queue_depth', help: 'Open deliveries (states pending, in-flight, retrying)', registers,
      collect() { this.set(sources.queueDepth()); },
    });
    new Gauge({
      name: 'hisbridge_deliveries_current', help: 'Deliveries by state now: open (states pending, in-flight, retrying) and dead', labelNames: ['state'], registers,
      collect() {
        this.set({ state: 'open' }, sources.queueDepth());
        this.set({ state: 'dead' }, sources.deadLetters());
      },
    });
    new Gauge({
      name: 'hisbridge_mllp_connections', help: 'Open MLLP connections, by listener', labelNames: ['listener'], registers,
      collect() {
        this.reset();
        for (const [listener, n] of Object.entries(sources.connections())) this.set({ listener }, n);
      },
    });
    // Issue 11: no message may stall the engine. How long the event loop was late, sampled every 10 ms.
    this.#loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.#loopTotal = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    this.#loop.enable();
    this.#loopTotal.enable();
    const loop = this.#loop;
    new Gauge({
      name: 'hisbridge_event_loop_delay_seconds',
      help: 'Event-loop delay since the previous scrape: quantile 0.5, 0.99 and 1 (the max); a stalled loop delays every ACK, socket and health check',
      labelNames: ['quantile'],
      registers,
      collect: () => {
        const d = this.eventLoopDelay();
        const g = this.registry.getSingleMetric('hisbridge_event_loop_delay_seconds') as Gauge<'quantile'>;
        g.set({ quantile: '0.5' }, d.p50);
        g.set({ quantile: '0.99' }, d.p99);
        g.set({ quantile: '1' }, d.max);
        loop.reset();
      },
    });
    new Gauge({
      name: 'hisbridge_event_loop_delay_max_seconds', help: 'Longest event-loop delay since the engine started', registers,
      collect: () => {
        (this.registry.getSingleMetric('hisbridge_event_loop_delay_max_seconds') as Gauge).set(this.eventLoopDelay().maxSinceStart);
      },
    });
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'hisbridge_' });
  }

  /** One received frame and the ACK it got; `routes` are the receive-time outcomes of matched routes; `latencyMs` from hand-over to outcome. */
  onIngest(listener: string, ackCode: string, routes: readonly { route: string; outcome: string }[], latencyMs?: number): void {
    this.#received.inc({ listener });
    if (latencyMs !== undefined) this.#ackLatency.observe({ listener }, latencyMs / 1000);
    this.#acked.inc({ listener, code: ackCode });
    bump(this.#live.received, listener);
    bump((this.#live.acked[listener] ??= {}), ackCode);
    for (const r of routes) {
      this.#routeMatches.inc({ route: r.route, outcome: r.outcome });
      bump(this.#live.routes, r.route);
    }
  }

  /** A message stored as new although its sender and MSH-10 were accepted before with other content (ENGINE_W_CONTROL_ID_REUSED). */
  /**
   * One audit row: counted per institution. Labels stay bounded: the orgCode
   * comes from configuration, the result is folded to a few values.
   */
  onAudit(entry: { plugin: string; operation: string; orgCode?: string; result: string; latencyMs?: number }): void {
    const result = CALL_RESULTS.has(entry.result) ? entry.result : 'other';
    const org = (entry.orgCode ?? '').slice(0, 64);
    this.#calls.inc({ plugin: entry.plugin, operation: entry.operation, org, result });
    if (entry.latencyMs !== undefined && result !== 'skipped') this.#callLatency.observe({ plugin: entry.plugin, operation: entry.operation, org }, entry.latencyMs / 1000);
  }

  onControlIdReused(listener: string): void {
    this.#reused.inc({ listener });
  }

  /** One settled delivery attempt (the worker's onSettled hook). */
  onSettled(job: { route: string; plugin: string }, outcome: AttemptOutcome, latencyMs: number, errorCode?: string): void {
    this.#deliveries.inc({ route: job.route, plugin: job.plugin, outcome });
    if (outcome !== 'released') this.#latency.observe({ plugin: job.plugin }, latencyMs / 1000);
    if (outcome === 'retry') this.#retries.inc({ plugin: job.plugin });
    if (outcome === 'dead') this.#dead.inc({ route: job.route, plugin: job.plugin, code: errorCode ?? 'unknown' });
    const per = (this.#live.deliveries[job.route] ??= { done: 0, skipped: 0, retry: 0, dead: 0, released: 0 });
    per[outcome]++;
  }

  /** Dead deliveries requeued by an operator. */
  onReplay(via: string, count: number): void {
    if (count > 0) this.#replays.inc({ via }, count);
  }

  /** An MLLP connection refused because its listener had maxConnections open. */
  onConnectionRefused(listener: string): void {
    this.#refused.inc({ listener });
  }

  /** For the Kafka source: current lag of one partition. */
  setKafkaLag(topic: string, partition: number, lag: number): void {
    this.#kafkaLag.set({ topic, partition: String(partition) }, lag);
  }

  /**
   * Event-loop delay in seconds: p50, p99 and max since the last scrape of
   * /metrics (or since start), and the max since start. The monitor adds
   * about its resolution (10 ms) to a delay it sees; an idle loop reads ~0.
   */
  eventLoopDelay(): EventLoopDelay {
    const s = (ns: number): number => (Number.isFinite(ns) ? Math.max(0, ns - LOOP_RESOLUTION_MS * 1e6) / 1e9 : 0);
    const h = this.#loop;
    return { p50: s(h.percentile(50)), p99: s(h.percentile(99)), max: s(h.max), maxSinceStart: s(this.#loopTotal.max) };
  }

  /** Stops the event-loop monitors. */
  close(): void {
    this.#loop.disable();
    this.#loopTotal.disable();
  }

  /**
   * The console dashboard's counts, read from this registry's own series (the
   * numbers a scrape of /metrics shows at the same moment), so the two can
   * never disagree.
   */
  async dashboard(): Promise<Dashboard> {
    const series = async (name: string) => {
      const m = this.registry.getSingleMetric(name);
      return m ? (await m.get()).values : [];
    };
    const d: Dashboard = { received: 0, errors: 0, accepted: 0, delivered: 0, retries: 0, deadLettered: 0, deadNow: 0, pending: 0, listeners: {}, routes: {} };
    const route = (name: string): RouteDashboard => (d.routes[name] ??= { matched: 0, delivered: 0, retries: 0, deadLettered: 0, deadNow: 0 });
    const listener = (name: string) => (d.listeners[name] ??= { received: 0, errors: 0 });
    for (const v of await series('hisbridge_messages_received_total')) listener(String(v.labels.listener)).received += v.value;
    for (const v of await series('hisbridge_messages_acked_total')) if (!['AA', 'CA'].includes(String(v.labels.code))) listener(String(v.labels.listener)).errors += v.value;
    for (const v of await series('hisbridge_route_matches_total')) {
      const r = route(String(v.labels.route));
      r.matched += v.value;
      if (v.labels.outcome === 'ok') r.delivered += v.value;
    }
    for (const v of await series('hisbridge_deliveries_total')) {
      const r = route(String(v.labels.route));
      if (v.labels.outcome === 'done' || v.labels.outcome === 'skipped') r.delivered += v.value;
      if (v.labels.outcome === 'retry') r.retries += v.value;
    }
    for (const v of await series('hisbridge_dead_letters_total')) route(String(v.labels.route)).deadLettered += v.value;
    for (const v of await series('hisbridge_dead_letters_current')) route(String(v.labels.route)).deadNow += v.value;
    for (const v of await series('hisbridge_queue_depth')) d.pending += v.value;
    for (const l of Object.values(d.listeners)) {
      d.received += l.received;
      d.errors += l.errors;
    }
    d.accepted = d.received - d.errors;
    for (const r of Object.values(d.routes)) {
      d.delivered += r.delivered;
      d.retries += r.retries;
      d.deadLettered += r.deadLettered;
      d.deadNow += r.deadNow;
    }
    return d;
  }

  /** Kafka lag now, topic → partition → records (the hisbridge_kafka_lag series). */
  async kafkaLag(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const v of (await this.#kafkaLag.get()).values) (out[String(v.labels.topic)] ??= {})[String(v.labels.partition)] = v.value;
    return out;
  }

  /** Totals since start (copies). */
  live(): LiveCounts {
    return structuredClone(this.#live);
  }

  /** The Prometheus text exposition. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
