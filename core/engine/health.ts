/**
 * The engine's health body for /healthz and /readyz (and the console), built
 * from what the engine hands in: no engine state lives here.
 */
import type { InactiveRoute } from '../routes/loader.js';
import type { OpsHealth } from '../ops/index.js';
import type { MllpServer } from '../mllp/server.js';
import type { RunningSimulator, RunningSource } from '../sdk.js';

export type HealthStatus = 'ok' | 'failing' | 'not-ready' | 'stopping';
export type HealthBody = Record<string, unknown> & { status: HealthStatus; reasons: string[] };

/** What the health body is made of. */
export interface HealthInputs {
  ops: OpsHealth;
  sources: readonly { name: string; type: string; running: RunningSource }[];
  listeners: readonly { config: { name: string }; server: MllpServer; port?: number }[];
  routes: number;
  inactive: readonly InactiveRoute[];
  pending: number;
  paused: boolean;
  simulators: Readonly<Record<string, RunningSimulator>>;
  /** start() finished. */
  started: boolean;
  stopping: boolean;
}

const sourceLabel = (s: { name: string; type: string }) => (s.type === 'kafka' ? 'kafka' : `listener ${s.name}`);

/**
 * Why the engine cannot do its job now (empty when it can): the store's
 * last write failed or the store does not answer, or a source is not live
 * (an MLLP listener that lost its socket). /healthz fails on these.
 */
function faults(h: HealthInputs): string[] {
  const out: string[] = [];
  if (!h.ops.store.ok) out.push(`store: ${h.ops.store.detail ?? 'failing'}`);
  for (const s of h.sources) {
    const sh = s.running.health?.();
    if (sh && !sh.live) out.push(`${sourceLabel(s)}: ${sh.detail ?? 'not live'}`);
  }
  return out;
}

/**
 * The health body. `live` (/healthz): "ok", "failing" (see faults) or
 * "stopping". `ready` (/readyz) adds "not-ready": not started yet, the
 * Kafka group not joined, or a critical registered check failing. Remote
 * platforms are informational and never fail either. `reasons` says why.
 */
export function healthBody(kind: 'live' | 'ready', h: HealthInputs): HealthBody {
  const reasons = faults(h);
  let status: HealthStatus = reasons.length ? 'failing' : 'ok';
  if (kind === 'ready') {
    const waits: string[] = [];
    if (!h.started) waits.push('engine: not started');
    for (const s of h.sources) {
      const sh = s.running.health?.();
      if (sh && sh.live && !sh.ready) waits.push(`${sourceLabel(s)}: ${sh.detail ?? 'not ready'}`);
    }
    for (const [name, c] of Object.entries(h.ops.checks)) if (c.critical && !c.ok) waits.push(`check ${name}: ${c.detail ?? 'failing'}`);
    if (waits.length && status === 'ok') status = 'not-ready';
    reasons.push(...waits);
  }
  if (h.stopping) {
    status = 'stopping';
    reasons.unshift('engine: stopping');
  }
  return {
    status,
    reasons,
    listeners: h.listeners.map((l) => ({ name: l.config.name, port: l.port, connections: l.server.connectionCount })),
    sources: h.sources.map((s) => {
      const sh = s.running.health?.();
      return { name: s.name, type: s.type, ...(sh ? { live: sh.live, ready: sh.ready, ...(sh.detail ? { detail: sh.detail } : {}) } : {}) };
    }),
    routes: h.routes,
    inactiveRoutes: h.inactive.map((r) => ({ name: r.name, reason: r.reason })),
    pendingDeliveries: h.pending,
    paused: h.paused,
    simulators: Object.fromEntries(Object.entries(h.simulators).map(([k, s]) => [k, s.url])),
    ...kafkaStatus(h.sources),
    ...h.ops,
  };
}

/** The Kafka source's status for the health body (under `kafka`), when it runs. */
function kafkaStatus(sources: readonly { type: string; running: RunningSource }[]): { kafka?: Record<string, unknown> } {
  const k = sources.find((s) => s.type === 'kafka');
  const info = k?.running.health?.().info;
  return info ? { kafka: info } : {};
}

/** The HTTP answer for a health body: 200 only when its status is "ok". */
export function healthResponse(body: { status: string }): { status: number; headers: Record<string, string>; body: unknown } {
  return { status: body.status === 'ok' ? 200 : 503, headers: { 'cache-control': 'no-store' }, body };
}
