/**
 * Site config (hisbridge.yaml): listeners, HTTP, data directory, store,
 * logging, the core sections of other core modules (the table in
 * sections.ts: api, kafka, console) and one section per site extension.
 * Every key is optional; embedded defaults run without any file.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { JsonSchema, SiteExtension, SourceDefinition } from '../sdk.js';
import { durationSchema, parseDuration } from './duration.js';
import { LoadError, LoadIssue, checkInlineSecrets, loadYamlFile, resolveEnvRefs, yamlIssues } from './yaml-source.js';
import { validateAt } from './validate.js';
import { CORE_SECTIONS, coreSectionSchemas, type CoreSectionValues, type SectionContext } from './sections.js';
import { isHisbridgeError } from '../errors.js';
import { loadTlsOptions, tlsSchema, type TlsConfig, type TlsFileConfig } from './tls.js';

export interface ListenerConfig {
  name: string;
  /** The source type (`listeners[].type`): mllp when absent. The MLLP keys below are filled for every type. */
  type: string;
  /** The entry as written, with its resolved `name` (and `port` under `--mllp-port`): the source plugin's `ctx.config`. */
  options: Record<string, unknown>;
  host: string;
  port: number;
  /** Canonical or HL7 charset name used when MSH-18 is empty. */
  charset: string;
  maxFrameBytes: number;
  idleTimeoutMs: number;
  /** A frame started and not finished within this time is dropped and its connection closed (0 = never). */
  frameTimeoutMs: number;
  /** Open connections at most; extra ones are refused. */
  maxConnections: number;
  /** ACK code for a message no route accepts. */
  noRoute: 'AA' | 'AR';
  /** `tls:` block with absolute file paths (checked at load; read again by the engine with loadTlsOptions). */
  tls?: TlsConfig;
  /** Several messages in one MLLP block: process each (split) or answer AR to all (reject). */
  multiMessageBlocks: 'split' | 'reject';
  /** Bytes invalid in the message's charset: answer AE (reject) or keep them as U+FFFD and mark the message (replace). */
  invalidBytes: 'reject' | 'replace';
}

export interface StoreConfig {
  synchronous: 'FULL' | 'NORMAL';
  retentionDays: number;
  metadataRetentionDays: number;
  idempotencyWindowMs: number;
  highWaterMark: number;
  /** What the listener does past the high-water mark: stop reading (default) or answer AE/CE. */
  overload: 'pause' | 'reject';
  groupCommitMs: number;
}

export interface SiteConfig extends CoreSectionValues {
  /** File the config came from, if any. */
  file?: string;
  /**
   * Where a key is written in the file (for checks made after load, e.g.
   * `delivery.pluginConcurrency` against the registry's plugins); absent
   * without a file.
   */
  positionOf?(path: readonly (string | number)[]): { file: string; line: number; col: number };
  listeners: ListenerConfig[];
  /** `tls` paths are absolute (resolved against the config file's directory). */
  http: { host: string; port: number; enabled: boolean; tls?: TlsFileConfig; maxConnections: number; headersTimeoutMs: number; requestTimeoutMs: number };
  dataDir: string;
  routesDir: string;
  /** `tablesDir:` as written (absolute); absent = `tables/` beside the routes folder (core/routes/tables.ts). */
  tablesDir?: string;
  log: { level: string };
  simulators: boolean;
  /** `simulatorPorts:` per extension key; the others derive from the HTTP port (core/engine/sim-ports.ts). */
  simulatorPorts?: Record<string, number>;
  store: StoreConfig;
  /** `pluginConcurrency`: per plugin name, deliveries running at once at most (over the plugin's own `concurrency`). */
  delivery: { concurrency: number; pollMs: number; pluginConcurrency?: Record<string, number> };
  /** Sections owned by site extensions as written in the file (the engine applies the extension defaults). */
  sections: Record<string, Record<string, unknown>>;
}

