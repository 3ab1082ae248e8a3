/**
 * Code tables (issue 17): `tables/<name>.csv` beside the routes folder, used
 * in templates as `${PV1-3.1|lookup:dept}` (the second column) or
 * `${OBR-4.1|lookup:lab-items.platformCode}` (a named column).
 *
 * - The first row names the columns; the first column is the key.
 * - An optional `tables/<name>.yaml` says `{ missing: error | keep | default,
 *   default: VALUE, charset: gbk }`. Without it the file is UTF-8 and a
 *   missing key is an error (the step fails for good: dead letter).
 * - A UTF-8 byte order mark wins over the declared charset.
 *
 * Tables are loaded with the routes (core/routes/loader.ts); a broken table
 * refuses the whole set like a broken route, so a reload keeps the old one.
 * Routes bind their lookups to the set loaded with them: templates compiled
 * while the loader runs (route steps and every plugin's create()) read the
 * set from `tableScope`, an AsyncLocalStorage, so two engines in one process
 * never see each other's tables.
 *
 * Parsing is linear in the file size; a lookup is one Map read.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { LoadIssue, loadYamlFile, yamlIssues, type SourcePos } from '../config/yaml-source.js';
import { validateAt } from '../config/validate.js';
import { errorText, hbError } from '../errors.js';
import type { JsonSchema } from '../sdk.js';

export type MissingPolicy = 'error' | 'keep' | 'default';

export interface CodeTable {
  readonly name: string;
  readonly file: string;
  /** Column names from the header row; `columns[0]` is the key column. */
  readonly columns: readonly string[];
  /** Key → the row's cells (cells[0] is the key). */
  readonly rows: ReadonlyMap<string, readonly string[]>;
  readonly missing: MissingPolicy;
  /** The value for a missing key under `missing: default`. */
  readonly default: string;
  readonly charset: 'utf-8' | 'gbk';
}

/** The tables of one route set, by name. */
export type TableSet = ReadonlyMap<string, CodeTable>;

/** The table set templates compiled now bind to (set by the route loader). */
export const tableScope = new AsyncLocalStorage<TableSet>();

const NAME = /^[A-Za-z0-9_-]+$/;

const optionsSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    missing: { enum: ['error', 'keep', 'default'], description: 'What a lookup of a key the table lacks gives: error (the step fails for good), keep (the key itself), default (the `default` value)' },
    default: { type: ['string', 'number'], description: 'Value for a missing key when missing: default' },
    charset: { enum: ['utf-8', 'utf8', 'gbk', 'gb2312', 'gb18030'], description: 'Charset of the CSV file (default utf-8); a UTF-8 byte order mark wins' },
  },
};

/**
 * The tables folder for a set of route inputs: `tablesDir` when the site
 * config names one, else `tables/` beside the (first) routes folder, i.e.
 * `DIR/../tables` for `--routes DIR` (for a route file: its folder's sibling).
 */
export function tablesDirFor(inputs: readonly string[], tablesDir?: string): string | undefined {
  if (tablesDir) return tablesDir;
  const first = inputs[0];
  if (first === undefined) return undefined;
  const st = statSync(first, { throwIfNoEntry: false });
  const dir = st?.isDirectory() ? first : path.dirname(first);
  return path.join(path.resolve(dir), '..', 'tables');
}

/**
 * Splits CSV text (RFC 4180: quoted cells with "" for a quote, CR LF or LF
 * line ends) into rows, each with the 1-based line it starts on. One pass.
 */
