import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import path from 'node:path';
import { DB_FILE, Store, type WalSync } from '../../core/store/sqlite.js';
import { delivery, freshDirs, message } from '../helpers/store.js';

const fresh = freshDirs();

/** A WAL sync held back until the test lets it go (the real one: fs.fdatasync), counting calls. */
function heldSync() {
  const waiting: (() => void)[] = [];
  let calls = 0;
  let failNext: NodeJS.ErrnoException | undefined;
  const sync: WalSync = (_fd, done) => {
    calls++;
    const err = failNext;
    failNext = undefined;
    waiting.push(() => done(err ?? null));
  };
  return {
    sync,
    get calls() { return calls; },
    get held() { return waiting.length; },
    release() { waiting.splice(0).forEach((f) => f()); },
    failNextWith(code: string) { failNext = Object.assign(new Error(`${code}: i/o error, fdatasync`), { code }); },
  };
}

const turns = (n: number) => (async () => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); })();

function committedCount(dir: string): number {
  const db = new Database(path.join(dir, DB_FILE), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('FULL durability: the WAL is synced off the event loop before anyone is told (issue 15)', () => {
  it('an accept resolves only after a sync that started after its commit; accepts made meanwhile share one commit and the next sync', async () => {
    const dir = fresh();
    const s = heldSync();
    const store = Store.open(dir, { synchronous: 'FULL', groupCommitMs: 0, walSync: s.sync });
    let firstDone = false;
    const first = store.accept(message(), []).then((r) => { firstDone = true; return r; });
    await turns(5);
    // Committed (another connection sees the row) but not yet synced: not resolved.
    expect(committedCount(dir)).toBe(1);
    expect(s.calls).toBe(1);
    expect(firstDone).toBe(false);
    // Five more while that sync runs: held in the queue, then written in one transaction when it ends, and
    // acknowledged after one more sync (not five).
    let restDone = 0;
    const rest = Array.from({ length: 5 }, () => store.accept(message(), []).then((r) => { restDone++; return r; }));
    await turns(5);
    expect(committedCount(dir)).toBe(1);
    expect(s.calls).toBe(1);
    const tx = store.stats().transactions;
    s.release();
    await first;
    expect(firstDone).toBe(true);
    await turns(2);
    expect(committedCount(dir)).toBe(6);
    expect(store.stats().transactions - tx).toBe(1);
    expect(restDone).toBe(0);
    expect(s.calls).toBe(2);
    s.release();
    await Promise.all(rest);
    expect(restDone).toBe(5);
    expect(store.walSyncs).toBe(2);
    // The connection does not sync by itself (NORMAL); the store reports the durability it gives.
    expect(store.synchronous).toBe('FULL');
    store.close();
  });

  it('deliveries started at accept run only after the sync', async () => {
    const dir = fresh();
    const s = heldSync();
    const store = Store.open(dir, { synchronous: 'FULL', groupCommitMs: 0, walSync: s.sync });
    const started: number[] = [];
    store.attachIntake({ take: () => true, giveBack: () => undefined, start: (job) => started.push(job.id) });
    const accepted = store.accept(message(), [delivery()]);
    await turns(5);
    expect(started).toEqual([]);
    s.release();
    await accepted;
    expect(started).toHaveLength(1);
    store.close();
  });

  it('a failed sync rejects the commits it covered with STORE_E_IO and fails readiness until a later sync succeeds', async () => {
    const dir = fresh();
    const s = heldSync();
    const store = Store.open(dir, { synchronous: 'FULL', groupCommitMs: 0, walSync: s.sync });
    s.failNextWith('EIO');
    const bad = store.accept(message(), []);
    await turns(3);
    s.release();
    await expect(bad).rejects.toMatchObject({ code: 'STORE_E_IO' });
    expect(store.writeHealth()).toMatchObject({ ok: false });
    expect((store.writeHealth() as { detail: string }).detail).toContain('EIO');
    const good = store.accept(message(), []);
    await turns(3);
    s.release();
    await good;
    expect(store.writeHealth()).toEqual({ ok: true });
    store.close();
  });

  it('synchronous writes (a requeue, a replay) are synced before they return; NORMAL never syncs', async () => {
    const s = heldSync();
    const store = Store.open(fresh(), { synchronous: 'FULL', groupCommitMs: 0, walSync: s.sync });
    const before = store.walSyncs;
    store.requeue({ all: true });
    expect(store.walSyncs).toBe(before + 1);
    expect(s.calls).toBe(0);
    store.close();

    const n = heldSync();
    const normal = Store.open(fresh(), { synchronous: 'NORMAL', groupCommitMs: 0, walSync: n.sync });
    await normal.accept(message(), []);
    normal.requeue({ all: true });
    expect(n.calls).toBe(0);
    expect(normal.walSyncs).toBe(0);
    normal.close();
  });

  it('with the real fdatasync every acknowledged accept was covered by a sync', async () => {
    const store = Store.open(fresh(), { synchronous: 'FULL', groupCommitMs: 0 });
    await Promise.all(Array.from({ length: 20 }, () => store.accept(message(), [])));
    expect(store.walSyncs).toBeGreaterThanOrEqual(1);
    expect(store.walSyncs).toBeLessThanOrEqual(20);
    store.close();
  });
});
