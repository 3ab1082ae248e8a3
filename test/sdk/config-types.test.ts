/**
 * Each plugin's JSON Schema and its TypeScript config type are tied together
 * (issue 14): `PluginDefinition<C>['configSchema']` is `ConfigSchema<C>`, so
 * tsc refuses a schema property the type lacks, a type key missing from the
 * schema, and a schema `required` key the type calls optional.
 *
 * The check itself runs in `npm test`'s type-check step (`tsc -p
 * tsconfig.test.json`, before vitest): it covers every built-in plugin and
 * test/sdk/fixtures/config-drift.ts, whose `@ts-expect-error` markers fail
 * the step if a drift stops being an error. The tests here are the fast
 * proof that the step exists, covers the tests, stops `npm test` on a type
 * error, and that the fixture's drifts are errors under its compiler options
 * (one tsc run over two small files, about 2 s instead of the whole project).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { ConfigSchema, PluginDefinition } from '../../core/sdk.js';
import { builtinRegistry } from '../../plugins/index.js';

const root = path.resolve(__dirname, '../..');
const fixture = path.join(root, 'test/sdk/fixtures/config-drift.ts');
const tscBin = path.join(root, 'node_modules/typescript/bin/tsc');
const MARKER = '// @ts-expect-error drift:';

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...testFiles(p));
    else if (e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

describe('the type-check step of npm test', () => {
  const scripts = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

  it('runs tsc -p tsconfig.test.json before vitest, over core, plugins, bench, every test file and the drift fixture', () => {
    expect(scripts.test).toMatch(/^tsc -p tsconfig\.test\.json \|\| \{.*exit 1; \} && vitest run$/);
    expect(scripts.typecheck).toBe('tsc -p tsconfig.test.json');
    const parsed = ts.getParsedCommandLineOfConfigFile(path.join(root, 'tsconfig.test.json'), {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    })!;
    expect(parsed.errors).toEqual([]);
    expect(parsed.options.noEmit).toBe(true);
    expect(parsed.options.strict).toBe(true);
    const files = new Set(parsed.fileNames.map((f) => path.resolve(f)));
    for (const f of ['core/sdk.ts', 'core/cli/main.ts', 'plugins/index.ts', 'bench/run.ts', 'vitest.config.ts', 'test/helpers/engine.ts', 'test/sdk/fixtures/config-drift.ts']) {
      expect(files.has(path.join(root, f)), f).toBe(true);
    }
    // Whatever vitest runs, tsc has checked.
    const tests = [...testFiles(path.join(root, 'test')), ...testFiles(path.join(root, 'plugins'))];
    expect(tests.length).toBeGreaterThan(100);
    expect(tests.filter((f) => !files.has(f)).map((f) => path.relative(root, f))).toEqual([]);
  });

  it('stops the test script with a message, before vitest, when a file has a type error; runs vitest when none has', () => {
    // npm test's own command line, run by sh as npm does, in a directory whose tsconfig.test.json
    // checks one file, with a `vitest` on PATH that only records that it was started.
    const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-typecheck-'));
    try {
      const bin = path.join(dir, 'bin');
      mkdirSync(bin);
      symlinkSync(tscBin, path.join(bin, 'tsc'));
      writeFileSync(path.join(bin, 'vitest'), `#!/bin/sh\necho "$@" > "${path.join(dir, 'vitest-ran')}"\n`);
      chmodSync(path.join(bin, 'vitest'), 0o755);
      writeFileSync(path.join(dir, 'tsconfig.test.json'), JSON.stringify({ extends: path.join(root, 'tsconfig.json'), compilerOptions: { noEmit: true, rootDir: dir, types: [] }, files: ['one.ts'], include: [] }));
      const run = () => spawnSync('sh', ['-c', scripts.test!], { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` } });

      writeFileSync(path.join(dir, 'one.ts'), "export const n: number = 'one';\n");
      const bad = run();
      expect(bad.status).toBe(1);
      expect(bad.stdout).toMatch(/one\.ts\(1,14\): error TS2322/);
      expect(bad.stderr).toMatch(/^npm test: tsc found type errors \(listed above\).*no test ran/);
      expect(existsSync(path.join(dir, 'vitest-ran'))).toBe(false);

      writeFileSync(path.join(dir, 'one.ts'), 'export const n: number = 1;\n');
      const good = run();
      expect(good.status, good.stdout + good.stderr).toBe(0);
      expect(readFileSync(path.join(dir, 'vitest-ran'), 'utf8').trim()).toBe('run');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('config schemas and config types', () => {
  it('tsc refuses each kind of drift between a config schema and its config type, and the marked fixture compiles', () => {
    // Two files under tsconfig.test.json's options: the fixture as it is (its markers expect the errors, so it
    // must compile clean), and a copy without the markers, which must fail on exactly the marked lines.
    const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-drift-'));
    try {
      const text = readFileSync(fixture, 'utf8');
      const driftLines = text.split('\n').flatMap((l, i) => (l.trim().startsWith(MARKER) ? [i + 2] : []));
      expect(driftLines).toHaveLength(3);
      const copy = path.join(dir, 'drift.ts');
      const importLine = "from '../../../core/config-schema.js'";
      expect(text).toContain(importLine);
      writeFileSync(copy, text.replaceAll(MARKER, '// drift:').replace(importLine, `from ${JSON.stringify(path.join(root, 'core/config-schema.js'))}`));
      const cfg = path.join(dir, 'tsconfig.json');
      writeFileSync(cfg, JSON.stringify({ extends: path.join(root, 'tsconfig.test.json'), compilerOptions: { rootDir: '/', types: [], incremental: false }, files: [fixture, copy], include: [] }));
      const r = spawnSync(process.execPath, [tscBin, '-p', cfg, '--pretty', 'false'], { cwd: root, encoding: 'utf8' });
      const out = r.stdout + r.stderr;
      expect(r.status, out).not.toBe(0);
      const errors = [...out.matchAll(/^(.*?)\((\d+),\d+\): error/gm)].map((m) => ({ file: path.resolve(root, m[1]!), line: Number(m[2]) }));
      expect(errors.filter((e) => e.file !== copy), out).toEqual([]);
      expect(errors.map((e) => e.line).sort((a, b) => a - b), out).toEqual(driftLines);
      expect(out).toMatch(/'method' does not exist/);
      expect(out).toMatch(/Property 'timeoutMs' is missing/);
      expect(out).toMatch(/Type '"timeoutMs"' is not assignable/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a plugin definition\'s configSchema is ConfigSchema of its config type (checked by the type-check step)', () => {
    interface CallConfig {
      url: string;
      timeoutMs?: number;
    }
    expectTypeOf<PluginDefinition<CallConfig>['configSchema']>().toEqualTypeOf<ConfigSchema<CallConfig>>();
    expectTypeOf<ConfigSchema<CallConfig>['required']>().toEqualTypeOf<readonly 'url'[] | undefined>();
  });

  it('every built-in plugin\'s schema is a closed object schema (so its properties are the whole config)', () => {
    for (const p of builtinRegistry().plugins) {
      const s = p.configSchema as { type?: unknown; properties?: unknown; additionalProperties?: unknown };
      expect(s.type, p.name).toBe('object');
      expect(typeof s.properties, p.name).toBe('object');
      expect(s.additionalProperties, p.name).toBe(false);
    }
  });
});
