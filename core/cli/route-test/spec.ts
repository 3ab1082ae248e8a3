/**
 * Route test files (`routes/<route>.test.yaml`, docs/route-tests.md): YAML
 * with positions kept, validated against schemas/route-test.schema.json, so
 * every failure can point at the expectation that failed.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LoadError, LoadIssue, loadYamlFile, yamlIssues, type SourcePos, type YamlSource } from '../../config/yaml-source.js';
import { validateAt } from '../../config/validate.js';
import type { JsonSchema } from '../../sdk.js';
import type { Check } from './check.js';
import type { CaseInput } from './input.js';
import schema from '../../../schemas/route-test.schema.json' with { type: 'json' };

export type Outcome = 'ok' | 'skipped' | 'filtered' | 'failed' | 'not-matched';
export type CallChecks = ({ count?: number } & Record<string, Check>) | Record<string, Check>[];

export interface TestCase {
  name: string;
  input: string | CaseInput;
  faults?: Record<string, Record<string, unknown>[]>;
  ack?: string | { code: string; text?: Check };
  routes?: Record<string, Outcome | { outcome: Outcome; detail?: Check; errorCode?: string }>;
  calls?: Record<string, CallChecks>;
  remote?: Record<string, CallChecks>;
  reply?: { segments?: string[]; fields?: Record<string, Check> };
}

export interface TestSpec {
  load?: 'all' | string[];
  env?: Record<string, string>;
  site?: Record<string, unknown>;
  listener?: string;
  /** Code tables for the routes under test (replace the tables/ folder): CSV text, or CSV with its options. */
  tables?: Record<string, string | { csv: string; missing?: 'error' | 'keep' | 'default'; default?: string | number }>;
  cases: TestCase[];
}

export interface TestFile {
  file: string;
  spec: TestSpec;
  /** Position of a node, e.g. `pos(['cases', 0, 'ack'])`. */
  pos(at: readonly (string | number)[]): SourcePos;
}

/** `a.test.yaml` → `a` (the stem of the route file it tests). */
export function testStem(file: string): string {
  return path.basename(file).replace(/\.test\.ya?ml$/, '');
}

/** Loads and validates a test file; throws LoadError with file:line:col issues. */
export function loadTestFile(file: string): TestFile {
  const src: YamlSource = loadYamlFile(file);
  const issues = yamlIssues(src);
  if (issues.length) throw new LoadError(issues);
  const data = src.doc.toJS() as unknown;
  issues.push(...validateAt(schema as JsonSchema, data, src, []));
  if (issues.length) throw new LoadError(issues);
  const spec = data as TestSpec;
  const seen = new Set<string>();
  spec.cases.forEach((c, i) => {
    if (seen.has(c.name)) issues.push(new LoadIssue(src.posOf(['cases', i, 'name']), `case name "${c.name}" is used twice`, 'CONFIG_E_SCHEMA'));
    seen.add(c.name);
  });
  if (issues.length) throw new LoadError(issues);
  return { file, spec, pos: (at) => src.posOf(at) };
}

/** The route files a test file loads (`load:`), resolved against the routes directory. */
export function routeFilesFor(t: TestFile, routesDir: string): string[] {
  const load = t.spec.load;
  if (load === 'all') return [routesDir];
  if (load) {
    const issues: LoadIssue[] = [];
    const files = load.map((f, i) => {
      const p = path.resolve(routesDir, f);
      if (!existsSync(p)) issues.push(new LoadIssue(t.pos(['load', i]), `no route file ${p}`, 'CONFIG_E_READ'));
      return p;
    });
    if (issues.length) throw new LoadError(issues);
    return files;
  }
  const stem = testStem(t.file);
  for (const ext of ['.yaml', '.yml']) {
    const p = path.join(routesDir, stem + ext);
    if (existsSync(p)) return [p];
  }
  throw new LoadError([new LoadIssue({ file: t.file, line: 1, col: 1 }, `no route file ${stem}.yaml in ${routesDir} (name one with load:)`, 'CONFIG_E_READ')]);
}
