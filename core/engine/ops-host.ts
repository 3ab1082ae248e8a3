/**
 * Adapts the engine to the narrow `OpsHost` view, so engine.ts needs one line
 * to build its Ops and core/ops never imports the Engine class (no cycle).
 */
import type { SiteConfig } from '../config/site.js';
import type { Logger } from '../log.js';
import type { PluginDefinition, SiteExtension } from '../sdk.js';
import type { MllpServer } from '../mllp/server.js';
import type { RouteTable } from '../routes/matcher.js';
import type { Store } from '../store/sqlite.js';
import type { OpsHost } from '../ops/index.js';
import { siteSegments } from '../ops/console/hl7-dict.js';
import { remoteTargets } from '../ops/health.js';

/** The parts of the engine Ops reads. */
export interface EngineView {
  readonly config: SiteConfig;
  readonly store: Store;
  readonly log: Logger;
  readonly routes: RouteTable;
  /** Routes loaded inactive, with the reason. */
  readonly inactiveRoutes?: readonly { name: string; reason: string }[];
  readonly sections: Record<string, Record<string, unknown>>;
  /** The site extensions: each declares the remote its health probe reaches (`SiteExtension.health`). */
  readonly registry: { readonly extensions: readonly SiteExtension[]; readonly plugins: readonly PluginDefinition[] };
  readonly listeners: readonly { config: { name: string; host: string }; server: MllpServer; port?: number }[];
  health(): Record<string, unknown>;
}

export function engineOpsHost(e: EngineView, kick: () => void): OpsHost {
  return {
    store: e.store,
    log: e.log,
    ...(e.config.console ? { console: e.config.console } : {}),
    routes: () => e.routes.routes.map((r): ReturnType<OpsHost['routes']>[number] => ({
      name: r.name,
      events: [...r.events],
      sources: r.sources ? [...r.sources] : [],
      ack: r.ack,
      plugins: r.steps.flatMap((s) => (s.kind === 'plugin' ? [s.plugin] : [])),
    })).concat((e.inactiveRoutes ?? []).map((r) => ({ name: r.name, events: [], sources: [], ack: '', plugins: [], inactive: r.reason }))),
    listeners: () => e.listeners.map((l) => ({ name: l.config.name, host: l.config.host, ...(l.port !== undefined ? { port: l.port } : {}), connections: l.server.connectionCount })),
    remoteUrls: () => Object.fromEntries(e.registry.extensions.flatMap((ext) => {
      const section = e.sections[ext.key];
      if (!ext.health || !section) return [];
      const probe = ext.health(section);
      const urls = [probe?.url, ...(probe?.urls ?? [])].filter((u): u is string => typeof u === 'string');
      return Object.entries(remoteTargets(ext.key, urls));
    })),
    engineHealth: () => e.health(),
    kick,
    segments: () => siteSegments([...e.registry.plugins, ...e.registry.extensions]),
  };
}