/** One `type: mllp` listener entry (also the entry without `type:`); plugins/source-mllp's config schema. */
export const mllpListenerSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { const: 'mllp', description: 'Source type: mllp (the default when absent)' },
    name: { type: 'string', pattern: '^[a-z][a-z0-9-]*$', description: 'Name routes use in `sources:`' },
    host: { type: 'string', description: 'Bind address (default 127.0.0.1)' },
    port: { type: 'integer', minimum: 0, maximum: 65535 },
    charset: { type: 'string', description: 'Charset for senders that leave MSH-18 empty (default gb18030)' },
    maxFrameBytes: { type: 'integer', minimum: 1024, description: 'Largest accepted MLLP frame (default 16 MiB)' },
    idleTimeout: { ...durationSchema, description: 'Close connections that completed no frame and got no reply this long (default 10m; 0 = never). Bytes of an unfinished frame do not count' },
    frameTimeout: { ...durationSchema, description: 'Drop a frame started and not finished this long after its start block, and close the connection (default 30s; 0 = never)' },
    maxConnections: { type: 'integer', minimum: 1, description: 'Open connections at most; extra ones are closed at once, with a rate-limited warning and a metric (default 512)' },
    noRoute: { enum: ['AA', 'AR'], description: 'ACK for a message no route accepts (default AA: accepted and ignored)' },
    tls: tlsSchema,
    multiMessageBlocks: { enum: ['split', 'reject'], description: 'Several messages in one MLLP block: split processes each, in order, with one ACK frame each (default); reject answers AR to each and routes none. Batches (FHS/BHS) are always processed.' },
    invalidBytes: { enum: ['reject', 'replace'], description: 'Bytes invalid in the declared charset: reject answers AE with ERR-3 102 naming the segment and field (default); replace keeps them as U+FFFD, logs a warning and marks the message' },
  },
} as const;

/** Schema of the core keys; the core sections (sections.ts) and extension sections are added by `siteSchema()`. */
export const coreSiteSchema = {
  $id: 'https://hisbridge.local/schemas/hisbridge.schema.json',
  title: 'hisbridge site config (hisbridge.yaml)',
  type: 'object',
  additionalProperties: false,
  properties: {
    listeners: { type: 'array', items: mllpListenerSchema, description: 'Listeners: MLLP (default: one named "mllp" on 127.0.0.1:2575), and any other registered source type' },
    http: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string' },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        enabled: { type: 'boolean' },
        tls: { ...tlsSchema, description: 'Serve HTTPS: { cert, key, ca?, requestCert? } (PEM file paths); the console cookie then gets Secure' },
        maxConnections: { type: 'integer', minimum: 1, description: 'Open HTTP connections at most (default 1024); more are closed at once, counted and logged' },
        headersTimeout: { ...durationSchema, description: 'Time a client has to send the whole header block of a request; else 408 and the connection is closed (default 10s)' },
        requestTimeout: { ...durationSchema, description: 'Time a client has to send the whole request, body included; else 408 and the connection is closed (default 120s; not shorter than headersTimeout)' },
      },
    },
    dataDir: { type: 'string', description: 'Directory of the durable store (default ./data)' },
    routesDir: { type: 'string', description: 'Directory of route files (default ./routes)' },
    tablesDir: { type: 'string', description: 'Directory of code tables, <name>.csv (default: tables/ beside the routes folder)' },
    log: { type: 'object', additionalProperties: false, properties: { level: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] } } },
    simulators: { type: 'boolean', description: 'Start the built-in simulators of the remote platforms and point the defaults at them' },
    simulatorPorts: {
      type: 'object',
      additionalProperties: { type: 'integer', minimum: 0, maximum: 65535 },
      description: 'Port of a simulator by site extension key (e.g. <section>: 9481); default: the HTTP port + 1, + 2... in extension order (8481, 8482 with HTTP on 8480)',
    },
    store: {
      type: 'object',
      additionalProperties: false,
      properties: {
        synchronous: { enum: ['FULL', 'NORMAL'], description: 'SQLite durability (default FULL): FULL keeps every ACKed message through a power cut; NORMAL only through a process crash, about 3x faster' },
        retentionDays: { type: 'number', minimum: 1, description: 'Delivered message bodies are purged after this many days (default 30)' },
        metadataRetentionDays: { type: 'number', description: 'Delivery metadata and audit kept this long; at least 180 (docs/operations.md#audit-retention)' },
        idempotencyWindow: durationSchema,
        highWaterMark: { type: 'integer', minimum: 1, description: 'Pending deliveries above which listeners stop reading (default 100000)' },
        overload: { enum: ['pause', 'reject'] },
        groupCommit: { ...durationSchema, description: 'Wait this long to gather a group commit (default 0: everything that arrived in the same event-loop turn)' },
      },
    },
    delivery: {
      type: 'object',
      additionalProperties: false,
      properties: {
        concurrency: { type: 'integer', minimum: 1, maximum: 1024 },
        poll: durationSchema,
        pluginConcurrency: {
          type: 'object',
          propertyNames: { pattern: '^[a-z][a-z0-9-]*$' },
          additionalProperties: { type: 'integer', minimum: 1, maximum: 1024 },
          description: 'Deliveries of one plugin running at once, at most, by plugin name (e.g. <plugin>: 2); overrides the plugin\'s own limit. Default: the plugin\'s declared limit, else only delivery.concurrency',
        },
      },
    },
    plugins: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      description: 'External plugin modules (.mjs/.js), paths relative to this file: each default-exports plugins, sources, site extensions or error families, or a function (sdk) => those (docs/plugins.md)',
    },
  },
} as const;

