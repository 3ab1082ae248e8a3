/**
 * The durable store: SQLite in WAL mode (better-sqlite3), one file
 * `<dataDir>/hisbridge.db`.
 *
 * Group commit: accept(), complete(), fail() and audit() only queue their
 * work; the queue is written in one transaction a moment later (groupCommitMs,
 * default 1 ms) and then every queued promise resolves. With FULL durability
 * that is one fsync per batch, not per message, so 8 concurrent senders do not
 * collapse to the disk's fsync rate. Synchronous calls (claimDue, requeue,
 * recover, purge, close) flush the queue first so they see every earlier call.
 * claimDue is the exception, for speed: it writes queued accepts and its claim
 * in one transaction, and otherwise commits the claim alone without fsync,
 * leaving queued outcomes queued under FULL (see claimDue for why both are
 * safe). Outcomes (complete, fail, audit) wait up to outcomeWaitMs for an
 * accept batch to share its fsync; accepts never wait for them.
 *
 * Durability under FULL (issue 15): the connection itself runs with SQLite's
 * synchronous = NORMAL, so a commit writes its WAL frames without syncing
 * them, and the store makes them durable itself with an fdatasync of the WAL
 * file on libuv's thread pool. A group commit's promises (and so the ACKs)
 * resolve only after a sync that started after its commit returned; while
 * one sync runs, later commits gather for the next one. That is the same
 * guarantee as SQLite's FULL (which syncs the WAL at each commit and nothing
 * else), without holding the event loop for the fsync: the next messages are
 * parsed and committed meanwhile. A power cut loses only commits nobody was
 * told about, and SQLite's WAL recovery keeps the longest valid prefix (frame
 * checksums are chained). Synchronous writes (requeue, replay, purge...)
 * sync before they return.
 */
import Database from 'better-sqlite3';
import { randomInt, randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fdatasync, fdatasyncSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import { hbError, isHisbridgeError, type HisbridgeError } from '../errors.js';
import { makeDataDir } from './dirs.js';
import { scrubText } from '../mask.js';
import type { AuditEntry, PluginState, StepResult } from '../sdk.js';
import { auditParams, INSERT_AUDIT, loadAuditKey, queryAudit, type AuditFilter, type AuditRow } from './audit.js';
import { yieldToLoop } from '../cooperative.js';
import { readCheckpoint, writeCheckpoint } from './checkpoints.js';
import { Ledger, parseReply, type Admit, type Changed, type ClaimRecord } from './ledger.js';
import { getMessage, listDead, searchMessages } from './queries.js';
import { migrate, OPEN_STATES } from './schema.js';
import { Checkpointer, CHECKPOINT_SAFETY_PAGES } from './checkpointer.js';
import { countingRequested, countStatements, fileSize, type SqlCounts } from './sql-count.js';
import type {
  AcceptResult, ClaimedDelivery, DeadFilter, DeliveryRecord, DuplicateHit, FailInput, MessageDetail, MessageSearch, MessageSummary,
  NewDeliveryWithOutcome, NewMessage, ReplayedMessage, ReplayFilter, ReplayResult, RequeueFilter, StoreOptions,
} from './types.js';

/** File name of the database inside the data directory. */
export const DB_FILE = 'hisbridge.db';
const DAY = 86_400_000;
const MAX_BATCH = 1000;
/**
 * Default of StoreOptions.outcomeWaitMs: complete(), fail() and audit() are
 * written at most this late (unless an accept or a claim writes them sooner).
 * The call they record is already over, so a few ms cost little and under
 * load save an fsync per settled batch.
 */
const OUTCOME_WAIT_MS = 2;
/** Messages re-queued per transaction by replayStored. */
const REPLAY_CHUNK = 500;
/** The cached pending counter is re-read this often, so requeues made by the CLI are seen. */
const COUNT_REFRESH_MS = 5000;
/**
 * A body bigger than this is written before its accept transaction, in parts
 * of this size, one small transaction (without fsync) and one event-loop turn
 * each; the accept commit then makes them durable with its fsync. Writing a
 * 4.5 MB body in the accept transaction held the event loop for tens of ms.
 */
export const BODY_PART_BYTES = 256 * 1024;
/** Parts older than this whose upload no message names are removed by recover() (orphans of a failed accept). */
const ORPHAN_AGE_MS = 60_000;

type Op =
  | { kind: 'accept'; msg: NewMessage; deliveries: NewDeliveryWithOutcome[]; upload?: number; order?: AcceptOrder; done: Settle<AcceptResult> }
  | { kind: 'complete'; id: number; result: StepResult; latencyMs?: number; done: Settle<boolean> }
  | { kind: 'fail'; id: number; err: FailInput; latencyMs?: number; done: Settle<'retrying' | 'dead' | 'ignored'> }
  | { kind: 'audit'; params: unknown[] };

/**
 * Pipelined accepts of one ordering key (the Kafka source, through
 * InboundMessage.pipeline): `queued` is called once the accept is in the
 * queue, behind every accept queued before it, so the caller may hand over the
 * key's next message at once and both share one commit. The accepts of one key
 * share `chain`: once one of them fails to commit, the chain is broken and
 * every later accept naming it is refused (STORE_E_IO), so no message is
 * committed ahead of an earlier one of its key that was not.
 */
export interface AcceptOrder {
  chain: { broken: boolean };
  queued(): void;
}

interface Settle<T> {
  resolve(v: T): void;
  reject(e: unknown): void;
}

/**
 * The delivery worker as the store sees it (Store.attachIntake): at accept a
 * delivery whose plugin has room is inserted in flight and handed to `start`
 * after the commit, with no claim query.
 */
export interface DeliveryIntake extends Admit {
  start(job: ClaimedDelivery): void;
}

/** Page size of a new database (see Store.open). */
const PAGE_SIZE = 1024;

/** Audit rows per multi-row INSERT. */
const AUDIT_CHUNK = 32;

/** Counters for tests and metrics. */
export interface StoreStats {
  /** Write transactions committed (group commits and synchronous operations). */
  transactions: number;
  /** Of `transactions`, those committed without fsync (claims alone; see claimDue). */
  lightTransactions: number;
  /** Operations written through group commits. */
  batchedOps: number;
  largestBatch: number;
  /** WAL syncs done by the store (FULL): one serves every commit made before it started. */
  walSyncs: number;
}

/** Outcome of the latest durable write (readiness reads it). */
export type WriteHealth = { ok: true } | { ok: false; since: number; detail: string };

export interface PurgeResult {
  bodiesPurged: number;
  messagesDeleted: number;
  auditDeleted: number;
}

/** INSERT of `n` audit rows in one statement (same columns as INSERT_AUDIT). */
function multiRowAudit(n: number): string {
  const head = INSERT_AUDIT.slice(0, INSERT_AUDIT.indexOf('VALUES'));
  const one = INSERT_AUDIT.slice(INSERT_AUDIT.indexOf('VALUES') + 'VALUES'.length).trim();
  return `${head} VALUES ${Array.from({ length: n }, () => one).join(', ')}`;
}

function storeError(e: unknown): HisbridgeError {
  return isHisbridgeError(e) ? e : hbError('STORE_E_IO', { detail: e instanceof Error ? e.message : String(e) }, { cause: e });
}

/**
 * The data directory holds raw HL7 with ID numbers: it is created 0700 and
 * the database files 0600 (created so before SQLite opens them, so there is
 * no moment with wider permissions). Existing ones with any group or other
 * permission are tightened. Returns the paths that were tightened.
 */
function makePrivate(dir: string): string[] {
  const out: string[] = [];
  const existed = existsSync(dir);
  makeDataDir(dir);
  if (existed && tighten(dir, 0o700)) out.push(dir);
  const db = path.join(dir, DB_FILE);
  if (!existsSync(db)) closeSync(openSync(db, 'a', 0o600));
  for (const f of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) if (tighten(path.join(dir, f), 0o600)) out.push(path.join(dir, f));
  return out;
}

/** Removes group and other permissions from `file` when it has any; true when it changed something. */
function tighten(file: string, mode: number): boolean {
  let st;
  try {
    st = statSync(file);
  } catch {
    return false;
  }
  if ((st.mode & 0o077) === 0) return false;
  try {
    chmodSync(file, mode);
  } catch {
    // Not ours to change (a directory owned by another user): leave it, as before.
    return false;
  }
  return true;
}

/** Errors that mean the database cannot take writes: full disk, I/O error, read-only or locked file, corruption; a failed WAL sync. */
function isStorageFailure(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && (/^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|BUSY|LOCKED|NOMEM|PROTOCOL)/.test(code) || /^E(IO|NOSPC|DQUOT|ROFS|BADF)$/.test(code));
}

