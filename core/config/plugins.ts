/**
 * External plugins: `plugins: [./site-plugins/sz-ehr.mjs]` in hisbridge.yaml.
 *
 * Each entry is a path to an ES module, relative to the site config file. Its
 * default export is one of, or an array of:
 * - a PluginDefinition (a route step: `name`, `configSchema`, `kind`, `create`),
 * - a SourceDefinition (a listener `type:`: `type`, `configSchema`, `start`),
 * - a SiteExtension (a hisbridge.yaml section: `key`, `configSchema`, `defaults`),
 * - an error family (`errorFactory(...)`: `family`, `catalogue`),
 * or a function `(sdk) => any of those` (sync or async) that receives the
 * engine's own SDK module. The function form is the primary one: a module
 * that imports the SDK itself may get a second copy of it (dist/ while the
 * engine runs from the sources) whose classes are not the engine's.
 *
 * The modules are imported before the registry is used, by every command
 * that builds the registry from a site config (core/cli/common.ts
 * `siteRegistry`). Every problem is a LoadIssue at the `plugins:` entry's
 * file:line:column with a CONFIG_E_PLUGIN_* code; never a stack trace.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as sdk from '../sdk.js';
import type { PluginDefinition, SiteExtension, SourceDefinition } from '../sdk.js';
import type { Registry } from '../registry.js';
import { errorText, type ErrorCode, type ErrorFamily } from '../errors.js';
import { scrubText } from '../mask.js';
import { LoadError, LoadIssue, loadYamlFile, yamlIssues, type SourcePos } from './yaml-source.js';
import { coreSiteSchema } from './site.js';

/** What the engine passes to a module whose default export is a function. */
export type HisbridgeSdk = typeof sdk;

/** What was loaded from one `plugins:` entry. */
export interface LoadedPluginModule {
  /** The entry as written. */
  entry: string;
  /** Absolute path of the module. */
  file: string;
  plugins: string[];
  sources: string[];
  extensions: string[];
  errorFamilies: string[];
}

type Kind = 'plugin' | 'source' | 'extension' | 'errors';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isFn = (v: unknown): v is (...a: unknown[]) => unknown => typeof v === 'function';

/** Which kind of definition `v` is, or why it is none. */
function classify(v: unknown): { kind: Kind } | { problem: string } {
  if (!isObject(v)) return { problem: `is ${v === null ? 'null' : Array.isArray(v) ? 'a nested array' : typeof v}, not a plugin, source, site extension or error family object` };
  const missing = (req: Record<string, boolean>) => Object.entries(req).filter(([, ok]) => !ok).map(([k]) => k);
  if ('create' in v || 'kind' in v || ('name' in v && !('family' in v))) {
    const m = missing({ 'name (string)': typeof v.name === 'string', 'summary (string)': typeof v.summary === 'string', 'configSchema (object)': isObject(v.configSchema), "kind ('outbound' or 'local')": v.kind === 'outbound' || v.kind === 'local', 'create (function)': isFn(v.create) });
    return m.length ? { problem: `looks like a plugin definition but lacks ${m.join(', ')}` } : { kind: 'plugin' };
  }
  if ('start' in v || 'type' in v) {
    const m = missing({ 'type (string)': typeof v.type === 'string', 'summary (string)': typeof v.summary === 'string', 'configSchema (object)': isObject(v.configSchema), 'start (function)': isFn(v.start) });
    return m.length ? { problem: `looks like a source definition but lacks ${m.join(', ')}` } : { kind: 'source' };
  }
  if ('key' in v || 'defaults' in v) {
    const m = missing({ 'key (string)': typeof v.key === 'string', 'summary (string)': typeof v.summary === 'string', 'configSchema (object)': isObject(v.configSchema), 'defaults (function)': isFn(v.defaults) });
    if (v.simulator !== undefined && !(isObject(v.simulator) && isFn(v.simulator.start) && Number.isInteger(v.simulator.defaultPort))) m.push('a valid simulator ({ defaultPort, start })');
    return m.length ? { problem: `looks like a site extension but lacks ${m.join(', ')}` } : { kind: 'extension' };
  }
  if ('family' in v || 'catalogue' in v) {
    const m = missing({ 'family (string)': typeof v.family === 'string', 'catalogue (object)': isObject(v.catalogue), 'error (function)': isFn(v.error) });
    return m.length ? { problem: `looks like an error family but lacks ${m.join(', ')} (build it with errorFactory)` } : { kind: 'errors' };
  }
  return { problem: 'is not a plugin (name, create), source (type, start), site extension (key, defaults) or error family (errorFactory)' };
}

