/**
 * `npm test`'s pretest step (scripts/pretest.mjs): a no-op when the Debian
 * packages are there, and for a user who cannot install them a stop with the
 * exact command to run. (The install path, as root on a fresh machine, is
 * what .ci/run exercises.)
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = path.resolve('scripts/pretest.mjs');

describe('pretest', () => {
  it('is wired as the pretest npm script, and .ci/run runs the README test command as written without an apt step of its own', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.pretest).toBe('node scripts/pretest.mjs');
    const ci = readFileSync('.ci/run', 'utf8');
    const readme = readFileSync('README.md', 'utf8');
    expect(readme).toContain('npm ci && npm test\n');
    expect(ci.split('\n').some((l) => l.startsWith('npm ci && npm test'))).toBe(true);
    expect(ci).not.toMatch(/apt-get/);
  });

  it('does nothing, quickly and silently, when everything is installed', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('stops a non-root user with the exact apt-get command naming what is missing', () => {
    // A PATH with apt-get but without kcat and mllp_send; run as "nobody" when we are root.
    const bin = mkdtempSync(path.join(tmpdir(), 'hisbridge-pretest-'));
    try {
      const apt = ['/usr/bin/apt-get', '/bin/apt-get'].find((p) => existsSync(p));
      if (apt) symlinkSync(apt, path.join(bin, 'apt-get'));
      chmodSync(bin, 0o755);
      const asRoot = process.getuid?.() === 0;
      const r = spawnSync(process.execPath, [SCRIPT], {
        encoding: 'utf8',
        env: { PATH: bin },
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('missing: kcat, python3-hl7');
      if (apt) expect(r.stderr).toContain('sudo apt-get update && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y kcat python3-hl7');
      else expect(r.stderr).toContain('no apt-get');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
