/**
 * Loads route files: YAML (positions kept) → ${env:} → JSON Schema → compile
 * (conditions, templates, plugin configs, plugin instances). Every problem is
 * reported as file:line:col; a set with any problem does not load at all.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { LoadError, LoadIssue, checkInlineSecrets, loadYamlFile, resolveEnvRefs, yamlIssues, type YamlSource } from '../config/yaml-source.js';
import { validateAt } from '../config/validate.js';
import { parseDuration } from '../config/duration.js';
import { compileCondition, type ConditionSpec } from './condition.js';
import { compileTemplate, type Tables } from '../template.js';
import { routeSchema } from './schema.js';
import { compilePlan } from './plan.js';
import { errorText, isHisbridgeError } from '../errors.js';
import type { Registry } from '../registry.js';
import type { PluginContext, PluginDefinition } from '../sdk.js';
import type { CompiledRoute, CompiledStep } from './types.js';
import { loadTables, lookupProblems, tableScope, type TableSet } from './tables.js';

export interface LoadRoutesOptions {
  registry: Registry;
  /** Builds the context a plugin instance receives. */
  contextFor(def: PluginDefinition, route: string, step: number): PluginContext;
  /** Known source names; a route naming another one is refused. */
  sources?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /**
   * True for a site section the site has not configured while the simulators
   * are off (the site is not connected to that platform). A route whose
   * plugin then fails with CONFIG_E_SITE_MISSING loads inactive instead of
   * refusing the set, unless the route says `required: true`. Without this
   * option every such failure is an error.
   */
  unconfiguredSite?: (siteKey: string) => boolean;
  /** How long one plugin's create() may take (default PLUGIN_CREATE_TIMEOUT_MS); tests shorten it. */
  createTimeoutMs?: number;
  /** Called once per route loaded inactive (it is not in the returned list). */
  onInactive?: (route: InactiveRoute) => void;
  /**
   * The code tables folder (core/routes/tables.ts, `tablesDirFor`): its tables
   * load with the routes and a broken one refuses the set. None when absent.
   */
  tablesDir?: string;
}

/** A route that matches nothing because a platform it needs is not configured. */
export interface InactiveRoute {
  name: string;
  file: string;
  line: number;
  col: number;
  /** PHI-free: names the section and key, e.g. "recognition.baseUrl is not set in hisbridge.yaml". */
  reason: string;
}

/** Route files in a directory (or the given files): *.yaml / *.yml, not *.test.yaml. */
export function listRouteFiles(inputs: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of inputs) {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) throw new LoadError([new LoadIssue({ file: p, line: 1, col: 1 }, errorText('CONFIG_E_READ', { detail: 'no such file or directory' }), 'CONFIG_E_READ')]);
    if (st.isDirectory()) {
      for (const f of readdirSync(p).sort()) {
        if (/\.ya?ml$/.test(f) && !/\.test\.ya?ml$/.test(f)) out.push(path.join(p, f));
      }
    } else out.push(p);
  }
  return out;
}

type RawRoute = {
  name: string;
  enabled?: boolean;
  required?: boolean;
  sources?: string[];
  match: { events: string[]; sender?: { application?: string; facility?: string }; when?: ConditionSpec[] };
  ack?: 'on-receive' | 'on-complete';
  tables?: Tables;
  steps: Record<string, unknown>[];
  delivery?: { orderingKey?: string; retry?: { max?: number; initial?: string | number; maxDelay?: string | number } };
};

/**
 * Keys that route files used to accept and no longer do, with what to write
 * instead. Each is refused with ROUTE_E_REMOVED_KEY at the key's line and
 * column, rather than the generic "unknown key", so an older route file says
 * what changed.
 */
const REMOVED_DELIVERY_KEYS: Record<string, string> = {
  // Compiled but never read: failed deliveries always went to the dead-letter list, and `false` (dropping
  // a message after its last attempt) would lose messages silently, which the engine never does.
  deadLetter:
    'failed deliveries always go to the dead-letter list (hisbridge dlq list / dlq replay); delete the line. To give up sooner, lower delivery.retry.max (docs/routes.md#removed-keys)',
};

