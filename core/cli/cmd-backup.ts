/**
 * `hisbridge backup DEST [--data-dir D | --config F]`: copies the store
 * (`<dataDir>/hisbridge.db`) into the file DEST while the engine runs, with
 * SQLite's online backup API (better-sqlite3 `db.backup()`).
 *
 * It runs as its own process and never takes `<dataDir>/engine.lock`: it opens
 * the database read-only, as one more reader. In WAL mode a reader does not
 * block the engine's writes, and the copy is the database as of one moment:
 * the last transaction committed before the copy's read began, so every
 * message ACKed before the backup started is in it.
 *
 * The copy is written to `DEST.partial` (created 0600), switched to the
 * rollback journal (one self-contained file, no -wal/-shm beside it), checked
 * with `PRAGMA quick_check`, and only then renamed to DEST, so a file named
 * DEST is always a complete backup. An existing DEST is never overwritten.
 * Recovery: docs/operations.md ("Backups and recovery").
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync, renameSync, rmSync, statSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { DB_FILE } from '../store/sqlite.js';
import { AUDIT_KEY_FILE } from '../store/audit.js';
import { err, loadConfig, out, parse, registry, reportLoadError } from './common.js';

const USAGE = `usage: hisbridge backup DEST [--data-dir D | --config F]

Copies the store <dataDir>/hisbridge.db into the file DEST (mode 0600) while
the engine runs, with SQLite's online backup API. DEST must not exist; when
DEST is an existing directory the copy is DEST/hisbridge-<UTC time>.db.
The data directory is --data-dir, else the dataDir of --config (or
$HISBRIDGE_CONFIG), else ./data.

Not in the copy: ${AUDIT_KEY_FILE} (the audit hash key; it never changes: keep
one copy of it apart from the database backups). Recovery: stop the engine,
replace hisbridge.db with the backup and delete hisbridge.db-wal and
hisbridge.db-shm, start (docs/operations.md, "Backups and recovery").`;

/** `hisbridge-20261201T081500Z.db` */
function stampedName(now = new Date()): string {
  return `hisbridge-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.db`;
}

export async function run(argv: string[]): Promise<number> {
  let values: { 'data-dir'?: string; config?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv, { 'data-dir': { type: 'string' }, config: { type: 'string' } }));
  } catch (e) {
    err(`hisbridge backup: ${(e as Error).message}`);
    err(USAGE);
    return 2;
  }
  if (values.help) {
    out(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    err(positionals.length ? 'hisbridge backup: give one DEST' : 'hisbridge backup: DEST is missing');
    err(USAGE);
    return 2;
  }
  if (values['data-dir'] && values.config) {
    err('hisbridge backup: give --data-dir or --config, not both');
    return 2;
  }
  let dataDir: string;
  try {
    dataDir = values['data-dir'] ? path.resolve(values['data-dir']) : loadConfig(values.config, registry()).dataDir;
  } catch (e) {
    if (reportLoadError(e)) return 1;
    err(`hisbridge backup: ${(e as Error).message}`);
    return 1;
  }
  const source = path.join(dataDir, DB_FILE);
  if (!existsSync(source)) {
    err(`hisbridge backup: no hisbridge store in ${dataDir} (use --data-dir or --config)`);
    return 1;
  }
  let dest = path.resolve(positionals[0]!);
  if (existsSync(dest) && statSync(dest).isDirectory()) dest = path.join(dest, stampedName());
  if (existsSync(dest)) {
    err(`hisbridge backup: ${dest} exists: a backup never overwrites a file; choose a new name or a directory`);
    return 1;
  }
  if (path.resolve(path.dirname(dest)) === path.resolve(dataDir)) {
    err('hisbridge backup: DEST is inside the data directory: write backups elsewhere (another disk, ideally)');
    return 1;
  }
  const folder = path.dirname(dest);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    err(`hisbridge backup: the folder ${folder} does not exist: create it first, or choose another DEST`);
    return 1;
  }
  const partial = `${dest}.partial`;
  const started = Date.now();
  let db: Database.Database | undefined;
  let created = false;
  try {
    // Created 0600 before SQLite writes a byte of it; O_EXCL: never clobber a file another backup is writing.
    closeSync(openSync(partial, 'wx', 0o600));
    created = true;
    db = new Database(source, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 10000');
    // The first step copies 100 pages; the progress callback then asks for the rest in one step, so a
    // busy engine (whose every commit would restart a page-by-page copy) cannot keep the backup going forever.
    const r = await db.backup(partial, { progress: ({ totalPages }) => Math.max(totalPages, 100) });
    db.close();
    db = undefined;
    const copy = new Database(partial);
    try {
      copy.pragma('journal_mode = DELETE');
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`the copy fails quick_check: ${String(check).slice(0, 200)}`);
    } finally {
      copy.close();
    }
    chmodSync(partial, 0o600);
    renameSync(partial, dest);
    const bytes = statSync(dest).size;
    out(`hisbridge backup: ${dest} (${r.totalPages} pages, ${bytes} bytes, ${Date.now() - started} ms)`);
    err(`hisbridge backup: note: ${AUDIT_KEY_FILE} is not in the copy; keep one copy of it apart from the backups (docs/operations.md)`);
    return 0;
  } catch (e) {
    db?.close();
    if (created) {
      rmSync(partial, { force: true });
      rmSync(`${partial}-journal`, { force: true });
    }
    const code = (e as { code?: string }).code;
    const message = e instanceof Error ? e.message : String(e);
    // Node's file errors already begin with their code ("ENOENT: no such file..."): say it once.
    err(`hisbridge backup: failed: ${code && !message.startsWith(`${code}:`) ? `${code}: ` : ''}${message}`);
    return 1;
  }
}
