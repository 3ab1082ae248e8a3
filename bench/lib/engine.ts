/**
 * Starts the real engine (`dist/core/cli/main.js start`) in a child process
 * with a temporary site config, routes directory and data directory, and
 * gives the scenarios its MLLP address, its health and its RSS.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, type ChildHandle } from './child.js';
import type { Target } from './load.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The build output: this file runs from dist/bench/lib, or from bench/lib under vitest. */
export const DIST = HERE.endsWith(path.join('dist', 'bench', 'lib')) ? path.resolve(HERE, '..', '..') : path.resolve(HERE, '..', '..', 'dist');
export const ENGINE_MAIN = path.join(DIST, 'core', 'cli', 'main.js');

export interface EngineHandle {
  mllp: Target;
  httpUrl: string;
  child: ChildHandle;
  dir: string;
  health(): Promise<Record<string, unknown>>;
  /** Pending deliveries per /healthz; NaN when the health body does not say. */
  pending(): Promise<number>;
  /** Waits until no delivery is pending (bounded); resolves with the last count seen. */
  waitPending(pred: (n: number) => boolean, timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

export interface EngineSetup {
  /** Route files: name -> YAML text. */
  routes: Record<string, string>;
  /** Extra top-level YAML appended to the site config (e.g. a gdEhr section). */
  extraConfig?: string;
  env?: NodeJS.ProcessEnv;
  /** Store durability; omitted = the engine default (FULL), which is what the targets are measured with. */
  synchronous?: 'NORMAL' | 'FULL';
  /** Extra keys of the store section, as YAML flow entries (e.g. `groupCommit: 0ms`), for experiments. */
  storeExtra?: string;
  /** Extra node flags for the engine process (e.g. --cpu-prof when investigating). */
  nodeArgs?: string[];
  /** A program the engine runs under (e.g. strace and its flags); the child pid is then that program's. */
  wrap?: string[];
}

/** Why the engine cannot be benchmarked, or undefined when it can be started. */
export function engineUnavailable(): string | undefined {
  if (!existsSync(ENGINE_MAIN)) return `${path.relative(process.cwd(), ENGINE_MAIN)} not built (run npm run build)`;
  return undefined;
}

export async function startEngine(setup: EngineSetup): Promise<EngineHandle> {
  const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-bench-'));
  const routesDir = path.join(dir, 'routes');
  const dataDir = path.join(dir, 'data');
  const configFile = path.join(dir, 'hisbridge.yaml');
  mkdirSync(routesDir);
  for (const [name, text] of Object.entries(setup.routes)) writeFileSync(path.join(routesDir, name), text);
  writeFileSync(configFile, [
    'listeners:',
    '  - { name: mllp, host: 127.0.0.1, port: 0, charset: utf-8 }',
    'http: { host: 127.0.0.1, port: 0 }',
    'log: { level: warn }',
    'simulators: false',
    ...(setup.synchronous || setup.storeExtra
      ? [`store: { ${[setup.synchronous ? `synchronous: ${setup.synchronous}` : '', setup.storeExtra ?? ''].filter(Boolean).join(', ')} }`]
      : []),
    setup.extraConfig ?? '',
  ].join('\n') + '\n');
  let child: ChildHandle;
  try {
    child = await startChild(ENGINE_MAIN, ['start', '--config', configFile, '--routes', routesDir, '--data-dir', dataDir, '--no-simulators'], {
      ready: /MLLP \S+ ([\d.]+):(\d+).*HTTP (http:\/\/[\d.]+:\d+)/,
      timeoutMs: 30_000,
      env: { ...setup.env },
      cwd: dir,
      ...(setup.nodeArgs ? { nodeArgs: setup.nodeArgs } : {}),
      ...(setup.wrap ? { wrap: setup.wrap } : {}),
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const httpUrl = child.ready[3]!;
  const health = async () => {
    const res = await fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as Record<string, unknown>;
  };
  const h: EngineHandle = {
    mllp: { host: child.ready[1]!, port: Number(child.ready[2]) },
    httpUrl,
    child,
    dir,
    health,
    pending: async () => {
      const p = (await health()).pendingDeliveries;
      return typeof p === 'number' ? p : NaN;
    },
    waitPending: async (pred, timeoutMs) => {
      const end = Date.now() + timeoutMs;
      let n = NaN;
      while (Date.now() < end) {
        n = await h.pending();
        if (pred(n)) return n;
        await new Promise((r) => setTimeout(r, 100));
      }
      return n;
    },
    stop: async () => {
      await child.stop(10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // The brief's readiness contract: /healthz answers 200.
  const end = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not yet
    }
    if (Date.now() > end) {
      await h.stop();
      throw new Error('engine /healthz did not answer 200 within 15 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return h;
}

/** A route accepting every ADT and ORU on receipt and enqueueing one no-op HTTP delivery. */
export function ingressRoute(sinkUrl: string, retry = '{ max: 1000, initial: 200ms, maxDelay: 1s }'): string {
  return [
    'name: bench-ingress',
    'sources: [mllp]',
    'match:',
    '  events: ["ADT^*", "ORU^*"]',
    'ack: on-receive',
    'steps:',
    '  - plugin: http',
    '    config:',
    `      url: "${sinkUrl}/deliver"`,
    '      body: { controlId: "${msg.controlId}", type: "${msg.type}" }',
    'delivery:',
    `  retry: ${retry}`,
  ].join('\n') + '\n';
}