export function parseCsv(text: string): { cells: string[]; line: number }[] {
  const rows: { cells: string[]; line: number }[] = [];
  let cells: string[] = [];
  let cell = '';
  let line = 1;
  let rowLine = 1;
  let quoted = false;
  let i = 0;
  const n = text.length;
  const endRow = () => {
    cells.push(cell);
    cell = '';
    // A blank line is no row.
    if (!(cells.length === 1 && cells[0] === '')) rows.push({ cells, line: rowLine });
    cells = [];
  };
  while (i < n) {
    const c = text.charCodeAt(i);
    if (quoted) {
      if (c === 0x22) {
        if (text.charCodeAt(i + 1) === 0x22) {
          cell += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      if (c === 0x0a) line++;
      // Copy the run up to the next quote or newline at once.
      let j = i + 1;
      while (j < n && text.charCodeAt(j) !== 0x22 && text.charCodeAt(j) !== 0x0a) j++;
      cell += text.slice(i, j);
      i = j;
      continue;
    }
    if (c === 0x22 && cell === '') {
      quoted = true;
      i++;
    } else if (c === 0x2c) {
      cells.push(cell);
      cell = '';
      i++;
    } else if (c === 0x0d || c === 0x0a) {
      endRow();
      if (c === 0x0d && text.charCodeAt(i + 1) === 0x0a) i++;
      i++;
      line++;
      rowLine = line;
    } else {
      let j = i + 1;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === 0x2c || d === 0x0d || d === 0x0a) break;
        j++;
      }
      cell += text.slice(i, j);
      i = j;
    }
  }
  if (cell !== '' || cells.length) endRow();
  return rows;
}

function decode(bytes: Buffer, charset: 'utf-8' | 'gbk'): string {
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(3));
  }
  // GB18030 is a superset of GBK and GB2312; the decoder is built into Node.
  return new TextDecoder(charset === 'gbk' ? 'gb18030' : 'utf-8', { fatal: true }).decode(bytes);
}

function canonicalCharset(c: unknown): 'utf-8' | 'gbk' {
  return c === 'gbk' || c === 'gb2312' || c === 'gb18030' ? 'gbk' : 'utf-8';
}

/** Loads one table; pushes problems (file:line:col) to `issues` and returns undefined when it cannot be used. */
function loadTable(dir: string, name: string, issues: LoadIssue[]): CodeTable | undefined {
  const file = path.join(dir, `${name}.csv`);
  const at = (line: number, col = 1): SourcePos => ({ file, line, col });
  const fail = (pos: SourcePos, detail: string) => {
    issues.push(new LoadIssue(pos, errorText('ROUTE_E_TABLE', { table: name, detail }), 'ROUTE_E_TABLE'));
    return undefined;
  };
  if (!NAME.test(name)) return fail(at(1), 'a table name is letters, digits, - and _ only (rename the file)');
  let missing: MissingPolicy = 'error';
  let dflt = '';
  let charset: 'utf-8' | 'gbk' = 'utf-8';
  for (const ext of ['.yaml', '.yml']) {
    const optFile = path.join(dir, name + ext);
    if (!existsSync(optFile)) continue;
    const src = loadYamlFile(optFile);
    const yi = yamlIssues(src);
    const before = issues.length;
    issues.push(...yi);
    const data = yi.length ? undefined : (src.doc.toJS() as unknown);
    if (data !== undefined && data !== null) issues.push(...validateAt(optionsSchema, data, src, [], name + ext));
    if (issues.length > before) return undefined;
    const o = (data ?? {}) as { missing?: MissingPolicy; default?: string | number; charset?: string };
    missing = o.missing ?? 'error';
    dflt = o.default === undefined ? '' : String(o.default);
    charset = canonicalCharset(o.charset);
    if (missing === 'default' && o.default === undefined) {
      issues.push(new LoadIssue(src.posOf(['missing']), errorText('ROUTE_E_TABLE', { table: name, detail: 'missing: default needs a default: value' }), 'ROUTE_E_TABLE'));
      return undefined;
    }
    break;
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    return fail(at(1), `cannot read the file: ${(e as Error).message}`);
  }
  let text: string;
  try {
    text = decode(bytes, charset);
  } catch {
    return fail(at(1), charset === 'gbk' ? 'the file is not valid GBK' : `the file is not valid UTF-8 (a GBK file needs charset: gbk in ${name}.yaml)`);
  }
  const rows = parseCsv(text);
  const header = rows[0];
  if (!header) return fail(at(1), 'the file is empty; the first row names the columns');
  const columns = header.cells.map((c) => c.trim());
  const seenCols = new Set<string>();
  for (let k = 0; k < columns.length; k++) {
    const c = columns[k]!;
    if (c === '') return fail(at(header.line, k + 1), `column ${k + 1} of the header row has no name`);
    if (seenCols.has(c)) return fail(at(header.line), `column "${c}" is named twice in the header row`);
    seenCols.add(c);
  }
  const map = new Map<string, string[]>();
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    if (row.cells.length > columns.length) return fail(at(row.line), `the row has ${row.cells.length} cells but the header names ${columns.length} columns`);
    const key = row.cells[0]!.trim();
    if (key === '') return fail(at(row.line), 'the key (first cell) is empty');
    if (map.has(key)) return fail(at(row.line), `key "${key}" appears twice`);
    map.set(key, row.cells);
  }
  return { name, file, columns, rows: map, missing, default: dflt, charset };
}

