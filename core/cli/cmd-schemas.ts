/**
 * `hisbridge schemas [--check] [--dir D] [--config F]`: writes (or checks) schemas/route.schema.json and
 * schemas/hisbridge.schema.json from the code. With a site config that loads external plugins (`plugins:`),
 * the schemas include them and go to a `schemas/` directory next to that config unless --dir says otherwise,
 * so the project's own schemas/ stays the built-in one.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { routeSchema } from '../routes/schema.js';
import { siteSchema } from '../config/site.js';
import type { Registry } from '../registry.js';
import { err, out, parse, registry, reportLoadError, siteRegistry } from './common.js';

export function generatedSchemas(reg: Registry = registry()): Record<string, unknown> {
  return {
    'route.schema.json': routeSchema(reg.plugins),
    'hisbridge.schema.json': { $schema: 'http://json-schema.org/draft-07/schema#', ...siteSchema(reg.extensions, reg.sources) },
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { check: { type: 'boolean' }, dir: { type: 'string' }, config: { type: 'string' } }, false);
  if (values.help) {
    out('usage: hisbridge schemas [--check] [--dir schemas] [--config F]\nWith --config (or $HISBRIDGE_CONFIG) naming external plugins, their step and section schemas are included and the files go to schemas/ next to that config (unless --dir).');
    return 0;
  }
  let reg: Registry;
  try {
    reg = await siteRegistry(values.config);
  } catch (e) {
    if (reportLoadError(e)) return 1;
    throw e;
  }
  const configFile = values.config ?? process.env.HISBRIDGE_CONFIG;
  const builtin = registry();
  const external = reg.plugins.length !== builtin.plugins.length || reg.extensions.length !== builtin.extensions.length || reg.sources.length !== builtin.sources.length;
  const dir = values.dir ?? (external && configFile ? path.join(path.dirname(path.resolve(configFile)), 'schemas') : 'schemas');
  if (!values.check) mkdirSync(dir, { recursive: true });
  let drift = 0;
  for (const [name, schema] of Object.entries(generatedSchemas(reg))) {
    const file = path.join(dir, name);
    const text = JSON.stringify(schema, null, 2) + '\n';
    if (values.check) {
      let cur = '';
      try {
        cur = readFileSync(file, 'utf8');
      } catch {
        cur = '';
      }
      if (cur !== text) {
        err(`${file}: out of date (run: npx hisbridge schemas)`);
        drift++;
      }
    } else {
      writeFileSync(file, text);
      out(`wrote ${file}`);
    }
  }
  return drift ? 1 : 0;
}
