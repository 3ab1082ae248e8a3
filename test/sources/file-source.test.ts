/**
 * The file source (issue 13, item 4) over real files in temp directories and
 * a real engine (store, default routes, gd-ehr simulator over HTTP): every
 * listener is declared in the engine's hisbridge.yaml, so each test goes
 * through the config loader, the engine's own source start, its
 * SourceContext (submitBlock with the before/after hooks), the ingress port
 * and the one back-pressure controller.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, symlinkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { globToRegExp } from '../../plugins/source-file/index.js';
import type { RunningSource } from '../../core/sdk.js';
import { Engine } from '../../core/engine/engine.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { silentLogger } from '../../core/log.js';
import { MllpClient } from '../../core/mllp/client.js';
import { parseHl7 } from '../../core/hl7/index.js';
import { builtinRegistry } from '../../plugins/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
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

/** Drops a file the way senders should: written under another name, then renamed in. */
function drop(dir: string, name: string, data: string | Buffer): void {
  const tmp = path.join(dir, `.${name}.part`);
  writeFileSync(tmp, data);
  renameSync(tmp, path.join(dir, name));
}

/** The running source of a listener, as the engine started it. */
function sourceOf(t: TestEngine, name: string): RunningSource {
  const s = t.engine.sources.find((x) => x.name === name);
  if (!s) throw new Error(`no source ${name}`);
  return s.running;
}

const simCallsOf = async (t: TestEngine): Promise<SimCall[]> => ((await (await fetch(`${t.engine.simulators.gdEhr!.url}/__sim/calls`)).json()) as { calls: SimCall[] }).calls;
const storedIn = (t: TestEngine, controlId: string) => t.engine.store.searchMessages({ controlId, limit: 10 }).length;

/** The listeners of the main engine, one per test (each its own directory under the site file's directory). */
const LISTENERS: Record<string, string> = {
  'lis-dirs': 'dir: inbox-dirs',
  'lis-batch': 'dir: inbox-batch, pattern: "*.hl7", charset: gb18030, poll: 50ms, ack: true',
  'lis-mixed': 'dir: inbox-mixed, poll: 60ms, ack: true',
  'lis-lf': 'dir: inbox-lf, poll: 60ms',
  'lis-gbk': 'dir: inbox-gbk, poll: 60ms, charset: gb18030',
  'lis-growing': 'dir: inbox-growing, poll: 60ms',
  'lis-pattern': 'dir: inbox-pattern, poll: 60ms, pattern: "lab-??.hl7"',
  'lis-twin-a': 'dir: inbox-twin, poll: 20ms',
  'lis-twin-b': 'dir: inbox-twin, poll: 20ms',
  'lis-big': 'dir: inbox-big, poll: 60ms, maxFileBytes: 1024',
  'lis-link': 'dir: inbox-link, poll: 60ms',
  'lis-empty': 'dir: inbox-empty, poll: 60ms',
  'lis-health': 'dir: inbox-health, poll: 60ms',
  'lis-onlyone': 'dir: inbox-onlyone, poll: 60ms, ack: true, multiMessageBlocks: reject',
};

