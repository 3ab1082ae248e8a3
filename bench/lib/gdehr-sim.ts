/**
 * The provincial (gd-ehr) simulator in its own process, so that neither the
 * engine's RSS nor the load generator's event loop includes it. Prints
 * `PORT <n>` and then `SITE <json>`: the gdEhr section (demo credentials)
 * the engine must be configured with. Control via its /__sim/* endpoints.
 */
import { gdEhrDefaults, startGdEhrSimulator } from '../../plugins/gd-ehr/index.js';
import { createLogger } from '../../core/log.js';

const log = createLogger({ level: 'warn' });
const sim = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site: gdEhrDefaults({ simulatorUrl: 'http://127.0.0.1:1' }), log });
const site = gdEhrDefaults({ simulatorUrl: sim.url });
process.stdout.write(`SITE ${JSON.stringify(site)}\n`);
process.stdout.write(`PORT ${new URL(sim.url).port}\n`);
process.on('SIGTERM', () => {
  void sim.close().then(() => process.exit(0));
});
