/** `hisbridge validate [FILES|DIR] [--config F]`: exit 1 with `file:line:col: message` lines when anything is wrong. */
import { listRouteFiles, loadRoutes, closeRoutes } from '../routes/loader.js';
import { KafkaSource } from '../kafka/source.js';
import { err, loadConfig, offlineContext, out, parse, registry, reportLoadError } from './common.js';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { config: { type: 'string' } });
  if (values.help) {
    out('usage: hisbridge validate [FILES|DIR] [--config F]\nChecks the site config (when given) and route files; prints file:line:col: message per problem.');
    return 0;
  }
  const reg = registry();
  try {
    const config = loadConfig(values.config, reg);
    const inputs = positionals.length ? positionals : [config.routesDir];
    const files = listRouteFiles(inputs);
    const ctx = offlineContext(reg, config);
    const routes = await loadRoutes(files, { registry: reg, contextFor: (def) => ctx(def), sources: [...config.listeners.map((l) => l.name), ...KafkaSource.sourceNames(config.kafka)] });
    await closeRoutes(routes);
    out(`ok: ${routes.length} routes in ${files.length} files`);
    return 0;
  } catch (e) {
    if (reportLoadError(e)) return 1;
    err(`hisbridge validate: ${(e as Error).message}`);
    return 1;
  }
}
