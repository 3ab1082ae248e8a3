import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import path from 'node:path';
import { DB_FILE, Store } from '../../core/store/sqlite.js';
import type { NewMessage } from '../../core/store/types.js';
import { delivery, freshDirs, message, openStore } from '../helpers/store.js';

const fresh = freshDirs();

/** State of one delivery as another connection sees it: only committed data. */
function committedState(dir: string, id: number): string | undefined {
  const db = new Database(path.join(dir, DB_FILE), { readonly: true });
  try {
    return (db.prepare('SELECT state FROM deliveries WHERE id = ?').get(id) as { state: string } | undefined)?.state;
  } finally {
    db.close();
  }
}

describe('claimDue and the group commit', () => {
  it('writes queued accepts and the claim in one transaction, and the claim sees those accepts', async () => {
    const dir = fresh();
    // A long group-commit delay: only the claim can have written these accepts.
    const store = Store.open(dir, { synchronous: 'FULL', groupCommitMs: 60_000 });
    const pending = [store.accept(message(), [delivery()]), store.accept(message(), [delivery({ plugin: 'other' })])];
    const before = store.stats().transactions;
    // Rows written by this very call are due from the moment they are written, a little after a Date.now() taken here.
    const jobs = store.claimDue(Date.now() + 1000, 10);
    expect(store.stats().transactions - before).toBe(1);
    expect(jobs.map((j) => j.plugin).sort()).toEqual(['http', 'other']);
    const accepted = await Promise.all(pending);
    expect(accepted.map((a) => a.duplicate)).toEqual([false, false]);
    for (const j of jobs) expect(committedState(dir, j.id)).toBe('in-flight');
    // A completion and an accept queued next are written with the next claim, again in one transaction.
    const done = store.complete(jobs[0]!.id, { outcome: 'ok' });
    const third = store.accept(message(), [delivery({ plugin: 'third' })]);
    const tx = store.stats().transactions;
    expect(store.claimDue(Date.now() + 1000, 10).map((j) => j.plugin)).toEqual(['third']);
    expect(store.stats().transactions - tx).toBe(1);
    expect(await done).toBe(true);
    expect((await third).duplicate).toBe(false);
    expect(committedState(dir, jobs[0]!.id)).toBe('done');
    store.close();
  });

  it('a claim alone commits without fsync under FULL and leaves the durability setting as it was', async () => {
    const full = Store.open(fresh(), { synchronous: 'FULL', groupCommitMs: 0 });
    await full.accept(message(), [delivery()]);
    const light = full.stats().lightTransactions;
    expect(full.claimDue(Date.now(), 10)).toHaveLength(1);
    expect(full.stats().lightTransactions - light).toBe(1);
    expect(full.synchronous).toBe('FULL');
    // Accepts after a light claim are still durable commits.
    await full.accept(message(), [delivery()]);
    expect(full.stats().lightTransactions - light).toBe(1);
    expect(full.synchronous).toBe('FULL');
    full.close();

    const normal = openStore(fresh(), { groupCommitMs: 0 });
    await normal.accept(message(), [delivery()]);
    expect(normal.claimDue(Date.now(), 10)).toHaveLength(1);
    expect(normal.stats().lightTransactions).toBe(0);
    expect(normal.synchronous).toBe('NORMAL');
    normal.close();
  });

  it('a claimed delivery whose claim is undone is simply due again: recover() and a reopen agree', async () => {
    const dir = fresh();
    const store = Store.open(dir, { synchronous: 'FULL', groupCommitMs: 0 });
    await store.accept(message(), [delivery()]);
    const [job] = store.claimDue(Date.now(), 10);
    store.close();
    const again = Store.open(dir, { synchronous: 'FULL' });
    expect(again.recover()).toBe(1);
    const [retry] = again.claimDue(Date.now(), 10);
    expect(retry).toMatchObject({ id: job!.id, attempt: 1 });
    again.close();
  });

  it('when the piggy-backed batch fails, good operations and the claim still go through on their own', async () => {
    const store = openStore(fresh(), { groupCommitMs: 60_000 });
    const good = store.accept(message(), [delivery()]);
    const bad = store.accept({ ...message(), raw: undefined } as unknown as NewMessage, [delivery()]);
    const jobs = store.claimDue(Date.now() + 1000, 10);
    await expect(bad).rejects.toMatchObject({ code: 'STORE_E_IO' });
    const { messageId } = await good;
    expect(jobs.map((j) => j.messageId)).toEqual([messageId]);
    expect(store.pendingCount()).toBe(1);
    store.close();
  });
});

describe('outcomes share the next accept batch', () => {
  it('a completion queued before an accept (a few event-loop turns earlier) is written with it, in one transaction', async () => {
    const dir = fresh();
    const store = Store.open(dir, { synchronous: 'FULL', groupCommitMs: 0, outcomeWaitMs: 60_000 });
    await store.accept(message(), [delivery()]);
    const [job] = store.claimDue(Date.now(), 10);
    const before = store.stats().transactions;
    const done = store.complete(job!.id, { outcome: 'ok' });
    store.audit({ plugin: 'http', operation: 'post', result: 'ok' });
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    expect(store.stats().transactions - before).toBe(0);
    const next = store.accept(message(), [delivery()]);
    const [ok, accepted] = await Promise.all([done, next]);
    expect(ok).toBe(true);
    expect(accepted.duplicate).toBe(false);
    expect(store.stats().transactions - before).toBe(1);
    expect(committedState(dir, job!.id)).toBe('done');
    expect(store.queryAudit({})).toHaveLength(1);
    store.close();
  });

  it('a completion with nothing else going on is still committed on its own, soon', async () => {
    const dir = fresh();
    const store = Store.open(dir, { synchronous: 'FULL', groupCommitMs: 0 });
    await store.accept(message(), [delivery()]);
    const [job] = store.claimDue(Date.now(), 10);
    const before = store.stats().transactions;
    expect(await store.complete(job!.id, { outcome: 'ok' })).toBe(true);
    expect(store.stats().transactions - before).toBe(1);
    expect(committedState(dir, job!.id)).toBe('done');
    expect(store.pendingCount()).toBe(0);
    store.close();
  });
});

describe('a claim while only outcomes are queued (FULL)', () => {
  it('claims without fsync and without them, and never lets the next delivery of a key overtake an unwritten outcome', async () => {
    const dir = fresh();
    const store = Store.open(dir, { synchronous: 'FULL', groupCommitMs: 0, outcomeWaitMs: 60_000 });
    await store.accept(message(), [delivery({ orderingKey: 'k', plugin: 'first' })]);
    await store.accept(message(), [delivery({ orderingKey: 'k', plugin: 'second' })]);
    const [first] = store.claimDue(Date.now(), 10);
    expect(first!.plugin).toBe('first');
    const done = store.complete(first!.id, { outcome: 'ok' });
    const light = store.stats().lightTransactions;
    // The outcome is not written yet, so 'second' is not head yet: nothing to claim, and no fsync spent.
    expect(store.claimDue(Date.now() + 1000, 10)).toEqual([]);
    expect(store.stats().lightTransactions - light).toBe(1);
    expect(committedState(dir, first!.id)).toBe('in-flight');
    // The next accept batch writes the outcome; then 'second' is due.
    await store.accept(message(), [delivery({ orderingKey: 'other' })]);
    expect(await done).toBe(true);
    expect(committedState(dir, first!.id)).toBe('done');
    expect(store.claimDue(Date.now() + 1000, 10).map((j) => j.plugin).sort()).toEqual(['http', 'second']);
    store.close();
  });
});
