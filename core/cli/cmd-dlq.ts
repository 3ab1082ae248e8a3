/**
 * `hisbridge dlq list|replay`: the dead letter. Replay moves dead deliveries
 * back to pending (attempts reset, ordering key kept); a running engine picks
 * them up at its next poll. Every replay is written to the audit trail.
 */
import { scrubText } from '../mask.js';
import { err, out, parse, reportLoadError } from './common.js';
import { STORE_FLAGS, openDataStore, operator } from './cmd-messages.js';

const USAGE = `usage:
  hisbridge dlq list [--route R] [--limit N] [--json]
  hisbridge dlq replay ID [ID...] | --all [--route R]
options: --data-dir D (default: dataDir of --config, else ./data), --config F`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'list') return await list(rest);
    if (sub === 'replay') return await replay(rest);
    out(USAGE);
    return sub === undefined || sub === '--help' || sub === '-h' ? 0 : 2;
  } catch (e) {
    if (reportLoadError(e)) return 1;
    err(`hisbridge dlq: ${(e as { code?: string }).code ? `${(e as { code: string }).code}: ` : ''}${(e as Error).message}`);
    return 1;
  }
}

async function list(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...STORE_FLAGS, route: { type: 'string' }, limit: { type: 'string' } }, false);
  if (values.help) return out(USAGE), 0;
  const store = await openDataStore(values);
  try {
    const rows = store.listDead({ ...(values.route ? { route: values.route } : {}), limit: values.limit ? Number(values.limit) : 100 });
    // Ordering keys are often patient ids: scrub them like any free text.
    const shown = rows.map((r) => ({ ...r, orderingKey: scrubText(r.orderingKey) }));
    if (values.json) out(JSON.stringify(shown, null, 2));
    else {
      out(['DELIVERY', 'MESSAGE', 'MSH-10', 'TYPE', 'ROUTE#STEP', 'PLUGIN', 'ATTEMPTS', 'DEAD SINCE', 'ERROR'].join('\t'));
      for (const r of shown) {
        out([r.id, r.messageId, r.controlId, r.type, `${r.route}#${r.step}`, r.plugin, r.attempts, new Date(r.updatedAt).toISOString(), `${r.lastErrorCode ?? ''} ${r.lastError ?? ''}`.trim()].join('\t'));
      }
      out(`(${rows.length} dead deliveries)`);
    }
    return 0;
  } finally {
    store.close();
  }
}

async function replay(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...STORE_FLAGS, all: { type: 'boolean' }, route: { type: 'string' } });
  if (values.help) return out(USAGE), 0;
  const ids = positionals.map(Number);
  if (ids.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error('delivery ids must be positive integers (see dlq list)');
  if (!ids.length && !values.all) throw new Error('give delivery ids or --all (optionally with --route R)');
  if (ids.length && values.all) throw new Error('give delivery ids or --all, not both');
  const store = await openDataStore(values);
  try {
    const n = store.requeue(ids.length ? { ids, ...(values.route ? { route: values.route } : {}) } : { all: true, ...(values.route ? { route: values.route } : {}) });
    const scope = ids.length ? `ids ${ids.join(',')}` : `all${values.route ? ` of route ${values.route}` : ''}`;
    store.audit({ plugin: 'cli', operation: 'dlq-replay', staffNo: operator(), ...(values.route ? { route: values.route } : {}), result: 'ok', detail: `${n} requeued (${scope})` });
    if (values.json) out(JSON.stringify({ requeued: n }));
    else out(`requeued ${n} dead deliveries (${scope})${ids.length > n ? `; ${ids.length - n} of the ids were not dead` : ''}`);
    return 0;
  } finally {
    store.close();
  }
}
