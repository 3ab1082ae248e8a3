/** Retry timing for failed deliveries. */
import type { RetryPolicy } from './types.js';

/**
 * Delay before attempt `attempts + 1`, with exponential back-off and full
 * jitter: uniform in [0, min(maxDelay, initial * 2^(attempts-1))]. Full jitter
 * spreads a burst of deliveries failing together (a provincial outage) so they
 * do not all retry in the same second. A remote `Retry-After` is a floor.
 */
export function retryDelayMs(policy: RetryPolicy, attempts: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const exp = policy.initialMs * 2 ** Math.max(0, Math.min(attempts - 1, 40));
  const cap = Math.max(0, Math.min(policy.maxDelayMs, exp));
  const jittered = Math.floor(random() * (cap + 1));
  return retryAfterMs !== undefined && retryAfterMs > jittered ? Math.ceil(retryAfterMs) : jittered;
}
