/**
 * Executes a route's steps on one message. Used inline (on-complete routes,
 * the local prefix of on-receive routes) and by delivery workers (the segment
 * of an on-receive route ending at one outbound step).
 */
import type { CallContext, Logger, ReplyContribution, StepInput, StepResult } from '../sdk.js';
import type { CompiledRoute, CompiledStep } from './types.js';

export interface SegmentResult {
  /** Set when a filter failed or a step asked to stop the route. */
  stopped?: { by: string; detail: string };
  replies: ReplyContribution[];
  /** Result of the last plugin step run, if any. */
  last?: StepResult;
  /** Plugin results by step index (file order). */
  byStep: Record<number, StepResult>;
  /** Outcome per step label, PHI-free. */
  outcomes: { step: string; outcome: string; detail?: string }[];
}

export interface RunOptions {
  log: Logger;
  signal: AbortSignal;
  attempt: number;
  /** Builds the idempotency key of a plugin step (stable across retries). */
  idempotencyKey(step: CompiledStep): string;
}

/** Runs route.steps[from, to) in order; stops at a failed filter or a result with output.stop. Plugin errors propagate. */
export async function runSegment(route: CompiledRoute, input: StepInput, from: number, to: number, opts: RunOptions): Promise<SegmentResult> {
  const res: SegmentResult = { replies: [], outcomes: [], byStep: {} };
  for (let pos = from; pos < to && pos < route.steps.length; pos++) {
    const step = route.steps[pos]!;
    switch (step.kind) {
      case 'filter':
        if (!step.cond(input)) {
          res.stopped = { by: step.label, detail: 'filtered' };
          res.outcomes.push({ step: step.label, outcome: 'filtered' });
          return res;
        }
        break;
      case 'set':
        for (const [k, t] of step.entries) input.vars[k] = t.render(input);
        break;
      case 'plugin': {
        const call: CallContext = {
          route: route.name,
          step: step.index,
          idempotencyKey: opts.idempotencyKey(step),
          attempt: opts.attempt,
          signal: opts.signal,
          log: opts.log,
        };
        let r;
        try {
          r = await step.instance.process(input, call);
        } catch (e) {
          // Lets the caller record which step failed without parsing messages.
          if (e && typeof e === 'object') Object.assign(e, { failedStep: step.index });
          throw e;
        }
        res.last = r;
        res.byStep[step.index] = r;
        res.outcomes.push({ step: step.label, outcome: r.outcome, ...(r.detail ? { detail: r.detail } : {}) });
        if (step.as && r.output) input.vars[step.as] = r.output;
        if (r.reply) res.replies.push(r.reply);
        if (r.output && (r.output as { stop?: unknown }).stop === true) {
          res.stopped = { by: step.label, detail: r.detail ?? 'stopped' };
          return res;
        }
        break;
      }
    }
  }
  return res;
}

/** Positions (in route.steps) of outbound plugin steps. */
export function outboundPositions(route: CompiledRoute): number[] {
  const out: number[] = [];
  route.steps.forEach((s, i) => {
    if (s.kind === 'plugin' && s.outbound) out.push(i);
  });
  return out;
}

/**
 * The slice of steps a delivery for the outbound step at `pos` runs: from just
 * after the previous outbound step up to and including this one, plus the
 * trailing local steps when it is the last outbound step.
 */
export function deliverySegment(route: CompiledRoute, pos: number): [number, number] {
  const outs = outboundPositions(route);
  const j = outs.indexOf(pos);
  if (j < 0) return [pos, pos + 1];
  const from = j === 0 ? pos : outs[j - 1]! + 1;
  const to = j === outs.length - 1 ? route.steps.length : pos + 1;
  return [from, to];
}
