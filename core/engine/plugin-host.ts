/**
 * The plugin side of an engine (issue 14): the site sections with their
 * extension defaults, the simulators, the contexts plugins and extensions
 * receive, the extension services, the workstation endpoints, the route set
 * with its inactive-route decisions, and the per-plugin concurrency limits.
 * The Engine (engine.ts) only wires this to the store, the sources and the
 * HTTP server.
 *
 * The CLI tools that load routes without running an engine (validate, route
 * tests) use `offlineContext` and `unconfiguredSite` from here, so both follow
 * the same rules as a running engine.
 */
import { LoadIssue } from '../config/yaml-source.js';
import type { SiteConfig } from '../config/site.js';
import { hbError, type HisbridgeError } from '../errors.js';
import { createHttpClient } from '../http/client.js';
import { KafkaSource } from '../kafka/source.js';
import { silentLogger } from '../log.js';
import { listRouteFiles, loadRoutes, type InactiveRoute } from '../routes/loader.js';
import { tablesDirFor } from '../routes/tables.js';
import type { CompiledRoute } from '../routes/types.js';
import type { Registry } from '../registry.js';
import type { AuditEntry, HttpClient, HttpEndpoint, Logger, PluginContext, PluginDefinition, PluginState, RunningSimulator, SiteExtension } from '../sdk.js';
import { simulatorPort } from './sim-ports.js';

/**
 * The rule for "this site is not connected to that platform": the
 * simulators are off and the site config has no `<key>:` section (or an empty
 * one). A route whose plugin needs such a section loads inactive instead of
 * refusing the start (unless it says `required: true`). One rule for the
 * engine and for `hisbridge validate`.
 */
export function unconfiguredSite(config: Pick<SiteConfig, 'simulators' | 'sections'>): (siteKey: string) => boolean {
  return (key) => !config.simulators && Object.keys(config.sections[key] ?? {}).length === 0;
}

/** A site extension's section as its plugins see it: the extension's defaults (pointing at `simulatorUrl` when given), then what the site wrote. */
export function siteSection(ext: SiteExtension, config: Pick<SiteConfig, 'sections'>, simulatorUrl?: string): Record<string, unknown> {
  return { ...ext.defaults(simulatorUrl ? { simulatorUrl } : {}), ...(config.sections[ext.key] ?? {}) };
}

/**
 * Core sections that plugins may name as their `siteKey`: `kafka` (the shared
 * connection kafka-publish reads), when the site configures it.
 */
export function coreSiteSections(config: Pick<SiteConfig, 'kafka'>): Record<string, Record<string, unknown>> {
  return config.kafka ? { kafka: { ...config.kafka } } : {};
}

/**
 * The effective per-plugin concurrency limits: each plugin's declared
 * `concurrency`, overridden by the site's `delivery.pluginConcurrency`.
 * Plugins with neither are absent (bounded by `delivery.concurrency` only).
 */
export function pluginConcurrency(registry: Pick<Registry, 'plugins'>, config: Pick<SiteConfig, 'delivery'>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of registry.plugins) if (p.concurrency !== undefined) out[p.name] = p.concurrency;
  for (const [name, n] of Object.entries(config.delivery.pluginConcurrency ?? {})) out[name] = n;
  return out;
}

/** `delivery.pluginConcurrency` naming a plugin the registry does not know (a typo would silently limit nothing): one issue each, at the key. */
export function pluginConcurrencyIssues(registry: Pick<Registry, 'getPlugin' | 'plugins'>, config: Pick<SiteConfig, 'delivery' | 'file' | 'positionOf'>): LoadIssue[] {
  const known = registry.plugins.map((p) => p.name);
  return Object.keys(config.delivery.pluginConcurrency ?? {}).filter((name) => !registry.getPlugin(name)).map((name) => new LoadIssue(
    config.positionOf?.(['delivery', 'pluginConcurrency', name]) ?? { file: config.file ?? '<defaults>', line: 1, col: 1 },
    `delivery.pluginConcurrency.${name}: no plugin of that name (known: ${known.join(', ')})`,
    'CONFIG_E_SCHEMA',
  ));
}

/**
 * Extension services of one engine (or one offline tool run): each created
 * once, on first use, with the extension's context; closed at `close()`.
 */
export class ExtensionServices {
  readonly #registry: Pick<Registry, 'extensions'>;
  readonly #contextOf: (ext: SiteExtension) => PluginContext;
  readonly #made = new Map<string, unknown>();
  #closed = false;

