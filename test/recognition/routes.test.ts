/**
 * Runs the shipped route tests of the recognition routes
 * (routes/recognition-*.test.yaml) through the route-test runner, with the
 * recognition plugins registered, against the simulators on random ports.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTestFile } from '../../core/cli/route-test/runner.js';
import { silentLogger } from '../../core/log.js';
import { builtinRegistry } from '../../plugins/index.js';
import recognition from '../../plugins/recognition/index.js';
import upload from '../../plugins/recognition-upload/index.js';
import check from '../../plugins/recognition-check/index.js';
import guard from '../../plugins/sensitive-guard/index.js';

function registry() {
  const reg = builtinRegistry();
  // Until plugins/index.ts lists them: add only what is missing.
  if (!reg.extensions.some((e) => e.key === 'recognition')) reg.extension(recognition);
  for (const p of [upload, check, guard]) if (!reg.getPlugin(p.name)) reg.plugin(p);
  return reg;
}

const ROUTES = path.resolve(import.meta.dirname, '../../routes');
const files = readdirSync(ROUTES).filter((f) => /^recognition-.*\.test\.yaml$/.test(f)).sort();

describe('recognition route tests', () => {
  it('ships a test file for every recognition route', () => {
    const routes = readdirSync(ROUTES).filter((f) => /^recognition-.*\.yaml$/.test(f) && !f.endsWith('.test.yaml'));
    expect(files.map((f) => f.replace('.test.yaml', '.yaml'))).toEqual(routes.sort());
  });

  it.each(files)('%s passes', async (file) => {
    const r = await runTestFile(path.join(ROUTES, file), { registry: registry(), routesDir: ROUTES, timeoutMs: 20_000, log: silentLogger() });
    expect(r.invalid ?? []).toEqual([]);
    expect(r.loadFailure ?? []).toEqual([]);
    expect(r.cases.flatMap((c) => c.failures)).toEqual([]);
    expect(r.cases.length).toBeGreaterThan(0);
  });
});
