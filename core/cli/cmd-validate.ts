/**
 * `hisbridge validate [FILES|DIR] [--config F]`: exit 1 with `file:line:col: message` lines when anything is wrong.
 * A route needing a platform the site does not configure (simulators off) is a warning line, exit 0, unless it says `required: true`.
 */
import { listRouteFiles, loadRoutes, closeRoutes, type InactiveRoute } from '../routes/loader.js';
import { KafkaSource } from '../kafka/source.js';
import { tablesDirFor } from '../routes/tables.js';
import { err, loadConfig, offlineContext, out, parse, reportLoadError, siteRegistry, unconfiguredSite } from './common.js';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { config: { type: 'string' } });
  if (values.help) {
    out('usage: hisbridge validate [FILES|DIR] [--config F]\nChecks the site config (when given) and route files; prints file:line:col: message per problem.\nA route whose platform the site does not configure (simulators off) prints file:line:col: warning: route NAME inactive: REASON and still exits 0, unless the route says required: true.');
    return 0;
  }
  const inactive: InactiveRoute[] = [];
  const warn = () => {
    for (const r of inactive) err(`${r.file}:${r.line}:${r.col}: warning: route ${r.name} inactive: ${r.reason}`);
  };
  try {
    const reg = await siteRegistry(values.config);
    const config = loadConfig(values.config, reg);
    const inputs = positionals.length ? positionals : [config.routesDir];
    const files = listRouteFiles(inputs);
    const ctx = offlineContext(reg, config);
    const routes = await loadRoutes(files, {
      registry: reg,
      contextFor: (def) => ctx(def),
      sources: [...config.listeners.map((l) => l.name), ...KafkaSource.sourceNames(config.kafka)],
      unconfiguredSite: unconfiguredSite(config),
      onInactive: (r) => inactive.push(r),
      tablesDir: tablesDirFor(inputs, config.tablesDir),
    });
    await closeRoutes(routes);
    warn();
    out(`ok: ${routes.length} routes in ${files.length} files${inactive.length ? `, ${inactive.length} inactive` : ''}`);
    return 0;
  } catch (e) {
    warn();
    if (reportLoadError(e)) return 1;
    err(`hisbridge validate: ${(e as Error).message}`);
    return 1;
  }
}