/**
 * The site schema. With `sources` (the registry's source plugins), a
 * listener entry is checked against its type's schema: `editor` gives the
 * if/then form for editors (schemas/hisbridge.schema.json); the loader
 * checks only `type` here and each entry on its own (`listenerIssues`), for
 * precise file:line:col errors.
 */
export function siteSchema(extensions: readonly SiteExtension[], sources?: readonly SourceDefinition[], form: 'editor' | 'load' = 'editor'): JsonSchema {
  const properties: Record<string, unknown> = { ...coreSiteSchema.properties, ...coreSectionSchemas() };
  for (const ext of extensions) properties[ext.key] = { ...ext.configSchema, description: ext.summary };
  const types = listenerTypes(sources);
  if (types.length > 1 || form === 'load') {
    const typeProp = { enum: types, description: `Source type: ${types.join(', ')} (default mllp)` };
    const items = form === 'load'
      ? { type: 'object', properties: { type: typeProp } }
      : {
        type: 'object',
        properties: { type: typeProp },
        allOf: types.map((t) => ({
          if: t === 'mllp' ? { not: { required: ['type'] } } : { required: ['type'], properties: { type: { const: t } } },
          then: listenerSchemaOf(t, sources),
        })),
      };
    properties.listeners = { ...coreSiteSchema.properties.listeners, items };
  }
  return { ...coreSiteSchema, properties };
}

/** The listener types known: mllp always, then the registered listener sources (kafka is its own section). */
function listenerTypes(sources: readonly SourceDefinition[] | undefined): string[] {
  return ['mllp', ...(sources ?? []).map((s) => s.type).filter((t) => t !== 'mllp' && t !== 'kafka')];
}

function listenerSchemaOf(type: string, sources: readonly SourceDefinition[] | undefined): JsonSchema {
  return (sources?.find((s) => s.type === type)?.configSchema as JsonSchema | undefined) ?? (mllpListenerSchema as unknown as JsonSchema);
}

/** Resolves the PEM paths of a listener's `tls:` block and reads them once, so a missing file fails at load. */
function listenerTls(t: TlsConfig, baseDir: string, file: string | undefined, i: number): TlsConfig {
  const abs = (p: string) => (path.isAbsolute(p) ? p : path.resolve(baseDir, p));
  const resolved: TlsConfig = { cert: abs(t.cert), key: abs(t.key), ...(t.ca ? { ca: abs(t.ca) } : {}), ...(t.requestCert !== undefined ? { requestCert: t.requestCert } : {}) };
  try {
    loadTlsOptions(resolved);
  } catch (e) {
    const pos = { file: file ?? '<defaults>', line: 1, col: 1 };
    throw new LoadError([new LoadIssue(pos, `listeners[${i}].${isHisbridgeError(e) ? e.message : String(e)}`, 'CONFIG_E_SCHEMA')]);
  }
  return resolved;
}

/**
 * One MLLP listener entry with its defaults applied and its TLS files
 * resolved against `baseDir` and read once (a missing file fails here).
 * Used by the loader and by plugins/source-mllp on its `ctx.config`.
 */
