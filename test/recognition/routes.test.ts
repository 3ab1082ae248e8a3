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
import { recognitionRegistry as registry } from './harness.js';

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
