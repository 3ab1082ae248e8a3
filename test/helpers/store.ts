import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import Database from 'better-sqlite3';
import { DB_FILE, Store } from '../../core/store/sqlite.js';
import type { NewDeliveryWithOutcome, NewMessage, StoreOptions } from '../../core/store/types.js';

export function tempDir(prefix = 'hb-store-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The store tests' `fresh()`: a new temp directory per call, all removed after
 * each test. Call it at file or describe level (it registers the afterEach).
 */
export function freshDirs(prefix?: string): () => string {
  const dirs: { cleanup(): void }[] = [];
  afterEach(() => {
    while (dirs.length) dirs.pop()!.cleanup();
  });
  return () => {
    const t = tempDir(prefix);
    dirs.push(t);
    return t.dir;
  };
}

export function openStore(dir: string, opts: StoreOptions = {}): Store {
  return Store.open(dir, { synchronous: 'NORMAL', ...opts });
}

let seq = 0;

export function message(over: Partial<NewMessage> = {}): NewMessage {
  seq++;
  const controlId = over.controlId ?? `MSG${seq}`;
  return {
    source: 'mllp',
    raw: Buffer.from(`MSH|^~\\&|HIS|H1|EHR|GD|20260101120000||ADT^A04|${controlId}|P|2.5\rPID|1||P${seq}^^^^PI||张三\r`),
    charset: 'utf-8',
    sendingApp: 'HIS',
    sendingFacility: 'H1',
    type: 'ADT^A04',
    controlId,
    patientId: `P${seq}`,
    receivedAt: Date.now(),
    ackCode: 'AA',
    ...over,
  };
}

export function delivery(over: Partial<NewDeliveryWithOutcome> = {}): NewDeliveryWithOutcome {
  return {
    route: 'r1',
    step: 0,
    plugin: 'http',
    retry: { max: 5, initialMs: 1, maxDelayMs: 5 },
    vars: {},
    ...over,
  };
}

/**
 * Turns the closed store in `dir` back into a schema v8 store, as hisbridge
 * wrote it before the delivery state 'retrying' was called 'failed': the rows
 * waiting to retry say 'failed' and the two partial indexes name 'failed'.
 * Returns how many rows were rewritten.
 */
export function downgradeToV8(dir: string): number {
  const db = new Database(path.join(dir, DB_FILE));
  try {
    return db.transaction(() => {
      const n = db.prepare("UPDATE deliveries SET state = 'failed' WHERE state = 'retrying'").run().changes;
      db.exec(`DROP INDEX deliveries_due;
        CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE head = 1 AND state IN ('pending','failed');
        DROP INDEX deliveries_key;
        CREATE INDEX deliveries_key ON deliveries (ordering_key, id) WHERE state IN ('pending','in-flight','failed');
        PRAGMA user_version = 8;`);
      return n;
    })();
  } finally {
    db.close();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
