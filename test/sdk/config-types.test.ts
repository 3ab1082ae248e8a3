/**
 * Each plugin's JSON Schema and its TypeScript config type are tied together
 * (issue 14): `PluginDefinition<C>['configSchema']` is `ConfigSchema<C>`, so
 * tsc refuses a schema property the type lacks, a type key missing from the
 * schema, and a schema `required` key the type calls optional. This test
 * compiles a fixture of drifted definitions with the project's compiler
 * options and expects exactly the drifted lines to fail; `npx tsc --noEmit
 * -p .` applies the same check to every built-in plugin.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinRegistry } from '../../plugins/index.js';

const root = path.resolve(__dirname, '../..');
const fixture = path.join(root, 'test/sdk/fixtures/config-drift.ts');

describe('config schemas and config types', () => {
  it('tsc refuses each kind of drift between a plugin\'s schema and its config type', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-drift-'));
    try {
      const cfg = path.join(dir, 'tsconfig.json');
      writeFileSync(cfg, JSON.stringify({ extends: path.join(root, 'tsconfig.json'), compilerOptions: { noEmit: true, rootDir: root, types: ['node'], typeRoots: [path.join(root, 'node_modules/@types')] }, files: [fixture] }));
      let out = '';
      try {
        execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', cfg], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
      } catch (e) {
        out = String((e as { stdout?: string }).stdout ?? '');
      }
      const errorLines = [...out.matchAll(/config-drift\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1]));
      const driftLines = readFileSync(fixture, 'utf8').split('\n').flatMap((l, i) => (l.includes('// drift:') ? [i + 1] : []));
      expect(driftLines).toHaveLength(3);
      // Every drift is an error at (or, for a missing key, just before) its marked line, and nothing else fails.
      for (const line of driftLines) expect(errorLines.some((e) => e === line || e === line - 1), `no tsc error for the drift at line ${line}:\n${out}`).toBe(true);
      expect(errorLines.every((e) => driftLines.includes(e) || driftLines.includes(e + 1)), out).toBe(true);
      expect(out).toMatch(/method/);
      expect(out).toMatch(/timeoutMs/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('every built-in plugin\'s schema is a closed object schema (so its properties are the whole config)', () => {
    for (const p of builtinRegistry().plugins) {
      const s = p.configSchema as { type?: unknown; properties?: unknown; additionalProperties?: unknown };
      expect(s.type, p.name).toBe('object');
      expect(typeof s.properties, p.name).toBe('object');
      expect(s.additionalProperties, p.name).toBe(false);
    }
  });
});