/** Reports (and takes out of `data`, so the schema check does not report them again) removed keys of each route. */
function removedKeyIssues(data: Record<string, unknown>, src: YamlSource): LoadIssue[] {
  const out: LoadIssue[] = [];
  const routes: { raw: unknown; at: (string | number)[] }[] = Array.isArray(data.routes)
    ? (data.routes as unknown[]).map((raw, i) => ({ raw, at: ['routes', i] }))
    : [{ raw: data, at: [] }];
  for (const { raw, at } of routes) {
    const delivery = raw && typeof raw === 'object' ? (raw as { delivery?: unknown }).delivery : undefined;
    if (!delivery || typeof delivery !== 'object' || Array.isArray(delivery)) continue;
    for (const [key, instead] of Object.entries(REMOVED_DELIVERY_KEYS)) {
      if (!Object.hasOwn(delivery, key)) continue;
      out.push(new LoadIssue(src.posOf([...at, 'delivery', key], true), errorText('ROUTE_E_REMOVED_KEY', { key: `delivery.${key}`, instead }), 'ROUTE_E_REMOVED_KEY'));
      delete (delivery as Record<string, unknown>)[key];
    }
  }
  return out;
}

/**
 * How long a plugin's create() may take. A create() whose promise never
 * settles left `start` waiting forever without a word, and made `validate`
 * exit 0 without printing anything (nothing else kept Node running).
 */
export const PLUGIN_CREATE_TIMEOUT_MS = 30_000;

/**
 * The bound in effect: HISBRIDGE_PLUGIN_CREATE_TIMEOUT_MS (a whole number of
 * milliseconds above 0) when set, so the tests of this bound need not wait
 * 30 s; PLUGIN_CREATE_TIMEOUT_MS otherwise, and for any other value.
 */
export function pluginCreateTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.HISBRIDGE_PLUGIN_CREATE_TIMEOUT_MS);
  return Number.isInteger(v) && v > 0 ? v : PLUGIN_CREATE_TIMEOUT_MS;
}

