/**
 * `hisbridge backup` as a CLI process against a running engine (a
 * `hisbridge start` process) that keeps receiving messages over MLLP while
 * the backup runs: the copy opens and holds every message ACKed before the
 * backup started; the engine's lock is not needed; the copy is 0600, one
 * self-contained file, and an engine starts on it (the documented recovery).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MllpClient } from '../../core/mllp/client.js';
import { cli } from '../helpers/cli.js';
import { spawnEngine, type EngineProcess } from '../helpers/proc.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-backup-'));
const running: EngineProcess[] = [];
const sample = readFileSync(path.resolve('samples/01-adt-a04-registration-consent.hl7'));

afterAll(async () => {
  for (const e of running) {
    if (e.child.exitCode === null) e.child.kill('SIGKILL');
    await e.exited;
  }
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** The sample with MSH-10 replaced (byte-level: the GB18030 bytes elsewhere are kept). */
function message(controlId: string): Buffer {
  return Buffer.from(sample.toString('latin1').replace('HIS202503120001', controlId), 'latin1');
}

/** MSA-1 and MSA-2 of an ACK. */
function msa(ack: Buffer): { code: string; controlId: string } {
  const seg = ack.toString('latin1').split(/\r|\n/).find((s) => s.startsWith('MSA|')) ?? '';
  const f = seg.split('|');
  return { code: f[1] ?? '', controlId: f[2] ?? '' };
}

async function until<T>(fn: () => T | Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('hisbridge backup', () => {
  const data = path.join(dir, 'data');
  const dest = path.join(dir, 'backups', 'hisbridge-backup.db');

  it('copies the store while messages are being sent over MLLP: the copy holds every message ACKed before the backup started', async () => {
    const engine = await spawnEngine(['--mllp-port', '0', '--http-port', '0', '--data-dir', data], {}, 40_000);
    running.push(engine);
    mkdirSync(path.dirname(dest));
    const acked: string[] = [];
    let stop = false;
    let sent = 0;
    const senders = [0, 1].map(async (n) => {
      const c = await MllpClient.connect('127.0.0.1', engine.mllpPort);
      try {
        while (!stop) {
          const id = `BK${n}-${++sent}`;
          const a = msa(await c.send(message(id)));
          if (a.code === 'AA' && a.controlId === id) acked.push(id);
        }
      } finally {
        c.close();
      }
    });
    await until(() => acked.length, (n) => n >= 150);
    const before = [...acked];
    const backup = cli(['backup', dest, '--data-dir', data]);
    const duringStart = acked.length;
    const r = await backup;
    const during = acked.length - duringStart;
    stop = true;
    await Promise.all(senders);

    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^hisbridge backup: ${dest.replace(/[.]/g, '\\.')} \\(\\d+ pages, \\d+ bytes, \\d+ ms\\)$`, 'm'));
    expect(r.stderr).toContain('audit-hash.key is not in the copy');
    // The engine kept taking messages while the backup ran, and still holds its lock.
    expect(during).toBeGreaterThan(0);
    expect(readFileSync(path.join(data, 'engine.lock'), 'utf8').trim()).toBe(String(engine.child.pid));
    expect((await fetch(`${engine.httpUrl}/healthz`)).status).toBe(200);

    expect(statSync(dest).mode & 0o777).toBe(0o600);
    expect(readdirSync(path.dirname(dest))).toEqual([path.basename(dest)]);
    const db = new Database(dest, { readonly: true, fileMustExist: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
      expect(db.pragma('quick_check', { simple: true })).toBe('ok');
      const ids = new Set((db.prepare("SELECT control_id AS id FROM messages WHERE control_id LIKE 'BK%'").all() as { id: string }[]).map((x) => x.id));
      const missing = before.filter((id) => !ids.has(id));
      expect(missing).toEqual([]);
      // Each stored message kept its deliveries.
      const orphans = db.prepare("SELECT count(*) AS n FROM messages m WHERE control_id LIKE 'BK%' AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id)").get() as { n: number };
      expect(orphans.n).toBe(0);
    } finally {
      db.close();
    }

    // Recovery as documented: stop the engine, put the copy in place of hisbridge.db (no -wal, -shm), start.
    engine.child.kill('SIGTERM');
    expect(await engine.exited).toBe(0);
    const restored = path.join(dir, 'restored');
    mkdirSync(restored, { mode: 0o700 });
    copyFileSync(dest, path.join(restored, 'hisbridge.db'));
    copyFileSync(path.join(data, 'audit-hash.key'), path.join(restored, 'audit-hash.key'));
    const again = await spawnEngine(['--mllp-port', '0', '--http-port', '0', '--data-dir', restored], {}, 40_000);
    running.push(again);
    expect((await fetch(`${again.httpUrl}/healthz`)).status).toBe(200);
    const found = await cli(['messages', 'search', '--control-id', before[0]!, '--data-dir', restored, '--json']);
    expect(found.code, found.stderr).toBe(0);
    expect(found.stdout).toContain(before[0]!);
    again.child.kill('SIGTERM');
    await again.exited;
  }, 120_000);

  it('never overwrites: an existing DEST is refused and left as it was; a directory DEST gets a time-stamped file', async () => {
    writeFileSync(path.join(dir, 'taken.db'), 'keep me');
    const r = await cli(['backup', path.join(dir, 'taken.db'), '--data-dir', data]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/taken\.db exists: a backup never overwrites a file/);
    expect(readFileSync(path.join(dir, 'taken.db'), 'utf8')).toBe('keep me');

    const into = path.join(dir, 'nightly');
    mkdirSync(into);
    const d = await cli(['backup', into, '--data-dir', data]);
    expect(d.code, d.stderr).toBe(0);
    const files = readdirSync(into);
    expect(files).toEqual([expect.stringMatching(/^hisbridge-\d{8}T\d{6}Z\.db$/)]);
    expect(statSync(path.join(into, files[0]!)).mode & 0o777).toBe(0o600);
  }, 60_000);

  it('refuses a data directory without a store, a DEST inside the data directory, and a missing DEST', async () => {
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    const r = await cli(['backup', path.join(dir, 'x.db'), '--data-dir', empty]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no hisbridge store in ${empty}`);
    expect(existsSync(path.join(dir, 'x.db'))).toBe(false);
    expect(existsSync(path.join(empty, 'hisbridge.db'))).toBe(false);

    const inside = await cli(['backup', path.join(data, 'copy.db'), '--data-dir', data]);
    expect(inside.code).toBe(1);
    expect(inside.stderr).toContain('DEST is inside the data directory');

    const usage = await cli(['backup', '--data-dir', data]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('DEST is missing');
  }, 60_000);

  it('a DEST in a folder that does not exist, or one that cannot be written (/proc), is refused with one clear line and leaves nothing behind', async () => {
    const nofolder = path.join(dir, 'no-such-folder', 'copy.db');
    const [missing, proc] = await Promise.all([cli(['backup', nofolder, '--data-dir', data]), cli(['backup', '/proc/hisbridge-probe.db', '--data-dir', data])]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe(`hisbridge backup: the folder ${path.dirname(nofolder)} does not exist: create it first, or choose another DEST`);
    expect(existsSync(path.dirname(nofolder))).toBe(false);
    expect(proc.code).toBe(1);
    expect(proc.stderr).toMatch(/^hisbridge backup: failed: E[A-Z]+: /);
    expect(proc.stderr).not.toMatch(/(E[A-Z]+): \1:/);
  }, 60_000);
});
