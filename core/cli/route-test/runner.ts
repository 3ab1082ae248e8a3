/**
 * Runs one route test file: one in-process engine (the routes under test,
 * the simulators, a throw-away store), cases in the order written, sharing
 * the simulators' state. Each case sends one message through the ingest
 * path, waits until its deliveries are final, then checks what it states.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LoadError } from '../../config/yaml-source.js';
import { parseHl7 } from '../../hl7/index.js';
import type { Logger } from '../../log.js';
import type { Registry } from '../../registry.js';
import { checkValue, getPath, show, type Check } from './check.js';
import { startInProcess, type InProcessEngine } from './inproc.js';
import { buildFrame, InputProblem } from './input.js';
import { CallRecorder } from './recorder.js';
import { settle, type FinalRoute } from './settle.js';
import { loadTestFile, routeFilesFor, type CallChecks, type TestCase, type TestFile } from './spec.js';

export interface CaseResult {
  name: string;
  /** `file:line:col: case "name": what: expected x, got y` lines; empty when the case passed. */
  failures: string[];
}

export interface FileResult {
  file: string;
  /** The test file itself is invalid (exit 2). */
  invalid?: string[];
  /** The routes or site config under test did not load: every case counts as failed. */
  loadFailure?: string[];
  cases: CaseResult[];
}

export interface RunOptions {
  registry: Registry;
  routesDir: string;
  /** Longest wait for one message's deliveries. */
  timeoutMs: number;
  log?: Logger;
}

type Fail = (at: (string | number)[], what: string) => void;

async function simCalls(url: string): Promise<unknown[]> {
  const res = await fetch(`${url}/__sim/calls`);
  if (!res.ok) throw new Error(`GET ${url}/__sim/calls answered ${res.status}`);
  return ((await res.json()) as { calls?: unknown[] }).calls ?? [];
}

/** Checks a list of records (plugin calls or simulator calls) against `calls:`/`remote:` expectations. */
function checkCalls(records: unknown[], exp: CallChecks, at: (string | number)[], fail: Fail): void {
  if (Array.isArray(exp)) {
    if (records.length !== exp.length) fail(at, `number of calls: expected ${exp.length}, got ${records.length}`);
    exp.forEach((entry, i) => {
      const rec = records[i];
      if (rec === undefined) return;
      for (const [key, check] of Object.entries(entry)) {
        const m = checkValue(check, getPath(rec, key), key);
        if (m) fail([...at, i, key], `call ${i + 1} ${key}: ${m}`);
      }
    });
    return;
  }
  const { count, ...checks } = exp as { count?: number } & Record<string, Check>;
  if (count !== undefined && records.length !== count) fail([...at, 'count'], `number of calls: expected ${count}, got ${records.length}`);
  if (count === undefined && records.length === 0 && Object.keys(checks).length) fail(at, 'number of calls: expected at least 1, got 0');
  records.forEach((rec, i) => {
    for (const [key, check] of Object.entries(checks)) {
      const m = checkValue(check, getPath(rec, key), key);
      if (m) fail([...at, key], `call ${i + 1} ${key}: ${m}`);
    }
  });
}

function checkRoutes(c: TestCase, finals: FinalRoute[], at: (string | number)[], fail: Fail): void {
  for (const [name, exp] of Object.entries(c.routes ?? {})) {
    const want = typeof exp === 'string' ? { outcome: exp } : exp;
    const got = finals.find((r) => r.route === name);
    const outcome = got?.outcome ?? 'not-matched';
    if (outcome !== want.outcome) {
      const why = got?.errorCode ? ` (${got.errorCode}${got.detail ? `: ${show(got.detail)}` : ''})` : got?.detail ? ` (${show(got.detail)})` : '';
      fail([...at, name], `route ${name}: expected ${want.outcome}, got ${outcome}${why}`);
    }
    if ('detail' in want && want.detail !== undefined) {
      const m = checkValue(want.detail, got?.detail);
      if (m) fail([...at, name, 'detail'], `route ${name} detail: ${m}`);
    }
    if ('errorCode' in want && want.errorCode !== undefined && want.errorCode !== got?.errorCode) {
      fail([...at, name, 'errorCode'], `route ${name} errorCode: expected ${want.errorCode}, got ${got?.errorCode ?? '(none)'}`);
    }
  }
}

function checkAck(c: TestCase, ackText: string, code: string, fail: Fail): void {
  const at = ['ack'];
  if (c.ack !== undefined) {
    const want = typeof c.ack === 'string' ? { code: c.ack } : c.ack;
    if (want.code !== code) fail(at, `ack: expected ${want.code}, got ${code}`);
    if (want.text !== undefined) {
      const m = checkValue(want.text, parseHl7(ackText).get('MSA-3'));
      if (m) fail([...at, 'text'], `ack text (MSA-3): ${m}`);
    }
  }
  if (!c.reply) return;
  if (c.reply.segments) {
    const got = ackText.split(/\r|\n/).filter(Boolean).map((l) => l.slice(0, 3));
    if (got.join(',') !== c.reply.segments.join(',')) fail(['reply', 'segments'], `reply segments: expected [${c.reply.segments.join(', ')}], got [${got.join(', ')}]`);
  }
  for (const [path, check] of Object.entries(c.reply.fields ?? {})) {
    let value: string;
    try {
      value = parseHl7(ackText).get(path);
    } catch (e) {
      fail(['reply', 'fields', path], `reply ${path}: ${(e as Error).message}`);
      continue;
    }
    const m = checkValue(check, value, path);
    if (m) fail(['reply', 'fields', path], `reply ${path}: ${m}`);
  }
}

