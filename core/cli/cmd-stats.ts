/**
 * `hisbridge stats`: calls per institution, route or operation, with the
 * success/failure split and one line per day (seed 000 §10.3: city-level
 * apps count calls per institution). Same figures as GET /api/stats.
 */
import { OpsQueries, type StatsBy, type StatsReport } from '../ops/queries.js';
import { err, out, parse, reportLoadError } from './common.js';
import { parseTimeFlags } from './cmd-messages.js';
import { dataDirOf } from './cmd-audit.js';

const USAGE = `usage: hisbridge stats [--by org|route|operation] [--since T] [--until T] [--org CODE] [--json] [--data-dir D] [--config F]
  T: YYYY-MM-DD (local midnight), YYYY-MM-DDTHH:MM[:SS][Z|+08:00] (local unless zoned) or an age (30m, 24h, 7d). Calls = ok + failed; skipped (e.g. no consent) shown apart.`;

const FLAGS = {
  'data-dir': { type: 'string' }, config: { type: 'string' }, by: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' },
  org: { type: 'string' }, json: { type: 'boolean' },
} as const;

export async function run(argv: string[]): Promise<number> {
  try {
    const { values } = parse(argv, FLAGS, false);
    if (values.help) return out(USAGE), 0;
    const by = (values.by ?? 'org') as StatsBy;
    if (!['org', 'route', 'operation'].includes(by)) throw new Error('--by must be org, route or operation');
    const bounds = parseTimeFlags(values);
    const q = OpsQueries.open(await dataDirOf(values));
    try {
      const r = q.stats(by, { ...bounds, ...(values.org ? { orgCode: values.org } : {}) });
      if (values.json) out(JSON.stringify(r, null, 2));
      else printTable(r);
    } finally {
      q.close();
    }
    return 0;
  } catch (e) {
    if (reportLoadError(e)) return 1;
    err(`hisbridge stats: ${(e as { code?: string }).code ? `${(e as { code: string }).code}: ` : ''}${(e as Error).message}`);
    return 1;
  }
}

function printTable(r: StatsReport): void {
  const row = (cells: (string | number)[]) => out(cells.map(String).join('\t'));
  row([r.by.toUpperCase(), 'CALLS', 'OK', 'FAILED', 'SKIPPED']);
  for (const g of r.groups) row([g.key, g.total, g.ok, g.failed, g.skipped]);
  row(['TOTAL', r.totals.total, r.totals.ok, r.totals.failed, r.totals.skipped]);
  out('');
  row(['DAY', r.by.toUpperCase(), 'CALLS', 'OK', 'FAILED', 'SKIPPED']);
  for (const d of r.byDay) row([d.day, d.key, d.total, d.ok, d.failed, d.skipped]);
}