/** A short, PHI-free, single-line text of something a module threw. */
function thrownText(e: unknown): string {
  const code = isObject(e) && typeof e.code === 'string' ? `${e.code}: ` : '';
  const msg = e instanceof Error ? e.message : String(e);
  const line = (msg.split('\n')[0] ?? '').slice(0, 300);
  return scrubText(code + line);
}

/**
 * How long importing one module, and then running its `(sdk) =>` function,
 * may take. A module that never settles (a top-level await on something that
 * never comes, a function returning a promise that never resolves) would
 * otherwise leave the command waiting on nothing: Node then exits 0 without a
 * word, so `start` and `validate` looked successful.
 */
export const PLUGIN_LOAD_TIMEOUT_MS = 10_000;

/**
 * The bound in effect: HISBRIDGE_PLUGIN_LOAD_TIMEOUT_MS (a whole number of
 * milliseconds above 0) when set, so the tests of this bound need not wait
 * 10 s each; PLUGIN_LOAD_TIMEOUT_MS otherwise, and for any other value.
 */
export function pluginLoadTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.HISBRIDGE_PLUGIN_LOAD_TIMEOUT_MS);
  return Number.isInteger(v) && v > 0 ? v : PLUGIN_LOAD_TIMEOUT_MS;
}

/** Settles like `p`, or rejects with a PluginLoadTimeout after `ms`; the timer keeps the process alive meanwhile. */
function withinTime<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PluginLoadTimeout(ms)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

class PluginLoadTimeout extends Error {
  constructor(readonly ms: number) {
    super(`did not finish within ${ms / 1000} s`);
  }
}

/**
 * The first run of a module happens in a worker thread, because a timer on
 * the main thread cannot stop synchronous code: a module whose top level (or
 * whose `(sdk) =>` function) loops forever would hang `validate` and `start`
 * with no word. The worker imports the module and calls its default export
 * once; it reports each stage back. If a stage does not finish in time the
 * worker is terminated (that does stop a loop) and the entry is reported. A
 * module that finishes is then imported for real on the main thread, where
 * every other problem is found and reported as before; what the module threw
 * in the worker is ignored here for that reason.
 *
 * The call of the default export needs the engine's SDK as a module file; when
 * the engine runs from the TypeScript sources (tests) there is none, so only
 * the import is checked.
 */
const PROBE = `const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  let mod;
  try { mod = await import(workerData.url); } catch { parentPort.postMessage('done'); return; }
  parentPort.postMessage('imported');
  if (typeof mod.default !== 'function' || !workerData.sdkUrl) { parentPort.postMessage('done'); return; }
  let sdk;
  try { sdk = await import(workerData.sdkUrl); } catch { parentPort.postMessage('done'); return; }
  parentPort.postMessage('sdk');
  try { mod.default(sdk); } catch {}
  parentPort.postMessage('done');
})();`;

const SDK_FILE = fileURLToPath(new URL('../sdk.js', import.meta.url));

/**
 * Runs the module once in a worker thread. Resolves `undefined` when its
 * import and the synchronous part of its default export's call returned (or
 * threw) in time, else the stage that did not return: 'import' or 'call'.
 */
async function probeInWorker(abs: string, ms: number): Promise<'import' | 'call' | undefined> {
  const sdkUrl = existsSync(SDK_FILE) ? pathToFileURL(SDK_FILE).href : undefined;
  // stdout/stderr piped and drained: what the module prints while probed is not printed twice.
  const worker = new Worker(PROBE, { eval: true, workerData: { url: pathToFileURL(abs).href, sdkUrl }, stdout: true, stderr: true });
  worker.stdout.resume();
  worker.stderr.resume();
  worker.unref();
  let stage: 'import' | 'call' = 'import';
  try {
    return await new Promise<'import' | 'call' | undefined>((resolve) => {
      let timer = setTimeout(() => resolve(stage), ms);
      const finish = () => {
        clearTimeout(timer);
        resolve(undefined);
      };
      worker.on('message', (m: string) => {
        if (m === 'imported') {
          // The call gets its own bound, counted once the SDK is loaded.
          clearTimeout(timer);
          timer = setTimeout(() => resolve(stage), ms);
        } else if (m === 'sdk') {
          stage = 'call';
          clearTimeout(timer);
          timer = setTimeout(() => resolve(stage), ms);
        } else if (m === 'done') finish();
      });
      // A worker that dies or exits early (a top-level await with nothing
      // left to wait on) has not looped: the main-thread import judges it.
      worker.on('error', finish);
      worker.on('exit', finish);
    });
  } finally {
    await worker.terminate();
  }
}

