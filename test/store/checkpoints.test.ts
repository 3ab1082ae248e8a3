/**
 * Source checkpoints (issue 17): a position that comes with a message is
 * written in the message's own accept transaction, so the store never holds
 * one without the other; a position moved on its own (a refused or duplicate
 * row) waits for the accepts queued before it.
 */
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import path from 'node:path';
import { DB_FILE } from '../../core/store/sqlite.js';
import { delivery, freshDirs, message, openStore } from '../helpers/store.js';

const fresh = freshDirs('hb-checkpoints-');

describe('source checkpoints', () => {
  it('are stored with the accepted message, and read back after a reopen', async () => {
    const dir = fresh();
    const store = openStore(dir);
    expect(store.sourceCheckpoint('his-view')).toBeUndefined();
    await store.accept(message({ source: 'his-view', controlId: '1', checkpoint: { source: 'his-view', value: '1' } }), [delivery()]);
    await store.accept(message({ source: 'his-view', controlId: '2', checkpoint: { source: 'his-view', value: '2' } }), [delivery()]);
    expect(store.sourceCheckpoint('his-view')).toBe('2');
    store.close();
    const again = openStore(dir);
    expect(again.sourceCheckpoint('his-view')).toBe('2');
    again.close();
  });

  it('a failed accept leaves the position where it was (same transaction)', async () => {
    const dir = fresh();
    const store = openStore(dir);
    await store.accept(message({ source: 's', controlId: 'A', checkpoint: { source: 's', value: '"A"' } }), [delivery()]);
    // A trigger makes the next message insert fail inside the accept transaction.
    const db = new Database(path.join(dir, DB_FILE));
    db.exec(`CREATE TRIGGER refuse_b BEFORE INSERT ON messages WHEN NEW.control_id = 'B' BEGIN SELECT RAISE(ABORT, 'refused'); END;`);
    db.close();
    await expect(store.accept(message({ source: 's', controlId: 'B', checkpoint: { source: 's', value: '"B"' } }), [delivery()])).rejects.toBeDefined();
    expect(store.sourceCheckpoint('s')).toBe('"A"');
    store.close();
  });

  it('setSourceCheckpoint moves the position without a message, after the queued accepts', async () => {
    const store = openStore(fresh());
    const pending = store.accept(message({ source: 'v', controlId: '7', checkpoint: { source: 'v', value: '7' } }), [delivery()]);
    store.setSourceCheckpoint('v', '8');
    await pending;
    expect(store.sourceCheckpoint('v')).toBe('8');
    store.close();
  });
});
