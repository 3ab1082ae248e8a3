/**
 * Runs one stored delivery: re-parses the stored message (same bytes, same
 * charset), finds the route and the outbound step, and runs that step's
 * segment of the route with the variables captured at receive time.
 */
import { decodeHl7, parseHl7 } from '../hl7/index.js';
import { hbError } from '../errors.js';
import { yieldIfBig } from '../cooperative.js';
import { deliverySegment, runSegment } from '../routes/run.js';
import type { RouteTable } from '../routes/matcher.js';
import type { Logger, StepInput, StepResult } from '../sdk.js';
import type { DeliveryJob } from '../store/types.js';

export function createDeliveryRunner(routes: () => RouteTable, log: Logger) {
  return async function runDelivery(job: DeliveryJob): Promise<StepResult> {
    const route = routes().get(job.route);
    if (!route) throw hbError('ENGINE_E_STEP_FAILED', { step: `${job.route}#${job.step}`, detail: 'route is no longer loaded' }, { retryable: false });
    const pos = route.steps.findIndex((s) => s.index === job.step);
    const step = route.steps[pos];
    if (!step || step.kind !== 'plugin' || step.plugin !== job.plugin) {
      throw hbError('ENGINE_E_STEP_FAILED', { step: `${job.route}#${job.step}`, detail: 'the route changed: this step is no longer the same plugin' }, { retryable: false });
    }
    const { text } = decodeHl7(job.message.raw, job.message.charset);
    // A big message gives other work a turn between decoding, parsing and its steps (issue 11).
    await yieldIfBig(job.message.raw.length);
    const hl7 = parseHl7(text);
    await yieldIfBig(job.message.raw.length);
    const input: StepInput = {
      messageId: String(job.messageId),
      controlId: job.message.controlId,
      type: job.message.type,
      source: job.message.source,
      hl7,
      vars: { ...job.vars },
    };
    const [from, to] = deliverySegment(route, pos);
    const seg = await runSegment(route, input, from, to, {
      log: log.child({ route: route.name, msgId: job.message.controlId, delivery: job.id }),
      signal: job.signal,
      attempt: job.attempt,
      idempotencyKey: () => job.idempotencyKey,
    });
    const own = seg.byStep[job.step];
    if (own) return own;
    return { outcome: 'skipped', detail: seg.stopped?.detail ?? 'not run' };
  };
}
