import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../core/log.js';
import { startGdEhrSimulator, type GdEhrSimulator } from '../../plugins/gd-ehr/simulator.js';
import { DEMO_SITE } from '../../plugins/gd-ehr/site.js';

/** The environment that the `${env:...}` secrets of `gdEhrSection` read. */
export const GD_EHR_ENV = { T_PAAS: DEMO_SITE.paasToken, T_SM4: DEMO_SITE.sm4Key };

/**
 * The `gdEhr:` lines of a hisbridge.yaml that points the site at a gd-ehr
 * simulator with its demo identity; the secrets are `${env:T_PAAS}` and
 * `${env:T_SM4}` (pass GD_EHR_ENV), never inline.
 */
export function gdEhrSection(simUrl: string): string[] {
  return [
    'gdEhr:',
    `  authUrl: ${simUrl}/ebus/jiankangdangan/gdehr/dhccApi/codeAuthRec/save`,
    `  viewerUrl: ${simUrl}/gdehr/privilege/getPrivilege`,
    ...(['orgCode', 'orgName', 'callSysCode', 'appId', 'paasId'] as const).map((k) => `  ${k}: "${DEMO_SITE[k]}"`),
    '  paasToken: ${env:T_PAAS}',
    '  sm4Key: ${env:T_SM4}',
  ];
}

export interface GdEhrSite {
  /** The simulator, on its own port: it outlives the engines a test starts and stops. */
  sim: GdEhrSimulator;
  dir: string;
  /** `hisbridge start` arguments for this site with its store in `<dir>/<dataDir>`. */
  args(dataDir: string): string[];
  /** Closes the simulator and removes the directory. */
  close(): Promise<void>;
}

/**
 * A gd-ehr simulator and a temp site directory for `hisbridge start`:
 * `routes/<file>` as given and a hisbridge.yaml with the simulators off,
 * MLLP and HTTP on port 0, `extraYaml` lines and the simulator's gdEhr section.
 */
export async function gdEhrSite(opts: { prefix: string; routes: Record<string, string>; extraYaml?: string[] }): Promise<GdEhrSite> {
  const sim = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site: {}, log: silentLogger() });
  const dir = mkdtempSync(path.join(tmpdir(), opts.prefix));
  mkdirSync(path.join(dir, 'routes'));
  for (const [file, text] of Object.entries(opts.routes)) writeFileSync(path.join(dir, 'routes', file), text);
  writeFileSync(
    path.join(dir, 'hisbridge.yaml'),
    ['simulators: false', 'listeners: [{ name: mllp, port: 0 }]', 'http: { port: 0 }', ...(opts.extraYaml ?? []), ...gdEhrSection(sim.url)].join('\n'),
  );
  return {
    sim,
    dir,
    args: (dataDir) => ['--config', path.join(dir, 'hisbridge.yaml'), '--routes', path.join(dir, 'routes'), '--data-dir', path.join(dir, dataDir)],
    async close() {
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An on-receive route sending ADT^A04 to gd-ehr-authorize, one ordering key per in-hospital patient id. */
export function authorizeRoute(name: string, retry: string): string {
  return `name: ${name}
match:
  events: [ADT^A04]
ack: on-receive
steps:
  - plugin: gd-ehr-authorize
delivery:
  orderingKey: \${PID-3[5=PI].1}
  retry: ${retry}
`;
}
