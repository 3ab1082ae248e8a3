/**
 * One running engine per data directory. Two engines on one directory would
 * share one SQLite store with two delivery workers, and two file sources would
 * resume the same claimed files and append to the same progress logs.
 *
 * `start` writes `<dataDir>/engine.lock` holding its process id, created
 * exclusively. A lock whose process is gone (kill -9, a power cut, a
 * container restart) is taken over; one whose process is alive refuses the
 * start with ENGINE_E_DATA_DIR_IN_USE. Read-only tools (messages, dlq,
 * audit, stats) do not take it: the store is safe to read while the engine runs.
 */
import { openSync, readFileSync, unlinkSync, writeFileSync, closeSync, writeSync } from 'node:fs';
import path from 'node:path';
import { hbError } from '../errors.js';

export const LOCK_FILE = 'engine.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface DataDirLock {
  readonly file: string;
  /** Took over a lock left by a process that is gone. */
  readonly stale?: number;
  release(): void;
}

/** Takes the data directory for this process, or throws ENGINE_E_DATA_DIR_IN_USE naming the directory and the holder. */
export function lockDataDir(dir: string): DataDirLock {
  const file = path.join(dir, LOCK_FILE);
  const mine = `${process.pid}\n`;
  let stale: number | undefined;
  try {
    const fd = openSync(file, 'wx', 0o600);
    try {
      writeSync(fd, mine);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const holder = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
      throw hbError('ENGINE_E_DATA_DIR_IN_USE', { dir, pid: holder, file });
    }
    if (holder !== process.pid) stale = Number.isInteger(holder) ? holder : 0;
    writeFileSync(file, mine, { mode: 0o600 });
  }
  return {
    file,
    ...(stale !== undefined ? { stale } : {}),
    release() {
      try {
        if (readFileSync(file, 'utf8') === mine) unlinkSync(file);
      } catch {
        // Already gone: nothing to release.
      }
    },
  };
}
