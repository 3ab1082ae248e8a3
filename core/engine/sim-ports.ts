/**
 * Where each built-in simulator listens. Derived from the engine's HTTP port
 * so that two engines on one machine (different --http-port) never fight:
 * the n-th extension with a simulator gets HTTP port + n (gdEhr 8481 and
 * recognition 8482 with the default 8480). `simulatorPorts: { gdEhr: N }` in
 * hisbridge.yaml overrides one; HTTP port 0 (any free port) gives 0 too; with
 * HTTP off the extension's default port applies.
 */
import type { SiteConfig } from '../config/site.js';
import type { SiteExtension } from '../sdk.js';

export function simulatorPort(config: Pick<SiteConfig, 'http' | 'simulatorPorts'>, extensions: readonly SiteExtension[], key: string): number {
  const withSim = extensions.filter((x) => x.simulator);
  const ext = withSim.find((x) => x.key === key);
  if (!ext?.simulator) throw new Error(`no simulator for site extension "${key}"`);
  const explicit = config.simulatorPorts?.[key];
  if (explicit !== undefined) return explicit;
  if (!config.http.enabled) return ext.simulator.defaultPort;
  if (config.http.port === 0) return 0;
  return config.http.port + 1 + withSim.indexOf(ext);
}
