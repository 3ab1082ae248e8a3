/**
 * The delivery state machine on SQLite. Every method runs inside a
 * transaction opened by the Store (group commit or its own) and returns how
 * it changed the number of open deliveries, so the cached pending counter is
 * only adjusted after the commit.
 *
 * Ordering keys: among the open deliveries (pending, in-flight, retrying) of
 * one key exactly one has `head = 1`: the one allowed to run. It is the
 * lowest id, except that a running (in-flight) head keeps the flag until it
 * finishes, even when a replayed lower id joins the key. Claiming only looks
 * at heads through a partial index, so the cost does not grow with the
 * number of waiting deliveries behind each key.
 */
import type Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { scrubText } from '../mask.js';
import { idempotencyKeyOf, messageKey } from './identity.js';
import { retryDelayMs } from './backoff.js';
import { OPEN_STATES } from './schema.js';
import type { AcceptResult, AckReply, ClaimedDelivery, FailInput, NewDeliveryWithOutcome, NewMessage, ReplayedMessage, RequeueFilter } from './types.js';
import type { StepResult } from '../sdk.js';
import { REWRITTEN_HL7_VAR, rewrittenInDelivery } from '../routes/rewrite.js';

const ACCEPTED = `('AA','CA')`;
/** Message bodies per multi-row INSERT (endBatch). */
const BODY_CHUNK = 32;

interface DeliveryRow {
  id: number; message_id: number; route: string; step: number; plugin: string; ordering_key: string; state: string; attempts: number;
  max_attempts: number; retry_initial_ms: number; retry_max_delay_ms: number; as_name: string | null; waiters: number; solo: number;
}

interface ClaimRow {
  id: number; message_id: number; route: string; step: number; plugin: string; ordering_key: string; attempts: number; vars: string;
  raw_bytes: number; charset: string; source: string; control_id: string; type: string; message_key: string | null; format: string;
}

interface DoneRow {
  message_id: number; route: string; step: number; plugin: string; ordering_key: string; attempts: number; as_name: string | null; waiters: number; solo: number;
}

/**
 * The delivery worker's say at accept: `take` reserves a slot for a delivery
 * of this plugin and route (it is then inserted in flight and started after
 * the commit), `giveBack` returns a reservation that was not used.
 */
export interface Admit {
  take(plugin: string, route: string): boolean;
  giveBack(plugin: string): void;
}

/** A claimed delivery as the ledger reads it: the Store adds the body loader. */
export type ClaimRecord = Omit<ClaimedDelivery, 'message'> & { message: Omit<ClaimedDelivery['message'], 'loadRaw'> };

/** A stored message that a new one may duplicate. */
export interface DuplicateRow {
  id: number;
  ack_code: string;
  ack_reply: string | null;
}

/** One replayed message, as the ledger saw it (the Store audits it, then drops the patient id). */
export interface ReplayedRow extends ReplayedMessage {
  patientId?: string;
}

export interface Changed<T> {
  value: T;
  /** Change in the number of open deliveries. */
  delta: number;
}

function json(v: unknown): string {
  return JSON.stringify(v ?? {});
}

export class Ledger {
  readonly #db: Database.Database;
  readonly #instance: string;
  readonly #s;
  /** Rows stored before content digests (schema < 3) exist: only then is the legacy duplicate query run. */
  readonly #legacyRows: boolean;
  /** Plugins whose latest recorded attempt failed: their next success is written as an attempt row (see complete). */
  readonly #failing = new Set<string>();
  #soloDone: number[] = [];
  #soloDead: number[] = [];
  /** Body rows of the messages accepted in this transaction: [message_id, raw, upload], inserted together by endBatch. */
  #bodies: unknown[][] = [];
  readonly #bodyInserts = new Map<number, Database.Statement>();
  /**
   * Deliveries that became due (pending heads) since the last claim that
   * found nothing more: the worker claims only while this is above 0, or on
   * its poll (retries whose time came, changes made by another process).
   */
  due = 0;

