/**
 * WAL checkpoints off the event loop (issue 11). SQLite's automatic
 * checkpoint runs inside the commit that crosses its threshold (1000 pages,
 * ~4 MB): it copies the WAL into the database file and syncs it, 25-40 ms on
 * this machine, on the engine's only thread, in whichever accept or claim
 * happened to cross it. Here a worker thread with its own connection runs
 * PASSIVE checkpoints (they never block writers) a moment after writes, and
 * the engine's connection keeps an automatic checkpoint only as a far-off
 * safety net (CHECKPOINT_SAFETY_PAGES) should the worker fail.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Automatic checkpoint threshold of the engine's connection while the worker runs (pages; ~64 MB). */
export const CHECKPOINT_SAFETY_PAGES = 16_384;
/** How long after a write the worker is asked to checkpoint (writes in between share it). */
const CHECKPOINT_DELAY_MS = 200;

// Plain JavaScript (the worker is started from source in tests and from dist in production alike).
// `closed` (a shared Int32Array) is set to 1 once the worker's connection is closed, or could not be opened: close()
// waits on it, so the store's own close is the last one and the WAL and -shm files are gone when it returns.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const closed = new Int32Array(workerData.closed);
const done = () => { Atomics.store(closed, 0, 1); Atomics.notify(closed, 0); };
let db;
try {
  const Database = require(workerData.sqlite);
  db = new Database(workerData.file, { fileMustExist: true });
  db.pragma('busy_timeout = 1000');
} catch (e) {
  done();
  throw e;
}
parentPort.on('message', (m) => {
  if (m === 'close') { try { db.close(); } catch {} done(); parentPort.close(); return; }
  let ok = true;
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { ok = false; }
  parentPort.postMessage(ok);
});
`;

/** Longest close() waits for the worker to close its connection (it may be in the middle of a checkpoint). */
const CLOSE_WAIT_MS = 5_000;

export class Checkpointer {
  readonly #worker: Worker;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #again = false;
  #closed = false;
  /** Checkpoints the worker ran (ok) and failed, and whether one is running now, for tests and metrics. */
  readonly stats = { ok: 0, failed: 0, running: false };
  /** Called when the worker cannot run (it exited or failed to start): the store goes back to automatic checkpoints. */
  #onFailure: () => void;

  /** Set to 1 by the worker once its connection is closed (see WORKER_SOURCE). */
  readonly #closedFlag = new Int32Array(new SharedArrayBuffer(4));

  constructor(file: string, onFailure: () => void) {
    this.#onFailure = onFailure;
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, sqlite, closed: this.#closedFlag.buffer } });
    this.#worker.unref();
    this.#worker.on('message', (ok: boolean) => {
      this.#busy = false;
      this.stats.running = false;
      if (ok) this.stats.ok++;
      else this.stats.failed++;
      if (this.#again) {
        this.#again = false;
        this.request();
      }
    });
    const fail = () => {
      if (this.#closed) return;
      this.#closed = true;
      this.#onFailure();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', fail);
  }

  /** Something was written: checkpoint a moment from now (one request per delay, never two at once). */
  request(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      if (this.#busy) {
        this.#again = true;
        return;
      }
      this.#busy = true;
      this.stats.running = true;
      this.#worker.postMessage('checkpoint');
    }, CHECKPOINT_DELAY_MS);
    this.#timer.unref();
  }

  /**
   * Closes the worker's connection and returns once it is closed (bounded):
   * the store closes its own connection after this one, so SQLite removes
   * the WAL and -shm files then, not at some later moment behind the
   * caller's back (a backup or listing of the data directory right after
   * stop() saw them vanish).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#worker.postMessage('close');
    Atomics.wait(this.#closedFlag, 0, 0, CLOSE_WAIT_MS);
  }
}
