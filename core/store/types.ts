/**
 * Contract between the engine and the durable store + delivery workers.
 * The engine hands over a received message and its deliveries; the store
 * commits them (group commit) and the workers run the deliveries through the
 * `DeliveryRunner` the engine provides.
 */
import type { AuditEntry, StepResult } from '../sdk.js';

export type DeliveryState = 'pending' | 'in-flight' | 'done' | 'retrying' | 'dead';

export interface NewMessage {
  /** Listener / source name. */
  source: string;
  /** Bytes exactly as received (frame content without MLLP envelope). */
  raw: Buffer;
  /** Charset the raw bytes were decoded with (e.g. 'gb18030', 'utf-8'). */
  charset: string;
  sendingApp: string;
  sendingFacility: string;
  /** `ADT^A04`. */
  type: string;
  /** MSH-10. */
  controlId: string;
  /** In-hospital patient id (plain; the store may index it, it is never logged). */
  patientId?: string;
  receivedAt: number;
  /** ACK code given to the sender (AA/CA...), kept so a duplicate gets the same answer. */
  ackCode: string;
  /** Reply text and segments of that ACK (on-complete routes), repeated to a duplicate. */
  ackReply?: AckReply;
  /**
   * SHA-256 of the message's canonical content (identity.ts `contentDigest`):
   * a message is a duplicate only when sender, MSH-10 and this agree.
   * Default: SHA-256 of `raw`.
   */
  contentHash?: string;
  /** identity.ts `messageKey`; default derived from sender, MSH-10 and `contentHash`. Idempotency keys derive from it. */
  messageKey?: string;
  /** Marks shown in the message list, e.g. `invalid-bytes-replaced`. */
  flags?: string[];
  /**
   * What `raw` is: an HL7 v2 message (default) or a JSON event (UTF-8; `type` is the
   * event type the source gave, `controlId` the event id, `sendingApp`/`sendingFacility` its sender).
   */
  format?: 'hl7' | 'json';
  /** A source position committed in the same transaction as this message (core/store/checkpoints.ts). */
  checkpoint?: { source: string; value: string };
  /**
   * The message as parsed at receipt (for HL7 an Hl7Message unchanged since
   * its parse). Not stored: a delivery started at accept gets it, so its
   * first attempt does not read and parse the stored bytes again.
   */
  prepared?: unknown;
}

/** What an ACK carried beyond its code. */
export interface AckReply {
  text?: string;
  segments?: string[][];
  /** The ERR of a committed message whose processing failed (CA with ERR in enhanced mode). */
  error?: { hl7Code: string; text: string };
}

export interface RetryPolicy {
  /** Attempts in total before dead letter. */
  max: number;
  initialMs: number;
  maxDelayMs: number;
}

export interface NewDelivery {
  route: string;
  /** Index of the plugin step in the route. */
  step: number;
  plugin: string;
  /** Deliveries sharing a key run strictly in arrival order; default `<route>:<messageId>`. */
  orderingKey?: string;
  retry: RetryPolicy;
  /** Variables computed by the route's local steps at receive time (JSON). */
  vars: Record<string, unknown>;
}

export interface DeliveryJob {
  id: number;
  messageId: number;
  route: string;
  step: number;
  plugin: string;
  orderingKey: string;
  attempt: number;
  idempotencyKey: string;
  vars: Record<string, unknown>;
  /**
   * The stored message. A claim does not read the body (a multi-MB body per
   * claim stalled the event loop): the runner loads it once with `loadRaw`,
   * which resolves to null when retention removed it. `format` is what the
   * body is: an HL7 message (absent or 'hl7') or a JSON event ('json').
   */
  message: {
    rawBytes: number; charset: string; source: string; controlId: string; type: string; format?: 'hl7' | 'json'; loadRaw(): Promise<Buffer | null>;
    /** The message as parsed at receipt (NewMessage.prepared), on a delivery started at accept. */
    prepared?: unknown;
  };
  signal: AbortSignal;
}

/** Runs one delivery; throw a HisbridgeError to fail it (its `retryable` and `retryAfterMs` drive the policy). */
export type DeliveryRunner = (job: DeliveryJob) => Promise<StepResult>;

export interface DuplicateHit {
  messageId: number;
  ackCode: string;
  ackReply?: AckReply;
}

/**
 * For on-complete routes the engine runs steps inline and records the
 * outcome with the message: such deliveries arrive already final.
 */
export interface FinalDeliveryOutcome {
  state: 'done' | 'dead';
  errorCode?: string;
  reason?: string;
  output?: Record<string, unknown>;
}

export interface NewDeliveryWithOutcome extends NewDelivery {
  /** Output of the step is merged into `vars[as]` of later deliveries of the same message and route. */
  as?: string;
  final?: FinalDeliveryOutcome;
}

/* ---- Store implementation contract (core/store/sqlite.ts) ---- */

