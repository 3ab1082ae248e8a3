/**
 * Health details beyond "the process is up": the store answers, listeners
 * are bound, registered checks (the Kafka source registers its connection)
 * pass, and the remote platforms are reachable. Remote reachability is
 * informational: a provincial outage only delays deliveries, so it must not
 * take the engine out of a load balancer (readiness stays green).
 */
import net from 'node:net';

export interface CheckResult {
  ok: boolean;
  detail?: string;
}

/** A named check; `critical` ones fail readiness. */
export interface HealthCheck {
  name: string;
  critical: boolean;
  run(): CheckResult;
}

export interface RemoteStatus {
  /** host:port only: URLs may carry query secrets, so paths are never shown. */
  target: string;
  reachable?: boolean;
  checkedAt?: number;
  detail?: string;
  /** Issue 18: how long the last successful probe took to connect (ms). */
  latencyMs?: number;
  /** Issue 18: the last failure's reason and time, kept after the remote answers again. */
  lastError?: string;
  lastErrorAt?: number;
}

const PROBE_EVERY_MS = 30_000;
const PROBE_TIMEOUT_MS = 2000;

function hostPort(url: string): { host: string; port: number } | undefined {
  try {
    const u = new URL(url);
    const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    return { host: u.hostname, port };
  } catch {
    return undefined;
  }
}

/** Distinct host:port targets probed per site section at most: a long institution list does not open hundreds of sockets. */
export const MAX_REMOTE_TARGETS = 16;

/**
 * The probe names of one section's URLs: the first distinct host:port under
 * `key`, every further one under `key@host:port` (never a path or query: they
 * may carry secrets). Duplicates and unparsable URLs are dropped; at most
 * MAX_REMOTE_TARGETS targets.
 */
export function remoteTargets(key: string, urls: readonly (string | undefined)[]): Record<string, string> {
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (const url of urls) {
    const hp = url ? hostPort(url) : undefined;
    if (!hp) continue;
    const target = `${hp.host}:${hp.port}`;
    if (seen.has(target)) continue;
    if (seen.size >= MAX_REMOTE_TARGETS) break;
    out[seen.size === 0 ? key : `${key}@${target}`] = url!;
    seen.add(target);
  }
  return out;
}

/** TCP reachability of remote base URLs, probed in the background at most every 30 s. */
export class RemoteProbes {
  readonly #targets = new Map<string, RemoteStatus & { host: string; port: number; running: boolean }>();

  /** `urls`: name → base URL (only host and port are used). */
  constructor(urls: Record<string, string | undefined>) {
    for (const [name, url] of Object.entries(urls)) {
      const hp = url ? hostPort(url) : undefined;
      if (hp) this.#targets.set(name, { target: `${hp.host}:${hp.port}`, ...hp, running: false });
    }
  }

  /** Last known status of each remote; starts a fresh probe when the last one is old. */
  status(now = Date.now()): Record<string, RemoteStatus> {
    const out: Record<string, RemoteStatus> = {};
    for (const [name, t] of this.#targets) {
      if (!t.running && (t.checkedAt === undefined || now - t.checkedAt > PROBE_EVERY_MS)) this.#probe(t);
      out[name] = {
        target: t.target, ...(t.reachable !== undefined ? { reachable: t.reachable } : {}), ...(t.checkedAt ? { checkedAt: t.checkedAt } : {}), ...(t.detail ? { detail: t.detail } : {}),
        ...(t.latencyMs !== undefined ? { latencyMs: t.latencyMs } : {}), ...(t.lastError ? { lastError: t.lastError, lastErrorAt: t.lastErrorAt } : {}),
      };
    }
    return out;
  }

  /** Probes every remote now and resolves when all answered (tests, start-up). */
  async refresh(): Promise<Record<string, RemoteStatus>> {
    await Promise.all([...this.#targets.values()].map((t) => this.#probe(t)));
    return this.status();
  }

  #probe(t: RemoteStatus & { host: string; port: number; running: boolean }): Promise<void> {
    t.running = true;
    return new Promise((resolve) => {
      const started = performance.now();
      const sock = net.connect({ host: t.host, port: t.port });
      const finish = (ok: boolean, detail?: string) => {
        sock.destroy();
        t.running = false;
        t.reachable = ok;
        t.checkedAt = Date.now();
        if (ok) t.latencyMs = Math.round(performance.now() - started);
        if (detail) {
          t.detail = detail;
          t.lastError = detail;
          t.lastErrorAt = t.checkedAt;
        } else delete t.detail;
        resolve();
      };
      sock.setTimeout(PROBE_TIMEOUT_MS, () => finish(false, 'timeout'));
      sock.once('connect', () => finish(true));
      sock.once('error', (e: NodeJS.ErrnoException) => finish(false, e.code ?? 'error'));
    });
  }
}
