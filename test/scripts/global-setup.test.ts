/**
 * The suite's global setup skips the dist/ build only when dist/ is current:
 * every source under core/, plugins/ and bench/ has its .js, none older than
 * the newest source or tsconfig.json.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { distIsCurrent } from '../global-setup.js';

describe('global setup: is dist/ current?', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'hisbridge-gsetup-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const put = (rel: string, at: number) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), '');
    utimesSync(path.join(root, rel), at, at);
  };

  it('builds when an output is missing, older than a source or than tsconfig.json; skips when every output is newer', () => {
    const t = Math.floor(Date.now() / 1000) - 1000;
    put('tsconfig.json', t);
    put('core/a.ts', t);
    put('plugins/x/b.ts', t);
    put('plugins/x/types.d.ts', t + 500); // declarations have no output
    put('bench/c.ts', t);
    put('dist/core/a.js', t + 10);
    put('dist/plugins/x/b.js', t + 10);
    expect(distIsCurrent(root)).toBe(false); // bench/c.js is missing
    put('dist/bench/c.js', t + 10);
    expect(distIsCurrent(root)).toBe(true);
    put('plugins/x/b.ts', t + 20); // edited after the build
    expect(distIsCurrent(root)).toBe(false);
    put('dist/plugins/x/b.js', t + 30);
    expect(distIsCurrent(root)).toBe(false); // the other outputs are older than that edit
    for (const js of ['dist/core/a.js', 'dist/bench/c.js']) put(js, t + 30);
    expect(distIsCurrent(root)).toBe(true);
    put('tsconfig.json', t + 40);
    expect(distIsCurrent(root)).toBe(false);
  });
});
