/**
 * `hisbridge test [FILES|DIR] [--routes DIR] [--timeout 30s]`: runs route
 * test files (docs/route-tests.md). Prints `ok` / `FAIL` per case with the
 * mismatches, then `N passed, N failed`. Exit 0 when every case passed, 1
 * when one failed (or the routes under test did not load), 2 when a test
 * file is invalid, the arguments are wrong or there is no test file to run.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseDuration } from '../config/duration.js';
import { err, out, parse, reportLoadError, siteRegistry } from './common.js';
import { toolLogger } from './route-test/inproc.js';
import { runTestFile } from './route-test/runner.js';

const HELP = `usage: hisbridge test [FILES|DIR] [--routes DIR] [--timeout 30s] [--config F]

Runs route test files (default: every *.test.yaml in the routes directory).
Each file runs against an in-process engine with the simulators; see
docs/route-tests.md. --routes is where the routes under test are (default
./routes); --timeout bounds the wait for one message's deliveries; --config
(or $HISBRIDGE_CONFIG) names a site config whose external plugins
(\`plugins:\`) the routes use (only its plugins are taken: each test file
brings its own \`site:\`).`;

function testFiles(inputs: readonly string[]): string[] {
  const files: string[] = [];
  for (const p of inputs) {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) throw new Error(`no such file or directory: ${p}`);
    if (st.isDirectory()) {
      for (const f of readdirSync(p).sort()) if (/\.test\.ya?ml$/.test(f)) files.push(path.join(p, f));
    } else files.push(p);
  }
  // Relative names keep failure lines short and clickable from the project root.
  return files.map((f) => {
    const rel = path.relative(process.cwd(), f);
    return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : f;
  });
}

export async function run(argv: string[]): Promise<number> {
  let values: { routes?: string; timeout?: string; config?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv, { routes: { type: 'string', default: 'routes' }, timeout: { type: 'string', default: '30s' }, config: { type: 'string' } }));
  } catch (e) {
    err(`hisbridge test: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    out(HELP);
    return 0;
  }
  const routesDir = path.resolve(values.routes ?? 'routes');
  let files: string[];
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(/^\d+$/.test(values.timeout ?? '') ? Number(values.timeout) : values.timeout, 30_000);
    files = testFiles(positionals.length ? positionals : [routesDir]);
  } catch (e) {
    err(`hisbridge test: ${(e as Error).message}`);
    return 2;
  }
  if (files.length === 0) {
    // Nothing to run is an error, not a pass: a typo in a directory name or a
    // CI job pointed at the wrong folder must not report success.
    err(`hisbridge test: no test files: no *.test.yaml in ${positionals.join(', ') || routesDir}`);
    return 2;
  }

  let reg;
  try {
    reg = await siteRegistry(values.config);
  } catch (e) {
    if (reportLoadError(e)) return 2;
    throw e;
  }
  let passed = 0;
  let failed = 0;
  let invalid = false;
  for (const file of files) {
    const r = await runTestFile(file, { registry: reg, routesDir, timeoutMs, log: toolLogger('silent') });
    if (r.invalid) {
      invalid = true;
      out(`INVALID ${file}`);
      r.invalid.forEach((l) => out(`  ${l}`));
      continue;
    }
    if (r.loadFailure) {
      out(`LOAD ${file}: the routes or site config under test did not load`);
      r.loadFailure.forEach((l) => out(`  ${l}`));
    }
    for (const c of r.cases) {
      if (c.failures.length === 0) {
        passed++;
        out(`ok   ${file}: ${c.name}`);
      } else {
        failed++;
        out(`FAIL ${file}: ${c.name}`);
        c.failures.forEach((l) => out(`  ${l}`));
      }
    }
  }
  out(`${passed} passed, ${failed} failed`);
  return invalid ? 2 : failed ? 1 : 0;
}