export function parseMllpListener(l: Raw, baseDir: string, file?: string, index = 0): Omit<ListenerConfig, 'type' | 'options'> {
  return {
    name: l.name ?? (index === 0 ? 'mllp' : `mllp-${index + 1}`),
    host: l.host ?? '127.0.0.1',
    port: l.port ?? 2575,
    charset: l.charset ?? 'gb18030',
    maxFrameBytes: l.maxFrameBytes ?? 16 * 1024 * 1024,
    idleTimeoutMs: parseDuration(l.idleTimeout, 10 * 60_000),
    frameTimeoutMs: parseDuration(l.frameTimeout, 30_000),
    maxConnections: l.maxConnections ?? 512,
    noRoute: l.noRoute ?? 'AA',
    ...(l.tls ? { tls: listenerTls(l.tls as TlsConfig, baseDir, file, index) } : {}),
    multiMessageBlocks: l.multiMessageBlocks ?? 'split',
    invalidBytes: l.invalidBytes ?? 'reject',
  };
}

export interface SiteOverrides {
  routesDir?: string;
  dataDir?: string;
  mllpPort?: number;
  httpPort?: number;
  simulators?: boolean;
  logLevel?: string;
}

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Loads and validates the site config. With no file, embedded defaults apply.
 * Throws LoadError with file:line:col issues.
 */
