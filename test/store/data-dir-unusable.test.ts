/**
 * A data directory that cannot be created must refuse the start, not hang it.
 * Before the fix `hisbridge start --data-dir /proc/...` never returned: Node's
 * recursive mkdirSync loops forever there, blocking the event loop.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeDirsSync } from '../../core/store/dirs.js';
import { CLI_MAIN } from '../helpers/cli.js';

function start(args: string[], ms: number): Promise<{ code: number | null; hung: boolean; stderr: string; elapsedMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [CLI_MAIN, 'start', ...args], { env: { ...process.env, HISBRIDGE_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let hung = false;
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, ms);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, hung, stderr, elapsedMs: Date.now() - t0 });
    });
  });
}

describe('an unusable data directory', () => {
  it('hisbridge start --data-dir under /proc exits non-zero within 10 s with STORE_E_DATA_DIR naming the directory', async () => {
    const dir = `/proc/hisbridge-test-${process.pid}/data`;
    const r = await start(['--data-dir', dir, '--mllp-port', '0', '--http-port', '0', '--no-simulators'], 12_000);
    expect(r.hung, `start hung:\n${r.stderr}`).toBe(false);
    expect(r.elapsedMs).toBeLessThan(10_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`STORE_E_DATA_DIR: cannot use data directory ${dir}: ENOENT`);
  }, 20_000);

  it('makeDirsSync makes missing levels 0700, accepts existing ones, refuses a file, and fails at once under /proc', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'hisbridge-datadir-'));
    try {
      const d = path.join(root, 'a', 'b');
      makeDirsSync(d, 0o700);
      makeDirsSync(d, 0o700);
      expect(statSync(d).mode & 0o777).toBe(0o700);
      writeFileSync(path.join(root, 'f'), 'x');
      expect(() => makeDirsSync(path.join(root, 'f', 'g'), 0o700)).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
      const t0 = Date.now();
      expect(() => makeDirsSync(`/proc/hisbridge-test-${process.pid}/x`, 0o700)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(Date.now() - t0).toBeLessThan(1000);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