/**
 * Loads every `<name>.csv` in `dir` (none when the folder does not exist).
 * Problems are pushed to `issues` with file:line:col.
 */
export function loadTables(dir: string | undefined, issues: LoadIssue[]): TableSet {
  const out = new Map<string, CodeTable>();
  if (!dir || !statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return out;
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.csv')) continue;
    const t = loadTable(dir, f.slice(0, -4), issues);
    if (t) out.set(t.name, t);
  }
  return out;
}

/** What `lookup:ARG` resolves to, checked against the table set: throws ROUTE_E_TABLE naming the table or column. */
export function resolveLookup(arg: string, tables: TableSet | undefined): { table: CodeTable; column: number } {
  const spec = arg.trim();
  const dot = spec.indexOf('.');
  const name = dot < 0 ? spec : spec.slice(0, dot);
  const col = dot < 0 ? undefined : spec.slice(dot + 1);
  if (!name) throw hbError('ROUTE_E_TABLE', { table: '(none)', detail: 'lookup needs a table name: lookup:dept or lookup:lab-items.platformCode' });
  const table = tables?.get(name);
  if (!table) {
    const known = tables && tables.size ? [...tables.keys()].join(', ') : 'none';
    throw hbError('ROUTE_E_TABLE', { table: name, detail: `no such table (no ${name}.csv in the tables folder; known: ${known})` });
  }
  if (col === undefined) {
    if (table.columns.length < 2) throw hbError('ROUTE_E_TABLE', { table: name, detail: 'the table has only its key column; lookup:NAME returns the second column' });
    return { table, column: 1 };
  }
  const k = table.columns.indexOf(col);
  if (k < 0) throw hbError('ROUTE_E_TABLE', { table: name, detail: `no column "${col}" (columns: ${table.columns.join(', ')})` });
  return { table, column: k };
}

/** The `lookup:` filter: compiled against the table set in scope (the one loading with the routes). */
export function lookupFilter(arg: string): (v: string) => string {
  const { table, column } = resolveLookup(arg, tableScope.getStore());
  const { rows, missing, name } = table;
  const dflt = table.default;
  return (v) => {
    // An empty field stays empty: a value the message does not carry is not a code to translate.
    if (v === '') return '';
    const row = rows.get(v);
    if (row) return row[column] ?? '';
    if (missing === 'keep') return v;
    if (missing === 'default') return dflt;
    throw hbError('ROUTE_E_LOOKUP_MISSING', { table: name, key: v.length > 64 ? `${v.slice(0, 64)}...` : v });
  };
}

/**
 * Every `lookup:` of the templates in a plugin config, checked against the
 * table set, with the path of the string that holds it (for file:line:col).
 * Linear in the size of the config.
 */
export function lookupProblems(config: unknown, tables: TableSet, at: (string | number)[] = []): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const walk = (v: unknown, p: (string | number)[]) => {
    if (typeof v === 'string') {
      let i = v.indexOf('${');
      while (i >= 0) {
        const close = v.indexOf('}', i + 2);
        if (close < 0) break;
        const body = v.slice(i + 2, close);
        const re = /\|\s*lookup:([^|]*)/g;
        for (let m = re.exec(body); m; m = re.exec(body)) {
          try {
            resolveLookup(m[1]!, tables);
          } catch (e) {
            out.push({ path: p, message: (e as Error).message });
          }
        }
        i = v.indexOf('${', close + 1);
      }
    } else if (Array.isArray(v)) v.forEach((x, k) => walk(x, [...p, k]));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
  };
  walk(config, at);
  return out;
}
