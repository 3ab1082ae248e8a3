/**
 * `hisbridge errors [--family F] [--json]`: every error code this engine
 * knows, from the registry (core codes and each plugin family's catalogue),
 * with its owner, whether it is retried, its HTTP status and message
 * template. One line per code, tab-separated; `--json` prints one JSON array.
 */
import { parseArgs } from 'node:util';
import { reportLoadError, siteRegistry } from './common.js';
import { stdio, type CliIo } from './cmd-sm4.js';

const USAGE = `usage: hisbridge errors [--family core|FAMILY] [--json] [--config F]
Lists every error code: code, family (core or the plugin family that registered it), retryable or permanent, HTTP status, message template.
With --config (or $HISBRIDGE_CONFIG), the families of the external plugins it loads are listed too.`;

export async function run(argv: string[], io: CliIo = stdio): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, allowPositionals: false, strict: true, options: { family: { type: 'string' }, json: { type: 'boolean' }, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    io.err(`hisbridge errors: ${(e as Error).message}`);
    io.err(USAGE);
    return 2;
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  let all;
  try {
    all = (await siteRegistry(values.config)).errorCatalogue.list();
  } catch (e) {
    if (reportLoadError(e)) return 1;
    throw e;
  }
  const rows = values.family === undefined ? all : all.filter((e) => e.family === values.family);
  if (!rows.length) {
    io.err(`hisbridge errors: no family "${String(values.family).slice(0, 40)}" (known: ${[...new Set(all.map((e) => e.family))].join(', ')})`);
    return 2;
  }
  if (values.json) io.out(JSON.stringify(rows.map((e) => ({ code: e.code, family: e.family, retryable: e.retryable, ...(e.status !== undefined ? { status: e.status } : {}), message: e.message }))));
  else for (const e of rows) io.out([e.code, e.family, e.retryable ? 'retryable' : 'permanent', e.status ?? '-', e.message].join('\t'));
  return 0;
}
