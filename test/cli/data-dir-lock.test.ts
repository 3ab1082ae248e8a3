/**
 * One running engine per data directory (core/engine/lock.ts): a second
 * `hisbridge start` on a directory in use exits non-zero naming the
 * directory and the holder, before it binds anything; a lock left by a
 * process that is gone (kill -9) is taken over.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnEngine, type EngineProcess } from '../helpers/proc.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-lock-'));
mkdirSync(path.join(dir, 'no-routes'));
const running: EngineProcess[] = [];

afterAll(async () => {
  for (const e of running) {
    e.child.kill('SIGKILL');
    await e.exited;
  }
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** `hisbridge start` expected to fail: its exit code and stderr. */
function startFails(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.resolve('dist/core/cli/main.js'), 'start', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stderr });
    });
  });
}

describe('data directory lock', () => {
  it('refuses a second engine on a data directory in use, naming it and the holder', async () => {
    const data = path.join(dir, 'shared');
    const first = await spawnEngine(['--mllp-port', '0', '--http-port', '0', '--no-simulators', '--routes', path.join(dir, 'no-routes'), '--data-dir', data], {}, 40_000);
    running.push(first);
    expect(readFileSync(path.join(data, 'engine.lock'), 'utf8').trim()).toBe(String(first.child.pid));
    const second = await startFails(['--mllp-port', '0', '--http-port', '0', '--no-simulators', '--routes', path.join(dir, 'no-routes'), '--data-dir', data]);
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain('ENGINE_E_DATA_DIR_IN_USE');
    expect(second.stderr).toContain(`pid ${first.child.pid}`);
    expect(second.stderr).not.toMatch(/hisbridge ready/);
    // The first engine still owns it, and still answers.
    expect((await fetch(`${first.httpUrl}/healthz`)).status).toBe(200);
    // A clean stop releases the lock.
    first.child.kill('SIGTERM');
    await first.exited;
    expect(existsSync(path.join(data, 'engine.lock'))).toBe(false);
  }, 90_000);

  it('takes over a lock left by a process that is gone (kill -9)', async () => {
    const data = path.join(dir, 'stale');
    mkdirSync(data, { recursive: true, mode: 0o700 });
    // A process id that no process has: the kernel's pid_max is below 2^22.
    writeFileSync(path.join(data, 'engine.lock'), '4194303\n');
    const e = await spawnEngine(['--mllp-port', '0', '--http-port', '0', '--no-simulators', '--routes', path.join(dir, 'no-routes'), '--data-dir', data], {}, 40_000);
    running.push(e);
    expect(readFileSync(path.join(data, 'engine.lock'), 'utf8').trim()).toBe(String(e.child.pid));
    expect((await fetch(`${e.httpUrl}/healthz`)).status).toBe(200);
  }, 90_000);
});
