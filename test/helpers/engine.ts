import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
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
export async function startEngine(opts: { routesDir?: string; siteYaml?: string; env?: NodeJS.ProcessEnv; registry?: Registry } = {}): Promise<TestEngine> {
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
