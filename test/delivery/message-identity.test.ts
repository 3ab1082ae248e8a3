/**
 * The definition of "the same message" (core/store/identity.ts) and the
 * store's migration to content digests (schema v3): an old database opens,
 * its rows keep deduplicating, its open deliveries keep their old key.
 */
import { describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../core/store/schema.js';
import Database from 'better-sqlite3';
import path from 'node:path';
import { canonicalContent, contentDigest, idempotencyKeyOf, messageKey } from '../../core/store/identity.js';
import { Store } from '../../core/store/sqlite.js';
import { delivery, freshDirs, message, openStore } from '../helpers/store.js';

/** The schema version a store reaches today (migrations are appended; never a hard-coded number). */

const MSG = [
  'MSH|^~\\&|HIS|H1|HB|GD|20250312093015||ADT^A04^ADT_A01|C1|P|2.5|||||CHN|UNICODE UTF-8',
  'PID|1||P1^^^HOSP^PI||测试^患者||19900101|M',
  'OBX|1|NM|HGB^血红蛋白||131|g/L',
].join('\r');

describe('content digest', () => {
  it('leaves out MSH-7, the segment terminator style and trailing empty segments, nothing else', () => {
    const d = contentDigest(MSG);
    expect(contentDigest(MSG.replace('20250312093015', '20250312101010'))).toBe(d);
    expect(contentDigest(MSG.replace(/\r/g, '\n'))).toBe(d);
    expect(contentDigest(MSG.replace(/\r/g, '\r\n'))).toBe(d);
    expect(contentDigest(MSG + '\r\r\n\r')).toBe(d);
    expect(contentDigest(MSG + '\r  \t\r')).toBe(d);
    expect(contentDigest(MSG + ' ')).not.toBe(d); // a blank inside the last segment is content
    expect(canonicalContent(MSG.replace(/\r/g, '\n') + '\n')).toBe(MSG.replace('20250312093015', ''));
    // Every other field counts: the OBX value, the name, MSH-9, MSH-10, MSH-18, EVN or PID time stamps.
    for (const changed of [
      MSG.replace('|131|', '|132|'),
      MSG.replace('测试^患者', '测试^患考'),
      MSG.replace('ADT^A04^ADT_A01', 'ADT^A08^ADT_A01'),
      MSG.replace('|C1|', '|C2|'),
      MSG.replace('UNICODE UTF-8', ''),
      MSG.replace('19900101', '19900102'),
      MSG + '\rNTE|1||note',
    ]) expect(contentDigest(changed)).not.toBe(d);
  });

  it('handles a text without MSH or with a short MSH without throwing', () => {
    expect(contentDigest('')).toMatch(/^[0-9a-f]{64}$/);
    expect(contentDigest('MSH|^~\\&|A')).toMatch(/^[0-9a-f]{64}$/);
    expect(contentDigest('PID|1')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('derives short hex keys that depend on the message, the route and the step only', () => {
    const k = messageKey('HIS', 'H1', 'C1', contentDigest(MSG));
    expect(k).toMatch(/^[0-9a-f]{32}$/);
    expect(messageKey('HIS', 'H1', 'C1', contentDigest(MSG.replace('20250312093015', '20260101000000')))).toBe(k);
    expect(messageKey('HIS', 'H2', 'C1', contentDigest(MSG))).not.toBe(k);
    const i = idempotencyKeyOf(k, 'route-a', 0);
    expect(i).toMatch(/^[0-9a-f]{32}$/);
    expect(idempotencyKeyOf(k, 'route-a', 0)).toBe(i);
    expect(idempotencyKeyOf(k, 'route-a', 1)).not.toBe(i);
    expect(idempotencyKeyOf(k, 'route-b', 0)).not.toBe(i);
  });
});

describe('store: content-aware duplicates and keys', () => {
  const fresh = freshDirs();

  it('a claimed delivery carries the key of (message, route, step), the same in another store', async () => {
    const keys: string[] = [];
    for (const dir of [fresh(), fresh()]) {
      const store = openStore(dir);
      const m = message({ controlId: 'K1', contentHash: contentDigest(MSG) });
      await store.accept(m, [delivery({ route: 'gd', step: 0 })]);
      const [job] = store.claimDue(Date.now() + 1000, 5);
      keys.push(job!.idempotencyKey);
      expect(job!.idempotencyKey).toBe(idempotencyKeyOf(messageKey('HIS', 'H1', 'K1', contentDigest(MSG)), 'gd', 0));
      store.close();
    }
    expect(keys[1]).toBe(keys[0]);
  });

  it('same sender and MSH-10 with other content is stored and marked; the same content is a duplicate, in one batch too', async () => {
    const store = openStore(fresh(), { groupCommitMs: 5 });
    const a = message({ controlId: 'R1', contentHash: 'a'.repeat(64) });
    const b = message({ controlId: 'R1', contentHash: 'b'.repeat(64) });
    const [ra, rb, ra2] = await Promise.all([store.accept(a, [delivery()]), store.accept(b, [delivery()]), store.accept({ ...a }, [delivery()])]);
    expect(ra!.duplicate).toBe(false);
    expect(ra!.controlIdReusedOf).toBeUndefined();
    expect(rb).toMatchObject({ duplicate: false, controlIdReusedOf: ra!.messageId });
    expect(ra2).toMatchObject({ duplicate: true, messageId: ra!.messageId });
    expect(store.searchMessages({ controlId: 'R1', limit: 5 }).map((m) => m.controlIdReused === true)).toEqual([true, false]);
    expect(store.findDuplicate('HIS', 'H1', 'R1', 60_000, 'b'.repeat(64))?.messageId).toBe(rb!.messageId);
    expect(store.findDuplicate('HIS', 'H1', 'R1', 60_000, 'c'.repeat(64))).toBeUndefined();
    store.close();
  });

  it('opens a schema v2 database: old rows still count as duplicates, open deliveries keep their old key', async () => {
    const dir = fresh();
    // Build a v2 database: today's schema without the v3 columns and the later (audit, session) steps.
    const s = openStore(dir);
    const oldMsg = message({ controlId: 'OLD1' });
    const old = await s.accept(oldMsg, [delivery({ route: 'gd' })]);
    s.close();
    const db = new Database(path.join(dir, 'hisbridge.db'));
    db.exec(`DROP INDEX messages_once; ALTER TABLE messages DROP COLUMN dedupe_slot;
      ALTER TABLE messages DROP COLUMN content_hash; ALTER TABLE messages DROP COLUMN message_key; ALTER TABLE messages DROP COLUMN control_id_reused;
      CREATE INDEX messages_dedupe ON messages (sending_app, sending_facility, control_id);
      DROP INDEX audit_id_hash; ALTER TABLE audit DROP COLUMN client; ALTER TABLE audit DROP COLUMN address; ALTER TABLE audit DROP COLUMN id_hash;
      DROP TABLE console_sessions;
      ALTER TABLE messages DROP COLUMN flags;
      ALTER TABLE messages DROP COLUMN format;
      ALTER TABLE messages ADD COLUMN raw BLOB;
      UPDATE messages SET raw = (SELECT raw FROM message_bodies b WHERE b.message_id = messages.id);
      DROP TABLE body_parts; DROP TABLE message_bodies;
      PRAGMA user_version = 2;`);
    const instance = (db.prepare("SELECT value FROM meta WHERE key = 'instance'").get() as { value: string }).value;
    db.close();

    const store = Store.open(dir, { synchronous: 'NORMAL' });
    const v = new Database(path.join(dir, 'hisbridge.db'), { readonly: true });
    expect(v.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    v.close();
    // The old row has no digest: any content with its sender and MSH-10 is a duplicate, as before the upgrade.
    const again = await store.accept(message({ controlId: 'OLD1', contentHash: 'd'.repeat(64) }), [delivery()]);
    expect(again).toMatchObject({ duplicate: true, messageId: old.messageId });
    const [job] = store.claimDue(Date.now() + 1000, 5);
    expect(job!.messageId).toBe(old.messageId);
    expect(job!.idempotencyKey).toBe(`${instance}-${job!.id}`);
    // The body moved to its own table (v7) and is still there.
    expect((await job!.message.loadRaw())!.equals(oldMsg.raw)).toBe(true);
    store.close();
  });
});
