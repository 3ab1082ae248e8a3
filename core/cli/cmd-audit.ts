/**
 * `hisbridge audit`: exports the audit trail (every outbound call, workstation
 * request and operator action) as CSV or JSONL on stdout. Patient lookup goes
 * through the keyed hash: the plain id given with --patient is never stored.
 * The export itself is an operator action and is audited.
 */
import { OpsQueries } from '../ops/queries.js';
import { formatAudit, type AuditFormat } from '../ops/audit-export.js';
import { Store } from '../store/sqlite.js';
import { err, loadConfig, out, parse, reportLoadError, siteRegistry } from './common.js';
import { operator, parseTimeFlags } from './cmd-messages.js';

const USAGE = `usage: hisbridge audit [--since T] [--until T] [--org CODE] [--staff NO] [--patient ID] [--plugin P] [--operation OP]
                      [--format csv|jsonl] [--data-dir D] [--config F]
  T: YYYY-MM-DD (local midnight), YYYY-MM-DDTHH:MM[:SS][Z|+08:00] (local unless zoned) or an age (30m, 24h, 7d). Rows oldest first; CSV has a header line.
  --patient takes the in-hospital patient id or the patient's ID number (viewer URLs are found by
  either) and matches the rows through the keyed hash (the id itself is never stored).
  Rows of workstation calls name the API client and the caller's address (client, address columns).`;

const FLAGS = {
  'data-dir': { type: 'string' }, config: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, org: { type: 'string' },
  staff: { type: 'string' }, patient: { type: 'string' }, plugin: { type: 'string' }, operation: { type: 'string' }, format: { type: 'string' },
} as const;

/** The data directory named by --data-dir, else the dataDir of --config (or $HISBRIDGE_CONFIG), else ./data. */
export async function dataDirOf(values: { 'data-dir'?: string; config?: string }): Promise<string> {
  return values['data-dir'] ?? loadConfig(values.config, await siteRegistry(values.config)).dataDir;
}

/** Resolves when stdout can take more, or when it was closed. */
function stdoutDrained(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      process.stdout.off('drain', done);
      process.stdout.off('close', done);
      resolve();
    };
    process.stdout.once('drain', done);
    process.stdout.once('close', done);
  });
}

export async function run(argv: string[]): Promise<number> {
  try {
    const { values } = parse(argv, FLAGS, false);
    if (values.help) return out(USAGE), 0;
    const format = (values.format ?? 'csv') as AuditFormat;
    if (format !== 'csv' && format !== 'jsonl') throw new Error('--format must be csv or jsonl');
    const { since, until } = parseTimeFlags(values);
    const dir = await dataDirOf(values);
    const q = OpsQueries.open(dir);
    let rows = 0;
    try {
      const filter = {
        ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}), ...(values.org ? { orgCode: values.org } : {}),
        ...(values.staff ? { staffNo: values.staff } : {}), ...(values.patient ? { patientId: values.patient } : {}),
        ...(values.plugin ? { plugin: values.plugin } : {}), ...(values.operation ? { operation: values.operation } : {}),
      };
      for (const line of formatAudit(countRows(q.auditRows(filter), () => rows++), format)) {
        if (process.stdout.destroyed) break; // the reader went away (| head): stop, but still record the export below
        if (!process.stdout.write(line)) await stdoutDrained();
      }
    } finally {
      q.close();
    }
    // Who exported what is itself part of the trail (the read-only export connection cannot write it).
    const store = Store.open(dir);
    try {
      store.audit({
        plugin: 'cli', operation: 'audit-export', staffNo: operator(), result: 'ok', ...(values.patient ? { patientId: values.patient } : {}),
        detail: `${rows} rows ${format}${values.org ? ` org ${values.org}` : ''}${values.staff ? ' by staff' : ''}${values.patient ? ' by patient' : ''}`,
      });
    } finally {
      store.close();
    }
    return 0;
  } catch (e) {
    if (reportLoadError(e)) return 1;
    err(`hisbridge audit: ${(e as { code?: string }).code ? `${(e as { code: string }).code}: ` : ''}${(e as Error).message}`);
    return 1;
  }
}

function* countRows<T>(it: Iterable<T>, tick: () => void): Generator<T> {
  for (const v of it) {
    tick();
    yield v;
  }
}