async function runCase(t: TestFile, index: number, run: InProcessEngine, rec: CallRecorder, opts: RunOptions): Promise<CaseResult> {
  const c = t.spec.cases[index]!;
  const failures: string[] = [];
  const fail: Fail = (at, what) => {
    const p = t.pos(['cases', index, ...at]);
    failures.push(`${p.file}:${p.line}:${p.col}: case "${c.name}": ${what}`);
  };
  const sims = run.engine.simulators;
  const simUrl = (key: string, at: (string | number)[]): string | undefined => {
    const s = sims[key];
    if (!s) fail(at, `no simulator "${key}" (running: ${Object.keys(sims).join(', ') || 'none'})`);
    return s?.url;
  };

  let frame: Buffer;
  try {
    frame = buildFrame(c.input, run.listener.charset);
  } catch (e) {
    fail(['input'], `input: ${e instanceof InputProblem ? e.message : String(e)}`);
    return { name: c.name, failures };
  }
  const before: Record<string, number> = {};
  for (const key of Object.keys(c.remote ?? {})) {
    const url = simUrl(key, ['remote', key]);
    if (url) before[key] = (await simCalls(url)).length;
  }
  for (const [key, rules] of Object.entries(c.faults ?? {})) {
    const url = simUrl(key, ['faults', key]);
    if (!url) continue;
    const res = await fetch(`${url}/__sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rules) });
    if (!res.ok) fail(['faults', key], `simulator ${key} refused the fault rules (HTTP ${res.status})`);
  }
  if (failures.length) return { name: c.name, failures };

  rec.clear();
  const result = await run.engine.ingest(frame, run.listener);
  const finals = await settle(run.engine.store, result, opts.timeoutMs);

  checkAck(c, result.ackText, result.code, fail);
  checkRoutes(c, finals, ['routes'], fail);
  for (const [plugin, exp] of Object.entries(c.calls ?? {})) {
    if (!opts.registry.getPlugin(plugin)) {
      fail(['calls', plugin], `no plugin named "${plugin}"`);
      continue;
    }
    checkCalls(rec.calls.filter((r) => r.plugin === plugin), exp, ['calls', plugin], fail);
  }
  for (const [key, exp] of Object.entries(c.remote ?? {})) {
    const url = sims[key]?.url;
    if (url === undefined) continue;
    checkCalls((await simCalls(url)).slice(before[key] ?? 0), exp, ['remote', key], fail);
  }
  return { name: c.name, failures };
}

/** Maps issues in the generated site file back to the test file's `site:` key. */
function siteIssues(t: TestFile, e: LoadError, siteFile: (f: string) => boolean): string[] {
  const p = t.pos(['site']);
  return e.issues.map((i) => (siteFile(i.pos.file) ? `${t.file}:${p.line}:${p.col}: site: ${i.message}` : i.toString()));
}

/** A test file's `tables:` as a temporary tables folder (removed after the file ran). */
function writeTables(tables: NonNullable<TestFile['spec']['tables']>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-test-tables-'));
  for (const [name, t] of Object.entries(tables)) {
    const { csv, ...options } = typeof t === 'string' ? { csv: t } : t;
    writeFileSync(path.join(dir, `${name}.csv`), csv);
    if (Object.keys(options).length) writeFileSync(path.join(dir, `${name}.yaml`), JSON.stringify(options));
  }
  return dir;
}

/** Runs every case of one test file. Never throws for problems in the file or the routes. */
export async function runTestFile(file: string, opts: RunOptions): Promise<FileResult> {
  let t: TestFile;
  let routes: string[];
  try {
    t = loadTestFile(file);
    routes = routeFilesFor(t, opts.routesDir);
  } catch (e) {
    return { file, invalid: e instanceof LoadError ? e.issues.map(String) : [`${file}: ${(e as Error).message}`], cases: [] };
  }
  const notRun = (lines: string[]): FileResult => ({ file, loadFailure: lines, cases: t.spec.cases.map((c) => ({ name: c.name, failures: ['not run: the routes under test did not load'] })) });

  // Routes read ${env:} from the process environment: overlay the file's values while it runs.
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(t.spec.env ?? {})) {
    saved.set(k, process.env[k]);
    process.env[k] = v;
  }
  const rec = new CallRecorder();
  let run: InProcessEngine | undefined;
  const tablesDir = t.spec.tables ? writeTables(t.spec.tables) : undefined;
  try {
    try {
      run = await startInProcess({
        ...(tablesDir ? { tablesDir } : {}),
        registry: rec.registry(opts.registry),
        routes,
        site: t.spec.site ?? {},
        ...(t.spec.listener ? { listener: t.spec.listener } : {}),
        fastRetries: true,
        ...(opts.log ? { log: opts.log } : {}),
      });
    } catch (e) {
      if (e instanceof LoadError) return notRun(siteIssues(t, e, (f) => f.endsWith('hisbridge.yaml') && f.includes('hisbridge-run-')));
      return notRun([`${file}: ${(e as Error).message}`]);
    }
    const cases: CaseResult[] = [];
    for (let i = 0; i < t.spec.cases.length; i++) cases.push(await runCase(t, i, run, rec, opts));
    return { file, cases };
  } finally {
    await run?.close();
    if (tablesDir) rmSync(tablesDir, { recursive: true, force: true });
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
