/**
 * The SDK is the boundary (issue 14): plugins import core only through
 * core/sdk. Scans every plugins/**.ts (tests excluded) for an import or
 * export `from` a core module other than core/sdk(.js), static or dynamic,
 * and fails naming the file and line. No exceptions are listed here.
 */
import { readdirSync, readFileSync, mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (/\.(m|c)?ts$/.test(e.name) && !/\.test\.ts$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/** `file:line: import of <spec>` for each core import other than core/sdk under `root`. */
export function boundaryViolations(root: string, pluginsDir = path.join(root, 'plugins')): string[] {
  const coreDir = path.join(root, 'core');
  const sdk = path.join(coreDir, 'sdk');
  const out: string[] = [];
  // `from '...'`, `import '...'` and `import('...')`, one specifier per match.
  const spec = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g;
  for (const file of tsFiles(pluginsDir)) {
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((text, i) => {
      for (const m of text.matchAll(spec)) {
        const s = m[1]!;
        if (!s.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), s).replace(/\.(js|ts)$/, '');
        if (target !== coreDir && !target.startsWith(coreDir + path.sep)) continue;
        if (target === sdk) continue;
        out.push(`${path.relative(root, file)}:${i + 1}: import of ${s} (plugins import core only through core/sdk)`);
      }
    });
  }
  return out;
}

describe('the SDK boundary', () => {
  it('no plugin imports a core module other than core/sdk', () => {
    const root = path.resolve(__dirname, '../..');
    expect(boundaryViolations(root)).toEqual([]);
  });

  it('the scan finds static, re-export and dynamic core imports and names file and line', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'hisbridge-boundary-'));
    try {
      mkdirSync(path.join(root, 'core'));
      mkdirSync(path.join(root, 'plugins', 'x', 'deep'), { recursive: true });
      writeFileSync(
        path.join(root, 'plugins', 'x', 'index.ts'),
        [
          "import type { PluginDefinition } from '../../core/sdk.js';",
          "import { hbError } from '../../core/errors.js';",
          "export { compileTemplate } from '../../core/template.js';",
          "import { local } from './deep/helper.js';",
          "const m = await import('../../core/mask.js');",
          "import 'node:fs';",
        ].join('\n'),
      );
      writeFileSync(path.join(root, 'plugins', 'x', 'deep', 'helper.ts'), "import { x } from '../../../core/hl7/index.js';\n");
      writeFileSync(path.join(root, 'plugins', 'x', 'index.test.ts'), "import { x } from '../../core/errors.js';\n");
      writeFileSync(path.join(root, 'plugins', 'index.ts'), "import { Registry } from '../core/registry.js';\n");
      expect(boundaryViolations(root)).toEqual([
        'plugins/index.ts:1: import of ../core/registry.js (plugins import core only through core/sdk)',
        'plugins/x/deep/helper.ts:1: import of ../../../core/hl7/index.js (plugins import core only through core/sdk)',
        'plugins/x/index.ts:2: import of ../../core/errors.js (plugins import core only through core/sdk)',
        'plugins/x/index.ts:3: import of ../../core/template.js (plugins import core only through core/sdk)',
        'plugins/x/index.ts:5: import of ../../core/mask.js (plugins import core only through core/sdk)',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
