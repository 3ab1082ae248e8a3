/**
 * An engine run in-process for `replay` and `test`: a throw-away data
 * directory, the simulators on random ports, no MLLP or HTTP listener, the
 * delivery workers on. Messages go through `engine.ingest`, the same path as
 * MLLP frames.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSiteConfig, type SiteConfig } from '../../config/site.js';
import { Engine } from '../../engine/engine.js';
import type { Listener } from '../../engine/ingest.js';
import { createLogger, type Logger } from '../../log.js';
import type { Registry } from '../../registry.js';

export interface InProcessOptions {
  registry: Registry;
  /** Route files (or directories) to load. */
  routes: string[];
  /** A hisbridge.yaml to read, or */
  configFile?: string;
  /** a site overlay written as a temporary hisbridge.yaml (test files). */
  site?: Record<string, unknown>;
  /** Environment for `${env:}` in the site config (routes read process.env). */
  env?: NodeJS.ProcessEnv;
  /** Listener the messages arrive on; default the first configured. */
  listener?: string;
  log?: Logger;
  /** A code tables folder to use instead of the one beside the routes (test files' `tables:`). */
  tablesDir?: string;
  /** Retries at zero back-off so failing deliveries reach their final state quickly (tests). */
  fastRetries?: boolean;
}

export interface InProcessEngine {
  engine: Engine;
  listener: Listener;
  close(): Promise<void>;
}

/**
 * Logger for CLI tools that print their own results on stdout: on stderr, at
 * `level` unless HISBRIDGE_LOG_LEVEL says otherwise.
 */
export function toolLogger(level = 'error'): Logger {
  return createLogger({ level: process.env.HISBRIDGE_LOG_LEVEL ?? level, destination: process.stderr });
}

const PROBE = 'http://simulator.invalid';

/**
 * Makes every site section talk to its simulator: URL keys (those the
 * extension's defaults point at the simulator) are dropped from the file's
 * section, so a production hisbridge.yaml given to `replay --config` can never
 * reach a real platform. The engine then fills them with the simulator's URL.
 */
function pinToSimulators(config: SiteConfig, registry: Registry): void {
  for (const ext of registry.extensions) {
    if (!ext.simulator || !config.sections[ext.key]) continue;
    const demo = ext.defaults({ simulatorUrl: PROBE });
    const own = { ...config.sections[ext.key] };
    for (const k of Object.keys(demo)) {
      if (typeof demo[k] === 'string' && (demo[k] as string).startsWith(PROBE)) delete own[k];
    }
    config.sections[ext.key] = own;
  }
}

/**
 * Starts the engine; throws LoadError (site config or routes) like `start`.
 * Always call `close()`: it stops the engine and removes the data directory.
 */
export async function startInProcess(opts: InProcessOptions): Promise<InProcessEngine> {
  const tmp = mkdtempSync(path.join(tmpdir(), 'hisbridge-run-'));
  const remove = () => rmSync(tmp, { recursive: true, force: true });
  let config: SiteConfig;
  try {
    let file = opts.configFile;
    if (opts.site) {
      file = path.join(tmp, 'hisbridge.yaml');
      // JSON is YAML: positions in errors then point at this generated file, which the caller maps back.
      writeFileSync(file, JSON.stringify(opts.site, null, 1));
    }
    config = loadSiteConfig(file, opts.registry.extensions, { dataDir: path.join(tmp, 'data'), simulators: true, mllpPort: 0, httpPort: 0 }, opts.env ?? process.env, opts.registry.sources);
  } catch (e) {
    remove();
    throw e;
  }
  pinToSimulators(config, opts.registry);
  if (opts.tablesDir) config.tablesDir = opts.tablesDir;
  // Deliveries are kicked on commit; the poll only matters for retries, which should not wait long here.
  config.delivery.pollMs = Math.min(config.delivery.pollMs, 20);
  const l = opts.listener ? config.listeners.find((x) => x.name === opts.listener) : config.listeners[0];
  if (!l) {
    remove();
    throw new Error(`no listener named "${opts.listener}" (known: ${config.listeners.map((x) => x.name).join(', ')})`);
  }
  let engine: Engine;
  try {
    engine = await Engine.create({ config, registry: opts.registry, log: opts.log ?? toolLogger(), routes: opts.routes, simulatorPorts: 'random', workers: true });
  } catch (e) {
    remove();
    throw e;
  }
  if (opts.fastRetries) {
    for (const r of engine.routes.routes) r.retry = { ...r.retry, initialMs: 0, maxDelayMs: 0 };
  }
  await engine.start({ mllp: false, http: false });
  return {
    engine,
    listener: { name: l.name, charset: l.charset, noRoute: l.noRoute, multiMessageBlocks: l.multiMessageBlocks, invalidBytes: l.invalidBytes },
    async close() {
      try {
        await engine.stop(2000);
      } finally {
        remove();
      }
    },
  };
}
