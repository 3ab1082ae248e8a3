/**
 * Contract between the engine and the durable store + delivery workers.
 * The engine hands over a received message and its deliveries; the store
 * commits them (group commit) and the workers run the deliveries through the
 * `DeliveryRunner` the engine provides.
 */
import type { AuditEntry, StepResult } from '../sdk.js';

export type DeliveryState = 'pending' | 'in-flight' | 'done' | 'failed' | 'dead';

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
  /** The stored message (raw + charset) so the runner can parse it. */
  message: { raw: Buffer; charset: string; source: string; controlId: string; type: string };
  signal: AbortSignal;
}

/** Runs one delivery; throw a HisbridgeError to fail it (its `retryable` and `retryAfterMs` drive the policy). */
export type DeliveryRunner = (job: DeliveryJob) => Promise<StepResult>;

export interface DuplicateHit {
  messageId: number;
  ackCode: string;
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
