/**
 * Message bodies in their own table (schema v7, issue 11): old databases
 * open with their bodies, big bodies are written in parts over several
 * event-loop turns before the accept commits, claims do not read bodies,
 * retention and replay still work.
 */
import { describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../core/store/schema.js';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { BODY_PART_BYTES, DB_FILE, Store } from '../../core/store/sqlite.js';
import { delivery, freshDirs, message, openStore } from '../helpers/store.js';

/** The schema version a store reaches today (migrations are appended; never a hard-coded number). */

const fresh = freshDirs();

const DAY = 86_400_000;

/** An HL7-looking body of about `bytes` bytes (random OBX values, so no two are equal). */
function bigRaw(bytes: number, controlId = 'BIG1'): Buffer {
  const head = `MSH|^~\\&|LIS|H1|EHR|GD|20260101120000||ORU^R01|${controlId}|P|2.5\rPID|1||P1^^^^PI||X^Y\r`;
  const lines: string[] = [head];
  let n = head.length;
  for (let i = 1; n < bytes; i++) {
    const l = `OBX|${i}|ST|C${i}^T||${randomBytes(24).toString('hex')}||||||F\r`;
    lines.push(l);
    n += l.length;
  }
  return Buffer.from(lines.join(''), 'latin1');
}

function count(dir: string, sql: string): number {
  const db = new Database(path.join(dir, DB_FILE), { readonly: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Counts event-loop turns (setImmediate chain) while `p` is pending. */
async function turnsDuring<T>(p: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let done = false;
  const tick = () => {
    if (done) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  const value = await p();
  done = true;
  return { value, turns };
}

describe('message bodies (schema v7)', () => {
  it('a schema v6 database opens with every body moved to message_bodies; purge marks, claims and replay still work', async () => {
    const dir = fresh();
    const s = openStore(dir);
    const kept = message({ controlId: 'V6A' });
    const purged = message({ controlId: 'V6B' });
    const a = await s.accept(kept, [delivery({ route: 'gd', final: { state: 'done' } })]);
    const b = await s.accept(purged, [delivery({ route: 'gd', final: { state: 'done' } })]);
    const open = message({ controlId: 'V6C' });
    const c = await s.accept(open, [delivery({ route: 'gd' })]);
    s.close();
    // Back to v6: the body in the messages row, one of them purged by retention (raw NULL, purged_at set).
    const db = new Database(path.join(dir, DB_FILE));
    db.exec(`ALTER TABLE messages ADD COLUMN raw BLOB;
      UPDATE messages SET raw = (SELECT raw FROM message_bodies b WHERE b.message_id = messages.id);
      UPDATE messages SET raw = NULL, purged_at = 1 WHERE id = ${b.messageId};
      DROP TABLE body_parts; DROP TABLE message_bodies;
      ALTER TABLE messages DROP COLUMN format;
      PRAGMA user_version = 6;`);
    db.close();

    const store = Store.open(dir, { synchronous: 'NORMAL' });
    const v = new Database(path.join(dir, DB_FILE), { readonly: true });
    expect(v.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const cols = (v.prepare('PRAGMA table_info(messages)').all() as { name: string }[]).map((r) => r.name);
    expect(cols).not.toContain('raw');
    expect((v.prepare('SELECT count(*) AS n FROM message_bodies').get() as { n: number }).n).toBe(2);
    v.close();
    expect(store.getMessage(a.messageId)!.raw!.equals(kept.raw)).toBe(true);
    expect(store.getMessage(b.messageId)!.raw).toBeNull();
    expect(store.getMessage(b.messageId)!.purgedAt).toBe(1);
    expect(store.getMessage(b.messageId)!.rawBytes).toBe(purged.raw.length);

    const [job] = store.claimDue(Date.now() + 1000, 5);
    expect(job!.messageId).toBe(c.messageId);
    // A claim carries the size, not the body; the body is loaded when the delivery runs.
    expect(job!.message).not.toHaveProperty('raw');
    expect(job!.message.rawBytes).toBe(open.raw.length);
    expect((await job!.message.loadRaw())!.equals(open.raw)).toBe(true);

    const r = store.replayStored({ messageIds: [a.messageId, b.messageId] }, { staffNo: 'ops' });
    expect(r.messages).toEqual([
      expect.objectContaining({ messageId: a.messageId, requeued: 1, purged: false }),
      expect.objectContaining({ messageId: b.messageId, requeued: 0, purged: true }),
    ]);
    store.close();
  });

  it('a big body is written in parts over several event-loop turns before its accept commits, and read back byte for byte', async () => {
    const dir = fresh();
    const store = openStore(dir, { synchronous: 'FULL' });
    const raw = bigRaw(3 * 1024 * 1024);
    const parts = Math.ceil(raw.length / BODY_PART_BYTES);
    // A timer keeps firing meanwhile too (the setImmediate count below is the strict check).
    let timers = 0;
    const timer = setInterval(() => timers++, 1);
    const { value: r, turns } = await turnsDuring(() => store.accept(message({ raw, controlId: 'BIG1' }), [delivery(), delivery({ route: 'r2' })]));
    clearInterval(timer);
    expect(r.duplicate).toBe(false);
    // One turn after each part at least; a single transaction for the whole body gave none.
    expect(turns).toBeGreaterThanOrEqual(parts);
    expect(timers).toBeGreaterThan(0);
    expect(count(dir, 'SELECT count(*) AS n FROM body_parts')).toBe(parts);
    expect(count(dir, 'SELECT count(*) AS n FROM message_bodies WHERE raw IS NULL AND upload IS NOT NULL')).toBe(1);

    expect(store.getMessage(r.messageId)!.raw!.equals(raw)).toBe(true);
    const jobs = store.claimDue(Date.now() + 1000, 5);
    expect(jobs).toHaveLength(2);
    const { value: loaded, turns: readTurns } = await turnsDuring(() => jobs[0]!.message.loadRaw());
    expect(loaded!.equals(raw)).toBe(true);
    expect(readTurns).toBeGreaterThanOrEqual(parts - 1);
    store.close();

    // Durable: the body is there after reopening.
    const again = openStore(dir);
    expect(again.getMessage(r.messageId)!.raw!.equals(raw)).toBe(true);
    again.close();
  });

  it('a duplicate of a big message leaves no parts behind; recover removes orphan parts and keeps the ones in use', async () => {
    const dir = fresh();
    const store = openStore(dir);
    const raw = bigRaw(BODY_PART_BYTES * 2 + 100);
    const m = message({ raw, controlId: 'DUP1', contentHash: 'e'.repeat(64) });
    const first = await store.accept(m, [delivery()]);
    const second = await store.accept({ ...m }, [delivery()]);
    expect(second).toMatchObject({ duplicate: true, messageId: first.messageId });
    expect(count(dir, 'SELECT count(*) AS n FROM body_parts')).toBe(3);

    // Parts of an accept that never committed (a crash between the parts and the commit).
    const db = new Database(path.join(dir, DB_FILE));
    db.prepare('INSERT INTO body_parts (upload, raw, created_at) VALUES (?, ?, ?)').run(424242, Buffer.alloc(10), Date.now() - 3_600_000);
    db.prepare('INSERT INTO body_parts (upload, raw, created_at) VALUES (?, ?, ?)').run(434343, Buffer.alloc(10), Date.now());
    db.close();
    store.recover();
    // The old orphan is gone; a fresh one may be an accept still writing its parts (another process): kept.
    expect(count(dir, 'SELECT count(*) AS n FROM body_parts WHERE upload = 424242')).toBe(0);
    expect(count(dir, 'SELECT count(*) AS n FROM body_parts WHERE upload = 434343')).toBe(1);
    expect(count(dir, 'SELECT count(*) AS n FROM body_parts')).toBe(4);
    expect(store.getMessage(first.messageId)!.raw!.equals(raw)).toBe(true);
    store.close();
  });

  it('retention purges bodies in one piece and in parts, and deleting old metadata removes the parts as well', async () => {
    const dir = fresh();
    const store = openStore(dir, { retentionDays: 30, metadataRetentionDays: 180 });
    const now = Date.now();
    const smallOld = await store.accept(message({ receivedAt: now - 40 * DAY }), [delivery({ final: { state: 'done' } })]);
    const bigOld = await store.accept(message({ raw: bigRaw(BODY_PART_BYTES + 10, 'B2'), receivedAt: now - 40 * DAY }), [delivery({ final: { state: 'done' } })]);
    const bigOpen = await store.accept(message({ raw: bigRaw(BODY_PART_BYTES + 10, 'B3'), receivedAt: now - 40 * DAY }), [delivery()]);
    const bigAncient = await store.accept(message({ raw: bigRaw(BODY_PART_BYTES + 10, 'B4'), receivedAt: now - 200 * DAY }), [delivery({ final: { state: 'dead', reason: 'x' } })]);
    expect(count(dir, 'SELECT count(*) AS n FROM body_parts')).toBe(6);

    const r = store.purge(now);
    expect(r.bodiesPurged).toBe(2);
    expect(r.messagesDeleted).toBe(1);
    expect(store.getMessage(smallOld.messageId)).toMatchObject({ raw: null, purgedAt: now });
    expect(store.getMessage(bigOld.messageId)).toMatchObject({ raw: null, purgedAt: now });
    expect(store.getMessage(bigOpen.messageId)!.raw).not.toBeNull();
    expect(store.getMessage(bigAncient.messageId)).toBeUndefined();
    // Only the open message's two parts are left; no body row without its message.
    expect(count(dir, 'SELECT count(*) AS n FROM body_parts')).toBe(2);
    expect(count(dir, 'SELECT count(*) AS n FROM message_bodies')).toBe(1);
    // A purged body cannot be replayed.
    expect(store.replayStored({ messageIds: [bigOld.messageId] }, { staffNo: 'ops' }).messages[0]).toMatchObject({ requeued: 0, purged: true });
    store.close();
  });

  it('checkpointInWorker: WAL checkpoints run in a worker thread after writes, and the store closes cleanly', async () => {
    const dir = fresh();
    const store = openStore(dir, { synchronous: 'FULL', checkpointInWorker: true });
    const raw = bigRaw(BODY_PART_BYTES * 6);
    const r = await store.accept(message({ raw, controlId: 'CK1' }), [delivery()]);
    const end = Date.now() + 10_000;
    while ((store.checkpoints?.ok ?? 0) === 0 && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
    expect(store.checkpoints).toMatchObject({ failed: 0 });
    expect(store.checkpoints!.ok).toBeGreaterThan(0);
    store.close();
    const again = openStore(dir);
    expect(again.getMessage(r.messageId)!.raw!.equals(raw)).toBe(true);
    again.close();
  });

  it('checkpointInWorker: close() returns after the worker closed its connection, even in the middle of a checkpoint', async () => {
    const dir = fresh();
    const store = openStore(dir, { checkpointInWorker: true });
    // Enough WAL (about 48 MB) that the worker's checkpoint takes a while: close() is called while it runs.
    const raw = bigRaw(BODY_PART_BYTES * 6);
    for (let i = 0; i < 60 && !store.checkpoints!.running; i++) await store.accept(message({ raw, controlId: `CK2-${i}` }), [delivery()]);
    const end = Date.now() + 10_000;
    while (!store.checkpoints!.running && Date.now() < end) await new Promise((res) => setImmediate(res));
    expect(store.checkpoints!.running).toBe(true);
    store.close();
    // The last connection to close removes the WAL and -shm files: that must be the store's own, inside close(),
    // not the worker's a moment later (a backup or a listing of the directory right after stop() saw them vanish).
    const right = readdirSync(dir).sort();
    expect(right.filter((f) => f.endsWith('-wal') || f.endsWith('-shm'))).toEqual([]);
    await new Promise((res) => setTimeout(res, 300));
    expect(readdirSync(dir).sort()).toEqual(right);
  });
});
