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
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
parentPort.on('message', (m) => {
  if (m === 'close') { try { db.close(); } catch {} parentPort.close(); return; }
  let ok = true;
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { ok = false; }
  parentPort.postMessage(ok);
});
`;

export class Checkpointer {
  readonly #worker: Worker;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #again = false;
  #closed = false;
  /** Checkpoints the worker ran (ok) and failed, for tests and metrics. */
  readonly stats = { ok: 0, failed: 0 };
  /** Called when the worker cannot run (it exited or failed to start): the store goes back to automatic checkpoints. */
  #onFailure: () => void;

  constructor(file: string, onFailure: () => void) {
    this.#onFailure = onFailure;
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, sqlite } });
    this.#worker.unref();
    this.#worker.on('message', (ok: boolean) => {
      this.#busy = false;
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
      this.#worker.postMessage('checkpoint');
    }, CHECKPOINT_DELAY_MS);
    this.#timer.unref();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#worker.postMessage('close');
  }
}
