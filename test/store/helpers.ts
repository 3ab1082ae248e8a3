import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { Store } from '../../core/store/sqlite.js';
import type { NewDeliveryWithOutcome, NewMessage, StoreOptions } from '../../core/store/types.js';

export function tempDir(prefix = 'hb-store-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A fresh temp directory per call, all removed after each test. */
export function freshDirs(): () => string {
  const dirs: { cleanup(): void }[] = [];
  afterEach(() => {
    while (dirs.length) dirs.pop()!.cleanup();
  });
  return () => {
    const t = tempDir();
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