  constructor(registry: Pick<Registry, 'extensions'>, contextOf: (ext: SiteExtension) => PluginContext) {
    this.#registry = registry;
    this.#contextOf = contextOf;
  }

  get<T>(key: string): T {
    if (this.#made.has(key)) return this.#made.get(key) as T;
    const ext = this.#registry.extensions.find((x) => x.key === key);
    if (!ext?.service) {
      const known = this.#registry.extensions.filter((x) => x.service).map((x) => x.key);
      throw hbError('PLUGIN_E_NO_SERVICE', { key, known: known.join(', ') || 'none' });
    }
    if (this.#closed) throw hbError('ENGINE_E_SHUTTING_DOWN');
    // A throw (an incomplete section) keeps nothing: the next call tries again.
    const made = ext.service(this.#contextOf(ext));
    this.#made.set(key, made);
    return made as T;
  }

  /** Closes every service made (those with a `close()`), once; later `get` calls throw ENGINE_E_SHUTTING_DOWN. */
  async close(log?: Logger): Promise<void> {
    this.#closed = true;
    const made = [...this.#made];
    this.#made.clear();
    await Promise.all(made.map(async ([key, svc]) => {
      const close = (svc as { close?: unknown } | null)?.close;
      if (typeof close !== 'function') return;
      try {
        await (close as () => unknown).call(svc);
      } catch (e) {
        log?.error({ extension: key, err: { message: (e as Error).message } }, 'extension service close failed');
      }
    }));
  }
}

export interface PluginHostOptions {
  config: SiteConfig;
  registry: Registry;
  log: Logger;
  http: HttpClient;
  /** Aborted when the engine shuts down. */
  signal: AbortSignal;
  /** Where audit rows go. */
  audit(entry: AuditEntry): void;
  /** The durable key/value state of one namespace. */
  state(namespace: string): PluginState;
}

export class PluginHost {
  /** Resolved site sections (defaults + file), keyed by extension key, plus the core sections plugins may read (`kafka`). */
  readonly sections: Record<string, Record<string, unknown>> = {};
  readonly simulators: Record<string, RunningSimulator> = {};
  readonly #o: PluginHostOptions;
  readonly #services: ExtensionServices;

  constructor(opts: PluginHostOptions) {
    this.#o = opts;
    Object.assign(this.sections, coreSiteSections(opts.config));
    this.#services = new ExtensionServices(opts.registry, (ext) => this.contextFor({ name: ext.key, siteKey: ext.key }));
  }

  /**
   * Starts the simulators (when the site turns them on) and resolves every
   * extension's section, pointing the defaults at its simulator. 'random'
   * binds the simulators to port 0 (tests, replay); 'default' derives the
   * ports from the HTTP port (sim-ports.ts). A bind failure is ENGINE_E_LISTEN
   * naming the simulator; the ones already started are closed.
   */
  async start(ports: 'default' | 'random'): Promise<void> {
    const { config, registry, log } = this.#o;
    try {
      for (const ext of registry.extensions) {
        if (config.simulators && ext.simulator) {
          // The simulator must verify with the same (demo) credentials the plugins get once pointed at it; its own URL is not known yet.
          const port = ports === 'random' ? 0 : simulatorPort(config, registry.extensions, ext.key);
          const sim = await ext.simulator.start({
            host: '127.0.0.1',
            port,
            site: siteSection(ext, config, 'http://127.0.0.1'),
            log: log.child({ simulator: ext.key }),
          }).catch((e: unknown) => {
            throw listenError(`simulator ${ext.key}`, '127.0.0.1', port, e);
          });
          this.simulators[ext.key] = sim;
          log.info({ simulator: ext.key, url: sim.url }, 'simulator started');
          this.sections[ext.key] = siteSection(ext, config, sim.url);
        } else {
          this.sections[ext.key] = siteSection(ext, config);
        }
      }
    } catch (e) {
      await this.#closeSimulators();
      throw e;
    }
  }

  /** The context a plugin or extension receives; its state lives under `stateNamespace` when given, else under its name. */
  contextFor(def: { name: string; siteKey?: string; stateNamespace?: string }, route?: string): PluginContext {
    const { log, http, signal } = this.#o;
    return {
      log: log.child({ plugin: def.name, ...(route ? { route } : {}) }),
      http,
      signal,
      site: def.siteKey ? this.sections[def.siteKey] ?? {} : {},
      audit: (entry) => this.#o.audit({ ...(route && !entry.route ? { route } : {}), ...entry }),
      state: this.#o.state(def.stateNamespace ?? def.name),
      service: <T>(key: string) => this.#services.get<T>(key),
    };
  }

  /**
   * Loads the route files. A route whose plugin needs a site section the
   * site does not configure (`unconfiguredSite`) comes back in `inactive`
   * instead of refusing the set. Throws LoadError on any other problem.
   */
  async loadRoutes(inputs: readonly string[]): Promise<{ routes: CompiledRoute[]; inactive: InactiveRoute[] }> {
    const { config, registry } = this.#o;
    const inactive: InactiveRoute[] = [];
    const routes = await loadRoutes(listRouteFiles(inputs), {
      registry,
      contextFor: (def: PluginDefinition, route: string) => this.contextFor(def, route),
      sources: [...config.listeners.map((l) => l.name), ...KafkaSource.sourceNames(config.kafka)],
      unconfiguredSite: unconfiguredSite(config),
      onInactive: (r) => inactive.push(r),
      tablesDir: tablesDirFor(inputs, config.tablesDir),
    });
    return { routes, inactive };
  }

  /**
   * The workstation endpoints of the extensions. An extension whose section
   * is incomplete (a platform this site is not connected to) mounts none,
   * with one warning; the engine runs.
   */
  async endpoints(): Promise<HttpEndpoint[]> {
    const out: HttpEndpoint[] = [];
    for (const ext of this.#o.registry.extensions) {
      if (!ext.endpoints) continue;
      try {
        out.push(...(await ext.endpoints(this.contextFor({ name: ext.key, siteKey: ext.key }))));
      } catch (e) {
        this.#o.log.warn({ extension: ext.key, code: (e as HisbridgeError).code, reason: (e as Error).message }, 'workstation API not mounted: site section incomplete');
      }
    }
    return out;
  }

  /** Per-plugin delivery limits: declared by the plugins, overridden by `delivery.pluginConcurrency`. */
  concurrency(): Record<string, number> {
    return pluginConcurrency(this.#o.registry, this.#o.config);
  }

  /** Closes the extension services, then the simulators. Call after the routes are closed. */
  async close(): Promise<void> {
    await this.#services.close(this.#o.log);
    await this.#closeSimulators();
  }

  async #closeSimulators(): Promise<void> {
    await Promise.allSettled(Object.values(this.simulators).map((s) => s.close()));
  }
}

class MemoryState implements PluginState {
  readonly #m = new Map<string, unknown>();
  async get<T>(k: string) {
    return this.#m.get(k) as T | undefined;
  }
  async set(k: string, v: unknown) {
    this.#m.set(k, v);
  }
  async delete(k: string) {
    this.#m.delete(k);
  }
}

/**
 * A plugin context for load-time checks (validate, test tooling): no store,
 * audit rows dropped, state in memory, site sections with embedded defaults
 * (pointing at where `hisbridge start` would run the simulators, or without
 * them when the config turns the simulators off), services shared by the
 * contexts of one call.
 */
export function offlineContext(reg: Registry, config: SiteConfig, log: Logger = silentLogger()): (def: { name: string; siteKey?: string }) => PluginContext {
  const http = createHttpClient();
  const signal = new AbortController().signal;
  const core = coreSiteSections(config);
  const sectionOf = (key: string | undefined): Record<string, unknown> => {
    const ext = key ? reg.extensions.find((x) => x.key === key) : undefined;
    if (ext) return siteSection(ext, config, config.simulators && ext.simulator ? `http://127.0.0.1:${simulatorPort(config, reg.extensions, ext.key)}` : undefined);
    return key ? core[key] ?? {} : {};
  };
  const make = (def: { name: string; siteKey?: string }): PluginContext => ({
    log, http, signal, site: sectionOf(def.siteKey), audit: () => undefined, state: new MemoryState(),
    service: <T>(key: string) => services.get<T>(key),
  });
  const services: ExtensionServices = new ExtensionServices(reg, (ext) => make({ name: ext.key, siteKey: ext.key }));
  return make;
}

/** A bind failure that names what could not listen, and where. */
export function listenError(what: string, host: string, port: number, e: unknown): HisbridgeError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const detail = code === 'EADDRINUSE' ? 'address already in use' : code === 'EACCES' ? 'permission denied' : code ?? (e instanceof Error ? e.message : String(e));
  return hbError('ENGINE_E_LISTEN', { what, host, port, detail }, { cause: e });
}
