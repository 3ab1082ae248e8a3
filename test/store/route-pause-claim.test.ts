/**
 * Issue 18: the delivery claim skips paused routes. Held deliveries stay
 * pending; the other routes' due deliveries are claimed earliest first; the
 * claim reads a paused route's deliveries not at all (one seek per route on
 * deliveries_route_due), so a route holding many costs the others nothing.
 */
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import path from 'node:path';
import { DB_FILE } from '../../core/store/sqlite.js';
import { delivery, freshDirs, message, openStore } from '../helpers/store.js';

const fresh = freshDirs();

describe('claimDue with paused routes', () => {
  it('claims none of a paused route\'s deliveries and the others earliest first, within the limit', async () => {
    const dir = fresh();
    const store = openStore(dir);
    try {
      // The paused route's deliveries come first (earliest), then two live routes interleaved.
      for (let i = 0; i < 5; i++) await store.accept(message(), [delivery({ route: 'held', orderingKey: `h${i}` })]);
      for (let i = 0; i < 3; i++) {
        await store.accept(message(), [delivery({ route: 'a', orderingKey: `a${i}` })]);
        await store.accept(message(), [delivery({ route: 'b', orderingKey: `b${i}` })]);
      }
      const now = Date.now() + 1000;
      const first = store.claimDue(now, 4, [], ['held']);
      expect(first.map((j) => j.route)).toEqual(['a', 'b', 'a', 'b']);
      const rest = store.claimDue(now, 10, [], ['held']);
      expect(rest.map((j) => j.route)).toEqual(['a', 'b']);
      expect(store.claimDue(now, 10, [], ['held'])).toEqual([]);
      // Resumed (no skip): the held ones are claimed.
      const resumed = store.claimDue(now, 10);
      expect(resumed.map((j) => j.route)).toEqual(['held', 'held', 'held', 'held', 'held']);
    } finally {
      store.close();
    }
  });

  it('leaves the plugin filter in force alongside the route filter', async () => {
    const dir = fresh();
    const store = openStore(dir);
    try {
      await store.accept(message(), [delivery({ route: 'a', plugin: 'busy', orderingKey: 'x1' })]);
      await store.accept(message(), [delivery({ route: 'a', plugin: 'free', orderingKey: 'x2' })]);
      await store.accept(message(), [delivery({ route: 'held', plugin: 'free', orderingKey: 'x3' })]);
      const jobs = store.claimDue(Date.now() + 1000, 10, ['busy'], ['held']);
      expect(jobs.map((j) => `${j.route}/${j.plugin}`)).toEqual(['a/free']);
    } finally {
      store.close();
    }
  });

  it('reads no delivery of the paused route: the query plan seeks deliveries_route_due per route', () => {
    const dir = fresh();
    openStore(dir).close();
    const db = new Database(path.join(dir, DB_FILE), { readonly: true });
    try {
      const plan = (db.prepare(`EXPLAIN QUERY PLAN SELECT d.id FROM deliveries d INDEXED BY deliveries_route_due
        WHERE d.route = ? AND d.head = 1 AND d.state IN ('pending','retrying') AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at LIMIT 16`).all('a', 1) as { detail: string }[])
        .map((r) => r.detail).join('\n');
      expect(plan).toMatch(/SEARCH d USING INDEX deliveries_route_due \(route=\? AND next_attempt_at<\?\)/);
      expect(plan).not.toMatch(/TEMP B-TREE/);
    } finally {
      db.close();
    }
  });
});
