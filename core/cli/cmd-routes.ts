/**
 * `hisbridge routes list|pause|resume` (issue 18): pause a route's delivery
 * without stopping the engine. A paused route still stores and ACKs its
 * messages; its deliveries wait until it is resumed. The pause is a row in
 * the store (route_pauses), so it holds across restarts, and a running
 * engine sharing the store honours it at its next delivery claim. Every
 * change is written to the audit trail (plugin cli).
 *
 * Route names are checked against the route files of the site (routesDir of
 * --config, or --routes DIR); with neither readable the name is taken as given.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { RoutePauses } from '../ops/route-pauses.js';
import { listRouteFiles } from '../routes/loader.js';
import { err, loadConfig, out, parse, reportLoadError, siteRegistry } from './common.js';
import { STORE_FLAGS, openDataStore, operator } from './cmd-messages.js';

const USAGE = `usage:
  hisbridge routes list [--json]
  hisbridge routes pause NAME [--reason TEXT]
  hisbridge routes resume NAME
options: --data-dir D (default: dataDir of --config, else ./data), --config F, --routes DIR (route files, to check NAME)`;

const FLAGS = { ...STORE_FLAGS, routes: { type: 'string' }, reason: { type: 'string' } } as const;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'list' || sub === 'pause' || sub === 'resume') return await act(sub, rest);
    out(USAGE);
    return sub === undefined || sub === '--help' || sub === '-h' ? 0 : 2;
  } catch (e) {
    if (reportLoadError(e)) return 1;
    err(`hisbridge routes: ${(e as { code?: string }).code ? `${(e as { code: string }).code}: ` : ''}${(e as Error).message}`);
    return 1;
  }
}

/** Route names declared in the site's route files, or undefined when none can be read. */
async function routeNames(values: { config?: string; routes?: string }): Promise<string[] | undefined> {
  let dir = values.routes;
  if (!dir) {
    try {
      dir = loadConfig(values.config, await siteRegistry(values.config)).routesDir;
    } catch {
      return undefined;
    }
  }
  if (!dir || !existsSync(dir)) return undefined;
  const names: string[] = [];
  for (const f of listRouteFiles([dir])) {
    for (const doc of parseAllDocuments(readFileSync(f, 'utf8'))) {
      const v = doc.toJS() as { name?: unknown; routes?: { name?: unknown }[] } | null;
      if (typeof v?.name === 'string') names.push(v.name);
      for (const r of Array.isArray(v?.routes) ? v.routes : []) if (typeof r?.name === 'string') names.push(r.name);
    }
  }
  return names;
}

async function act(sub: 'list' | 'pause' | 'resume', argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, FLAGS, sub !== 'list');
  if (values.help) return out(USAGE), 0;
  // Opening the Store first creates nothing (it refuses a missing store) and brings the schema up to date.
  const store = await openDataStore(values);
  const pauses = RoutePauses.open(store.dir);
  try {
    if (sub === 'list') {
      const rows = pauses.list();
      const known = await routeNames(values);
      const shown = [...new Set([...(known ?? []), ...rows.map((r) => r.route)])].sort().map((name) => {
        const p = rows.find((r) => r.route === name);
        return p ? { name, state: 'paused', pausedAt: new Date(p.pausedAt).toISOString(), pausedBy: p.pausedBy, ...(p.reason ? { reason: p.reason } : {}) } : { name, state: 'active' };
      });
      if (values.json) out(JSON.stringify({ routes: shown }, null, 2));
      else {
        out(['ROUTE', 'STATE', 'SINCE', 'BY', 'REASON'].join('\t'));
        for (const r of shown) out([r.name, r.state, 'pausedAt' in r ? r.pausedAt : '', 'pausedBy' in r ? r.pausedBy : '', 'reason' in r ? r.reason : ''].join('\t'));
      }
      return 0;
    }
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new Error(`routes ${sub} needs one route name`);
    const known = await routeNames(values);
    if (known && !known.includes(name) && !(sub === 'resume' && pauses.names().includes(name))) {
      err(`hisbridge routes: OPS_E_ROUTE_UNKNOWN: no route named ${name} in the route files (${known.length} routes: ${known.slice(0, 20).join(', ')})`);
      return 1;
    }
    const by = operator();
    const changed = sub === 'pause' ? pauses.pause(name, by, values.reason) : pauses.resume(name);
    if (pauses.stampError) err(`hisbridge routes: warning: could not signal a running engine (${pauses.stampError}); it sees the change within 5 s`);
    store.audit({ plugin: 'cli', operation: sub === 'pause' ? 'route-pause' : 'route-resume', staffNo: by, route: name, result: changed ? 'ok' : 'skipped', detail: changed ? (sub === 'pause' ? 'delivery held' : 'delivery resumed') : sub === 'pause' ? 'already paused' : 'was not paused' });
    if (values.json) out(JSON.stringify({ route: name, state: sub === 'pause' ? 'paused' : 'active', changed }));
    else out(`route ${name} ${sub === 'pause' ? (changed ? 'paused: its messages are stored and ACKed, delivery held until resumed' : 'was already paused') : changed ? 'resumed' : 'was not paused'}${known ? '' : ' (not checked against route files: give --config or --routes)'}`);
    return 0;
  } finally {
    pauses.close();
    store.close();
  }
}
