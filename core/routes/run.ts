/**
 * Executes a range of a route's steps on one message. Which range is the
 * route plan's business (core/routes/plan.ts): the inline part at ingest, a
 * delivery segment in the delivery worker.
 */
import type { CallContext, Logger, ReplyContribution, StepInput, StepResult } from '../sdk.js';
import type { StepRange } from './plan.js';
import type { CompiledRoute, CompiledStep } from './types.js';

/** The step that failed and what it threw, as the runner saw it. */
export interface StepFailure {
  step: CompiledStep;
  /** What the step threw, unchanged (a HisbridgeError from a plugin, usually). */
  error: unknown;
}

export interface SegmentResult {
  /** Set when a filter failed or a step asked to stop the route. */
  stopped?: { by: string; detail: string };
  /** Set when a step threw: the steps after it were not run. */
  failed?: StepFailure;
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

/**
 * Runs route.steps[range.from, range.to) in order; stops at a failed filter or
 * a result with output.stop. A step that throws ends the run: the result
 * names it in `failed` (the runner never throws for a step).
 */
export async function runSegment(route: CompiledRoute, input: StepInput, range: StepRange, opts: RunOptions): Promise<SegmentResult> {
  const res: SegmentResult = { replies: [], outcomes: [], byStep: {} };
  for (let pos = range.from; pos < range.to && pos < route.steps.length; pos++) {
    const step = route.steps[pos]!;
    try {
      if (await runStep(route, step, input, opts, res)) return res;
    } catch (error) {
      res.failed = { step, error };
      return res;
    }
  }
  return res;
}

/** Runs one step into `res`; true when the route stops here. */
async function runStep(route: CompiledRoute, step: CompiledStep, input: StepInput, opts: RunOptions, res: SegmentResult): Promise<boolean> {
  switch (step.kind) {
    case 'filter':
      if (!step.cond(input)) {
        res.stopped = { by: step.label, detail: 'filtered' };
        res.outcomes.push({ step: step.label, outcome: 'filtered' });
        return true;
      }
      return false;
    case 'set':
      for (const [k, t] of step.entries) input.vars[k] = t.render(input);
      return false;
    case 'plugin': {
      const call: CallContext = {
        route: route.name,
        step: step.index,
        idempotencyKey: opts.idempotencyKey(step),
        attempt: opts.attempt,
        signal: opts.signal,
        log: opts.log,
      };
      const r = await step.instance.process(input, call);
      res.last = r;
      res.byStep[step.index] = r;
      res.outcomes.push({ step: step.label, outcome: r.outcome, ...(r.detail ? { detail: r.detail } : {}) });
      if (step.as && r.output) input.vars[step.as] = r.output;
      if (r.reply) res.replies.push(r.reply);
      if (r.output && (r.output as { stop?: unknown }).stop === true) {
        res.stopped = { by: step.label, detail: r.detail ?? 'stopped' };
        return true;
      }
      return false;
    }
  }
}
