/** `hisbridge schemas [--check]`: writes (or checks) schemas/route.schema.json and schemas/hisbridge.schema.json from the code. */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { routeSchema } from '../routes/schema.js';
import { siteSchema } from '../config/site.js';
import { err, out, parse, registry } from './common.js';

export function generatedSchemas(): Record<string, unknown> {
  const reg = registry();
  return {
    'route.schema.json': routeSchema(reg.plugins),
    'hisbridge.schema.json': { $schema: 'http://json-schema.org/draft-07/schema#', ...siteSchema(reg.extensions, reg.sources) },
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { check: { type: 'boolean' }, dir: { type: 'string', default: 'schemas' } }, false);
  if (values.help) {
    out('usage: hisbridge schemas [--check] [--dir schemas]');
    return 0;
  }
  let drift = 0;
  for (const [name, schema] of Object.entries(generatedSchemas())) {
    const file = path.join(values.dir!, name);
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