export function loadSiteConfig(
  file: string | undefined,
  extensions: readonly SiteExtension[],
  overrides: SiteOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
  /** The registry's source plugins (listener types besides mllp); without them only MLLP listeners are known. */
  sources?: readonly SourceDefinition[],
): SiteConfig {
  let raw: Raw = {};
  let src: ReturnType<typeof loadYamlFile> | undefined;
  if (file) {
    src = loadYamlFile(file);
    const issues = yamlIssues(src);
    if (issues.length) throw new LoadError(issues);
    resolveEnvRefs(src, env, issues);
    checkInlineSecrets(src, issues);
    const data = (src.doc.toJS() ?? {}) as Raw;
    if (typeof data !== 'object' || Array.isArray(data)) {
      throw new LoadError([new LoadIssue({ file, line: 1, col: 1 }, 'site config must be a mapping', 'CONFIG_E_SCHEMA')]);
    }
    issues.push(...validateAt(siteSchema(extensions, sources, 'load'), data, src, []));
    if (issues.length) throw new LoadError(issues);
    // Each listener entry against its own type's schema, positioned in the file.
    const entries = Array.isArray(data.listeners) ? (data.listeners as Raw[]) : [];
    entries.forEach((l, i) => {
      const type = typeof l?.type === 'string' ? l.type : 'mllp';
      issues.push(...validateAt(listenerSchemaOf(type, sources), l, src!, ['listeners', i]));
    });
    if (issues.length) throw new LoadError(issues);
    raw = data;
  }
  const baseDir = file ? path.dirname(path.resolve(file)) : process.cwd();
  const rel = (p: string) => (path.isAbsolute(p) ? p : path.resolve(baseDir, p));
  const simulators = overrides.simulators ?? (raw.simulators as boolean | undefined) ?? true;
  const simulatorPorts = raw.simulatorPorts as Record<string, number> | undefined;
  if (simulatorPorts) {
    const known = extensions.filter((x) => x.simulator).map((x) => x.key);
    const unknown = Object.keys(simulatorPorts).filter((k) => !known.includes(k));
    if (unknown.length) {
      throw new LoadError(unknown.map((k) => new LoadIssue(src && file ? src.posOf(['simulatorPorts', k], true) : { file: '<defaults>', line: 1, col: 1 }, `simulatorPorts.${k}: no simulator of that name (known: ${known.join(', ') || 'none'})`, 'CONFIG_E_SCHEMA')));
    }
  }

  const listeners: ListenerConfig[] = ((raw.listeners as Raw[] | undefined) ?? [{}]).map((l, i) => {
    const name = (l.name as string | undefined) ?? (i === 0 ? 'mllp' : `mllp-${i + 1}`);
    return { ...parseMllpListener({ ...l, name }, baseDir, file, i), type: (l.type as string | undefined) ?? 'mllp', options: { ...l, name } };
  });
  // A listener name is what routes list in `sources:` and what a file source keys its
  // progress logs by (<dataDir>/sources/<name>/): two listeners may not share one.
  const nameIssues: LoadIssue[] = [];
  listeners.forEach((l, i) => {
    const first = listeners.findIndex((o) => o.name === l.name);
    if (first === i) return;
    const pos = src && file ? src.posOf(typeof (raw.listeners as Raw[] | undefined)?.[i]?.name === 'string' ? ['listeners', i, 'name'] : ['listeners', i], false) : { file: '<defaults>', line: 1, col: 1 };
    nameIssues.push(new LoadIssue(pos, `listeners[${i}].name "${l.name}" is already the name of listeners[${first}]: each listener needs its own name`, 'CONFIG_E_SCHEMA'));
  });
  // A listener mounted on the engine's HTTP server cannot work with HTTP off: said at load (validate too), not at start.
  if ((raw.http?.enabled ?? true) === false) {
    listeners.forEach((l, i) => {
      if (l.type !== 'http') return;
      const pos = src && file ? src.posOf(['listeners', i, 'type'], false) : { file: '<defaults>', line: 1, col: 1 };
      nameIssues.push(new LoadIssue(pos, `listeners[${i}] "${l.name}" (type http) is mounted on the engine's HTTP server, but http.enabled is false`, 'CONFIG_E_SCHEMA'));
    });
  }
  if (nameIssues.length) throw new LoadError(nameIssues);
  // --mllp-port: the first MLLP listener.
  const firstMllp = listeners.find((l) => l.type === 'mllp');
  if (overrides.mllpPort !== undefined && firstMllp) {
    firstMllp.port = overrides.mllpPort;
    firstMllp.options.port = overrides.mllpPort;
  }

  const store: StoreConfig = {
    synchronous: raw.store?.synchronous ?? 'FULL',
    retentionDays: raw.store?.retentionDays ?? 30,
    metadataRetentionDays: raw.store?.metadataRetentionDays ?? 180,
    idempotencyWindowMs: parseDuration(raw.store?.idempotencyWindow, 24 * 3_600_000),
    highWaterMark: raw.store?.highWaterMark ?? 100_000,
    overload: raw.store?.overload ?? 'pause',
    groupCommitMs: parseDuration(raw.store?.groupCommit, 0),
  };
  if (store.metadataRetentionDays < 180) {
    const pos = file ? { file, line: 1, col: 1 } : { file: '<defaults>', line: 1, col: 1 };
    throw new LoadError([new LoadIssue(pos, 'store.metadataRetentionDays must be at least 180: the provincial platform requires access, call and operation logs kept at least 6 months (docs/operations.md#audit-retention)', 'CONFIG_E_RETENTION')]);
  }

  // Defaults are merged by the engine once simulator URLs are known.
  const sections: Record<string, Record<string, unknown>> = {};
  for (const ext of extensions) sections[ext.key] = { ...((raw[ext.key] as Raw | undefined) ?? {}) };

  // The core sections (sections.ts), in table order; their problems are reported at the top of the file.
  const sectionCtx: SectionContext = {
    listenerNames: listeners.map((l) => l.name),
    httpTls: Boolean(raw.http?.tls),
    at: (p, atKey) => (src && file ? src.posOf(p, atKey) : { file: '<defaults>', line: 1, col: 1 }),
  };
  const coreValues: Record<string, unknown> = {};
  const sectionIssues: LoadIssue[] = [];
  for (const section of CORE_SECTIONS) {
    const value = section.parse(raw[section.key] as Raw | undefined, sectionCtx);
    if (value === undefined) continue;
    coreValues[section.key] = value;
    const pos = file ? { file, line: 1, col: 1 } : { file: '<defaults>', line: 1, col: 1 };
    for (const p of section.problems?.(value as never, sectionCtx) ?? []) sectionIssues.push(new LoadIssue(pos, p, 'CONFIG_E_SCHEMA'));
  }
  // Site extensions' own checks of their written section, at file:line:col.
  for (const ext of extensions) {
    if (!ext.problems || raw[ext.key] === undefined) continue;
    for (const p of ext.problems(raw[ext.key] as Raw)) sectionIssues.push(new LoadIssue(sectionCtx.at([ext.key, ...p.path]), p.message, 'CONFIG_E_SCHEMA'));
  }
  if (sectionIssues.length) throw new LoadError(sectionIssues);
  const rawTls = raw.http?.tls as TlsFileConfig | undefined;
  const tls: TlsFileConfig | undefined = rawTls
    ? { cert: rel(rawTls.cert), key: rel(rawTls.key), ...(rawTls.ca ? { ca: rel(rawTls.ca) } : {}), ...(rawTls.requestCert !== undefined ? { requestCert: rawTls.requestCert } : {}) }
    : undefined;
  if (tls) {
    // Read the PEM files now, so a wrong path stops the start with file:line:col instead of failing half-started.
    try {
      loadTlsOptions(tls);
    } catch (e) {
      const key = /^tls\.(\w+)/.exec((e as Error).message)?.[1] ?? 'cert';
      const pos = src && file ? src.posOf(['http', 'tls', key], false) : { file: '<defaults>', line: 1, col: 1 };
      throw new LoadError([new LoadIssue(pos, `http.${(e as Error).message}`, 'CONFIG_E_SCHEMA')]);
    }
  }

  const httpLimits = {
    maxConnections: (raw.http?.maxConnections as number | undefined) ?? 1024,
    headersTimeoutMs: parseDuration(raw.http?.headersTimeout, 10_000),
    requestTimeoutMs: parseDuration(raw.http?.requestTimeout, 120_000),
  };
  {
    const at = (key: string) => (src && file ? src.posOf(['http', key], false) : { file: '<defaults>', line: 1, col: 1 });
    const limitIssues: LoadIssue[] = [];
    if (httpLimits.headersTimeoutMs < 1) limitIssues.push(new LoadIssue(at('headersTimeout'), 'http.headersTimeout must be at least 1ms', 'CONFIG_E_SCHEMA'));
    if (httpLimits.requestTimeoutMs < 1) limitIssues.push(new LoadIssue(at('requestTimeout'), 'http.requestTimeout must be at least 1ms', 'CONFIG_E_SCHEMA'));
    else if (httpLimits.headersTimeoutMs > httpLimits.requestTimeoutMs) {
      limitIssues.push(new LoadIssue(at(raw.http?.headersTimeout !== undefined ? 'headersTimeout' : 'requestTimeout'), `http.headersTimeout (${httpLimits.headersTimeoutMs}ms) must not be longer than http.requestTimeout (${httpLimits.requestTimeoutMs}ms)`, 'CONFIG_E_SCHEMA'));
    }
    if (limitIssues.length) throw new LoadError(limitIssues);
  }

  const routesDefault = existsSync(path.resolve(baseDir, 'routes')) ? path.resolve(baseDir, 'routes') : path.resolve(process.cwd(), 'routes');
  return {
    ...(file ? { file } : {}),
    ...(src && file ? { positionOf: (p: readonly (string | number)[]) => src.posOf(p, true) } : {}),
    listeners,
    http: {
      host: raw.http?.host ?? '127.0.0.1',
      port: overrides.httpPort ?? raw.http?.port ?? 8480,
      enabled: raw.http?.enabled ?? true,
      ...(tls ? { tls } : {}),
      ...httpLimits,
    },
    ...(coreValues as unknown as CoreSectionValues),
    dataDir: overrides.dataDir ? path.resolve(overrides.dataDir) : rel(raw.dataDir ?? './data'),
    routesDir: overrides.routesDir ? path.resolve(overrides.routesDir) : raw.routesDir ? rel(raw.routesDir) : routesDefault,
    ...(raw.tablesDir ? { tablesDir: rel(raw.tablesDir) } : {}),
    log: { level: overrides.logLevel ?? raw.log?.level ?? 'info' },
    simulators,
    ...(simulatorPorts ? { simulatorPorts: { ...simulatorPorts } } : {}),
    store,
    delivery: {
      concurrency: raw.delivery?.concurrency ?? 16,
      pollMs: parseDuration(raw.delivery?.poll, 200),
      ...(raw.delivery?.pluginConcurrency ? { pluginConcurrency: { ...(raw.delivery.pluginConcurrency as Record<string, number>) } } : {}),
    },
    sections,
  };
}
