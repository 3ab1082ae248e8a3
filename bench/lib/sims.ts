/**
 * Both remote platforms' simulators (provincial gd-ehr and recognition) in
 * one child process, so that the engine's event loop measured by the stall
 * scenario carries only the engine's work. Prints `SITES <json>` (the
 * gdEhr and recognition sections the engine must use) and then `READY`.
 */
import { gdEhrDefaults, startGdEhrSimulator } from '../../plugins/gd-ehr/index.js';
import { startRecognitionSimulator } from '../../plugins/recognition/simulator.js';
import { recognitionDefaults } from '../../plugins/recognition/site.js';
import { createLogger } from '../../core/log.js';

const log = createLogger({ level: 'warn' });
const gd = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site: gdEhrDefaults({ simulatorUrl: 'http://127.0.0.1:1' }), log });
const recognitionSite = recognitionDefaults({ simulatorUrl: 'http://127.0.0.1:1' });
const recognition = await startRecognitionSimulator({ host: '127.0.0.1', port: 0, site: recognitionSite, log });
const sites = {
  gdEhr: gdEhrDefaults({ simulatorUrl: gd.url }),
  recognition: recognitionDefaults({ simulatorUrl: recognition.url }),
};
process.stdout.write(`SITES ${JSON.stringify(sites)}\n`);
process.stdout.write('READY\n');
process.on('SIGTERM', () => {
  void Promise.allSettled([gd.close(), recognition.close()]).then(() => process.exit(0));
});
