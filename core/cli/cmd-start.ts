/** `hisbridge start`: run the engine until SIGTERM/SIGINT; SIGHUP or a route file change reloads routes. */
import { watch, type FSWatcher } from 'node:fs';
import { Engine } from '../engine/engine.js';
import { createLogger } from '../log.js';
import { exposureProblem } from '../http/api-auth.js';
import { isHisbridgeError } from '../errors.js';
import { err, loadConfig, parse, reportLoadError, siteRegistry } from './common.js';

const HELP = `usage: hisbridge start [--config F] [--routes DIR] [--data-dir D] [--mllp-port P] [--http-port P] [--no-simulators] [--log-level L]

Runs the MLLP listeners, the delivery workers and the HTTP API. With no
--config, embedded defaults run: MLLP on 127.0.0.1:2575, HTTP on
127.0.0.1:8480, data in ./data, routes from ./routes, simulators of the
built-in platforms on, at the HTTP port + 1 and + 2
(8481, 8482; simulatorPorts: in the config moves them). Routes whose
platform the config leaves unconfigured (simulators off) load inactive.`;

function port(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag} must be a port number 0-65535 (got "${v}")`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' },
    routes: { type: 'string' },
    'data-dir': { type: 'string' },
    'mllp-port': { type: 'string' },
    'http-port': { type: 'string' },
    'no-simulators': { type: 'boolean' },
    'log-level': { type: 'string' },
  }, false);
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  let engine: Engine | undefined;
  try {
    const reg = await siteRegistry(values.config);
    const mllpPort = port(values['mllp-port'], '--mllp-port');
    const httpPort = port(values['http-port'], '--http-port');
    const config = loadConfig(values.config, reg, {
      ...(values.routes ? { routesDir: values.routes } : {}),
      ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
      ...(mllpPort !== undefined ? { mllpPort } : {}),
      ...(httpPort !== undefined ? { httpPort } : {}),
      ...(values['no-simulators'] ? { simulators: false } : {}),
      ...(values['log-level'] ? { logLevel: values['log-level'] } : {}),
    });
    const exposed = exposureProblem(config.http, config.api);
    if (exposed) {
      err(`hisbridge: refusing to start: ${exposed}`);
      return 1;
    }
    if (config.http.enabled && config.api.open) err('hisbridge: WARNING: api.open is true: the workstation APIs under /api answer anyone who can reach the HTTP port, without a token');
    const log = createLogger({ level: config.log.level });
    engine = await Engine.create({ config, registry: reg, log });
    await engine.start();
  } catch (e) {
    if (reportLoadError(e)) {
      err('hisbridge: refusing to start: fix the errors above');
      return 1;
    }
    // A listener, the HTTP port or a simulator that cannot bind: the engine cannot do its job, so it must not run half-up.
    err(`hisbridge: cannot start: ${isHisbridgeError(e) ? `${e.code}: ${e.message}` : (e as Error).message}`);
    // Whatever still holds the event loop open must not keep a failed start alive.
    setTimeout(() => process.exit(1), 5000).unref();
    await engine?.stop(1000).catch(() => undefined);
    return 1;
  }
  const running = engine;

  const l = running.listeners.map((x) => `${x.config.name} ${x.config.host}:${x.port}`).join(', ');
  err(`hisbridge ready: MLLP ${l}; HTTP ${running.httpServer?.url ?? 'off'}; ${running.routes.routes.length} routes from ${running.config.routesDir}; data in ${running.config.dataDir}`);
  for (const [k, s] of Object.entries(running.simulators)) err(`  simulator ${k}: ${s.url}`);

  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  const reload = () => {
    void running.reload().then((r) => {
      if (r.ok) err(`hisbridge: routes reloaded (${r.routes})`);
      else {
        err('hisbridge: route reload refused, keeping the running routes:');
        r.issues.forEach((i) => err(`  ${i}`));
      }
    });
  };
  try {
    watcher = watch(running.config.routesDir, () => {
      clearTimeout(timer);
      timer = setTimeout(reload, 300);
    });
  } catch {
    // Routes given as files, or a filesystem without watch support: SIGHUP still works.
  }
  process.on('SIGHUP', reload);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) {
        err(`hisbridge: second ${sig}: exiting now`);
        process.exit(1);
      }
      stopping = true;
      err(`hisbridge: ${sig}: draining (send again to exit at once)`);
      watcher?.close();
      const hard = setTimeout(() => {
        err('hisbridge: shutdown timed out: exiting');
        process.exit(1);
      }, 30_000);
      hard.unref();
      running.stop(15_000).then(
        () => resolve(0),
        (e) => {
          err(`hisbridge: error during shutdown: ${(e as Error).message}`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
