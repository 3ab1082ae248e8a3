/**
 * Final outcomes of one ingested message, shared by `hisbridge replay` and
 * `hisbridge test`. Ingest reports on-receive routes as `queued`; this waits
 * in the store until every delivery of the message is done or dead (or the
 * deadline passes) and folds the deliveries back into one outcome per route.
 */
import { scrubText } from '../../mask.js';
import type { IngestResult } from '../../engine/ingest.js';
import type { Store } from '../../store/sqlite.js';
import type { MessageDetail } from '../../store/types.js';

/** One delivery as `replay` prints it: no vars, no output (they may carry PHI). */
export interface DeliveryView {
  plugin: string;
  step: number;
  state: string;
  attempts: number;
  /** `CODE: reason` of the last failure (reason already PHI-free, scrubbed again). */
  error?: string;
}

/** `unfinished`: a delivery was neither done nor dead when the deadline passed. */
export type FinalOutcome = 'ok' | 'failed' | 'filtered' | 'skipped' | 'unfinished';

export interface FinalRoute {
  route: string;
  outcome: FinalOutcome;
  detail?: string;
  errorCode?: string;
  deliveries: DeliveryView[];
}

type StoredDelivery = MessageDetail['deliveries'][number];

const FINAL = new Set(['done', 'dead']);
const POLL_MS = 15;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function view(d: StoredDelivery): DeliveryView {
  const v: DeliveryView = { plugin: d.plugin, step: d.step, state: d.state, attempts: d.attempts };
  if (d.lastErrorCode || d.lastError) v.error = scrubText([d.lastErrorCode, d.lastError].filter(Boolean).join(': '));
  return v;
}

/** Waits until every delivery of the stored message is final; returns them (possibly unfinished at the deadline). */
export async function waitForDeliveries(store: Store, messageId: number, timeoutMs: number): Promise<StoredDelivery[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const detail = store.getMessage(messageId);
    const deliveries = detail?.deliveries ?? [];
    if (deliveries.every((d) => FINAL.has(d.state)) || Date.now() >= deadline) return deliveries;
    await sleep(POLL_MS);
  }
}

/** Folds the stored deliveries of one route into its final outcome. */
export function foldRoute(ingested: IngestResult['routes'][number], deliveries: StoredDelivery[]): FinalRoute {
  const own = deliveries.filter((d) => d.route === ingested.route);
  const make = (outcome: FinalOutcome, detail?: string, errorCode?: string): FinalRoute => ({
    route: ingested.route,
    outcome,
    ...(detail ? { detail: scrubText(detail) } : {}),
    ...(errorCode ? { errorCode } : {}),
    deliveries: own.map(view),
  });
  if (ingested.outcome !== 'queued') return make(ingested.outcome, ingested.detail, ingested.errorCode);
  const dead = own.find((d) => d.state === 'dead');
  if (dead) return make('failed', dead.lastError, dead.lastErrorCode);
  if (own.some((d) => !FINAL.has(d.state))) return make('unfinished');
  // A plugin that deliberately did nothing (e.g. "no consent") answers skipped: its last attempt says so.
  const skipped = own.map((d) => d.attemptLog[d.attemptLog.length - 1]).find((a) => a?.outcome === 'skipped');
  if (skipped) return make('skipped', skipped.reason);
  return make('ok');
}

/** Waits for the message's deliveries and returns one final outcome per matched route. */
export async function settle(store: Store, result: IngestResult, timeoutMs: number): Promise<FinalRoute[]> {
  const deliveries = result.messageId === undefined ? [] : await waitForDeliveries(store, result.messageId, timeoutMs);
  return result.routes.map((r) => foldRoute(r, deliveries));
}

/** True when the ACK accepted the message (AA or CA). */
export function ackAccepted(code: string): boolean {
  return code === 'AA' || code === 'CA';
}