/** Reads the `plugins:` entries and their positions; YAML and schema problems are left to loadSiteConfig. */
function pluginEntries(file: string): { entry: string; index: number; pos: SourcePos }[] {
  const src = loadYamlFile(file);
  if (yamlIssues(src).length) return [];
  const data = src.doc.toJS() as unknown;
  if (!isObject(data) || !Array.isArray(data.plugins)) return [];
  const out: { entry: string; index: number; pos: SourcePos }[] = [];
  data.plugins.forEach((entry: unknown, index: number) => {
    if (typeof entry === 'string' && entry.length) out.push({ entry, index, pos: src.posOf(['plugins', index]) });
  });
  return out;
}

/** Who registered what, so a collision names the other side. */
interface Origins {
  plugin: Map<string, string>;
  source: Map<string, string>;
  extension: Map<string, string>;
  family: Map<string, string>;
  families: Set<unknown>;
}

/**
 * Imports the modules named by `plugins:` in the site config `file` and
 * registers their definitions in `registry`. Throws LoadError (every issue,
 * each at its entry's file:line:col) when one cannot be loaded; a file
 * without `plugins:` loads nothing.
 */
export async function loadExternalPlugins(file: string | undefined, registry: Registry, opts: { loadTimeoutMs?: number } = {}): Promise<LoadedPluginModule[]> {
  const loadTimeoutMs = opts.loadTimeoutMs ?? pluginLoadTimeoutMs();
  if (!file) return [];
  const entries = pluginEntries(file);
  if (!entries.length) return [];
  const baseDir = path.dirname(path.resolve(file));
  const issues: LoadIssue[] = [];
  const loaded: LoadedPluginModule[] = [];
  const origins: Origins = { plugin: new Map(), source: new Map(), extension: new Map(), family: new Map(), families: new Set() };
  for (const { entry, index, pos } of entries) {
    const issue = (code: ErrorCode, detail: string) => issues.push(new LoadIssue(pos, errorText(code, { index, entry, detail }), code));
    if (!(entry.startsWith('./') || entry.startsWith('../') || path.isAbsolute(entry))) {
      issue('CONFIG_E_PLUGIN_NOT_FOUND', 'an external plugin is a path to a module file: start it with ./ or ../ (relative to this config file) or give an absolute path');
      continue;
    }
    const abs = path.resolve(baseDir, entry);
    if (!existsSync(abs) || !statSync(abs).isFile()) {
      issue('CONFIG_E_PLUGIN_NOT_FOUND', existsSync(abs) ? `not a module file (${abs} is a directory or a special file)` : `no such file (looked for ${abs})`);
      continue;
    }
    const stuck = await probeInWorker(abs, loadTimeoutMs);
    if (stuck === 'import') {
      issue('CONFIG_E_PLUGIN_IMPORT', `importing it did not finish within ${loadTimeoutMs / 1000} s (top-level code that never returns, such as a loop, or a top-level await that never settles?)`);
      continue;
    }
    if (stuck === 'call') {
      issue('CONFIG_E_PLUGIN_IMPORT', `its default export (sdk) => ... did not finish within ${loadTimeoutMs / 1000} s: it never returned (a loop?)`);
      continue;
    }
    let mod: Record<string, unknown>;
    try {
      mod = (await withinTime(import(pathToFileURL(abs).href), loadTimeoutMs)) as Record<string, unknown>;
    } catch (e) {
      issue('CONFIG_E_PLUGIN_IMPORT', e instanceof PluginLoadTimeout ? `importing it ${e.message} (a top-level await that never settles?)` : thrownText(e));
      continue;
    }
    let exported: unknown = mod.default;
    if (exported === undefined) {
      issue('CONFIG_E_PLUGIN_SHAPE', 'the module has no default export (export default a plugin, source, site extension, error family, an array of them, or a function (sdk) => one of those)');
      continue;
    }
    if (isFn(exported)) {
      try {
        const fn = exported as (s: typeof sdk) => unknown;
        exported = await withinTime(Promise.resolve().then(() => fn(sdk)), loadTimeoutMs);
      } catch (e) {
        issue('CONFIG_E_PLUGIN_IMPORT', e instanceof PluginLoadTimeout ? `its default export (sdk) => ... ${e.message}: it returned a promise that never settled` : `its default export (sdk) => ... threw: ${thrownText(e)}`);
        continue;
      }
    }
    const items = Array.isArray(exported) ? exported : [exported];
    if (!items.length) {
      issue('CONFIG_E_PLUGIN_SHAPE', 'the default export is an empty array');
      continue;
    }
    const classified = items.map((v, i) => ({ v, i, c: classify(v) }));
    const bad = classified.filter((x) => 'problem' in x.c);
    if (bad.length) {
      for (const b of bad) issue('CONFIG_E_PLUGIN_SHAPE', `the default export${items.length > 1 || Array.isArray(exported) ? `[${b.i}]` : ''} ${(b.c as { problem: string }).problem}`);
      continue;
    }
    const rec: LoadedPluginModule = { entry, file: abs, plugins: [], sources: [], extensions: [], errorFamilies: [] };
    const where = `plugins[${index}] "${entry}"`;
    const before = issues.length;
    // Families first (standalone ones, then those carried by definitions), so a code collision is named as such.
    const families: ErrorFamily[] = [];
    for (const { v } of classified) {
      const d = v as Record<string, unknown>;
      if ((classified.find((x) => x.v === v)!.c as { kind: Kind }).kind === 'errors') families.push(v as ErrorFamily);
      else if (d.errors !== undefined) {
        if (!isObject(d.errors) || typeof d.errors.family !== 'string' || !isObject(d.errors.catalogue)) {
          issue('CONFIG_E_PLUGIN_SHAPE', `the errors of "${String(d.name ?? d.key ?? d.type)}" are not an error family (build them with errorFactory)`);
        } else families.push(d.errors as unknown as ErrorFamily);
      }
    }
    for (const fam of families) {
      if (origins.families.has(fam)) continue;
      const problem = familyCollision(fam, registry, origins);
      if (problem) {
        issue('CONFIG_E_PLUGIN_ERRORS', problem);
        continue;
      }
      try {
        registry.errors(fam);
      } catch (e) {
        issue('CONFIG_E_PLUGIN_ERRORS', thrownText(e));
        continue;
      }
      origins.families.add(fam);
      origins.family.set(fam.family, where);
      rec.errorFamilies.push(fam.family);
    }
    if (issues.length > before) continue;
    for (const { v, c } of classified) {
      const kind = (c as { kind: Kind }).kind;
      if (kind === 'errors') continue;
      const name = kind === 'plugin' ? (v as PluginDefinition).name : kind === 'source' ? (v as SourceDefinition).type : (v as SiteExtension).key;
      const taken = kind === 'plugin' ? registry.getPlugin(name) : kind === 'source' ? registry.getSource(name) : registry.extensions.find((x) => x.key === name);
      const label = kind === 'plugin' ? 'plugin' : kind === 'source' ? 'source type' : 'site extension';
      if (taken) {
        issue('CONFIG_E_PLUGIN_NAME', `${label} "${name}" is already registered by ${origins[kind].get(name) ?? 'a built-in'}: every name must have one owner`);
        continue;
      }
      if (kind === 'extension' && Object.hasOwn(coreSiteSchema.properties, name)) {
        issue('CONFIG_E_PLUGIN_NAME', `site extension "${name}" has the name of a core hisbridge.yaml key`);
        continue;
      }
      try {
        // The definition's own family is registered above; the registry skips the same object.
        if (kind === 'plugin') registry.plugin(v as PluginDefinition);
        else if (kind === 'source') registry.source(v as SourceDefinition);
        else registry.extension(v as SiteExtension);
      } catch (e) {
        issue(/also declared|registered twice/.test(String((e as Error).message)) ? 'CONFIG_E_PLUGIN_NAME' : 'CONFIG_E_PLUGIN_SHAPE', `${label} "${name}": ${thrownText(e)}`);
        continue;
      }
      origins[kind].set(name, where);
      (kind === 'plugin' ? rec.plugins : kind === 'source' ? rec.sources : rec.extensions).push(name);
    }
    loaded.push(rec);
  }
  if (issues.length) throw new LoadError(issues);
  return loaded;
}

/** Why `fam` cannot be registered: a code or family name core, a built-in or another module owns. */
function familyCollision(fam: ErrorFamily, registry: Registry, origins: Origins): string | undefined {
  const other = origins.family.get(fam.family);
  if (other) return `error family "${fam.family}" is already registered by ${other}`;
  for (const code of Object.keys(fam.catalogue)) {
    const owner = registry.errorCatalogue.lookup(code);
    if (owner) {
      const by = owner.family === 'core' ? 'core' : origins.family.get(owner.family) ?? `the built-in family "${owner.family}"`;
      return `error code ${code} of "${fam.family}" is already registered by ${by}: every code must have one owner`;
    }
  }
  return undefined;
}