export interface StoreOptions {
  /**
   * Durability in WAL mode. FULL: a commit (and so an ACK) survives a power
   * cut (the store fdatasyncs the WAL after each group commit, off the event
   * loop, before resolving). NORMAL: survives a process crash; a power cut
   * may lose the last commits. Default FULL.
   */
  synchronous?: 'FULL' | 'NORMAL';
  /**
   * Tests only: replaces the WAL sync (fs.fdatasync) under FULL, to hold a
   * sync back or make it fail. Its callback must be called exactly once.
   */
  walSync?: (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => void;
  /** Delivered message bodies are purged after this many days (default 30). */
  retentionDays?: number;
  /** Message metadata, deliveries and audit rows are kept this long; at least 180 (default 180). */
  metadataRetentionDays?: number;
  /** How long accept() waits to gather concurrent calls into one transaction (default 1 ms; 0 = same tick only). */
  groupCommitMs?: number;
  /**
   * How long complete(), fail() and audit() may wait for the next accept
   * batch (or claim) to share its fsync, when groupCommitMs is shorter
   * (default 2 ms).
   */
  outcomeWaitMs?: number;
  /** Window in which (MSH-3, MSH-4, MSH-10) counts as a duplicate inside accept() (default 24 h). */
  idempotencyWindowMs?: number;
  /** HMAC key for audit patient hashes; default a random key kept in `<dir>/audit-hash.key`. */
  auditHashKey?: string;
  /** SQLite busy timeout, so a CLI and the engine can share the file (default 5000 ms). */
  busyTimeoutMs?: number;
  /**
   * Run WAL checkpoints in a worker thread (checkpointer.ts) instead of inside
   * whichever commit crosses SQLite's threshold, a 25-40 ms stall of the event
   * loop. The engine sets it; short-lived CLI commands leave it off (default false).
   */
  checkpointInWorker?: boolean;
}

/** What accept() resolves to. */
export interface AcceptResult {
  messageId: number;
  /** True when an earlier message with the same sender and MSH-10 was found at commit: nothing was stored. */
  duplicate: boolean;
  /** ACK code to answer with (the original one for a duplicate). */
  ackCode: string;
  /** For a duplicate: the original ACK's reply text and segments. */
  ackReply?: AckReply;
  /**
   * Set when the message was stored although its sender and MSH-10 had been
   * accepted before with other content: the id of that earlier message.
   */
  controlIdReusedOf?: number;
}

/** A claimed delivery: a DeliveryJob without its AbortSignal (the worker adds it). */
export type ClaimedDelivery = Omit<DeliveryJob, 'signal'>;

export interface FailInput {
  code: string;
  /** PHI-free reason (masked); kept on the delivery and its attempt row. */
  reason: string;
  retryable: boolean;
  retryAfterMs?: number;
}

export type MessageStatus = 'queued' | 'done' | 'dead' | 'rejected';

export interface MessageSummary {
  id: number;
  receivedAt: number;
  source: string;
  sendingApp: string;
  sendingFacility: string;
  type: string;
  controlId: string;
  patientId?: string;
  charset: string;
  ackCode: string;
  status: MessageStatus;
  rawBytes: number;
  /** Set once retention removed the body. */
  purgedAt?: number;
  /** True when the sender and MSH-10 had been accepted before with other content (a new message reusing a control id). */
  controlIdReused?: boolean;
  /** Marks set at receipt, e.g. `invalid-bytes-replaced`. */
  flags?: string[];
  /** 'hl7' or 'json' (a JSON event: the body is UTF-8 JSON, shown pretty-printed). The store always sets it; absent means 'hl7'. */
  format?: 'hl7' | 'json';
}

export interface AttemptRecord {
  at: number;
  attempt: number;
  outcome: 'ok' | 'skipped' | 'retry' | 'dead' | 'released';
  errorCode?: string;
  reason?: string;
  latencyMs?: number;
}

export interface DeliveryRecord {
  id: number;
  messageId: number;
  route: string;
  step: number;
  plugin: string;
  orderingKey: string;
  state: DeliveryState;
  attempts: number;
  maxAttempts: number;
  nextAttemptAt: number;
  lastErrorCode?: string;
  lastError?: string;
  asName?: string;
  createdAt: number;
  updatedAt: number;
}

export interface MessageDetail extends MessageSummary {
  /** Null after retention purged it. */
  raw: Buffer | null;
  deliveries: (DeliveryRecord & { vars: Record<string, unknown>; output?: Record<string, unknown>; attemptLog: AttemptRecord[] })[];
}

export interface MessageSearch {
  status?: MessageStatus;
  controlId?: string;
  patientId?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  limit: number;
  /** Keyset pagination: messages with id lower than this (pass the last id of the previous page). */
  before?: number;
}

export interface DeadFilter {
  route?: string;
  limit?: number;
}

export interface RequeueFilter {
  ids?: number[];
  all?: boolean;
  route?: string;
}

/** Which stored messages `Store.replayStored` re-queues: by id, or received since a time. */
export interface ReplayFilter {
  /** Store message ids (see `messages search`). */
  messageIds?: number[];
  /** Epoch ms, inclusive: every message received since then that has deliveries. */
  since?: number;
  /** Only deliveries of this route. */
  route?: string;
}

export interface ReplayedMessage {
  messageId: number;
  /** MSH-10. */
  controlId: string;
  /** Done and dead deliveries moved back to pending. */
  requeued: number;
  /** Deliveries left alone because they have not finished (pending, in flight, waiting to retry). */
  stillOpen: number;
  /** Retention already removed the body: nothing of this message was re-queued. */
  purged: boolean;
}

export interface ReplayResult {
  /** In the order of the filter's ids, else oldest first. */
  messages: ReplayedMessage[];
  /** Requested ids with no stored message. When any is missing nothing is re-queued. */
  missing: number[];
}
