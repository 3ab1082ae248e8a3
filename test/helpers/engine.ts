import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll } from 'vitest';
import { Engine } from '../../core/engine/engine.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { builtinRegistry } from '../../plugins/index.js';
import { createLogger } from '../../core/log.js';
import type { Registry } from '../../core/registry.js';

export interface TestEngine {
  engine: Engine;
  port: number;
  httpUrl: string;
  dataDir: string;
  /** Every log line written so far (JSON text), for PHI scans and assertions. */
  logs: string[];
  stop(): Promise<void>;
}

/**
 * Starts a real engine: MLLP and HTTP on random ports, simulators on random
 * ports, a temp data dir, the given routes directory (default: routes/).
 */
export interface StartEngineOptions {
  routesDir?: string;
  siteYaml?: string;
  env?: NodeJS.ProcessEnv;
  registry?: Registry;
}

export async function startEngine(opts: StartEngineOptions = {}): Promise<TestEngine> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'hisbridge-engine-'));
  let file: string | undefined;
  if (opts.siteYaml) {
    file = path.join(dataDir, 'hisbridge.yaml');
    writeFileSync(file, opts.siteYaml);
  }
  const reg = opts.registry ?? builtinRegistry();
  const config = loadSiteConfig(file, reg.extensions, { mllpPort: 0, httpPort: 0, dataDir: path.join(dataDir, 'store'), routesDir: opts.routesDir ?? path.resolve('routes') }, { ...process.env, ...(opts.env ?? {}) }, reg.sources);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ level: 'debug', destination: sink });
  const engine = await Engine.create({ config, registry: reg, log, simulatorPorts: 'random' });
  await engine.start();
  return {
    engine,
    port: engine.listeners[0]!.port!,
    httpUrl: engine.httpServer!.url,
    dataDir,
    logs,
    async stop() {
      await engine.stop(2000);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The engine of one describe block: started (startEngine) before its tests,
 * stopped and its data dir removed after them. Replaces the
 * `let t; beforeAll(start); afterAll(stop)` boilerplate:
 *
 *   const t = useEngine({ siteYaml });
 *   it('...', async () => { await MllpClient.connect('127.0.0.1', t.port); });
 *
 * The handle reads the running engine; used outside the block's tests (before
 * the start or after the stop) it throws saying so. `opts` may be a function,
 * called in the hook, for options that depend on something another beforeAll
 * made (a simulator's URL): hooks run in the order they are declared.
 */
export function useEngine(opts: StartEngineOptions | (() => StartEngineOptions | Promise<StartEngineOptions>) = {}, timeoutMs = 60_000): TestEngine {
  let current: TestEngine | undefined;
  beforeAll(async () => {
    current = await startEngine(typeof opts === 'function' ? await opts() : opts);
  }, timeoutMs);
  afterAll(async () => {
    const t = current;
    current = undefined;
    await t?.stop();
  }, timeoutMs);
  const running = (): TestEngine => {
    if (!current) throw new Error('useEngine: the engine is not running here (use the handle inside the tests of the describe block that called useEngine)');
    return current;
  };
  return {
    get engine() {
      return running().engine;
    },
    get port() {
      return running().port;
    },
    get httpUrl() {
      return running().httpUrl;
    },
    get dataDir() {
      return running().dataDir;
    },
    get logs() {
      return running().logs;
    },
    async stop() {
      const t = running();
      current = undefined;
      await t.stop();
    },
  };
}

/** Runs `fn` against a fresh engine and stops it afterwards, whatever `fn` does (for a test that needs its own options). */
export async function withEngine<T>(opts: StartEngineOptions, fn: (t: TestEngine) => Promise<T>): Promise<T> {
  const t = await startEngine(opts);
  try {
    return await fn(t);
  } finally {
    await t.stop();
  }
}
