/**
 * Operator actions of issue 18, shared by the console, the HTTP API
 * (`/api/routes`) and the CLI: pause and resume a route, reset a route's
 * statistics window, replay a filtered set of stored messages, and search by
 * content. Every action that changes something writes an audit row naming
 * who did it and through which channel.
 */
import { hbError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/sqlite.js';
import type { MessageStatus } from '../store/types.js';
import { SCAN_CAP, type ContentOp, type ContentResult } from './content-search.js';
import type { StatsWindow } from './console/ops-pages.js';
import type { EngineMetrics } from './metrics.js';
import type { OpsQueries } from './queries.js';
import type { RoutePauses } from './route-pauses.js';

/** Most messages one filtered replay may re-queue. */
export const REPLAY_CAP = 1000;

/** Who acts, and through what: written to the audit row. */
export interface Actor {
  /** Console user, API client name or OS user. */
  name: string;
  via: 'console' | 'api' | 'cli';
  address?: string;
}

export interface RouteState {
  name: string;
  /** ACK mode: an on-complete route cannot be paused (its steps run before the ACK). */
  ack?: string;
  state: 'active' | 'paused' | 'inactive';
  inactive?: string;
  pausedAt?: number;
  pausedBy?: string;
  reason?: string;
}

/** What a filtered replay takes: a received-time window plus a status, a route or a content match. */
export interface ReplaySelection {
  since?: number;
  until?: number;
  status?: MessageStatus;
  route?: string;
  path?: string;
  op?: ContentOp;
  value?: string;
}

export interface ActionsDeps {
  store: Store;
  queries: OpsQueries;
  pauses: RoutePauses;
  metrics: EngineMetrics;
  log: Logger;
  /** Loaded routes: name, ACK mode and, for an inactive one, why. */
  routes(): { name: string; ack?: string; inactive?: string }[];
  kick(): void;
}

export class OperatorActions {
  readonly #d: ActionsDeps;
  /** Per-route statistics windows (in memory, like the counters they subtract from). */
  readonly windows = new Map<string, StatsWindow>();
  /** Most messages one filtered replay may re-queue (settable: tests use a small one). */
  replayCap = REPLAY_CAP;
  /** Most messages one content search may scan (settable: tests use a small one). */
  scanCap = SCAN_CAP;

  constructor(d: ActionsDeps) {
    this.#d = d;
  }

  #audit(by: Actor, operation: string, result: string, extra: { route?: string; detail?: string; messageId?: string } = {}): void {
    this.#d.store.audit({
      plugin: by.via, operation, staffNo: by.name, result, ...extra,
      ...(by.via === 'api' ? { client: by.name } : {}), ...(by.address ? { address: by.address } : {}),
    });
  }

  #known(name: string): { name: string; ack?: string; inactive?: string } {
    const r = this.#d.routes().find((x) => x.name === name);
    if (!r) throw hbError('OPS_E_ROUTE_UNKNOWN', { route: name.slice(0, 100) });
    return r;
  }

  routes(): RouteState[] {
    const paused = new Map(this.#d.pauses.list().map((p) => [p.route, p]));
    return this.#d.routes().map((r) => {
      const p = paused.get(r.name);
      const ack = r.ack ? { ack: r.ack } : {};
      if (r.inactive) return { name: r.name, ...ack, state: 'inactive' as const, inactive: r.inactive };
      return p ? { name: r.name, ...ack, state: 'paused' as const, pausedAt: p.pausedAt, pausedBy: p.pausedBy, ...(p.reason ? { reason: p.reason } : {}) } : { name: r.name, ...ack, state: 'active' as const };
    });
  }

  /** Pauses a route: its messages are still stored and ACKed, its deliveries wait. Returns false when it was paused already. */
  pause(name: string, by: Actor, reason?: string): boolean {
    if (this.#known(name).ack === 'on-complete') throw hbError('OPS_E_ROUTE_ON_COMPLETE', { route: name });
    const changed = this.#d.pauses.pause(name, by.name, reason);
    this.#audit(by, 'route-pause', changed ? 'ok' : 'skipped', { route: name, detail: changed ? 'delivery held' : 'already paused' });
    this.#d.log.info({ operator: by.name, via: by.via, route: name }, changed ? 'route paused: delivery held' : 'route pause: already paused');
    return changed;
  }

  /** Resumes a route and wakes the workers. Returns false when it was not paused. */
  resume(name: string, by: Actor): boolean {
    this.#known(name);
    const changed = this.#d.pauses.resume(name);
    this.#audit(by, 'route-resume', changed ? 'ok' : 'skipped', { route: name, detail: changed ? 'delivery resumed' : 'was not paused' });
    this.#d.log.info({ operator: by.name, via: by.via, route: name }, changed ? 'route resumed' : 'route resume: was not paused');
    this.#d.kick();
    return changed;
  }

  /** Starts a new statistics window for a route: the dashboard counts it from now on (the /metrics counters are untouched). */
  async resetStats(name: string, by: Actor): Promise<StatsWindow> {
    this.#known(name);
    const d = await this.#d.metrics.dashboard();
    const w: StatsWindow = { at: Date.now(), by: by.name, baseline: { ...(d.routes[name] ?? { matched: 0, delivered: 0, retries: 0, deadLettered: 0, deadNow: 0 }) } };
    this.windows.set(name, w);
    this.#audit(by, 'route-stats-reset', 'ok', { route: name });
    return w;
  }

  /** Content search (bounded; OPS_E_SEARCH_WINDOW past the cap). */
  search(q: { path: string; op: ContentOp; value: string; since: number; until: number; limit?: number }): ContentResult {
    return this.#d.queries.searchContent({ scanCap: this.scanCap, ...q });
  }

  /** Ids of the stored messages a selection names, newest first; at most `cap + 1` (so "too many" can be told). */
  #select(s: ReplaySelection, cap: number): number[] {
    if (s.path) {
      const since = s.since ?? 0;
      const until = s.until ?? Date.now() + 1;
      const hits = this.#d.queries.searchContent({ path: s.path, op: s.op ?? 'equals', value: s.value ?? '', since, until, limit: cap + 1, scanCap: Math.max(this.scanCap, cap + 1) }).hits;
      return hits.filter((h) => !s.status || h.status === s.status).map((h) => h.id);
    }
    if (s.since === undefined) throw hbError('OPS_E_BAD_QUERY', { detail: 'a replay needs since (and optionally until, status, route or a field path and value)' });
    return this.#d.store.searchMessages({
      limit: cap + 1, since: s.since, ...(s.until !== undefined ? { until: s.until } : {}), ...(s.status ? { status: s.status } : {}),
    }).map((m) => m.id);
  }

  /** How many messages a selection names now (the confirm step shows it). */
  replayCount(s: ReplaySelection): number {
    return this.#select(s, this.replayCap).length;
  }

  /**
   * Replays the selection's messages (their done and dead deliveries, of
   * `route` when given, back to pending). `confirm` must equal the number
   * of messages the selection names now, else OPS_E_REPLAY_CONFIRM (409)
   * with that number; more than REPLAY_CAP is OPS_E_REPLAY_TOO_MANY.
   */
  replay(s: ReplaySelection, confirm: number | undefined, by: Actor): { messages: number; requeued: number } {
    if (s.route) this.#known(s.route);
    const cap = this.replayCap;
    const ids = this.#select(s, cap);
    if (ids.length > cap) throw hbError('OPS_E_REPLAY_TOO_MANY', { count: `more than ${cap}`, cap });
    if (confirm !== ids.length) throw hbError('OPS_E_REPLAY_CONFIRM', { count: ids.length });
    if (ids.length === 0) return { messages: 0, requeued: 0 };
    const r = this.#d.store.replayStored({ messageIds: ids, ...(s.route ? { route: s.route } : {}) }, { staffNo: by.name });
    const requeued = r.messages.reduce((n, m) => n + m.requeued, 0);
    this.#audit(by, 'replay-filtered', requeued > 0 ? 'ok' : 'skipped', { ...(s.route ? { route: s.route } : {}), detail: `${ids.length} messages, ${requeued} deliveries requeued` });
    this.#d.log.info({ operator: by.name, via: by.via, messages: ids.length, requeued }, 'stored messages replayed');
    this.#d.kick();
    return { messages: ids.length, requeued };
  }
}
