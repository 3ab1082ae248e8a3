/**
 * The audit-and-timing wrapper every outbound plugin call shares (re-exported
 * by core/sdk.ts): it times the call and writes exactly one audit row for it,
 * `ok` or `failed`, with the latency. Before it, each plugin (gd-ehr
 * authorize and viewer, kafka-publish, the recognition client and its token
 * client) wrote the same start-timer / audit-ok / audit-failed-and-rethrow
 * block by hand.
 */
import { toHisbridgeError, type HisbridgeError } from './errors.js';
import type { AuditEntry } from './sdk.js';

export interface AuditedCallDetail<T> {
  /** The row's `detail` when the call succeeded (PHI-free). Default: none. */
  ok?(value: T): string | undefined;
  /** The row's `detail` when the call failed (PHI-free). Default: the error code. */
  failed?(err: HisbridgeError): string;
}

/**
 * Runs `fn`, then appends one audit row: `entry` with `result: 'ok'` or
 * `'failed'` and `latencyMs` (whole milliseconds). A failure is rethrown as a
 * HisbridgeError (a plain Error becomes the retryable ENGINE_E_INTERNAL, as
 * the delivery worker would treat it anyway).
 */
export async function auditedCall<T>(
  audit: (entry: AuditEntry) => void,
  entry: Omit<AuditEntry, 'result' | 'latencyMs' | 'detail'>,
  fn: () => Promise<T>,
  detail: AuditedCallDetail<T> = {},
): Promise<T> {
  const started = performance.now();
  const row = (result: string, text: string | undefined): void =>
    audit({ ...entry, result, latencyMs: Math.round(performance.now() - started), ...(text ? { detail: text } : {}) });
  let value: T;
  try {
    value = await fn();
  } catch (e) {
    const err = toHisbridgeError(e);
    row('failed', detail.failed ? detail.failed(err) : err.code);
    throw err;
  }
  row('ok', detail.ok?.(value));
  return value;
}
