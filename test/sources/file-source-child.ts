/**
 * A child process for the file source's kill -9 test: a real engine (store,
 * routes, remote platform given by the site file) and the file source on
 * one directory, through the temporary harness SourceContext. The test
 * transpiles this file and the harness into dist/test/ (the rest of dist/
 * is built by the global setup) and runs it with node.
 *
 *   node dist/test/sources/file-source-child.js <site.yaml> <routesDir> <dataDir> <inboxDir>
 *
 * Prints "file-source-child ready" on stderr once the source polls.
 * SIGTERM closes the source, prints its health info as one JSON line, stops
 * the engine and exits 0.
 */
import { Engine } from '../../core/engine/engine.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { createLogger } from '../../core/log.js';
import { builtinRegistry } from '../../plugins/index.js';
import fileSource, { type FileSourceConfig } from '../../plugins/source-file/index.js';
import type { SourceContext } from '../../core/sdk.js';
import { harnessContext } from '../helpers/source-context.js';

const [site, routesDir, dataDir, inbox] = process.argv.slice(2);
if (!site || !routesDir || !dataDir || !inbox) {
  process.stderr.write('usage: file-source-child <site.yaml> <routesDir> <dataDir> <inboxDir>\n');
  process.exit(2);
}
const reg = builtinRegistry();
const config = loadSiteConfig(site, reg.extensions, { mllpPort: 0, httpPort: 0, dataDir, routesDir }, process.env);
const engine = await Engine.create({ config, registry: reg, log: createLogger({ level: 'warn' }), simulatorPorts: 'random' });
await engine.start();
const cfg: FileSourceConfig = { name: 'lis-drop', type: 'file', dir: inbox, poll: '50ms', ack: true };
const h = harnessContext(engine, { config: cfg as unknown as Record<string, unknown>, baseDir: process.cwd() });
const src = await fileSource.start(h.ctx as SourceContext & { config: FileSourceConfig }, h.submit);
process.stderr.write('file-source-child ready\n');
process.on('SIGTERM', () => {
  void (async () => {
    await src.close(2000);
    process.stderr.write(`file-source-child health ${JSON.stringify(src.health?.().info ?? {})}\n`);
    await engine.stop(2000);
    process.exit(0);
  })();
});