/** Syncs the WAL file's data (fs.fdatasync); replaceable in tests (StoreOptions.walSync). */
export type WalSync = (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => void;

/** What waits for the next WAL sync: a group commit's promises and the deliveries it started. */
interface Unsynced {
  ok(): void;
  fail(e: unknown): void;
}

/** A short reason for health: SQLite's own message (no row data in it), e.g. "database or disk is full". */
function writeFailureDetail(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  const msg = e instanceof Error ? e.message : String(e);
  return scrubText(msg.length > 200 ? msg.slice(0, 200) : msg) + (typeof code === 'string' && code.startsWith('SQLITE_') ? ` (${code})` : '');
}

export class Store {
  readonly dir: string;
  readonly #db: Database.Database;
  readonly #ledger: Ledger;
  readonly #auditKey: Buffer;
  readonly #insertAudit: Database.Statement;
  readonly #insertPart: Database.Statement;
  readonly #bodyRow: Database.Statement;
  readonly #partIds: Database.Statement;
  readonly #partRaw: Database.Statement;
  readonly #retentionDays: number;
  readonly #metadataRetentionDays: number;
  readonly #groupCommitMs: number;
  readonly #windowMs: number;
  readonly #outcomeWaitMs: number;
  /** Durability FULL: commits are synced by the store (the WAL file's fd, off the event loop) before anyone is told. */
  readonly #full: boolean;
  /** The WAL file, opened for fdatasync (FULL only). */
  #walFd: number | undefined;
  readonly #walSync: WalSync;
  /** Commits waiting for the next sync, and whether one is running. */
  #unsynced: Unsynced[] = [];
  #syncing: Unsynced[] | undefined;
  /** An fdatasync is running on the thread pool (it uses the fd). */
  #syncInFlight = false;
  /** Operations were queued while a sync ran: its callback writes them (see #enqueue). */
  #flushAfterSync = false;
  /** close() ran while a sync was running: its callback closes the fd. */
  #closeFdAfterSync = false;
  #queue: Op[] = [];
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** The pending timer is the longer one of outcomes and audit rows (OUTCOME_WAIT_MS). */
  #timerLazy = false;
  #pending = 0;
  #pendingReadAt = 0;
  #closed = false;
  #checkpointer: Checkpointer | undefined;
  #counter: { statements: { readonly n: number }; walStart: number } | undefined;
  #intake: DeliveryIntake | undefined;
  /** Deliveries started at accept in the transaction being written; handed to the intake after its commit. */
  #claimed: ClaimRecord[] = [];
  /** Audit rows of the transaction being written, inserted together at its end. */
  #auditRows: unknown[][] = [];
  readonly #auditInserts = new Map<number, Database.Statement>();
  /** Set by the first failed write, cleared by the next successful group commit. */
  #writeFailure: { since: number; detail: string; kinds: Set<string> } | undefined;
  readonly #stats: StoreStats = { transactions: 0, lightTransactions: 0, batchedOps: 0, largestBatch: 0, walSyncs: 0 };

  /**
   * Opens (creating and migrating as needed) the store in `dir`. Throws
   * CONFIG_E_RETENTION when metadataRetentionDays is below 180.
   */
  static open(dir: string, opts: StoreOptions = {}): Store {
    const meta = opts.metadataRetentionDays ?? 180;
    if (meta < 180) {
      throw hbError('CONFIG_E_RETENTION', { detail: 'metadataRetentionDays must be at least 180: the provincial platform requires access, call and operation logs kept at least 6 months (docs/operations.md#audit-retention)' });
    }
    if ((opts.retentionDays ?? 30) <= 0) throw hbError('CONFIG_E_RETENTION', { detail: 'retentionDays must be positive' });
    const tightened = makePrivate(dir);
    const db = new Database(path.join(dir, DB_FILE));
    // HISBRIDGE_COUNT_SQL=1: count statements and WAL bytes (sql-count.ts); checkpoints are suspended meanwhile.
    const counter = countingRequested() ? countStatements(db) : undefined;
    try {
      db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
      // A new database gets small pages (issue 15): a commit writes every page it touched whole to the WAL, and
      // most of what a commit touches is the last page of each table and index plus one random page per hash
      // index entry. An existing database keeps its page size (changing it needs a VACUUM).
      if ((db.pragma('page_count', { simple: true }) as number) === 0) db.pragma(`page_size = ${Number(process.env.HISBRIDGE_PAGE_SIZE) || PAGE_SIZE}`);
      db.pragma('journal_mode = WAL');
      // NORMAL on the connection in both modes: under FULL the store syncs the WAL itself (see the top of this file).
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('instance', randomUUID().slice(0, 8));
      // WAL mode made the -wal and -shm files now; SQLite gives them the database file's mode, check anyway.
      for (const f of [`${DB_FILE}-wal`, `${DB_FILE}-shm`]) if (tighten(path.join(dir, f), 0o600)) tightened.push(path.join(dir, f));
    } catch (e) {
      db.close();
      throw storeError(e);
    }
    const store = new Store(dir, db, opts, meta);
    store.tightened = tightened;
    if (store.#full) {
      try {
        store.#walFd = openSync(path.join(dir, `${DB_FILE}-wal`), 'r');
      } catch (e) {
        db.close();
        throw storeError(e);
      }
    }
    if (counter) {
      db.pragma('wal_autocheckpoint = 0');
      store.#counter = { statements: counter, walStart: fileSize(path.join(dir, `${DB_FILE}-wal`)) };
    } else if (opts.checkpointInWorker) {
      try {
        db.pragma(`wal_autocheckpoint = ${CHECKPOINT_SAFETY_PAGES}`);
        store.#checkpointer = new Checkpointer(path.join(dir, DB_FILE), () => {
          // The worker is gone: SQLite's own automatic checkpoints again.
          if (!store.#closed) db.pragma('wal_autocheckpoint = 1000');
        });
      } catch {
        db.pragma('wal_autocheckpoint = 1000');
      }
    }
    return store;
  }

  /** A source's stored position (core/store/checkpoints.ts), or undefined when it has none. */
  sourceCheckpoint(source: string): string | undefined {
    return readCheckpoint(this.#db, source);
  }

  /**
   * Moves a source's position without a message (a row the engine refused
   * before storing it, or a duplicate): its own transaction, after the queued
   * accepts, so it never overtakes the messages read before it.
   */
  setSourceCheckpoint(source: string, value: string): void {
    this.#write(() => writeCheckpoint(this.#db, { source, value }, Date.now()));
  }

  /** WAL checkpoints run by the worker thread (checkpointInWorker), for tests and metrics. */
  get checkpoints(): { ok: number; failed: number; running: boolean } | undefined {
    return this.#checkpointer?.stats;
  }

  /** Lets accept() start deliveries at once through the worker (DeliveryIntake); undefined detaches it. */
  attachIntake(intake: DeliveryIntake | undefined): void {
    this.#intake = intake;
  }

  /**
   * True when deliveries may be due now that no claim has taken yet (pending
   * heads written since the last claim that found nothing more). The worker
   * claims on a kick only then; its poll claims anyway.
   */
  hasDue(): boolean {
    return this.#ledger.due > 0;
  }

  /**
   * Statements run and WAL bytes written since the store opened, when
   * HISBRIDGE_COUNT_SQL=1 was set at open (sql-count.ts); undefined otherwise.
   */
  sqlCounts(): SqlCounts | undefined {
    const c = this.#counter;
    if (!c) return undefined;
    return { statements: c.statements.n, walBytes: fileSize(path.join(this.dir, `${DB_FILE}-wal`)) - c.walStart, transactions: this.#stats.transactions };
  }

  /** Files and directories whose group/other permissions open() removed (the engine logs a warning for each). */
  tightened: string[] = [];

  private constructor(dir: string, db: Database.Database, opts: StoreOptions, metadataRetentionDays: number) {
    this.dir = dir;
    this.#db = db;
    const instance = (db.prepare("SELECT value FROM meta WHERE key = 'instance'").get() as { value: string }).value;
    this.#ledger = new Ledger(db, instance);
    this.#auditKey = loadAuditKey(dir, opts.auditHashKey);
    this.#insertAudit = db.prepare(INSERT_AUDIT);
    this.#insertPart = db.prepare('INSERT INTO body_parts (upload, raw, created_at) VALUES (?, ?, ?)');
    this.#bodyRow = db.prepare('SELECT raw, upload FROM message_bodies WHERE message_id = ?');
    this.#partIds = db.prepare('SELECT id FROM body_parts WHERE upload = ? ORDER BY id');
    this.#partRaw = db.prepare('SELECT raw FROM body_parts WHERE id = ?');
    this.#retentionDays = opts.retentionDays ?? 30;
    this.#metadataRetentionDays = metadataRetentionDays;
    this.#groupCommitMs = opts.groupCommitMs ?? 1;
    this.#windowMs = opts.idempotencyWindowMs ?? DAY;
    this.#outcomeWaitMs = Math.max(0, opts.outcomeWaitMs ?? OUTCOME_WAIT_MS);
    this.#full = opts.synchronous !== 'NORMAL';
    this.#walSync = opts.walSync ?? fdatasync;
    this.#recount();
  }

  /** Durability in effect: FULL (every acknowledged commit synced to disk) or NORMAL (see StoreOptions.synchronous). */
  get synchronous(): 'FULL' | 'NORMAL' {
    return this.#full ? 'FULL' : 'NORMAL';
  }

  /** WAL syncs finished (FULL), for tests and metrics. */
  get walSyncs(): number {
    return this.#stats.walSyncs;
  }

  /**
   * Under FULL: `u` is told once a WAL sync that starts after now has
   * finished (one sync serves every commit made before it starts). Under
   * NORMAL: at once.
   */
  #afterSync(u: Unsynced): void {
    if (!this.#full || this.#walFd === undefined) return u.ok();
    this.#unsynced.push(u);
    if (!this.#syncing) this.#startSync();
  }

  #startSync(): void {
    const batch = this.#unsynced;
    this.#unsynced = [];
    this.#syncing = batch;
    this.#syncInFlight = true;
    this.#walSync(this.#walFd!, (err) => {
      this.#syncInFlight = false;
      if (this.#closeFdAfterSync) this.#closeWal();
      // Otherwise a synchronous sync (#syncNow) settled this batch already.
      if (this.#syncing === batch) {
        this.#syncing = undefined;
        if (err) this.#wrote(['sync'], err);
        else this.#stats.walSyncs++;
        for (const u of batch) {
          if (err) u.fail(err);
          else u.ok();
        }
      }
      if (this.#flushAfterSync) {
        this.#flushAfterSync = false;
        if (!this.#closed && this.#queue.length) this.#flush();
      }
      if (!this.#closed && !this.#syncing && this.#unsynced.length) this.#startSync();
    });
  }

  /** Synchronous sync of the WAL (synchronous writes, close): settles whatever waits for one. */
  #syncNow(): void {
    if (!this.#full || this.#walFd === undefined) return;
    const waiting = [...(this.#syncing ?? []), ...this.#unsynced];
    this.#syncing = undefined;
    this.#unsynced = [];
    try {
      fdatasyncSync(this.#walFd);
      this.#stats.walSyncs++;
    } catch (e) {
      this.#wrote(['sync'], e);
      for (const u of waiting) u.fail(e);
      throw storeError(e);
    }
    for (const u of waiting) u.ok();
  }

  #closeWal(): void {
    if (this.#walFd === undefined) return;
    try {
      closeSync(this.#walFd);
    } catch {
      // Already closed.
    }
    this.#walFd = undefined;
  }

  stats(): StoreStats {
    return { ...this.#stats };
  }

  /**
   * Failing from the first failed write (disk full, I/O error, read-only
   * file) until the next successful group commit of messages or outcomes. A
   * claim or other synchronous write that succeeds does not clear it: it may
   * need no new space while accepts still fail.
   */
  writeHealth(): WriteHealth {
    return this.#writeFailure ? { ok: false, since: this.#writeFailure.since, detail: this.#writeFailure.detail } : { ok: true };
  }

  /**
   * Caps the database file at about `bytes` (SQLite max_page_count on this
   * connection); undefined lifts the cap. Writes past it fail exactly like a
   * full disk (SQLITE_FULL): an operator can bound the store on a shared
   * disk, and tests use it to produce a real full-disk failure.
   */
  setSizeLimit(bytes: number | undefined): void {
    const pageSize = this.#db.pragma('page_size', { simple: true }) as number;
    const pages = bytes === undefined ? 4294967294 : Math.max(1, Math.floor(bytes / pageSize));
    this.#db.pragma(`max_page_count = ${pages}`);
  }

  /** Size of the database in bytes (pages in use times page size, without the WAL). */
  sizeBytes(): number {
    return (this.#db.pragma('page_count', { simple: true }) as number) * (this.#db.pragma('page_size', { simple: true }) as number);
  }

  /**
   * Records a write outcome. `kinds` are the kinds of operation written
   * (accept, complete, fail, audit; 'sync' for the synchronous ones). A
   * success clears a failure only when it wrote an accept (the largest
   * write) or every kind that failed: an outcome that fits in a free page
   * proves nothing while accepts still fail.
   */
  #wrote(kinds: Iterable<string>, e?: unknown): void {
    const f = this.#writeFailure;
    if (e === undefined) {
      if (!f) return;
      const ok = new Set(kinds);
      if (ok.has('accept') || [...f.kinds].every((k) => ok.has(k))) this.#writeFailure = undefined;
      return;
    }
    // A bad row (constraint, SQL error) is that operation's problem, not the store's.
    if (!isStorageFailure(e)) return;
    const detail = writeFailureDetail(e);
    this.#writeFailure = { since: f?.since ?? Date.now(), detail, kinds: new Set([...(f?.kinds ?? []), ...kinds]) };
  }

  /**
   * Stores a received message and its deliveries; resolves once they are
   * committed (the caller ACKs only then). A message whose sender, MSH-10 and
   * content were already accepted within the idempotency window (including
   * earlier in the same batch) is not stored again: `duplicate` is true and
   * `ackCode` is the original answer. The same sender and MSH-10 with other
   * content is stored as a new message, with `controlIdReusedOf` set.
   */
  accept(msg: NewMessage, deliveries: NewDeliveryWithOutcome[], order?: AcceptOrder): Promise<AcceptResult> {
    if ((msg.raw?.length ?? 0) > BODY_PART_BYTES && !this.#closed) return this.#acceptInParts(msg, deliveries, order);
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'accept', msg, deliveries, ...(order ? { order } : {}), done: { resolve, reject } }));
  }

  /**
   * A big body: its parts are written first, each in its own transaction
   * without fsync and with a turn of the event loop after it, then the accept
   * is queued as usual naming the upload. The sync after the accept's commit
   * (FULL) covers the WAL, and with it every part written before: the message is
   * durable, body included, before the caller ACKs. A part written by a run
   * that then fails or crashes before the accept commits is an orphan:
   * recover() removes it.
   */
  async #acceptInParts(msg: NewMessage, deliveries: NewDeliveryWithOutcome[], order?: AcceptOrder): Promise<AcceptResult> {
    const upload = randomInt(1, 2 ** 47);
    const insert = this.#insertPart;
    for (let off = 0; off < msg.raw.length; off += BODY_PART_BYTES) {
      const part = msg.raw.subarray(off, Math.min(off + BODY_PART_BYTES, msg.raw.length));
      this.#write(() => insert.run(upload, part, Date.now()), { light: true, keepQueue: true });
      await yieldToLoop();
    }
    // The WAL sync after the accept's commit (off the event loop) makes every part written above durable with it.
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'accept', msg, deliveries, upload, ...(order ? { order } : {}), done: { resolve, reject } }));
  }

  /**
   * The stored body of a message, or null when retention removed it (or there
   * is no such message). A body stored in parts is read one part per
   * event-loop turn.
   */
  async loadBody(messageId: number): Promise<Buffer | null> {
    if (this.#closed) throw hbError('STORE_E_IO', { detail: 'store is closed' });
    const row = this.#bodyRow.get(messageId) as { raw: Buffer | null; upload: number | null } | undefined;
    if (!row) return null;
    if (row.raw) return row.raw;
    if (row.upload === null) return null;
    const ids = (this.#partIds.all(row.upload) as { id: number }[]).map((r) => r.id);
    const parts: Buffer[] = [];
    for (const id of ids) {
      if (this.#closed) throw hbError('STORE_E_IO', { detail: 'store is closed' });
      const p = this.#partRaw.get(id) as { raw: Buffer } | undefined;
      // Removed meanwhile (retention of a finished message): the body is gone.
      if (!p) return null;
      parts.push(p.raw);
      if (ids.length > 1) await yieldToLoop();
    }
    return Buffer.concat(parts);
  }

  /** Marks an in-flight delivery done, records the attempt and hands its output to later steps. False when it was no longer in flight. */
  complete(id: number, result: StepResult, opts: { latencyMs?: number } = {}): Promise<boolean> {
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'complete', id, result, ...opts, done: { resolve, reject } }));
  }

  /** Records a failed attempt: schedules a retry ('retrying') or moves it to the dead letter ('dead'). */
  fail(id: number, err: FailInput, opts: { latencyMs?: number } = {}): Promise<'retrying' | 'dead' | 'ignored'> {
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'fail', id, err, ...opts, done: { resolve, reject } }));
  }

  /** Appends an audit row (written with the next group commit). The patient id is masked and hashed before it is queued. */
  audit(entry: AuditEntry): void {
    this.#enqueue({ kind: 'audit', params: auditParams(this.#auditKey, entry, Date.now()) });
  }

  /**
   * The newest accepted message with this sender and MSH-10 within the window
   * and, when `contentHash` is given, the same content (identity.ts
   * `contentDigest`; rows stored before content digests match any content).
   */
  findDuplicate(sendingApp: string, sendingFacility: string, controlId: string, windowMs: number, contentHash?: string): DuplicateHit | undefined {
    const hit = this.#ledger.findDuplicate(sendingApp, sendingFacility, controlId, Date.now() - windowMs, contentHash);
    return hit ? { messageId: hit.id, ackCode: hit.ack_code, ...parseReply(hit.ack_reply) } : undefined;
  }

  /**
   * Claims up to `limit` due deliveries (each the head of its ordering key)
   * and marks them in-flight with one more attempt. `skipPlugins` leaves out
   * plugins whose concurrency limit is reached; `take` (see Ledger.claim)
   * refuses rows beyond a plugin's room, which then stay pending.
   */
  claimDue(now: number, limit: number, skipPlugins: readonly string[] = [], skipRoutes: readonly string[] = [], take?: (plugin: string, route: string) => boolean): ClaimedDelivery[] {
    if (limit <= 0) return [];
    const withBody = (rows: ClaimRecord[]): ClaimedDelivery[] =>
      rows.map((r) => ({ ...r, message: { ...r.message, loadRaw: () => this.loadBody(r.messageId) } }));
    const claim = () => withBody(this.#ledger.claim(now, limit, skipPlugins, skipRoutes, take));
    if (this.#closed) throw hbError('STORE_E_IO', { detail: 'store is closed' });
    // Accepts are queued: write them and the claim in one transaction (one fsync) instead of two.
    // Only outcomes queued (under FULL): leave them for the next accept batch and claim without them.
    // The claim cannot take anything it should not: a queued outcome's delivery is still in flight in
    // the table, and the next delivery of its key only becomes head when the outcome is written.
    const outcomesOnly = this.#full && this.#queue.length > 0 && this.#timerLazy;
    if (this.#queue.length && !outcomesOnly) return this.#flush(claim);
    // A claim alone needs no fsync: if a power cut loses it the delivery is simply pending again,
    // exactly what recover() would make of it. The next durable commit syncs it anyway (WAL is append-only).
    return this.#write(claim, { light: true, keepQueue: outcomesOnly });
  }

  /**
   * Gives in-flight deliveries back (due now, attempt not counted): worker
   * shutdown. `unstarted` skips the attempt row, for claims never run.
   */
  release(ids: readonly number[], opts: { unstarted?: boolean } = {}): number {
    return this.#write(() => this.#ledger.release(ids, Date.now(), !opts.unstarted));
  }

  /** On start: deliveries left in flight by a crashed run are due again. Returns how many. */
  recover(): number {
    const n = this.#write(() => {
      const now = Date.now();
      // Body parts of an accept that never committed (a crash, a failed write): no message names their upload.
      this.#db.prepare(`DELETE FROM body_parts WHERE created_at < ? AND upload NOT IN (SELECT upload FROM message_bodies WHERE upload IS NOT NULL)`)
        .run(now - ORPHAN_AGE_MS);
      return this.#ledger.release('all', now);
    });
    this.#recount();
    return n;
  }

  /** Dead letter replay: dead → pending, attempts reset, ordering key kept. Returns how many. */
  requeue(filter: RequeueFilter): number {
    const r = this.#write(() => this.#ledger.requeue(filter, Date.now()));
    this.#pending += r.delta;
    return r.value;
  }

  /**
   * Replay of stored messages (`hisbridge replay --stored`): their done and
   * dead deliveries go back to pending with attempts reset, keeping their
   * ordering key, their place in the key's order and their idempotency key
   * (a remote that honours the key can drop the repeat). Open deliveries are
   * skipped, and so are messages whose body retention removed. When an id
   * does not exist nothing is re-queued (`missing` names it). Every replayed
   * message gets an audit row (plugin 'operator', operation 'replay') written
   * in the same transaction as the change. A running engine sharing the file
   * picks the deliveries up at its next poll.
   */
  replayStored(filter: ReplayFilter, by: { staffNo: string }): ReplayResult {
    const route = filter.route;
    const ids = filter.messageIds
      ? [...new Set(filter.messageIds)]
      : filter.since !== undefined
        ? this.#write(() => this.#ledger.messagesSince(filter.since!, route))
        : [];
    if (filter.messageIds) {
      const missing = this.#write(() => this.#ledger.missingMessages(ids));
      if (missing.length) return { messages: [], missing };
    }
    const messages: ReplayedMessage[] = [];
    // Bounded transactions: the engine's writers wait for this lock (busy timeout), so never hold it for a whole backlog.
    for (let i = 0; i < ids.length; i += REPLAY_CHUNK) {
      const chunk = ids.slice(i, i + REPLAY_CHUNK);
      const r = this.#write(() => {
        const now = Date.now();
        const changed = this.#ledger.replay(chunk, route, now);
        for (const m of changed.value) {
          this.#insertAudit.run(...auditParams(this.#auditKey, {
            plugin: 'operator', operation: 'replay', staffNo: by.staffNo, messageId: String(m.messageId),
            ...(route ? { route } : {}), ...(m.patientId ? { patientId: m.patientId } : {}),
            result: m.requeued ? 'ok' : 'skipped',
            detail: `requeued ${m.requeued}, still open ${m.stillOpen}${m.purged ? ', body purged' : ''}`,
          }, now));
        }
        return changed;
      });
      this.#pending += r.delta;
      for (const { patientId: _omit, ...m } of r.value) messages.push(m);
    }
    return { messages, missing: [] };
  }

  /** Open deliveries (pending, in flight, waiting to retry): a cached counter, cheap to call per message. */
  pendingCount(): number {
    if (!this.#closed && Date.now() - this.#pendingReadAt > COUNT_REFRESH_MS) {
      this.#flush();
      this.#recount();
    }
    // A replay made by another process is only counted at the next re-read: never report below zero meanwhile.
    return Math.max(0, this.#pending);
  }

  searchMessages(q: MessageSearch): MessageSummary[] {
    this.#flush();
    return searchMessages(this.#db, q);
  }

  getMessage(id: number): MessageDetail | undefined {
    this.#flush();
    return getMessage(this.#db, id);
  }

  listDead(f: DeadFilter = {}): (DeliveryRecord & { controlId: string; type: string })[] {
    this.#flush();
    return listDead(this.#db, f);
  }

  queryAudit(f: AuditFilter = {}): AuditRow[] {
    this.#flush();
    return queryAudit(this.#db, this.#auditKey, f);
  }

  /** Key/value state of one plugin, in the same database. */
  pluginState(plugin: string): PluginState {
    const get = this.#db.prepare('SELECT value FROM plugin_state WHERE plugin = ? AND key = ?');
    const set = this.#db.prepare('INSERT INTO plugin_state (plugin, key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at');
    const del = this.#db.prepare('DELETE FROM plugin_state WHERE plugin = ? AND key = ?');
    return {
      get: async <T>(key: string) => {
        const row = get.get(plugin, key) as { value: string } | undefined;
        return row ? (JSON.parse(row.value) as T) : undefined;
      },
      set: async (key: string, value: unknown) => {
        this.#write(() => set.run(plugin, key, JSON.stringify(value ?? null), Date.now()));
      },
      delete: async (key: string) => {
        this.#write(() => del.run(plugin, key));
      },
    };
  }

  /**
   * Retention: bodies of messages fully delivered (or rejected) before
   * `retentionDays` are set to NULL; finished messages (with their deliveries
   * and attempts) and audit rows older than `metadataRetentionDays` are deleted.
   * Dead and open deliveries keep their message body until they are settled.
   */
  purge(now: number = Date.now()): PurgeResult {
    const bodyCut = now - this.#retentionDays * DAY;
    const metaCut = now - this.#metadataRetentionDays * DAY;
    return this.#write(() => {
      // Bodies go before their rows (message_bodies, and body_parts for a body stored in parts).
      const gone = `SELECT m.id FROM messages m JOIN message_bodies b ON b.message_id = m.id
                    WHERE m.received_at < ? AND m.status IN ('done','rejected')`;
      this.#db.prepare(`DELETE FROM body_parts WHERE upload IN (SELECT b.upload FROM message_bodies b WHERE b.upload IS NOT NULL AND b.message_id IN (${gone}))`).run(bodyCut);
      const ids = this.#db.prepare(gone).all(bodyCut) as { id: number }[];
      const dropBody = this.#db.prepare('DELETE FROM message_bodies WHERE message_id = ?');
      const mark = this.#db.prepare('UPDATE messages SET purged_at = ? WHERE id = ?');
      for (const { id } of ids) {
        dropBody.run(id);
        mark.run(now, id);
      }
      // Deleting a message cascades to its body row; parts of a body stored in parts are deleted with it.
      const old = `SELECT id FROM messages WHERE received_at < ? AND status IN ('done','dead','rejected')`;
      this.#db.prepare(`DELETE FROM body_parts WHERE upload IN (SELECT b.upload FROM message_bodies b WHERE b.upload IS NOT NULL AND b.message_id IN (${old}))`).run(metaCut);
      return {
        bodiesPurged: ids.length,
        messagesDeleted: this.#db.prepare(`DELETE FROM messages WHERE received_at < ? AND status IN ('done','dead','rejected')`).run(metaCut).changes,
        auditDeleted: this.#db.prepare('DELETE FROM audit WHERE at < ?').run(metaCut).changes,
      };
    });
  }

  /** Writes queued work, checkpoints the WAL and closes the file. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#flush();
    let syncError: unknown;
    try {
      this.#syncNow();
    } catch (e) {
      syncError = e;
    }
    this.#closed = true;
    this.#checkpointer?.close();
    try {
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      this.#db.close();
      // A sync still running on the thread pool uses the fd: its callback closes it.
      if (this.#syncInFlight) this.#closeFdAfterSync = true;
      else this.#closeWal();
    }
    if (syncError) throw syncError;
  }

  #recount(): void {
    const row = this.#db.prepare(`SELECT count(*) AS n FROM deliveries WHERE state IN ${OPEN_STATES}`).get() as { n: number };
    this.#pending = row.n;
    this.#pendingReadAt = Date.now();
  }

  /**
   * Runs `fn` in its own write transaction after the queue. `light` commits
   * without fsync even under FULL: only for changes a power cut may undo
   * without breaking a promise (see claimDue).
   */
  #write<T>(fn: () => T, opts: { light?: boolean; keepQueue?: boolean } = {}): T {
    if (this.#closed) throw hbError('STORE_E_IO', { detail: 'store is closed' });
    if (!opts.keepQueue) this.#flush();
    const light = opts.light === true && this.#full;
    let v: T;
    try {
      v = this.#db.transaction(fn).immediate();
      this.#stats.transactions++;
      this.#checkpointer?.request();
      if (light) this.#stats.lightTransactions++;
    } catch (e) {
      this.#wrote(['sync'], e);
      throw storeError(e);
    }
    // Durable before the caller hears of it (FULL), like a commit under SQLite's FULL; a light write needs no sync.
    if (!light) this.#syncNow();
    return v;
  }

  #enqueue(op: Op): void {
    if (this.#closed) {
      if (op.kind !== 'audit') op.done.reject(hbError('STORE_E_IO', { detail: 'store is closed' }));
      return;
    }
    this.#queue.push(op);
    // In the queue behind every earlier accept: the next message of the same key may follow into the same commit.
    if (op.kind === 'accept') op.order?.queued();
    if (this.#queue.length >= MAX_BATCH) return this.#flush();
    // A WAL sync is running (FULL): what arrives meanwhile cannot be acknowledged before the next sync anyway, so it
    // is written in one transaction when this sync ends, just before that next sync starts (fewer, bigger commits:
    // fewer statements and WAL pages per message, same latency).
    if (this.#syncInFlight && this.#full) {
      this.#flushAfterSync = true;
      return;
    }
    // Outcomes and audit rows wait a little for the next accept batch, so under load they share its fsync
    // instead of costing one of their own; an accept (a sender waits for its ACK) is written at once.
    const lazy = op.kind !== 'accept';
    if (this.#timer && (lazy || !this.#timerLazy)) return;
    if (this.#timer) this.#clearTimer();
    this.#timerLazy = lazy;
    const ms = lazy ? Math.max(this.#groupCommitMs, this.#outcomeWaitMs) : this.#groupCommitMs;
    this.#timer = ms > 0 ? setTimeout(() => this.#flush(), ms) : setImmediate(() => this.#flush());
  }

  #clearTimer(): void {
    clearTimeout(this.#timer as NodeJS.Timeout);
    clearImmediate(this.#timer as NodeJS.Immediate);
    this.#timer = undefined;
  }

  #apply(op: Op, now: number): Changed<unknown> {
    switch (op.kind) {
      case 'accept': {
        if (op.order?.chain.broken) throw hbError('STORE_E_IO', { detail: 'an earlier message of the same key was not committed' });
        const r = this.#ledger.accept(op.msg, op.deliveries, this.#windowMs, now, op.upload, this.#intake);
        // The source's position moves in the same transaction as its message (issue 17).
        if (op.msg.checkpoint) writeCheckpoint(this.#db, op.msg.checkpoint, now);
        if (r.claimed) for (const c of r.claimed) this.#claimed.push(c);
        return r;
      }
      case 'complete': return this.#ledger.complete(op.id, op.result, op.latencyMs, now);
      case 'fail': return this.#ledger.fail(op.id, op.err, op.latencyMs, now);
      case 'audit':
        this.#auditRows.push(op.params);
        return { value: undefined, delta: 0 };
    }
  }

  /** The end of a transaction that applied queued operations: their deferred writes (message status, audit rows). */
  #endBatch(): void {
    this.#ledger.endBatch();
    const rows = this.#auditRows;
    this.#auditRows = [];
    for (let i = 0; i < rows.length; i += AUDIT_CHUNK) {
      const chunk = rows.slice(i, i + AUDIT_CHUNK);
      let stmt = this.#auditInserts.get(chunk.length);
      if (!stmt) {
        stmt = chunk.length === 1 ? this.#insertAudit : this.#db.prepare(multiRowAudit(chunk.length));
        this.#auditInserts.set(chunk.length, stmt);
      }
      stmt.run(...chunk.flat());
    }
  }

  /** The transaction was rolled back: forget its deferred writes and give back the slots of deliveries it started. */
  #abortBatch(from = 0): void {
    this.#ledger.abortBatch();
    this.#auditRows = [];
    for (const c of this.#claimed.splice(from)) this.#intake?.giveBack(c.plugin);
  }

  /** After a commit (and its sync): the deliveries started at accept go to the worker. */
  #startClaimed(jobs: ClaimRecord[]): void {
    if (!jobs.length) return;
    const intake = this.#intake;
    for (const r of jobs) {
      const job: ClaimedDelivery = { ...r, message: { ...r.message, loadRaw: () => this.loadBody(r.messageId) } };
      if (intake) intake.start(job);
    }
  }

  /**
   * Writes the queue in one transaction; if that fails, each operation alone
   * so one bad row does not fail its batch. `then` (a synchronous operation
   * such as a claim) runs in the same transaction, after the queued work, and
   * its value is returned; it runs on its own if the batch fails.
   */
  #flush(): void;
  #flush<T>(then: () => T): T;
  #flush<T>(then?: () => T): T | undefined {
    if (this.#timer) this.#clearTimer();
    if (this.#queue.length === 0 || this.#closed) return then ? this.#write(then) : undefined;
    let ops = this.#queue;
    this.#queue = [];
    // Accepts behind one of their key that failed to commit are refused before the transaction (AcceptOrder).
    if (ops.some((op) => op.kind === 'accept' && op.order?.chain.broken)) {
      ops = ops.filter((op) => {
        if (op.kind !== 'accept' || !op.order?.chain.broken) return true;
        op.done.reject(hbError('STORE_E_IO', { detail: 'an earlier message of the same key was not committed' }));
        return false;
      });
      if (ops.length === 0) return then ? this.#write(then) : undefined;
    }
    const now = Date.now();
    let results: Changed<unknown>[] | undefined;
    let extra: { value: T } | undefined;
    try {
      results = this.#db.transaction(() => {
        const r = ops.map((op) => this.#apply(op, now));
        this.#endBatch();
        if (then) extra = { value: then() };
        return r;
      }).immediate();
      this.#stats.transactions++;
      this.#checkpointer?.request();
      this.#wrote(ops.map((op) => op.kind));
    } catch {
      this.#abortBatch();
      results = undefined;
      extra = undefined;
    }
    let opError: unknown;
    const failedKinds: string[] = [];
    this.#stats.batchedOps += ops.length;
    this.#stats.largestBatch = Math.max(this.#stats.largestBatch, ops.length);
    // Committed operations are told after the WAL sync (FULL); the deliveries their accepts started run then too.
    const settled: { op: Op; value: unknown }[] = [];
    ops.forEach((op, i) => {
      let r = results?.[i];
      if (!results) {
        const mark = this.#claimed.length;
        try {
          r = this.#db.transaction(() => {
            const v = this.#apply(op, now);
            this.#endBatch();
            return v;
          }).immediate();
          this.#stats.transactions++;
        } catch (e) {
          this.#abortBatch(mark);
          opError ??= e;
          failedKinds.push(op.kind);
          // Later accepts of this key are refused too (AcceptOrder): none may be committed ahead of this one.
          if (op.kind === 'accept' && op.order) op.order.chain.broken = true;
          if (op.kind !== 'audit') op.done.reject(storeError(e));
          return;
        }
      }
      this.#pending += r!.delta;
      settled.push({ op, value: r!.value });
    });
    const claimed = this.#claimed;
    this.#claimed = [];
    if (settled.length || claimed.length) {
      this.#afterSync({
        ok: () => {
          for (const { op, value } of settled) if (op.kind !== 'audit') (op.done.resolve as (v: unknown) => void)(value);
          // Durable: the deliveries started at accept run now.
          this.#startClaimed(claimed);
        },
        fail: (e) => {
          for (const { op } of settled) {
            // Not durable: later accepts of its key must not be reported ahead of it (AcceptOrder).
            if (op.kind === 'accept' && op.order) op.order.chain.broken = true;
            if (op.kind !== 'audit') op.done.reject(storeError(e));
          }
          // Committed all the same (the rows are in the table, in flight): run them rather than strand them until a restart.
          this.#startClaimed(claimed);
        },
      });
    }
    // One by one after a failed batch: failing while any of them failed.
    if (!results) {
      if (opError === undefined) this.#wrote(ops.map((op) => op.kind));
      else this.#wrote(failedKinds, opError);
    }
    if (!then) return undefined;
    return extra ? extra.value : this.#write(then);
  }
}
