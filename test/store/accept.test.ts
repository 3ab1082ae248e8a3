import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import path from 'node:path';
import { DB_FILE, Store } from '../../core/store/sqlite.js';
import { delivery, freshDirs, message, openStore } from '../helpers/store.js';

const fresh = freshDirs();

describe('Store accept (group commit)', () => {
  it('commits concurrent accepts in fewer transactions than messages, and all are readable after reopen', async () => {
    const dir = fresh();
    const store = openStore(dir, { synchronous: 'FULL', groupCommitMs: 2 });
    const before = store.stats().transactions;
    const results = await Promise.all(Array.from({ length: 40 }, () => store.accept(message(), [delivery()])));
    const tx = store.stats().transactions - before;
    expect(tx).toBeLessThan(40);
    expect(tx).toBeGreaterThanOrEqual(1);
    expect(new Set(results.map((r) => r.messageId)).size).toBe(40);
    expect(store.pendingCount()).toBe(40);
    store.close();
    const again = openStore(dir);
    expect(again.searchMessages({ limit: 100 })).toHaveLength(40);
    expect(again.pendingCount()).toBe(40);
    again.close();
  });

  it('stores metadata, raw bytes and the durability mode', async () => {
    const dir = fresh();
    const store = Store.open(dir, {});
    expect(store.synchronous).toBe('FULL');
    const m = message({ controlId: 'C-1', patientId: 'PAT001' });
    const { messageId, duplicate } = await store.accept(m, [delivery({ orderingKey: 'k1' })]);
    expect(duplicate).toBe(false);
    const got = store.getMessage(messageId)!;
    expect(got.raw!.equals(m.raw)).toBe(true);
    expect(got).toMatchObject({ controlId: 'C-1', patientId: 'PAT001', type: 'ADT^A04', status: 'queued', ackCode: 'AA' });
    expect(got.deliveries[0]).toMatchObject({ state: 'pending', orderingKey: 'k1', attempts: 0, maxAttempts: 5 });
    store.close();
    const db = new Database(path.join(dir, DB_FILE), { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('finds a duplicate (sender + MSH-10) and dedupes a duplicate inside one pending batch', async () => {
    const store = openStore(fresh(), { groupCommitMs: 5 });
    const first = await store.accept(message({ controlId: 'DUP1' }), [delivery()]);
    const hit = store.findDuplicate('HIS', 'H1', 'DUP1', 60_000);
    expect(hit).toEqual({ messageId: first.messageId, ackCode: 'AA' });
    expect(store.findDuplicate('HIS', 'OTHER', 'DUP1', 60_000)).toBeUndefined();
    // Two identical messages in the same batch: only one is stored, one set of deliveries.
    const dup2 = message({ controlId: 'DUP2' });
    const [a, b] = await Promise.all([
      store.accept(dup2, [delivery()]),
      store.accept({ ...dup2, ackCode: 'AE' }, [delivery()]),
    ]);
    expect(a!.duplicate).toBe(false);
    expect(b).toEqual({ messageId: a!.messageId, duplicate: true, ackCode: 'AA' });
    expect(store.searchMessages({ controlId: 'DUP2', limit: 10 })).toHaveLength(1);
    expect(store.pendingCount()).toBe(2);
    store.close();
  });

  it('does not count messages that were not accepted (AE) as duplicates', async () => {
    const store = openStore(fresh());
    await store.accept(message({ controlId: 'E1', ackCode: 'AE' }), []);
    expect(store.findDuplicate('HIS', 'H1', 'E1', 60_000)).toBeUndefined();
    const again = await store.accept(message({ controlId: 'E1' }), [delivery()]);
    expect(again.duplicate).toBe(false);
    store.close();
  });

  it('keeps final (on-complete) outcomes and summarises the message status', async () => {
    const store = openStore(fresh());
    const ok = await store.accept(message(), [delivery({ final: { state: 'done', output: { url: 'x' } } })]);
    const dead = await store.accept(message(), [delivery({ final: { state: 'dead', errorCode: 'HTTP_E_STATUS', reason: 'HTTP 400' } })]);
    expect(store.getMessage(ok.messageId)!.status).toBe('done');
    expect(store.getMessage(dead.messageId)!.status).toBe('dead');
    expect(store.listDead()[0]).toMatchObject({ messageId: dead.messageId, lastErrorCode: 'HTTP_E_STATUS' });
    expect(store.pendingCount()).toBe(0);
    store.close();
  });

  it('refuses metadata retention under 180 days naming the rule', () => {
    const dir = fresh();
    expect(() => Store.open(dir, { metadataRetentionDays: 90 })).toThrow(/at least 180: the provincial platform requires access, call and operation logs kept at least 6 months \(docs\/operations.md#audit-retention\)/);
    let code: string | undefined;
    try {
      Store.open(dir, { metadataRetentionDays: 179 });
    } catch (e) {
      code = (e as { code: string }).code;
    }
    expect(code).toBe('CONFIG_E_RETENTION');
  });

  it('rejects accepts after close', async () => {
    const store = openStore(fresh());
    store.close();
    await expect(store.accept(message(), [])).rejects.toMatchObject({ code: 'STORE_E_IO' });
  });
});
