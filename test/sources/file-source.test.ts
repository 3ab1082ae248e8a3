/**
 * The file source (issue 13, item 4) over real files in temp directories and
 * a real engine (store, default routes, gd-ehr simulator over HTTP) through
 * the temporary harness SourceContext (test/helpers/source-context.ts).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, symlinkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fileSource, { globToRegExp, type FileSourceConfig } from '../../plugins/source-file/index.js';
import type { RunningSource, SourceContext } from '../../core/sdk.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { harnessContext } from '../helpers/source-context.js';
import { batch, idNumber, registration } from './file-fixtures.js';

interface SimCall { op: string; verified: boolean; returnCode?: string; replayed?: boolean; fields?: Record<string, unknown> }

async function until<T>(fn: () => T | Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 40));
  }
}
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('file source', () => {
  let t: TestEngine;
  let root: string;
  const running: RunningSource[] = [];

  beforeAll(async () => {
    t = await startEngine();
    root = mkdtempSync(path.join(tmpdir(), 'hisbridge-file-'));
  });
  afterEach(async () => {
    for (const r of running.splice(0)) await r.close(2000);
  });
  afterAll(async () => {
    await t?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  let n = 0;
  async function start(extra: Partial<FileSourceConfig> = {}) {
    const dir = `inbox-${++n}`;
    const config = { name: `lis-drop-${n}`, type: 'file', dir, poll: '60ms', ...extra } as FileSourceConfig;
    const h = harnessContext(t.engine, { config: config as unknown as Record<string, unknown>, baseDir: root });
    const src = await fileSource.start(h.ctx as SourceContext & { config: FileSourceConfig }, h.submit);
    running.push(src);
    return { src, dir: path.join(root, config.dir), name: config.name, setPaused: h.setPaused };
  }

  async function simCalls(): Promise<SimCall[]> {
    const res = await fetch(`${t.engine.simulators.gdEhr!.url}/__sim/calls`);
    return ((await res.json()) as { calls: SimCall[] }).calls;
  }
  const stored = (controlId: string) => t.engine.store.searchMessages({ controlId, limit: 10 }).length;
  const authorizedIds = async () => new Set((await simCalls()).filter((c) => c.op === 'authorize' && c.returnCode === '1').map((c) => String(c.fields?.patientIdcard)));

  /** Drops a file the way senders should: written under another name, then renamed in. */
  function drop(dir: string, name: string, data: string | Buffer): void {
    const tmp = path.join(dir, `.${name}.part`);
    writeFileSync(tmp, data);
    renameSync(tmp, path.join(dir, name));
  }

  it('starts by making dir, done/, error/, ack/ and a work area (0700), relative to baseDir', async () => {
    const { dir } = await start();
    for (const d of ['', 'done', 'error', 'ack', '.work']) {
      expect(statSync(path.join(dir, d)).isDirectory()).toBe(true);
      expect(statSync(path.join(dir, d)).mode & 0o777).toBe(0o700);
    }
  });

  it('a batch file of 3 messages moves to done with 3 ACKs in the batch ACK form, and each is authorized at the simulator', async () => {
    const { dir } = await start({ ack: true, pattern: '*.hl7' });
    drop(dir, 'batch.hl7', batch([registration('FB0001', 101), registration('FB0002', 102), registration('FB0003', 103)]));
    await until(() => existsSync(path.join(dir, 'done', 'batch.hl7')), Boolean);
    expect(readdirSync(dir).filter((f) => f.endsWith('.hl7'))).toEqual([]);
    const ack = readFileSync(path.join(dir, 'ack', 'batch.hl7.ack'), 'utf8');
    const segs = ack.split(/[\r\n]+/).filter(Boolean);
    expect(segs[0]).toMatch(/^BHS\|/);
    expect(segs.filter((s) => s.startsWith('MSA|AA|'))).toEqual(['MSA|AA|FB0001', 'MSA|AA|FB0002', 'MSA|AA|FB0003'].map((x) => expect.stringContaining(x)) as unknown as string[]);
    expect(segs.at(-1)).toBe('BTS|3');
    expect(readdirSync(path.join(dir, 'error'))).toEqual([]);
    const ids = await until(authorizedIds, (s) => [101, 102, 103].every((i) => s.has(idNumber(i))));
    for (const i of [101, 102, 103]) expect(ids.has(idNumber(i))).toBe(true);
  });

  it('a file with one bad message moves to error with a .err naming its index and MSH-10; the good message is delivered', async () => {
    const { dir } = await start({ ack: true });
    // Message 2 declares UTF-8 but carries a byte that is never valid UTF-8 in its name: refused (invalidBytes: reject).
    const bad = Buffer.from(registration('FE0002', 202), 'utf8');
    const at = bad.indexOf(Buffer.from('测试'));
    bad[at] = 0xff;
    drop(dir, 'mixed.hl7', Buffer.concat([Buffer.from(registration('FE0001', 201)), bad, Buffer.from(registration('FE0003', 203))]));
    await until(() => existsSync(path.join(dir, 'error', 'mixed.hl7.err')), Boolean);
    expect(existsSync(path.join(dir, 'error', 'mixed.hl7'))).toBe(true);
    expect(existsSync(path.join(dir, 'done', 'mixed.hl7'))).toBe(false);
    const err = readFileSync(path.join(dir, 'error', 'mixed.hl7.err'), 'utf8');
    expect(err).toContain('3 message(s), 2 committed, 1 refused');
    expect(err).toMatch(/^message 2 \(MSH-10 FE0002\): HL7_E_INVALID_BYTES: .+/m);
    expect(err).not.toContain('FE0001');
    expect(err).not.toContain(idNumber(202));
    // Loose messages: one ACK each, one per line.
    const acks = readFileSync(path.join(dir, 'ack', 'mixed.hl7.ack'), 'utf8').split('\n').filter(Boolean);
    expect(acks).toHaveLength(3);
    expect(acks[1]).toMatch(/MSA\|A[ER]\|FE0002/);
    const ids = await until(authorizedIds, (s) => s.has(idNumber(201)) && s.has(idNumber(203)));
    expect(ids.has(idNumber(201))).toBe(true);
    expect(ids.has(idNumber(203))).toBe(true);
    expect(ids.has(idNumber(202))).toBe(false);
  });

  it('a multi-message file with LF line ends (segments and messages) is split, decoded with names intact, and moved to done', async () => {
    const { dir } = await start();
    drop(dir, 'lf.hl7', [301, 302, 303].map((i) => registration(`FL0${i}`, i, '\n')).join(''));
    await until(() => existsSync(path.join(dir, 'done', 'lf.hl7')), Boolean);
    expect(readdirSync(path.join(dir, 'error'))).toEqual([]);
    const calls = await until(simCalls, (c) => [301, 302, 303].every((i) => c.some((x) => x.op === 'authorize' && x.fields?.patientIdcard === idNumber(i))));
    for (const i of [301, 302, 303]) {
      const c = calls.find((x) => x.op === 'authorize' && x.fields?.patientIdcard === idNumber(i));
      expect(c?.fields?.patientName).toBe(`测试患者${i}`);
    }
    expect(stored('FL0301')).toBe(1);
  });

  it('a GB18030 file with an empty MSH-18 is decoded with the listener charset', async () => {
    const { dir } = await start({ charset: 'gb18030' });
    const text = registration('FG0401', 401).replace('|UNICODE UTF-8', '|');
    const iconv = await import('iconv-lite');
    drop(dir, 'gbk.hl7', iconv.default.encode(text, 'gb18030'));
    const calls = await until(simCalls, (c) => c.some((x) => x.op === 'authorize' && x.fields?.patientIdcard === idNumber(401)));
    expect(calls.find((x) => x.fields?.patientIdcard === idNumber(401))?.fields?.patientName).toBe('测试患者401');
    await until(() => existsSync(path.join(dir, 'done', 'gbk.hl7')), Boolean);
  });

  it('a file still being written is not claimed until its size and mtime stop changing', async () => {
    const { dir } = await start();
    const file = path.join(dir, 'growing.hl7');
    writeFileSync(file, registration('FW0501', 501).slice(0, 20));
    const rest = registration('FW0501', 501).slice(20);
    // Append one character every 20 ms (three times per 60 ms poll) for ~1 s.
    for (let k = 0; k < rest.length && k < 50; k++) {
      await pause(20);
      expect(existsSync(file)).toBe(true);
      appendFileSync(file, rest[k]!);
    }
    appendFileSync(file, rest.slice(50));
    expect(existsSync(file)).toBe(true);
    await until(() => existsSync(path.join(dir, 'done', 'growing.hl7')), Boolean);
    expect(stored('FW0501')).toBe(1);
  });

  it('takes only regular files matching the pattern; name clashes in done get a suffix, never overwrite', async () => {
    const { dir } = await start({ pattern: 'lab-??.hl7' });
    drop(dir, 'lab-01.hl7', registration('FP0601', 601));
    drop(dir, 'lab-001.hl7', registration('FP0602', 602));
    drop(dir, 'notes.txt', 'hello');
    mkdirSync(path.join(dir, 'lab-02.hl7'));
    await until(() => existsSync(path.join(dir, 'done', 'lab-01.hl7')), Boolean);
    drop(dir, 'lab-01.hl7', registration('FP0603', 603));
    await until(() => existsSync(path.join(dir, 'done', 'lab-01-1.hl7')), Boolean);
    expect(readFileSync(path.join(dir, 'done', 'lab-01.hl7'), 'utf8')).toContain('FP0601');
    expect(readFileSync(path.join(dir, 'done', 'lab-01-1.hl7'), 'utf8')).toContain('FP0603');
    expect(existsSync(path.join(dir, 'lab-001.hl7'))).toBe(true);
    expect(existsSync(path.join(dir, 'notes.txt'))).toBe(true);
    expect(statSync(path.join(dir, 'lab-02.hl7')).isDirectory()).toBe(true);
  });

  it('claims no file while paused by back-pressure, and takes it after the resume', async () => {
    const { dir, setPaused } = await start();
    setPaused(true);
    drop(dir, 'held.hl7', registration('FH0701', 701));
    await pause(500);
    expect(existsSync(path.join(dir, 'held.hl7'))).toBe(true);
    expect(stored('FH0701')).toBe(0);
    setPaused(false);
    await until(() => existsSync(path.join(dir, 'done', 'held.hl7')), Boolean);
  });

  it('pauses between the messages of the file in hand while paused', async () => {
    const { dir, setPaused } = await start();
    let paused = false;
    const unsub = setInterval(() => {
      // Pause as soon as the first message of the file is stored.
      if (!paused && stored('FQ0801') === 1) {
        paused = true;
        setPaused(true);
      }
    }, 1);
    drop(dir, 'two.hl7', registration('FQ0801', 801) + registration('FQ0802', 802) + registration('FQ0803', 803));
    await until(() => paused, Boolean);
    clearInterval(unsub);
    await pause(400);
    const handled = ['FQ0801', 'FQ0802', 'FQ0803'].filter((id) => stored(id) === 1);
    // The message in hand when the pause came may finish; the one after it waits.
    expect(handled.length).toBeLessThan(3);
    setPaused(false);
    await until(() => existsSync(path.join(dir, 'done', 'two.hl7')), Boolean);
  });

  it('two sources on one directory: the rename decides, each file is taken once', async () => {
    const a = await start({ poll: '20ms' });
    const config = { name: 'lis-drop-twin', type: 'file', dir: path.relative(root, a.dir), poll: '20ms' } as FileSourceConfig;
    const h = harnessContext(t.engine, { config: config as unknown as Record<string, unknown>, baseDir: root });
    const b = await fileSource.start(h.ctx as SourceContext & { config: FileSourceConfig }, h.submit);
    running.push(b);
    const ids = Array.from({ length: 24 }, (_, i) => `FT${1200 + i}`);
    ids.forEach((id, i) => drop(a.dir, `f${i}.hl7`, registration(id, 1200 + i)));
    await until(() => readdirSync(path.join(a.dir, 'done')).length, (k) => k >= ids.length);
    await pause(200);
    expect(readdirSync(path.join(a.dir, 'done')).sort()).toEqual(ids.map((_, i) => `f${i}.hl7`).sort());
    expect(ids.map(stored)).toEqual(ids.map(() => 1));
    // Each file was submitted by one source only: no duplicate answers, and the files done add up.
    const ia = a.src.health!().info as Record<string, number>;
    const ib = b.health!().info as Record<string, number>;
    expect(ia.done + ib.done).toBe(ids.length);
    expect(ia.duplicates + ib.duplicates).toBe(0);
  });

  it('an oversized file moves to error unread, with the reason', async () => {
    const { dir } = await start({ maxFileBytes: 1024 });
    drop(dir, 'big.hl7', registration('FZ0901', 901) + 'NTE|1||' + 'x'.repeat(2000) + '\r');
    await until(() => existsSync(path.join(dir, 'error', 'big.hl7.err')), Boolean);
    expect(readFileSync(path.join(dir, 'error', 'big.hl7.err'), 'utf8')).toMatch(/over maxFileBytes \(1024\)/);
    expect(stored('FZ0901')).toBe(0);
  });

  it('a claimed entry that turns out to be a symbolic link is moved to error unread, never followed', async () => {
    const { dir } = await start();
    const secret = path.join(root, 'secret.hl7');
    writeFileSync(secret, registration('FS1301', 1301));
    // As if a sender swapped the file for a link between the check and the claim: put the link in the work area.
    const work = path.join(dir, '.work');
    const inst = await until(() => readdirSync(work), (d) => d.length === 1);
    symlinkSync(secret, path.join(work, inst[0]!, '0000000000000000.link.hl7'));
    await until(() => existsSync(path.join(dir, 'error', 'link.hl7.err')), Boolean);
    expect(readFileSync(path.join(dir, 'error', 'link.hl7.err'), 'utf8')).toContain('not a regular file');
    expect(stored('FS1301')).toBe(0);
    expect(existsSync(secret)).toBe(true);
  });

  it('an empty file moves to error', async () => {
    const { dir } = await start();
    drop(dir, 'empty.hl7', '\r\n  \n');
    await until(() => existsSync(path.join(dir, 'error', 'empty.hl7.err')), Boolean);
    expect(readFileSync(path.join(dir, 'error', 'empty.hl7.err'), 'utf8')).toContain('no HL7 message');
  });

  it('health turns not-live when the directory is removed, and live again when it is back', async () => {
    const { src, dir } = await start();
    expect(src.health!().live).toBe(true);
    rmSync(dir, { recursive: true, force: true });
    const h = await until(() => src.health!(), (x) => !x.live);
    expect(h.live).toBe(false);
    expect(h.detail).toMatch(/unusable \(ENOENT\)/);
    mkdirSync(dir);
    await until(() => src.health!(), (x) => x.live);
    drop(dir, 'back.hl7', registration('FR1001', 1001));
    await until(() => existsSync(path.join(dir, 'done', 'back.hl7')), Boolean);
    expect(await until(() => src.health!().info!, (i) => i.done === 1)).toMatchObject({ done: 1, error: 0 });
  });

  it('start fails with the listener name and the path when the directory cannot be created', async () => {
    const blocker = path.join(root, 'a-file');
    writeFileSync(blocker, 'x');
    const config = { name: 'lis-bad', type: 'file', dir: 'a-file/inbox' } as FileSourceConfig;
    const h = harnessContext(t.engine, { config: config as unknown as Record<string, unknown>, baseDir: root });
    await expect(fileSource.start(h.ctx as SourceContext & { config: FileSourceConfig }, h.submit)).rejects.toThrow(/listener "lis-bad" \(file\): cannot use directory .*a-file\/inbox: ENOTDIR/);
  });

  it('globs: * and ? on the whole name, everything else literal', () => {
    const g = globToRegExp('*.hl7');
    expect(g.test('a.hl7')).toBe(true);
    expect(g.test('a.hl7.tmp')).toBe(false);
    expect(g.test('ahl7')).toBe(false);
    expect(globToRegExp('lab-?.[x]').test('lab-1.[x]')).toBe(true);
    expect(globToRegExp('lab-?.[x]').test('lab-1.x')).toBe(false);
  });
});

