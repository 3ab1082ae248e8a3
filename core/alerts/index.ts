/**
 * Alerts (issue 16): the engine starts one evaluator when hisbridge.yaml
 * has an `alerts:` section with rules, and stops it first on shutdown.
 * `startAlerts` adapts the engine to the evaluator's narrow `AlertHost`, so
 * the engine needs two lines and core/alerts never imports the Engine class.
 */
import type { SiteConfig } from '../config/site.js';
import type { Logger } from '../log.js';
import type { RunningSource } from '../sdk.js';
import type { Store } from '../store/sqlite.js';
import type { OpsHealth } from '../ops/index.js';
import { AlertEvaluator, type AlertHost, type EvaluatorOptions } from './evaluator.js';

export { AlertEvaluator, type AlertHost } from './evaluator.js';
export { AlertSender, buildRequest, dingtalkSign, markdownText, type AlertMessage, type SendResult } from './send.js';
export { alertsSchema, parseAlertsConfig, type AlertsConfig, type AlertRule, type AlertTarget } from './config.js';

/** The parts of the engine the alerts read. */
export interface AlertsEngineView {
  readonly config: SiteConfig;
  readonly log: Logger;
  readonly store: Store;
  readonly sources: readonly { name: string; type: string; running: RunningSource }[];
  readonly registry: { readonly errorCatalogue: { isRetryable(code: string): boolean | undefined } };
  readonly ops: {
    health(): OpsHealth;
    readonly metrics: { readonly registry: { getSingleMetric(name: string): { get(): Promise<{ values: { labels: Partial<Record<string, string | number>>; value: number }[] }> } | undefined } };
  };
}

export function alertHost(e: AlertsEngineView): AlertHost {
  return {
    log: e.log.child({ component: 'alerts' }),
    dataDir: e.config.dataDir,
    audit: (entry) => e.store.audit(entry),
    state: e.store.pluginState('alerts'),
    health: () => {
      const h = e.ops.health();
      // A platform this site is not connected to (simulators off, no section: its routes load inactive) is not watched.
      const connected = (key: string) => e.config.simulators || Object.keys(e.config.sections[key] ?? {}).length > 0;
      return { store: h.store, remotes: Object.fromEntries(Object.entries(h.remotes).filter(([k]) => connected(k))) };
    },
    sources: () => e.sources.map((s) => {
      const h = s.running.health?.();
      return { name: s.name, type: s.type, live: h ? h.live : true, ...(h?.detail ? { detail: h.detail } : {}) };
    }),
    kafkaLag: async () => {
      const m = e.ops.metrics.registry.getSingleMetric('hisbridge_kafka_lag');
      const out: Record<string, number> = {};
      if (!m) return out;
      for (const v of (await m.get()).values) {
        const topic = String(v.labels.topic ?? '');
        out[topic] = (out[topic] ?? 0) + v.value;
      }
      return out;
    },
    isRetryable: (code) => e.registry.errorCatalogue.isRetryable(code),
  };
}

/** Starts the evaluator when the site has alert rules; undefined otherwise. */
export async function startAlerts(e: AlertsEngineView, opts: EvaluatorOptions = {}): Promise<AlertEvaluator | undefined> {
  const config = e.config.alerts;
  if (!config || !config.rules.length) return undefined;
  const ev = new AlertEvaluator(config, alertHost(e), opts);
  await ev.start();
  e.log.info({ rules: config.rules.length, targets: config.targets.length, intervalMs: config.intervalMs }, 'alerts: evaluating');
  return ev;
}
