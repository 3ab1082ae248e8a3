/**
 * File source directories that cannot work (issue 11 follow-up, items 3 and 4
 * of the probe): readiness says so, with the code and the body in agreement,
 * and `hisbridge start` refuses a directory it cannot use (a path under
 * /proc, a FIFO, a regular file) within 10 s, naming the listener and the
 * path. Before the fix the source answered `ready: true` next to
 * `live: false`, and a `dir` under /proc hung the start forever (Node's
 * recursive mkdir loops on ENOENT there).
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDirs, makeDirsUnder } from '../../plugins/source-file/dirs.js';
import { CLI_MAIN } from '../helpers/cli.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { until } from '../helpers/kafka.js';

interface HealthBody {
  status: string;
  reasons: string[];
  sources: { name: string; live?: boolean; ready?: boolean; detail?: string }[];
}

async function health(t: TestEngine, p: '/healthz' | '/readyz'): Promise<{ code: number; body: HealthBody }> {
  const res = await fetch(`${t.httpUrl}${p}`);
  return { code: res.status, body: (await res.json()) as HealthBody };
}

describe('file source: a directory that becomes unusable fails readiness', () => {
  let t: TestEngine;
  let dir: string;
  beforeAll(async () => {
    t = await startEngine({ siteYaml: 'listeners:\n  - { name: mllp, port: 0 }\n  - { name: lab-drop, type: file, dir: drop, poll: 40ms }\n' });
    dir = path.join(t.dataDir, 'drop');
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  const notReady = (b: HealthBody) => b.sources.find((s) => s.name === 'lab-drop')?.live === false;

  for (const [what, breakIt, why] of [
    ['removed', () => rmSync(dir, { recursive: true, force: true }), /unusable \(ENOENT\)/],
    ['replaced by a regular file', () => { rmSync(dir, { recursive: true, force: true }); writeFileSync(dir, 'not a directory'); }, /unusable \(ENOTDIR\)/],
  ] as const) {
    it(`${what}: /readyz and /healthz answer 503, the body names the source and why, and the source is neither live nor ready`, async () => {
      expect((await health(t, '/readyz')).code).toBe(200);
      breakIt();
      // The directory is in transition for a poll or two (removed, then a file written in its place): wait for the final reason.
      const ready = await until(() => health(t, '/readyz'), (r) => notReady(r.body) && why.test(r.body.reasons.join('\n')), 10_000);
      expect(ready.code).toBe(503);
      expect(ready.body.status).not.toBe('ok');
      expect(ready.body.reasons.join('\n')).toMatch(new RegExp(`listener lab-drop: directory .*drop ${why.source}`));
      expect(ready.body.sources.find((s) => s.name === 'lab-drop')).toMatchObject({ live: false, ready: false });
      const live = await health(t, '/healthz');
      expect(live.code).toBe(503);
      expect(live.body.status).toBe('failing');
      expect(live.body.reasons.join('\n')).toMatch(/listener lab-drop/);
      // Back to a usable directory: both green again, code and body agreeing.
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir);
      const back = await until(() => health(t, '/readyz'), (r) => r.code === 200, 10_000);
      expect(back.body.status).toBe('ok');
      expect(back.body.sources.find((s) => s.name === 'lab-drop')).toMatchObject({ live: true, ready: true });
    });
  }
});

/** Runs `hisbridge start` and resolves with its exit code and stderr, or kills it after `ms` (a hang) and says so. */
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

describe('hisbridge start with a file source it cannot use', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'hisbridge-filedir-'));
    mkdirSync(path.join(root, 'routes'));
    writeFileSync(path.join(root, 'a-file'), 'x');
    execFileSync('mkfifo', [path.join(root, 'a-fifo')]);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const cases: [string, () => string, RegExp][] = [
    ['a missing directory under /proc', () => `/proc/hisbridge-test-${process.pid}/drop`, /ENOENT/],
    ['an existing directory under /proc', () => '/proc/self/fd', /ENOENT|EPERM|EACCES/],
    ['a FIFO', () => path.join(root, 'a-fifo'), /ENOTDIR/],
    ['a regular file', () => path.join(root, 'a-file'), /ENOTDIR/],
  ];
  for (const [what, dirOf, code] of cases) {
    it(`${what}: exits non-zero within 10 s with FILE_E_DIR_UNUSABLE naming the listener and the path`, async () => {
      const dir = dirOf();
      const site = path.join(root, `site-${what.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(site, `simulators: false\nlisteners:\n  - { name: mllp, port: 0 }\n  - { name: lab-drop, type: file, dir: "${dir}" }\nhttp: { port: 0 }\n`);
      const r = await start(['--config', site, '--routes', path.join(root, 'routes'), '--data-dir', path.join(root, 'data')], 12_000);
      expect(r.hung, `start hung:\n${r.stderr}`).toBe(false);
      expect(r.elapsedMs).toBeLessThan(10_000);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/cannot start: FILE_E_DIR_UNUSABLE: listener "lab-drop" \(file\): cannot use directory /);
      expect(r.stderr).toContain(dir);
      expect(r.stderr).toMatch(code);
      expect(r.stderr).not.toMatch(/hisbridge ready/);
    }, 20_000);
  }
});

describe('makeDirs', () => {
  it('fails at once with ENOENT under /proc, where a recursive mkdir never returns', async () => {
    const t0 = Date.now();
    await expect(makeDirs(`/proc/hisbridge-test-${process.pid}/a/b`, 0o700)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('makeDirsUnder makes the levels below a root but never the root: a watched directory removed meanwhile stays removed', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'hisbridge-mkdirs-'));
    const root = path.join(base, 'drop');
    try {
      mkdirSync(root);
      await makeDirsUnder(root, path.join(root, '.work', 'abc'), 0o700);
      expect(existsSync(path.join(root, '.work', 'abc'))).toBe(true);
      await makeDirsUnder(root, path.join(root, '.work', 'abc'), 0o700);
      // The poll raced an operator's rm -r: the recursive make created the directory again (health stayed green).
      rmSync(root, { recursive: true, force: true });
      await expect(makeDirsUnder(root, path.join(root, 'done'), 0o700)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(existsSync(root)).toBe(false);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('makes every missing level, accepts existing ones, and refuses a level that is a file', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'hisbridge-mkdirs-'));
    try {
      await makeDirs(path.join(root, 'a', 'b', 'c'), 0o700);
      await makeDirs(path.join(root, 'a', 'b', 'c'), 0o700);
      writeFileSync(path.join(root, 'f'), 'x');
      await expect(makeDirs(path.join(root, 'f', 'g'), 0o700)).rejects.toMatchObject({ code: 'ENOTDIR' });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
