/**
 * `hisbridge alerts test [--config F]`: sends a test message to every alert
 * target of the site config and prints OK or FAIL per target (with the
 * reason: HTTP status, the robot's errcode, a network error; never the URL,
 * which holds the robot's token). Exits 1 when any target failed.
 */
import { hostname } from 'node:os';
import { AlertSender, type AlertMessage } from '../alerts/send.js';
import { err, loadConfig, out, parse, registry, reportLoadError } from './common.js';

const USAGE = `usage: hisbridge alerts test [--config F]
  Sends a test message to every target in the alerts: section and prints OK or FAIL per target; exit 1 if any fails.`;

const FLAGS = { config: { type: 'string' } } as const;

export async function run(argv: string[]): Promise<number> {
  let values: { config?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv, FLAGS, true));
  } catch (e) {
    err(`hisbridge alerts: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) return out(USAGE), 0;
  if (positionals.length !== 1 || positionals[0] !== 'test') {
    err(USAGE);
    return 2;
  }
  let targets;
  try {
    const config = loadConfig(values.config, registry());
    targets = config.alerts?.targets ?? [];
  } catch (e) {
    if (reportLoadError(e)) return 1;
    err(`hisbridge alerts: ${(e as { code?: string }).code ? `${(e as { code: string }).code}: ` : ''}${(e as Error).message}`);
    return 1;
  }
  if (!targets.length) {
    err('hisbridge alerts: no targets: add alerts.targets to the site config (docs/alerts.md)');
    return 1;
  }
  const sender = new AlertSender(targets);
  const message: AlertMessage = {
    status: 'test', rule: 'alerts-test', kind: 'test', summary: 'test message from hisbridge alerts test: this target receives hisbridge alerts',
    lines: [], at: Date.now(), host: hostname(),
  };
  try {
    const results = await Promise.all(targets.map(async (t) => ({ t, r: await sender.send(t.name, message) })));
    let failed = 0;
    for (const { t, r } of results) {
      if (r.ok) out(`OK    ${t.name} (${t.type}) ${Math.round(r.latencyMs)} ms`);
      else {
        failed++;
        out(`FAIL  ${t.name} (${t.type}) after ${r.attempts} attempt(s): ${r.error ? `${r.error.code}: ${r.error.message}` : 'not sent'}`);
      }
    }
    return failed ? 1 : 0;
  } finally {
    sender.close();
  }
}
