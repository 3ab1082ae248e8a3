/**
 * `node dist/bench/run.js` as CI runs it: writes a results file of the
 * documented shape and refuses unknown scenario names. Uses the fast in-process scenario only.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { Results } from '../../bench/lib/result.js';

const run = promisify(execFile);
const RUN = path.resolve('dist/bench/run.js');

describe('bench runner', () => {
  it('writes results.json with machine, per-scenario figures and ratios', async () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'hb-bench-')), 'results.json');
    const { stdout } = await run(process.execPath, [RUN, '--quick', '--only', 'routing', '--trials', '1', '--out', out], { timeout: 60_000 });
    const r = JSON.parse(readFileSync(out, 'utf8')) as Results;
    expect(r.machine.cpus).toBeGreaterThan(0);
    expect(r.machine.node).toBe(process.version);
    expect(r.mode).toBe('quick');
    expect(r.scenarios.map((s) => s.name)).toEqual(['routing-100-vs-1']);
    const routing = r.scenarios[0]!;
    expect(routing.status).toBe('ok');
    expect(routing.trials).toBe(1);
    expect(routing.hisbridge!.median).toBeGreaterThan(0);
    expect(routing.baselines['1-route']!.median).toBeGreaterThan(0);
    expect(routing.ratios['1-route']).toBeCloseTo(routing.hisbridge!.median / routing.baselines['1-route']!.median, 2);
    expect(typeof routing.met).toBe('boolean');
    expect(stdout).toMatch(/routing-100-vs-1/);
  });

  it('refuses an unknown scenario with exit code 2', async () => {
    await expect(run(process.execPath, [RUN, '--only', 'nonsense'], { timeout: 20_000 })).rejects.toMatchObject({ code: 2 });
  });
});
