/**
 * Schema v9 (issue 14): the delivery state 'failed' is now 'retrying'. A v8
 * store holding deliveries that wait to retry opens, its rows and the two
 * partial indexes that name the state are rewritten, and those deliveries are
 * claimed, counted as open and kept in order as before.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../core/store/schema.js';
import { DB_FILE } from '../../core/store/sqlite.js';
import { cli } from '../helpers/cli.js';
import { delivery, downgradeToV8, freshDirs, message, openStore } from '../helpers/store.js';

/** The schema version a store reaches today (migrations are appended; never a hard-coded number). */

const fresh = freshDirs();
const retryable = { code: 'HTTP_E_STATUS_RETRYABLE', reason: 'HTTP 503 from sim', retryable: true };
const FAR = Date.now() + 3_600_000;

function inspect(dir: string) {
  const db = new Database(path.join(dir, DB_FILE), { readonly: true });
  try {
    return {
      version: db.pragma('user_version', { simple: true }) as number,
      states: (db.prepare('SELECT state FROM deliveries ORDER BY id').all() as { state: string }[]).map((r) => r.state),
      indexes: Object.fromEntries(
        (db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN ('deliveries_due', 'deliveries_key')").all() as { name: string; sql: string }[]).map((r) => [r.name, r.sql]),
      ),
    };
  } finally {
    db.close();
  }
}

describe("store migration v9: delivery state 'failed' becomes 'retrying'", () => {
  it('a delivery waiting to retry is written as retrying', async () => {
    const dir = fresh();
    const store = openStore(dir);
    await store.accept(message(), [delivery()]);
    const [job] = store.claimDue(FAR, 5);
    expect(await store.fail(job!.id, retryable)).toBe('retrying');
    expect(store.getMessage(job!.messageId)!.deliveries[0]!.state).toBe('retrying');
    store.close();
    expect(inspect(dir).states).toEqual(['retrying']);
  });

  it("opens a v8 store with 'failed' rows: rows and indexes renamed, the delivery is claimed again and its key keeps its order", async () => {
    const dir = fresh();
    const before = openStore(dir);
    // Two deliveries on one ordering key: the head fails once (waits to retry), the second waits behind it.
    await before.accept(message({ controlId: 'UP1' }), [delivery({ orderingKey: 'report:1', plugin: 'upload' })]);
    await before.accept(message({ controlId: 'RV1' }), [delivery({ orderingKey: 'report:1', plugin: 'revoke' })]);
    const [head] = before.claimDue(FAR, 5);
    expect(head!.plugin).toBe('upload');
    expect(await before.fail(head!.id, retryable)).toBe('retrying');
    before.close();

    expect(downgradeToV8(dir)).toBe(1);
    const old = inspect(dir);
    expect(old.version).toBe(8);
    expect(old.states).toEqual(['failed', 'pending']);
    expect(old.indexes.deliveries_due).toContain("'failed'");

    const store = openStore(dir);
    const now = inspect(dir);
    expect(now.version).toBe(SCHEMA_VERSION);
    expect(now.states).toEqual(['retrying', 'pending']);
    for (const sql of Object.values(now.indexes)) {
      expect(sql).toContain("'retrying'");
      expect(sql).not.toContain("'failed'");
    }
    expect(Object.keys(now.indexes).sort()).toEqual(['deliveries_due', 'deliveries_key']);
    // Both are open (back-pressure counts them); only the head is due, the revoke waits for it.
    expect(store.pendingCount()).toBe(2);
    const again = store.claimDue(FAR, 5);
    expect(again.map((j) => [j.id, j.plugin, j.attempt])).toEqual([[head!.id, 'upload', 2]]);
    await store.complete(again[0]!.id, { outcome: 'ok' });
    const next = store.claimDue(FAR, 5);
    expect(next.map((j) => j.plugin)).toEqual(['revoke']);
    await store.complete(next[0]!.id, { outcome: 'ok' });
    expect(store.pendingCount()).toBe(0);
    store.close();
  });

  it('opens a v8 store without any failed row (the common case) and a store already at v9 unchanged', async () => {
    const dir = fresh();
    const s = openStore(dir);
    await s.accept(message(), [delivery()]);
    s.close();
    expect(downgradeToV8(dir)).toBe(0);
    openStore(dir).close();
    expect(inspect(dir)).toMatchObject({ version: SCHEMA_VERSION, states: ['pending'] });
    openStore(dir).close();
    expect(inspect(dir).version).toBe(SCHEMA_VERSION);
  });

  it('hisbridge messages show on a v8 store migrates it and shows the delivery as retrying', async () => {
    const dir = fresh();
    const store = openStore(dir);
    const { messageId } = await store.accept(message(), [delivery({ route: 'consent' })]);
    const [job] = store.claimDue(FAR, 5);
    await store.fail(job!.id, retryable);
    store.close();
    downgradeToV8(dir);

    const text = await cli(['messages', 'show', String(messageId), '--data-dir', dir]);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/delivery \d+ {2}consent#0 http .* {2}retrying {2}attempts 1\/5 {2}HTTP_E_STATUS_RETRYABLE/);
    expect(text.stdout).not.toMatch(/\bfailed\b/);
    const json = await cli(['messages', 'show', String(messageId), '--data-dir', dir, '--json']);
    expect((JSON.parse(json.stdout) as { deliveries: { state: string }[] }).deliveries.map((d) => d.state)).toEqual(['retrying']);
    expect(inspect(dir)).toMatchObject({ version: SCHEMA_VERSION, states: ['retrying'] });
  });
});