describe('file source: a failed outcome (back-pressure under overload: reject) is retried, never moved to error', () => {
  it('keeps the file claimed at the refused message and finishes it from there once deliveries drain', async () => {
    const routes = mkdtempSync(path.join(tmpdir(), 'hisbridge-file-routes-'));
    writeFileSync(
      path.join(routes, 'file.yaml'),
      [
        'name: file-authorize',
        'match: { events: [ADT^A04] }',
        'ack: on-receive',
        'steps:',
        '  - plugin: gd-ehr-authorize',
        '    config: { idNumber: "${PID-3[5=NI].1}", patientName: "${PID-5.1}${PID-5.2}", consent: { value: "${ZCN-1}", accept: ["Y"] } }',
        'delivery:',
        '  retry: { max: 1000, initial: 50ms, maxDelay: 200ms }',
        '',
      ].join('\n'),
    );
    const t = await startEngine({ routesDir: routes, siteYaml: 'store: { highWaterMark: 4, overload: reject }\n' });
    const root = mkdtempSync(path.join(tmpdir(), 'hisbridge-file-bp-'));
    const sim = t.engine.simulators.gdEhr!.url;
    let src: RunningSource | undefined;
    try {
      await fetch(`${sim}/__sim/faults`, { method: 'POST', body: JSON.stringify({ status: 503 }) });
      const config = { name: 'lis-bp', type: 'file', dir: 'in', poll: '60ms' } as FileSourceConfig;
      const h = harnessContext(t.engine, { config: config as unknown as Record<string, unknown>, baseDir: root });
      src = await fileSource.start(h.ctx as SourceContext & { config: FileSourceConfig }, h.submit);
      const dir = path.join(root, 'in');
      const ids = Array.from({ length: 10 }, (_, i) => `FX${1100 + i}`);
      writeFileSync(path.join(dir, '.ten.part'), ids.map((id, i) => registration(id, 1100 + i)).join(''));
      renameSync(path.join(dir, '.ten.part'), path.join(dir, 'ten.hl7'));
      const stored = (id: string) => t.engine.store.searchMessages({ controlId: id, limit: 10 }).length;
      // The platform is down: deliveries pile up to the high-water mark, then the engine refuses (a passing reason).
      await until(() => src!.health!().info?.retries as number, (r) => r >= 2);
      expect(existsSync(path.join(dir, 'error', 'ten.hl7'))).toBe(false);
      expect(existsSync(path.join(dir, 'done', 'ten.hl7'))).toBe(false);
      const before = ids.filter((id) => stored(id) === 1).length;
      expect(before).toBeGreaterThanOrEqual(4);
      expect(before).toBeLessThan(10);
      // The platform is back: deliveries drain, the next poll resumes the claimed file at the refused message.
      await fetch(`${sim}/__sim/reset`, { method: 'POST' });
      await until(() => existsSync(path.join(dir, 'done', 'ten.hl7')), Boolean, 30_000);
      expect(ids.map(stored)).toEqual(ids.map(() => 1));
      expect(readdirSync(path.join(dir, 'error'))).toEqual([]);
      // The counters move just after the file does.
      expect((await until(() => src!.health!().info!, (i) => i.done === 1)) as Record<string, unknown>).toMatchObject({ done: 1, error: 0, duplicates: 0 });
    } finally {
      await src?.close(2000);
      await t.stop();
      rmSync(root, { recursive: true, force: true });
      rmSync(routes, { recursive: true, force: true });
    }
  }, 60_000);
});