/** Calls def.create, rejecting with a ROUTE_E_COMPILE text after `ms`; the timer keeps the process alive meanwhile. */
async function createWithin<T>(create: () => T | Promise<T>, name: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`plugin "${name}": create() did not finish within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([Promise.resolve().then(create), late]);
  } finally {
    clearTimeout(timer);
  }
}

function issueFrom(src: YamlSource, at: (string | number)[], e: unknown): LoadIssue {
  // A step that knows which key of its config is wrong says so in data.configPath (the map step does).
  const sub = isHisbridgeError(e) && Array.isArray(e.data?.configPath) ? (e.data.configPath as (string | number)[]) : [];
  if (sub.length) at = [...at, ...sub];
  const msg = isHisbridgeError(e) ? e.message : errorText('ROUTE_E_COMPILE', { detail: e instanceof Error ? e.message : String(e) });
  const code = isHisbridgeError(e) ? e.code : 'ROUTE_E_COMPILE';
  return new LoadIssue(src.posOf(at), msg, code);
}

/** Loads and compiles every route in the files; throws LoadError listing all issues. */
export async function loadRoutes(files: readonly string[], opts: LoadRoutesOptions): Promise<CompiledRoute[]> {
  const issues: LoadIssue[] = [];
  const tables = loadTables(opts.tablesDir, issues);
  // Templates compiled from here on (route steps, every plugin's create()) bind their lookups to these tables.
  activeLoads++;
  try {
    return await tableScope.run(tables, () => loadRoutesWith(files, opts, issues, tables));
  } finally {
    // While an AsyncLocalStorage is enabled Node runs a hook at every promise the process makes (issue 15's
    // profile: about 5% of the CPU per message). The scope is only needed while routes load: disable it when
    // no load is running (run() enables it again for the next load).
    if (--activeLoads === 0) tableScope.disable();
  }
}

/** Route loads in progress (two engines in one process may load at once). */
let activeLoads = 0;

async function loadRoutesWith(files: readonly string[], opts: LoadRoutesOptions, issues: LoadIssue[], tables: TableSet): Promise<CompiledRoute[]> {
  const routes: CompiledRoute[] = [];
  const schema = routeSchema(opts.registry.plugins);
  const seen = new Map<string, string>();
  for (const file of files) {
    let src: YamlSource;
    try {
      src = loadYamlFile(file);
    } catch (e) {
      if (e instanceof LoadError) issues.push(...e.issues);
      continue;
    }
    const yi = yamlIssues(src);
    if (yi.length) {
      issues.push(...yi);
      continue;
    }
    const before = issues.length;
    resolveEnvRefs(src, opts.env ?? process.env, issues);
    checkInlineSecrets(src, issues);
    const data = src.doc.toJS() as unknown;
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      issues.push(new LoadIssue({ file, line: 1, col: 1 }, 'a route file must be a mapping with name, match and steps (or a routes: list)', 'CONFIG_E_SCHEMA'));
      continue;
    }
    issues.push(...removedKeyIssues(data as Record<string, unknown>, src));
    issues.push(...validateAt(schema, data, src, []));
    if (issues.length > before) continue;
    const list: { raw: RawRoute; at: (string | number)[] }[] = 'routes' in data
      ? (data as { routes: RawRoute[] }).routes.map((raw, i) => ({ raw, at: ['routes', i] }))
      : [{ raw: data as RawRoute, at: [] }];
    for (const { raw, at } of list) {
      if (raw.enabled === false) continue;
      const prev = seen.get(raw.name);
      if (prev) {
        issues.push(new LoadIssue(src.posOf([...at, 'name']), errorText('ROUTE_E_DUPLICATE_NAME', { name: raw.name, where: prev }), 'ROUTE_E_DUPLICATE_NAME'));
        continue;
      }
      seen.set(raw.name, file);
      const r = await compileRoute(raw, src, at, opts, issues, tables);
      if (r) routes.push(r);
    }
  }
  if (issues.length) {
    await Promise.allSettled(routes.flatMap((r) => r.steps.map((s) => (s.kind === 'plugin' ? s.instance.close?.() : undefined))));
    throw new LoadError(issues);
  }
  return routes;
}

async function compileRoute(raw: RawRoute, src: YamlSource, at: (string | number)[], opts: LoadRoutesOptions, issues: LoadIssue[], codeTables: TableSet): Promise<CompiledRoute | undefined> {
  const before = issues.length;
  const tables = raw.tables ?? {};
  const attempt = <T>(where: (string | number)[], fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (e) {
      issues.push(issueFrom(src, [...at, ...where], e));
      return undefined;
    }
  };

  if (opts.sources && raw.sources) {
    raw.sources.forEach((s, i) => {
      if (!opts.sources!.includes(s)) issues.push(new LoadIssue(src.posOf([...at, 'sources', i]), errorText('ROUTE_E_UNKNOWN_SOURCE', { name: s, known: opts.sources!.join(', ') || 'none' }), 'ROUTE_E_UNKNOWN_SOURCE'));
    });
  }
  const when = (raw.match.when ?? []).map((c, i) => attempt(['match', 'when', i], () => compileCondition(c, tables)));
  const ack = raw.ack ?? 'on-receive';
  const steps: CompiledStep[] = [];
  let firstOutbound = -1;
  let inactive: InactiveRoute | undefined;
  for (let i = 0; i < raw.steps.length; i++) {
    const s = raw.steps[i]!;
    const where = ['steps', i];
    if ('filter' in s) {
      if (ack === 'on-receive' && firstOutbound >= 0) {
        issues.push(new LoadIssue(src.posOf([...at, ...where]), errorText('ROUTE_E_STEP_ORDER'), 'ROUTE_E_STEP_ORDER'));
        continue;
      }
      const cond = attempt([...where, 'filter'], () => compileCondition(s.filter as ConditionSpec, tables));
      if (cond) steps.push({ kind: 'filter', index: i, label: `filter#${i}`, cond });
    } else if ('set' in s) {
      const entries: [string, ReturnType<typeof compileTemplate>][] = [];
      for (const [k, v] of Object.entries(s.set as Record<string, string>)) {
        const t = attempt([...where, 'set', k], () => compileTemplate(String(v), tables));
        if (t) entries.push([k, t]);
      }
      steps.push({ kind: 'set', index: i, label: `set#${i}`, entries });
    } else {
      // log:, reply: and plugin: all become plugin steps.
      const name = 'plugin' in s ? String(s.plugin) : 'log' in s ? 'log' : 'reply';
      const config = ('plugin' in s ? s.config ?? {} : 'log' in s ? s.log : s.reply) as Record<string, unknown>;
      const configAt = 'plugin' in s ? [...where, 'config'] : [...where, name];
      const def = opts.registry.getPlugin(name);
      if (!def) {
        issues.push(new LoadIssue(src.posOf([...at, ...where, 'plugin']), errorText('ROUTE_E_UNKNOWN_PLUGIN', { name }), 'ROUTE_E_UNKNOWN_PLUGIN'));
        continue;
      }
      const ci = validateAt(def.configSchema, config, src, [...at, ...configAt], 'config');
      if (ci.length) {
        issues.push(...ci);
        continue;
      }
      // Every lookup in the config's templates names a table and column that exist, reported where it is written.
      const lp = lookupProblems(config, codeTables);
      if (lp.length) {
        for (const p of lp) issues.push(new LoadIssue(src.posOf([...at, ...configAt, ...p.path]), p.message, 'ROUTE_E_TABLE'));
        continue;
      }
      let instance;
      try {
        instance = await createWithin(() => def.create(opts.contextFor(def, raw.name, i), config), name, opts.createTimeoutMs ?? pluginCreateTimeoutMs());
      } catch (e) {
        if (isHisbridgeError(e) && e.code === 'CONFIG_E_SITE_MISSING' && def.siteKey && opts.unconfiguredSite?.(def.siteKey)) {
          if (raw.required === true) {
            const issue = issueFrom(src, [...at, ...configAt], e);
            issues.push(new LoadIssue(issue.pos, `route ${raw.name} is required: ${issue.message}`, issue.code));
          } else if (!inactive) {
            const pos = src.posOf([...at, ...where]);
            inactive = { name: raw.name, file: pos.file, line: pos.line, col: pos.col, reason: e.message };
          }
          continue;
        }
        issues.push(issueFrom(src, [...at, ...configAt], e));
        continue;
      }
      const outbound = def.kind === 'outbound';
      if (outbound && firstOutbound < 0) firstOutbound = i;
      const as = typeof s.as === 'string' ? s.as : undefined;
      const label = typeof s.name === 'string' ? s.name : `${name}#${i}`;
      steps.push({ kind: 'plugin', index: i, label, plugin: name, def, instance, outbound, ...(def.transform && !outbound ? { transform: true } : {}), ...(as ? { as } : {}) });
    }
  }
  const orderingKey = raw.delivery?.orderingKey !== undefined ? attempt(['delivery', 'orderingKey'], () => compileTemplate(raw.delivery!.orderingKey!, tables)) : undefined;
  const retry = {
    max: raw.delivery?.retry?.max ?? 10,
    initialMs: parseDuration(raw.delivery?.retry?.initial, 1000),
    maxDelayMs: parseDuration(raw.delivery?.retry?.maxDelay, 5 * 60_000),
  };
  if (issues.length > before || inactive) {
    await Promise.allSettled(steps.map((s) => (s.kind === 'plugin' ? s.instance.close?.() : undefined)));
    // Inactive only when nothing else is wrong: a real error in the same route still refuses the set.
    if (inactive && issues.length === before) opts.onInactive?.(inactive);
    return undefined;
  }
  const events = new Set<string>();
  const codes = new Set<string>();
  let anyEvent = false;
  for (const e of raw.match.events) {
    if (e === '*') anyEvent = true;
    else if (e.endsWith('^*')) codes.add(e.slice(0, -2));
    else events.add(e);
  }
  const conds = when.filter((c): c is NonNullable<typeof c> => c !== undefined);
  return {
    name: raw.name,
    file: src.file,
    sources: raw.sources ? new Set(raw.sources) : undefined,
    events,
    eventCodes: codes,
    anyEvent,
    sender: raw.match.sender ?? {},
    when: conds,
    ack,
    steps,
    plan: compilePlan(ack, steps),
    ...(orderingKey ? { orderingKey } : {}),
    retry,
  };
}

/** Closes every plugin instance of a route set (on reload or shutdown). */
export async function closeRoutes(routes: readonly CompiledRoute[]): Promise<void> {
  await Promise.allSettled(routes.flatMap((r) => r.steps.map((s) => (s.kind === 'plugin' ? s.instance.close?.() : undefined))));
}
