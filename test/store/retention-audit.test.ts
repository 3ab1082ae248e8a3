import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import path from 'node:path';
import { DB_FILE } from '../../core/store/sqlite.js';
import { delivery, freshDirs, message, openStore } from '../helpers/store.js';

const fresh = freshDirs();

const DAY = 86_400_000;

describe('retention', () => {
  it('purges bodies of delivered messages after retentionDays, keeps open and dead ones, deletes metadata after 180 days', async () => {
    const store = openStore(fresh(), { retentionDays: 30, metadataRetentionDays: 180 });
    const now = Date.now();
    const old = await store.accept(message({ receivedAt: now - 40 * DAY }), [delivery({ final: { state: 'done' } })]);
    const recent = await store.accept(message({ receivedAt: now - 5 * DAY }), [delivery({ final: { state: 'done' } })]);
    const oldOpen = await store.accept(message({ receivedAt: now - 40 * DAY }), [delivery()]);
    const oldDead = await store.accept(message({ receivedAt: now - 40 * DAY }), [delivery({ final: { state: 'dead', reason: 'x' } })]);
    const ancient = await store.accept(message({ receivedAt: now - 200 * DAY }), [delivery({ final: { state: 'done' } })]);
    store.audit({ plugin: 'gd-ehr', operation: 'authorize', result: 'ok' });
    store.queryAudit();

    const r = store.purge(now);
    expect(r.messagesDeleted).toBe(1);
    expect(store.getMessage(ancient.messageId)).toBeUndefined();
    expect(store.getMessage(old.messageId)!.raw).toBeNull();
    expect(store.getMessage(old.messageId)!.purgedAt).toBe(now);
    expect(store.getMessage(recent.messageId)!.raw).not.toBeNull();
    expect(store.getMessage(oldOpen.messageId)!.raw).not.toBeNull();
    expect(store.getMessage(oldDead.messageId)!.raw).not.toBeNull();
    expect(r.auditDeleted).toBe(0);
    // Far in the future the audit row ages out as well.
    expect(store.purge(now + 181 * DAY).auditDeleted).toBe(1);
    store.close();
  });
});

describe('audit', () => {
  it('never stores the plain patient id: masked + keyed hash, searchable by the plain id', async () => {
    const dir = fresh();
    const store = openStore(dir);
    const idNumber = '44010619900307123X';
    store.audit({ route: 'consent', plugin: 'gd-ehr', operation: 'authorize', patientId: idNumber, orgCode: 'ORG1', result: 'ok', latencyMs: 12.4, detail: `refused for ${idNumber}` });
    store.audit({ plugin: 'recognition', operation: 'check', patientId: 'PAT000123', result: 'failed' });
    const rows = store.queryAudit({ patientId: idNumber });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ patientMasked: '440106********123X', orgCode: 'ORG1', latencyMs: 12, result: 'ok' });
    expect(rows[0]!.patientHash).toMatch(/^[0-9a-f]{64}$/);
    expect(store.queryAudit({ plugin: 'recognition' })[0]!.patientMasked).toBe('PA*****23');
    store.close();

    const db = new Database(path.join(dir, DB_FILE), { readonly: true });
    const dump = JSON.stringify(db.prepare('SELECT * FROM audit').all());
    expect(dump).not.toContain(idNumber);
    expect(dump).not.toContain('PAT000123');
    db.close();
    // The same key is used after reopen (kept in the data dir), so hashes stay comparable.
    const again = openStore(dir);
    expect(again.queryAudit({ patientId: idNumber })).toHaveLength(1);
    again.close();
  });

  it('is append-only: an UPDATE on the audit table is refused', async () => {
    const dir = fresh();
    const store = openStore(dir);
    store.audit({ plugin: 'p', operation: 'o', result: 'ok' });
    store.close();
    const db = new Database(path.join(dir, DB_FILE));
    expect(() => db.prepare("UPDATE audit SET result = 'changed'").run()).toThrow(/append-only/);
    db.close();
  });
});

describe('plugin state', () => {
  it('keeps values per plugin across reopen', async () => {
    const dir = fresh();
    const store = openStore(dir);
    const a = store.pluginState('recognition');
    await a.set('token', { value: 't', exp: 1 });
    await store.pluginState('other').set('token', 'x');
    expect(await a.get('token')).toEqual({ value: 't', exp: 1 });
    await a.delete('missing');
    store.close();
    const again = openStore(dir);
    expect(await again.pluginState('recognition').get('token')).toEqual({ value: 't', exp: 1 });
    expect(await again.pluginState('other').get('token')).toBe('x');
    await again.pluginState('other').delete('token');
    expect(await again.pluginState('other').get('token')).toBeUndefined();
    again.close();
  });
});

describe('claimDue with many pending rows', () => {
  it('claims from 20k pending deliveries (one hot key + many keys) and reports the time', async () => {
    const store = openStore(fresh(), { groupCommitMs: 0 });
    const t0 = performance.now();
    const batch = [];
    for (let i = 0; i < 20_000; i++) {
      // Half behind one hot key, half on their own keys.
      batch.push(store.accept(message(), [delivery({ orderingKey: i % 2 ? 'hot' : `k${i}` })]));
      if (batch.length === 1000) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
    const insertMs = performance.now() - t0;
    expect(store.pendingCount()).toBe(20_000);
    const times: number[] = [];
    let claimed = 0;
    for (let i = 0; i < 20; i++) {
      const s = performance.now();
      const jobs = store.claimDue(Date.now(), 16);
      times.push(performance.now() - s);
      claimed += jobs.length;
      for (const j of jobs) await store.complete(j.id, { outcome: 'ok' });
    }
    expect(claimed).toBe(320);
    times.sort((a, b) => a - b);
    console.log(`[measure] 20k accepts in ${insertMs.toFixed(0)} ms; claimDue(16) with ~20k pending: median ${times[10]!.toFixed(2)} ms, max ${times[19]!.toFixed(2)} ms`);
    store.close();
  });
});
