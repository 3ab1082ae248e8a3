/**
 * The suite's global setup skips the dist/ build only when dist/ is current:
 * every source under core/, plugins/ and bench/ has its .js, and none of them
 * (nor tsconfig.json) changed after the last clean build began, the time
 * `npm run build` (scripts/build.mjs) and the setup write to dist/.build-start.
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
  const stamp = (atSeconds: number) => writeFileSync(path.join(root, 'dist/.build-start'), `${atSeconds * 1000}\n`);

  it('builds without a stamp, with an output missing, or after a source or tsconfig.json changed once the build began', () => {
    const t = Math.floor(Date.now() / 1000) - 1000;
    put('tsconfig.json', t);
    put('core/a.ts', t);
    put('plugins/x/b.ts', t);
    put('plugins/x/types.d.ts', t + 500); // declarations have no output and do not count
    put('bench/c.ts', t);
    put('dist/core/a.js', t + 10);
    put('dist/plugins/x/b.js', t + 10);
    put('dist/bench/c.js', t + 10);
    expect(distIsCurrent(root)).toBe(false); // no stamp: dist/ came from somewhere else
    stamp(t + 5);
    expect(distIsCurrent(root)).toBe(true);
    rmSync(path.join(root, 'dist/bench/c.js'));
    expect(distIsCurrent(root)).toBe(false);
    put('dist/bench/c.js', t + 10);
    // Edited while the build ran (after it began): its output may hold the old text, even though it is newer.
    put('plugins/x/b.ts', t + 7);
    expect(distIsCurrent(root)).toBe(false);
    stamp(t + 8);
    expect(distIsCurrent(root)).toBe(true);
    put('tsconfig.json', t + 9);
    expect(distIsCurrent(root)).toBe(false);
  });
});