describe('file source', () => {
  let t: TestEngine;
  let root: string;
  const dirOf = (name: string) => path.join(root, /dir: ([^,]+)/.exec(LISTENERS[name]!)![1]!);
  const simCalls = () => simCallsOf(t);
  const stored = (controlId: string) => storedIn(t, controlId);
  const authorizedIds = async () => new Set((await simCalls()).filter((c) => c.op === 'authorize' && c.returnCode === '1').map((c) => String(c.fields?.patientIdcard)));

  beforeAll(async () => {
    t = await startEngine({
      siteYaml: ['listeners:', '  - { name: mllp, port: 0 }', ...Object.entries(LISTENERS).map(([name, rest]) => `  - { name: ${name}, type: file, ${rest} }`), ''].join('\n'),
    });
    // Relative dirs are taken from the site file's directory.
    root = t.dataDir;
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('starts by making dir, done/, error/, ack/ and a work area (0700), relative to the site file', async () => {
    const dir = dirOf('lis-dirs');
    for (const d of ['', 'done', 'error', 'ack', '.work']) {
      expect(statSync(path.join(dir, d)).isDirectory()).toBe(true);
      expect(statSync(path.join(dir, d)).mode & 0o777).toBe(0o700);
    }
    expect(t.engine.health().sources).toContainEqual(expect.objectContaining({ name: 'lis-dirs', type: 'file', live: true }));
  });

  it('a batch file of 3 messages moves to done with 3 ACKs in the batch ACK form, and each is authorized at the simulator', async () => {
    const dir = dirOf('lis-batch');
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
    // The messages are stored under the listener's name, as routes name it in `sources:`.
    expect(t.engine.store.searchMessages({ controlId: 'FB0001', limit: 10 })[0]).toMatchObject({ source: 'lis-batch' });
  });

  it('a file with one bad message moves to error with a .err naming its index and MSH-10; the good message is delivered', async () => {
    const dir = dirOf('lis-mixed');
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

  it('with multiMessageBlocks: reject, a file of several loose messages goes to error, its .err names the refusal, nothing is stored', async () => {
    const dir = dirOf('lis-onlyone');
    drop(dir, 'two.hl7', registration('FO0001', 1401) + registration('FO0002', 1402));
    await until(() => existsSync(path.join(dir, 'error', 'two.hl7.err')), Boolean);
    expect(existsSync(path.join(dir, 'error', 'two.hl7'))).toBe(true);
    expect(existsSync(path.join(dir, 'done', 'two.hl7'))).toBe(false);
    const err = readFileSync(path.join(dir, 'error', 'two.hl7.err'), 'utf8');
    expect(err).toContain('2 message(s), 0 committed, 2 refused');
    expect(err).toMatch(/^message 1 \(MSH-10 FO0001\): HL7_E_MULTI_MESSAGE_BLOCK: .+/m);
    expect(err).toMatch(/^message 2 \(MSH-10 FO0002\): HL7_E_MULTI_MESSAGE_BLOCK: .+/m);
    const acks = readFileSync(path.join(dir, 'ack', 'two.hl7.ack'), 'utf8').split('\n').filter(Boolean);
    expect(acks.map((a) => /MSA\|(\w+)\|([^|\r]+)/.exec(a)?.slice(1, 3).join(' '))).toEqual(['AR FO0001', 'AR FO0002']);
    expect(stored('FO0001') + stored('FO0002')).toBe(0);
    // A file of one message is not a multi-message block: it is taken.
    drop(dir, 'one.hl7', registration('FO0003', 1403));
    await until(() => existsSync(path.join(dir, 'done', 'one.hl7')), Boolean);
    expect(stored('FO0003')).toBe(1);
  });

  it('a multi-message file with LF line ends (segments and messages) is split, decoded with names intact, and moved to done', async () => {
    const dir = dirOf('lis-lf');
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
    const dir = dirOf('lis-gbk');
    const text = registration('FG0401', 401).replace('|UNICODE UTF-8', '|');
    const iconv = await import('iconv-lite');
    drop(dir, 'gbk.hl7', iconv.default.encode(text, 'gb18030'));
    const calls = await until(simCalls, (c) => c.some((x) => x.op === 'authorize' && x.fields?.patientIdcard === idNumber(401)));
    expect(calls.find((x) => x.fields?.patientIdcard === idNumber(401))?.fields?.patientName).toBe('测试患者401');
    await until(() => existsSync(path.join(dir, 'done', 'gbk.hl7')), Boolean);
  });

  it('a file still being written is not claimed until its size and mtime stop changing', async () => {
    const dir = dirOf('lis-growing');
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
    const dir = dirOf('lis-pattern');
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

  it('two sources on one directory: the rename decides, each file is taken once', async () => {
    const dir = dirOf('lis-twin-a');
    expect(dirOf('lis-twin-b')).toBe(dir);
    const ids = Array.from({ length: 24 }, (_, i) => `FT${1200 + i}`);
    ids.forEach((id, i) => drop(dir, `f${i}.hl7`, registration(id, 1200 + i)));
    await until(() => readdirSync(path.join(dir, 'done')).length, (k) => k >= ids.length);
    await pause(200);
    expect(readdirSync(path.join(dir, 'done')).sort()).toEqual(ids.map((_, i) => `f${i}.hl7`).sort());
    expect(ids.map(stored)).toEqual(ids.map(() => 1));
    // Each file was submitted by one source only: no duplicate answers, and the files done add up.
    const ia = sourceOf(t, 'lis-twin-a').health!().info as Record<string, number>;
    const ib = sourceOf(t, 'lis-twin-b').health!().info as Record<string, number>;
    expect(ia.done + ib.done).toBe(ids.length);
    expect(ia.duplicates + ib.duplicates).toBe(0);
  });

  it('an oversized file moves to error unread, with the reason', async () => {
    const dir = dirOf('lis-big');
    drop(dir, 'big.hl7', registration('FZ0901', 901) + 'NTE|1||' + 'x'.repeat(2000) + '\r');
    await until(() => existsSync(path.join(dir, 'error', 'big.hl7.err')), Boolean);
    expect(readFileSync(path.join(dir, 'error', 'big.hl7.err'), 'utf8')).toMatch(/over maxFileBytes \(1024\)/);
    expect(stored('FZ0901')).toBe(0);
  });

  it('a claimed entry that turns out to be a symbolic link is moved to error unread, never followed', async () => {
    const dir = dirOf('lis-link');
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
    const dir = dirOf('lis-empty');
    drop(dir, 'empty.hl7', '\r\n  \n');
    await until(() => existsSync(path.join(dir, 'error', 'empty.hl7.err')), Boolean);
    expect(readFileSync(path.join(dir, 'error', 'empty.hl7.err'), 'utf8')).toContain('no HL7 message');
  });

  it('health turns not-live (and the engine failing) when the directory is removed, and live again when it is back', async () => {
    const src = sourceOf(t, 'lis-health');
    const dir = dirOf('lis-health');
    expect(src.health!().live).toBe(true);
    rmSync(dir, { recursive: true, force: true });
    const h = await until(() => src.health!(), (x) => !x.live);
    expect(h.live).toBe(false);
    expect(h.detail).toMatch(/unusable \(ENOENT\)/);
    const eh = t.engine.health();
    expect(eh.status).toBe('failing');
    expect(eh.reasons.join('\n')).toMatch(/listener lis-health: directory .* unusable \(ENOENT\)/);
    mkdirSync(dir);
    await until(() => src.health!(), (x) => x.live);
    drop(dir, 'back.hl7', registration('FR1001', 1001));
    await until(() => existsSync(path.join(dir, 'done', 'back.hl7')), Boolean);
    expect(await until(() => src.health!().info!, (i) => i.done === 1)).toMatchObject({ done: 1, error: 0 });
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

/** A route that authorizes every consented ADT^A04 at gd-ehr and keeps retrying while the platform is down. */
function retryingRoutes(): string {
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
  return routes;
}

const simFault = async (t: TestEngine, on: boolean) => {
  const sim = t.engine.simulators.gdEhr!.url;
  const r = on ? await fetch(`${sim}/__sim/faults`, { method: 'POST', body: JSON.stringify({ status: 503 }) }) : await fetch(`${sim}/__sim/reset`, { method: 'POST' });
  await r.arrayBuffer();
};

describe('file source under the engine back-pressure (overload: pause)', () => {
  let t: TestEngine;
  let routes: string;

  beforeAll(async () => {
    routes = retryingRoutes();
    t = await startEngine({
      routesDir: routes,
      siteYaml: [
        'store: { highWaterMark: 3, overload: pause }',
        'listeners:',
        '  - { name: mllp, port: 0 }',
        '  - { name: lis-held, type: file, dir: held, poll: 50ms }',
        '  - { name: lis-between, type: file, dir: between, poll: 50ms }',
        '',
      ].join('\n'),
    });
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
    rmSync(routes, { recursive: true, force: true });
  });

  it('claims no file while paused, and takes it after the resume', async () => {
    const dir = path.join(t.dataDir, 'held');
    await simFault(t, true);
    // MLLP fills the store up to the mark: the one controller pauses every source.
    const client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 20_000 });
    try {
      for (let i = 0; i < 3; i++) expect(parseHl7((await client.send(registration(`FH070${i}`, 700 + i))).toString('utf8')).get('MSA-1')).toBe('AA');
    } finally {
      client.close();
    }
    expect(t.engine.flow.paused).toBe(true);
    drop(dir, 'held.hl7', registration('FH0709', 709));
    await pause(600);
    expect(existsSync(path.join(dir, 'held.hl7'))).toBe(true);
    expect(readdirSync(path.join(dir, '.work')).flatMap((d) => readdirSync(path.join(dir, '.work', d)))).toEqual([]);
    expect(storedIn(t, 'FH0709')).toBe(0);
    await simFault(t, false);
    await until(() => existsSync(path.join(dir, 'done', 'held.hl7')), Boolean);
    expect(storedIn(t, 'FH0709')).toBe(1);
    await until(() => t.engine.store.pendingCount(), (n) => n === 0);
    expect(t.engine.flow.paused).toBe(false);
  }, 60_000);

  it('holds the file in hand between two messages while paused, and finishes it after the resume', async () => {
    const dir = path.join(t.dataDir, 'between');
    expect(t.engine.store.pendingCount()).toBe(0);
    await simFault(t, true);
    const ids = Array.from({ length: 6 }, (_, i) => `FQ080${i}`);
    drop(dir, 'six.hl7', ids.map((id, i) => registration(id, 800 + i)).join(''));
    // The third commit reaches the mark (3 pending): the port pauses at once, and the source's `after` hook waits.
    await until(() => t.engine.flow.paused, Boolean);
    await pause(600);
    expect(ids.map((id) => storedIn(t, id))).toEqual([1, 1, 1, 0, 0, 0]);
    expect(existsSync(path.join(dir, 'done', 'six.hl7'))).toBe(false);
    expect(readdirSync(path.join(dir, '.work')).flatMap((d) => readdirSync(path.join(dir, '.work', d)))).toHaveLength(1);
    await simFault(t, false);
    await until(() => existsSync(path.join(dir, 'done', 'six.hl7')), Boolean, 30_000);
    expect(ids.map((id) => storedIn(t, id))).toEqual(ids.map(() => 1));
    // The file is linked into done/ a moment before the source counts it (an await between the two).
    await until(() => sourceOf(t, 'lis-between').health!().info?.done, (d) => d === 1);
    expect(sourceOf(t, 'lis-between').health!().info).toMatchObject({ done: 1, error: 0, duplicates: 0, retries: 0 });
  }, 60_000);
});

describe('file source: a failed outcome (back-pressure under overload: reject) is retried, never moved to error', () => {
  it('keeps the file claimed at the refused message and finishes it from there once deliveries drain', async () => {
    const routes = retryingRoutes();
    const t = await startEngine({
      routesDir: routes,
      siteYaml: 'store: { highWaterMark: 4, overload: reject }\nlisteners:\n  - { name: mllp, port: 0 }\n  - { name: lis-bp, type: file, dir: in, poll: 60ms }\n',
    });
    try {
      await simFault(t, true);
      const src = sourceOf(t, 'lis-bp');
      const dir = path.join(t.dataDir, 'in');
      const ids = Array.from({ length: 10 }, (_, i) => `FX${1100 + i}`);
      drop(dir, 'ten.hl7', ids.map((id, i) => registration(id, 1100 + i)).join(''));
      const stored = (id: string) => storedIn(t, id);
      // The platform is down: deliveries pile up to the high-water mark, then the engine refuses (a passing reason).
      await until(() => src.health!().info?.retries as number, (r) => r >= 2);
      expect(existsSync(path.join(dir, 'error', 'ten.hl7'))).toBe(false);
      expect(existsSync(path.join(dir, 'done', 'ten.hl7'))).toBe(false);
      const before = ids.filter((id) => stored(id) === 1).length;
      expect(before).toBeGreaterThanOrEqual(4);
      expect(before).toBeLessThan(10);
      // The platform is back: deliveries drain, the next poll resumes the claimed file at the refused message.
      await simFault(t, false);
      await until(() => existsSync(path.join(dir, 'done', 'ten.hl7')), Boolean, 30_000);
      expect(ids.map(stored)).toEqual(ids.map(() => 1));
      expect(readdirSync(path.join(dir, 'error'))).toEqual([]);
      // The counters move just after the file does.
      expect((await until(() => src.health!().info!, (i) => i.done === 1)) as Record<string, unknown>).toMatchObject({ done: 1, error: 0, duplicates: 0 });
    } finally {
      await t.stop();
      rmSync(routes, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('file source: configuration', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'hisbridge-file-cfg-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function load(yaml: string) {
    const file = path.join(root, `site-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml);
    mkdirSync(path.join(root, 'routes'), { recursive: true });
    const reg = builtinRegistry();
    return { reg, config: loadSiteConfig(file, reg.extensions, { mllpPort: 0, httpPort: 0, dataDir: path.join(root, 'store'), routesDir: path.join(root, 'routes') }, process.env, reg.sources) };
  }

  it('a misspelt key fails the load with the file, line and column', () => {
    expect(() => load('listeners:\n  - { name: mllp, port: 0 }\n  - { name: lis-drop, type: file, dir: in, pol: 2s }\n')).toThrow(/site-\w+\.yaml:3:\d+: .*pol/);
  });

  it('the engine start fails with the listener name and the path when the directory cannot be created', async () => {
    writeFileSync(path.join(root, 'a-file'), 'x');
    const { reg, config } = load('simulators: false\nlisteners:\n  - { name: mllp, port: 0 }\n  - { name: lis-bad, type: file, dir: a-file/inbox }\n');
    const engine = await Engine.create({ config, registry: reg, log: silentLogger(), simulatorPorts: 'random' });
    try {
      await expect(engine.start({ http: false })).rejects.toThrow(/listener "lis-bad" \(file\): cannot use directory .*a-file\/inbox: ENOTDIR/);
    } finally {
      await engine.stop(500);
    }
  });
});