  constructor(db: Database.Database, instanceId: string) {
    this.#db = db;
    this.#instance = instanceId;
    // Set by the v3 migration when the table had rows then; new rows always get a digest.
    this.#legacyRows = db.prepare("SELECT 1 FROM meta WHERE key = 'pre_v3_rows'").get() !== undefined;
    const p = (sql: string) => db.prepare(sql);
    this.#s = {
      // Same sender, MSH-10 and content (messages_once index, control_id first). Rows stored before content digests (NULL) match any content.
      dup: p(`SELECT id, ack_code, ack_reply FROM messages WHERE control_id = ? AND sending_app = ? AND sending_facility = ?
              AND content_hash = ? AND received_at >= ? AND ack_code IN ${ACCEPTED} ORDER BY id DESC LIMIT 1`),
      dupLegacy: p(`SELECT id, ack_code, ack_reply FROM messages WHERE control_id = ? AND sending_app = ? AND sending_facility = ?
                    AND content_hash IS NULL AND received_at >= ? AND ack_code IN ${ACCEPTED} ORDER BY id DESC LIMIT 1`),
      // Any accepted message with this sender and MSH-10 (whatever its content).
      dupAny: p(`SELECT id, ack_code, ack_reply FROM messages WHERE control_id = ? AND sending_app = ? AND sending_facility = ?
                 AND received_at >= ? AND ack_code IN ${ACCEPTED} ORDER BY id DESC LIMIT 1`),
      // dedupe_slot 0 (the newest message of its MSH-10 and sender) is UNIQUE: a conflict means "seen before", checked in full then.
      insertMessage: p(`INSERT INTO messages (received_at, source, sending_app, sending_facility, type, control_id, patient_id, charset, raw_bytes, ack_code, status, ack_reply,
                        content_hash, message_key, control_id_reused, flags, format, dedupe_slot)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`),
      releaseSlot: p('UPDATE messages SET dedupe_slot = NULL WHERE control_id = ? AND sending_app = ? AND sending_facility = ? AND dedupe_slot = 0'),
      insertBody: p('INSERT INTO message_bodies (message_id, raw, upload) VALUES (?, ?, ?)'),
      dropUpload: p('DELETE FROM body_parts WHERE upload = ?'),
      insertDelivery: p(`INSERT INTO deliveries (message_id, route, step, plugin, ordering_key, state, head, attempts, max_attempts, retry_initial_ms,
                         retry_max_delay_ms, next_attempt_at, last_error_code, last_error, vars, output, as_name, created_at, updated_at, solo)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      // A new head: nothing is inserted when its ordering key has one already (deliveries_head is UNIQUE), and it then waits behind it.
      insertHead: p(`INSERT INTO deliveries (message_id, route, step, plugin, ordering_key, state, head, attempts, max_attempts, retry_initial_ms,
                     retry_max_delay_ms, next_attempt_at, vars, as_name, created_at, updated_at, solo)
                     VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`),
      markWaiters: p('UPDATE deliveries SET waiters = 1 WHERE ordering_key = ? AND head = 1 AND waiters = 0'),
      insertAttempt: p('INSERT INTO attempts (delivery_id, at, attempt, outcome, error_code, reason, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      headOf: p('SELECT id, state FROM deliveries WHERE ordering_key = ? AND head = 1'),
      firstOpen: p(`SELECT id FROM deliveries WHERE ordering_key = ? AND state IN ${OPEN_STATES} ORDER BY id LIMIT 1`),
      setHead: p('UPDATE deliveries SET head = ? WHERE id = ?'),
      // A new head is marked as having waiters: a conservative hint (complete() then looks, and finds none at worst).
      promote: p('UPDATE deliveries SET head = 1, waiters = 1 WHERE id = ?'),
      get: p(`SELECT id, message_id, route, step, plugin, ordering_key, state, attempts, max_attempts, retry_initial_ms, retry_max_delay_ms, as_name, waiters, solo
              FROM deliveries WHERE id = ?`),
      // One statement: the state check, the change and what complete() needs next.
      done: p(`UPDATE deliveries SET state = 'done', head = 0, output = ?, updated_at = ? WHERE id = ? AND state = 'in-flight'
               RETURNING message_id, route, step, plugin, ordering_key, attempts, as_name, waiters, solo`),
      retry: p(`UPDATE deliveries SET state = 'retrying', next_attempt_at = ?, last_error_code = ?, last_error = ?, updated_at = ? WHERE id = ?`),
      dead: p(`UPDATE deliveries SET state = 'dead', head = 0, last_error_code = ?, last_error = ?, updated_at = ? WHERE id = ?`),
      laterSiblings: p(`SELECT id, vars FROM deliveries WHERE message_id = ? AND route = ? AND step > ? AND state IN ${OPEN_STATES}`),
      setVars: p('UPDATE deliveries SET vars = ? WHERE id = ?'),
      varsOf: p('SELECT vars FROM deliveries WHERE id = ?').pluck(),
      // INDEXED BY: without ANALYZE statistics SQLite prefers deliveries_state and scans every open row.
      due: p(`SELECT d.id, d.message_id, d.route, d.step, d.plugin, d.ordering_key, d.attempts, d.vars,
                     m.raw_bytes, m.charset, m.source, m.control_id, m.type, m.message_key, m.format
              FROM deliveries d INDEXED BY deliveries_due JOIN messages m ON m.id = d.message_id
              WHERE d.head = 1 AND d.state IN ('pending','retrying') AND d.next_attempt_at <= ?
                AND d.plugin NOT IN (SELECT value FROM json_each(?))
              ORDER BY d.next_attempt_at LIMIT ?`),
      // The same without the plugin filter: the common case, and json_each costs a third of the query.
      dueAny: p(`SELECT d.id, d.message_id, d.route, d.step, d.plugin, d.ordering_key, d.attempts, d.vars,
                        m.raw_bytes, m.charset, m.source, m.control_id, m.type, m.message_key, m.format
                 FROM deliveries d INDEXED BY deliveries_due JOIN messages m ON m.id = d.message_id
                 WHERE d.head = 1 AND d.state IN ('pending','retrying') AND d.next_attempt_at <= ?
                 ORDER BY d.next_attempt_at LIMIT ?`),
      // Issue 18 (paused routes): the routes that have deliveries waiting, by a loose scan of deliveries_route_due
      // (one index seek per route, however many deliveries a paused route holds), and one route's due deliveries.
      dueRoutes: p(`WITH RECURSIVE r(route) AS (
                      SELECT min(route) FROM deliveries INDEXED BY deliveries_route_due WHERE head = 1 AND state IN ('pending','retrying')
                      UNION ALL
                      SELECT (SELECT min(route) FROM deliveries INDEXED BY deliveries_route_due
                              WHERE head = 1 AND state IN ('pending','retrying') AND route > r.route) FROM r WHERE r.route IS NOT NULL)
                    SELECT route FROM r WHERE route IS NOT NULL`).pluck(),
      dueOfRoute: p(`SELECT d.id, d.message_id, d.route, d.step, d.plugin, d.ordering_key, d.attempts, d.vars, d.next_attempt_at,
                            m.raw_bytes, m.charset, m.source, m.control_id, m.type, m.message_key, m.format
                     FROM deliveries d INDEXED BY deliveries_route_due JOIN messages m ON m.id = d.message_id
                     WHERE d.route = ? AND d.head = 1 AND d.state IN ('pending','retrying') AND d.next_attempt_at <= ?
                       AND d.plugin NOT IN (SELECT value FROM json_each(?))
                     ORDER BY d.next_attempt_at LIMIT ?`),
      claim: p(`UPDATE deliveries SET state = 'in-flight', attempts = attempts + 1, updated_at = ? WHERE id = ?`),
      release: p(`UPDATE deliveries SET state = 'pending', attempts = max(attempts - 1, 0), next_attempt_at = ?, updated_at = ?
                  WHERE id = ? AND state = 'in-flight'`),
      // The IN term lets SQLite use the partial index deliveries_key (open deliveries only).
      inFlight: p(`SELECT id, attempts FROM deliveries WHERE state IN ${OPEN_STATES} AND state = 'in-flight'`),
      requeue: p(`UPDATE deliveries SET state = 'pending', head = 0, attempts = 0, next_attempt_at = ?, updated_at = ? WHERE id = ? AND state = 'dead'`),
      // Replay of stored messages: settled (done or dead) deliveries only; open ones are still running.
      requeueSettled: p(`UPDATE deliveries SET state = 'pending', head = 0, attempts = 0, next_attempt_at = ?, updated_at = ?
                         WHERE id = ? AND state IN ('done','dead')`),
      messageForReplay: p(`SELECT id, control_id, patient_id, NOT EXISTS (SELECT 1 FROM message_bodies b WHERE b.message_id = messages.id) AS purged
                           FROM messages WHERE id = ?`),
      deliveriesOf: p('SELECT id, ordering_key, state FROM deliveries WHERE message_id = ? AND (? IS NULL OR route = ?) ORDER BY id'),
      existing: p('SELECT value AS id FROM json_each(?) WHERE value IN (SELECT id FROM messages)'),
      receivedSince: p(`SELECT DISTINCT m.id FROM messages m JOIN deliveries d ON d.message_id = m.id
                        WHERE m.received_at >= ? AND (? IS NULL OR d.route = ?) ORDER BY m.id`),
      deadIds: p(`SELECT id, message_id, ordering_key FROM deliveries WHERE state = 'dead' AND (? IS NULL OR route = ?) ORDER BY id`),
      counts: p(`SELECT sum(state IN ${OPEN_STATES}) AS open, sum(state = 'dead') AS dead, m.ack_code AS ack
                 FROM messages m LEFT JOIN deliveries d ON d.message_id = m.id WHERE m.id = ?`),
      setStatus: p('UPDATE messages SET status = ? WHERE id = ? AND status != ?'),
      // Status of messages whose only delivery settled, in one statement per group commit (see endBatch).
      soloDone: p(`UPDATE messages SET status = CASE WHEN ack_code IN ${ACCEPTED} THEN 'done' ELSE 'rejected' END WHERE id IN (SELECT value FROM json_each(?))`),
      soloDead: p(`UPDATE messages SET status = 'dead' WHERE id IN (SELECT value FROM json_each(?))`),
    };
  }

  /**
   * Idempotency key given to plugins for one delivery: a hash of (message key,
   * route, step), so it is the same on every retry and replay of the delivery,
   * on another instance and after a restart (see identity.ts). A delivery of a
   * message stored before message keys existed keeps its old key
   * (`<store instance>-<delivery id>`).
   */
  idempotencyKey(deliveryId: number, msgKey: string | null, route: string, step: number): string {
    return msgKey ? idempotencyKeyOf(msgKey, route, step) : `${this.#instance}-${deliveryId}`;
  }

  /**
   * The newest accepted message with this sender and MSH-10 inside the window
   * whose content is the same (`contentHash`; a row stored before content
   * digests counts as the same). Without `contentHash`, any content.
   */
  findDuplicate(app: string, facility: string, controlId: string, since: number, contentHash?: string): DuplicateRow | undefined {
    if (!controlId) return undefined;
    if (contentHash === undefined) return this.#s.dupAny.get(controlId, app, facility, since) as DuplicateRow | undefined;
    const hit = this.#s.dup.get(controlId, app, facility, contentHash, since) as DuplicateRow | undefined;
    return hit ?? (this.#legacyRows ? (this.#s.dupLegacy.get(controlId, app, facility, since) as DuplicateRow | undefined) : undefined);
  }

  /**
   * `upload`: the body was written beforehand in parts under this upload id
   * (Store.accept, big bodies); the message's body row names it. A duplicate
   * drops the parts in the same transaction.
   */
  accept(msg: NewMessage, deliveries: NewDeliveryWithOutcome[], windowMs: number, now: number, upload?: number, admit?: Admit): Changed<AcceptResult> & { claimed?: ClaimRecord[] } {
    const contentHash = msg.contentHash ?? createHash('sha256').update(msg.raw).digest('hex');
    const since = msg.receivedAt - windowMs;
    const msgKey = msg.messageKey ?? messageKey(msg.sendingApp, msg.sendingFacility, msg.controlId, contentHash);
    const open = deliveries.filter((d) => !d.final).length;
    const dead = deliveries.some((d) => d.final?.state === 'dead');
    const accepted = msg.ackCode === 'AA' || msg.ackCode === 'CA';
    const status = open > 0 ? 'queued' : dead ? 'dead' : accepted ? 'done' : 'rejected';
    const reply = msg.ackReply && (msg.ackReply.text !== undefined || msg.ackReply.segments?.length || msg.ackReply.error) ? JSON.stringify(msg.ackReply) : null;
    const insert = (reused: boolean) => this.#s.insertMessage.get(
      msg.receivedAt, msg.source, msg.sendingApp, msg.sendingFacility, msg.type, msg.controlId, msg.patientId ?? null,
      msg.charset, msg.raw.length, msg.ackCode, status, reply, contentHash, msgKey, reused ? 1 : 0,
      msg.flags?.length ? msg.flags.join(',') : null, msg.format === 'json' ? 'json' : 'hl7',
      // An empty MSH-10 is never a duplicate (findDuplicate): such messages take no slot.
      msg.controlId ? 0 : null,
    ) as { id: number } | undefined;
    let row = insert(false);
    let reusedOf: DuplicateRow | undefined;
    if (!row) {
      // The slot is taken: this sender and MSH-10 were stored before. Only now the full check (window, content, ACK code).
      // Seen inside the transaction, so a duplicate earlier in the same batch counts too.
      const dup = this.findDuplicate(msg.sendingApp, msg.sendingFacility, msg.controlId, since, contentHash);
      if (dup && upload !== undefined) this.#s.dropUpload.run(upload);
      if (dup) return { value: { messageId: dup.id, duplicate: true, ackCode: dup.ack_code, ...parseReply(dup.ack_reply) }, delta: 0 };
      // The same sender and MSH-10 were accepted with other content: a new message (a reset counter), stored and marked.
      reusedOf = this.findDuplicate(msg.sendingApp, msg.sendingFacility, msg.controlId, since);
      this.#s.releaseSlot.run(msg.controlId, msg.sendingApp, msg.sendingFacility);
      row = insert(reusedOf !== undefined);
      if (!row) throw new Error('message slot still taken after release');
    }
    const messageId = row.id;
    // Written with the batch's other bodies at its end (one multi-row INSERT: issue 15's statement budget).
    this.#bodies.push(upload !== undefined ? [messageId, null, upload] : [messageId, msg.raw, null]);
    const solo = deliveries.length === 1 ? 1 : 0;
    let claimed: ClaimRecord[] | undefined;
    for (const d of deliveries) {
      const key = d.orderingKey || `${d.route}:${messageId}`;
      const f = d.final;
      if (f) {
        const id = Number(this.#s.insertDelivery.run(
          messageId, d.route, d.step, d.plugin, key, f.state, 0, 1, d.retry.max, d.retry.initialMs,
          d.retry.maxDelayMs, now, f.errorCode ?? null, f.reason === undefined ? null : scrubText(f.reason), json(d.vars),
          f.output === undefined ? null : json(f.output), d.as ?? null, now, now, solo,
        ).lastInsertRowid);
        this.#s.insertAttempt.run(id, now, 1, f.state === 'done' ? 'ok' : 'dead', f.errorCode ?? null, f.reason === undefined ? null : scrubText(f.reason), null);
        if (f.state === 'dead') this.#failing.add(d.plugin);
        continue;
      }
      // Started at once (in flight, attempt 1) when the worker has room; else pending, for the next claim.
      const start = admit?.take(d.plugin, d.route) === true;
      const vars = json(d.vars);
      const head = this.#s.insertHead.get(
        messageId, d.route, d.step, d.plugin, key, start ? 'in-flight' : 'pending', start ? 1 : 0, d.retry.max, d.retry.initialMs,
        d.retry.maxDelayMs, now, vars, d.as ?? null, now, now, solo,
      ) as { id: number } | undefined;
      if (head && start) {
        (claimed ??= []).push({
          id: head.id, messageId, route: d.route, step: d.step, plugin: d.plugin, orderingKey: key, attempt: 1,
          idempotencyKey: this.idempotencyKey(head.id, msgKey, d.route, d.step), vars: d.vars,
          message: {
            rawBytes: msg.raw.length, charset: msg.charset, source: msg.source, controlId: msg.controlId, type: msg.type,
            format: msg.format === 'json' ? 'json' : 'hl7', ...(msg.prepared !== undefined ? { prepared: msg.prepared } : {}),
          },
        });
        continue;
      }
      if (start) admit!.giveBack(d.plugin);
      if (head) {
        this.due++;
        continue;
      }
      // Its key has a head already: it waits behind it, and the head is told so.
      this.#s.insertDelivery.run(
        messageId, d.route, d.step, d.plugin, key, 'pending', 0, 0, d.retry.max, d.retry.initialMs,
        d.retry.maxDelayMs, now, null, null, vars, null, d.as ?? null, now, now, solo,
      );
      this.#s.markWaiters.run(key);
    }
    return {
      value: { messageId, duplicate: false, ackCode: msg.ackCode, ...(reusedOf ? { controlIdReusedOf: reusedOf.id } : {}) },
      delta: open,
      ...(claimed ? { claimed } : {}),
    };
  }

  /**
   * `take`, when given, is asked for each due row in order and a row it
   * refuses is left pending, not claimed: the worker's per-plugin room, so a
   * claim never takes more of a plugin than it can start (claiming then
   * releasing the rest cost two writes per delivery under load).
   */
  claim(now: number, limit: number, skipPlugins: readonly string[], skipRoutes: readonly string[] = [], take?: (plugin: string, route: string) => boolean): ClaimRecord[] {
    // skipRoutes: routes an operator paused (issue 18); their deliveries stay pending until resumed.
    if (skipRoutes.length) return this.#claimRows(now, this.#dueSkipping(now, limit, skipPlugins, skipRoutes), take);
    const rows = (skipPlugins.length ? this.#s.due.all(now, JSON.stringify(skipPlugins), limit) : this.#s.dueAny.all(now, limit)) as ClaimRow[];
    const claimed = this.#claimRows(now, rows, take);
    // Fewer than asked for, with no plugin left out: nothing else is due now but the rows `take` refused.
    if (rows.length < limit && !skipPlugins.length) this.due = rows.length - claimed.length;
    return claimed;
  }

  #claimRows(now: number, due: ClaimRow[], take?: (plugin: string, route: string) => boolean): ClaimRecord[] {
    const rows = take ? due.filter((r) => take(r.plugin, r.route)) : due;
    return rows.map((r) => {
      this.#s.claim.run(now, r.id);
      return {
        id: r.id, messageId: r.message_id, route: r.route, step: r.step, plugin: r.plugin, orderingKey: r.ordering_key,
        attempt: r.attempts + 1, idempotencyKey: this.idempotencyKey(r.id, r.message_key, r.route, r.step), vars: JSON.parse(r.vars) as Record<string, unknown>,
        message: { rawBytes: r.raw_bytes, charset: r.charset, source: r.source, controlId: r.control_id, type: r.type, format: r.format === 'json' ? 'json' : 'hl7' },
      };
    });
  }

  /**
   * Due deliveries of every route but `skipRoutes`, earliest first. One
   * query per route with waiting deliveries, each reading at most `limit`
   * rows from deliveries_route_due, so the deliveries a paused route holds
   * are never scanned (a NOT IN filter on deliveries_due would walk past all
   * of them at every claim).
   */
  #dueSkipping(now: number, limit: number, skipPlugins: readonly string[], skipRoutes: readonly string[]): ClaimRow[] {
    const skip = new Set(skipRoutes);
    const plugins = JSON.stringify(skipPlugins);
    const rows: (ClaimRow & { next_attempt_at: number })[] = [];
    for (const route of this.#s.dueRoutes.all() as string[]) {
      if (!skip.has(route)) rows.push(...(this.#s.dueOfRoute.all(route, now, plugins, limit) as (ClaimRow & { next_attempt_at: number })[]));
    }
    return rows.sort((a, b) => a.next_attempt_at - b.next_attempt_at).slice(0, limit);
  }

  complete(id: number, result: StepResult, latencyMs: number | undefined, now: number): Changed<boolean> {
    const d = this.#s.done.get(result.output === undefined ? null : json(result.output), now, id) as DoneRow | undefined;
    // Released (shutdown) or already settled: the late answer must not overwrite the newer state.
    if (!d) return { value: false, delta: 0 };
    // A plain success leaves no attempt row (the delivery row says done); one is written for a skip, and for the first
    // success of a plugin after a failure, which ends its failure streak for the alerts (core/alerts/evaluator.ts).
    if (result.outcome !== 'ok' || this.#failing.has(d.plugin)) {
      this.#s.insertAttempt.run(id, now, d.attempts, result.outcome, null, result.detail === undefined ? null : scrubText(result.detail), latencyMs ?? null);
      this.#failing.delete(d.plugin);
    }
    // An hl7 step that ran in this delivery: its rewritten message is kept in the delivery's variables (the console shows it).
    const rewritten = rewrittenInDelivery.get(result);
    if (rewritten !== undefined) {
      const vars = JSON.parse(this.#s.varsOf.get(id) as string) as Record<string, unknown>;
      vars[REWRITTEN_HL7_VAR] = rewritten;
      this.#s.setVars.run(JSON.stringify(vars), id);
    }
    if (d.as_name && result.output !== undefined && !d.solo) {
      for (const s of this.#s.laterSiblings.all(d.message_id, d.route, d.step) as { id: number; vars: string }[]) {
        const vars = JSON.parse(s.vars) as Record<string, unknown>;
        vars[d.as_name] = result.output;
        this.#s.setVars.run(JSON.stringify(vars), s.id);
      }
    }
    if (d.waiters) this.#nextHead(d.ordering_key);
    if (d.solo) this.#soloDone.push(d.message_id);
    else this.refreshStatus(d.message_id);
    return { value: true, delta: -1 };
  }

  fail(id: number, err: FailInput, latencyMs: number | undefined, now: number): Changed<'retrying' | 'dead' | 'ignored'> {
    const d = this.#s.get.get(id) as DeliveryRow | undefined;
    if (!d || d.state !== 'in-flight') return { value: 'ignored', delta: 0 };
    this.#failing.add(d.plugin);
    const reason = scrubText(err.reason).slice(0, 1000);
    const exhausted = err.retryable && d.attempts >= d.max_attempts;
    if (!err.retryable || exhausted) {
      const why = exhausted ? `gave up after ${d.attempts} attempts: ${reason}` : reason;
      this.#s.dead.run(err.code, why, now, id);
      this.#s.insertAttempt.run(id, now, d.attempts, 'dead', err.code, reason, latencyMs ?? null);
      if (d.waiters) this.#nextHead(d.ordering_key);
      if (d.solo) this.#soloDead.push(d.message_id);
      else this.refreshStatus(d.message_id);
      return { value: 'dead', delta: -1 };
    }
    const policy = { max: d.max_attempts, initialMs: d.retry_initial_ms, maxDelayMs: d.retry_max_delay_ms };
    // Still the head of its key: later deliveries of the key wait for this one's retries.
    this.#s.retry.run(now + retryDelayMs(policy, d.attempts, err.retryAfterMs), err.code, reason, now, id);
    this.#s.insertAttempt.run(id, now, d.attempts, 'retry', err.code, reason, latencyMs ?? null);
    return { value: 'retrying', delta: 0 };
  }

  /** In-flight back to pending, due now; the interrupted attempt is not counted. */
  release(ids: readonly number[] | 'all', now: number, record = true): number {
    const targets = ids === 'all' ? (this.#s.inFlight.all() as { id: number }[]).map((r) => r.id) : ids;
    let n = 0;
    for (const id of targets) {
      const d = this.#s.get.get(id) as DeliveryRow | undefined;
      if (!d || d.state !== 'in-flight') continue;
      this.#s.release.run(now, now, id);
      this.due++;
      if (record) this.#s.insertAttempt.run(id, now, d.attempts, 'released', null, 'interrupted by shutdown or crash', null);
      n++;
    }
    return n;
  }

  requeue(f: RequeueFilter, now: number): Changed<number> {
    const route = f.route ?? null;
    let rows = this.#s.deadIds.all(route, route) as { id: number; message_id: number; ordering_key: string }[];
    if (f.ids) {
      const want = new Set(f.ids);
      rows = rows.filter((r) => want.has(r.id));
    } else if (!f.all && !f.route) rows = [];
    for (const r of rows) {
      this.#s.requeue.run(now, now, r.id);
      this.#rejoin(r.id, r.ordering_key);
      this.refreshStatus(r.message_id);
    }
    return { value: rows.length, delta: rows.length };
  }

  /** Of these message ids, the ones not in the store. */
  missingMessages(ids: readonly number[]): number[] {
    const found = new Set((this.#s.existing.all(JSON.stringify(ids)) as { id: number }[]).map((r) => r.id));
    return ids.filter((id) => !found.has(id));
  }

  /** Ids of messages received at or after `since` that have deliveries (of `route`, when given), oldest first. */
  messagesSince(since: number, route: string | undefined): number[] {
    const r = route ?? null;
    return (this.#s.receivedSince.all(since, r, r) as { id: number }[]).map((x) => x.id);
  }

  /**
   * Replay of stored messages: their done and dead deliveries (of `route`,
   * when given) go back to pending with attempts reset. Each keeps its id, and
   * so its ordering key, its place in the key's order and its idempotency
   * key. Open deliveries are left alone (they have not finished yet), and so
   * is a message whose body retention already removed (nothing to send).
   */
  replay(messageIds: readonly number[], route: string | undefined, now: number): Changed<ReplayedRow[]> {
    const r = route ?? null;
    const out: ReplayedRow[] = [];
    let delta = 0;
    for (const messageId of messageIds) {
      const m = this.#s.messageForReplay.get(messageId) as { id: number; control_id: string; patient_id: string | null; purged: number } | undefined;
      if (!m) continue;
      const rows = this.#s.deliveriesOf.all(messageId, r, r) as { id: number; ordering_key: string; state: string }[];
      const row: ReplayedRow = { messageId, controlId: m.control_id, requeued: 0, stillOpen: 0, purged: m.purged === 1 };
      if (m.patient_id !== null) row.patientId = m.patient_id;
      for (const d of rows) {
        if (d.state !== 'done' && d.state !== 'dead') row.stillOpen++;
        else if (!row.purged) {
          this.#s.requeueSettled.run(now, now, d.id);
          this.#rejoin(d.id, d.ordering_key);
          row.requeued++;
        }
      }
      if (row.requeued) this.refreshStatus(messageId);
      delta += row.requeued;
      out.push(row);
    }
    return { value: out, delta };
  }

  /**
   * A delivery that re-opened (replay) takes its place in its key by id: it
   * becomes head when the key has none, or when it is older than a head that
   * is not running. A running head keeps the flag until it finishes; then
   * #nextHead picks the lowest open id, which is this one.
   */
  #rejoin(id: number, key: string): void {
    const head = this.#s.headOf.get(key) as { id: number; state: string } | undefined;
    this.due++;
    if (!head) this.#s.promote.run(id);
    else if (head.state !== 'in-flight' && id < head.id) {
      this.#s.setHead.run(0, head.id);
      this.#s.promote.run(id);
    } else this.#s.markWaiters.run(key);
  }

  #nextHead(key: string): void {
    const first = this.#s.firstOpen.get(key) as { id: number } | undefined;
    if (!first) return;
    this.#s.promote.run(first.id);
    this.due++;
  }

  /**
   * Writes what the operations of one transaction left for its end: the
   * status of messages whose only delivery settled, one UPDATE for all.
   */
  endBatch(): void {
    const bodies = this.#bodies;
    this.#bodies = [];
    for (let i = 0; i < bodies.length; i += BODY_CHUNK) {
      const chunk = bodies.length - i > BODY_CHUNK ? bodies.slice(i, i + BODY_CHUNK) : i === 0 ? bodies : bodies.slice(i);
      let stmt = this.#bodyInserts.get(chunk.length);
      if (!stmt) {
        stmt = chunk.length === 1 ? this.#s.insertBody : this.#db.prepare(`INSERT INTO message_bodies (message_id, raw, upload) VALUES ${Array(chunk.length).fill('(?, ?, ?)').join(', ')}`);
        this.#bodyInserts.set(chunk.length, stmt);
      }
      stmt.run(...chunk.flat());
    }
    if (this.#soloDone.length) this.#s.soloDone.run(JSON.stringify(this.#soloDone));
    if (this.#soloDead.length) this.#s.soloDead.run(JSON.stringify(this.#soloDead));
    this.#soloDone = [];
    this.#soloDead = [];
  }

  /** Forgets what endBatch would write: the transaction was rolled back. */
  abortBatch(): void {
    this.#bodies = [];
    this.#soloDone = [];
    this.#soloDead = [];
  }

  refreshStatus(messageId: number): void {
    const c = this.#s.counts.get(messageId) as { open: number | null; dead: number | null; ack: string | null };
    if (c.ack === null) return;
    const status = (c.open ?? 0) > 0 ? 'queued' : (c.dead ?? 0) > 0 ? 'dead' : c.ack === 'AA' || c.ack === 'CA' ? 'done' : 'rejected';
    this.#s.setStatus.run(status, messageId, status);
  }
}

/** The stored reply of an ACK, as the optional `ackReply` field. */
export function parseReply(json: string | null): { ackReply?: AckReply } {
  if (!json) return {};
  try {
    return { ackReply: JSON.parse(json) as AckReply };
  } catch {
    return {};
  }
}
