/**
 * The route plan: how a route's steps split between ingest (before the ACK)
 * and durable deliveries (after it). Compiled once when the route loads and
 * kept on the route (`route.plan`); ingest (core/engine/ingest.ts) and the
 * delivery runner (core/engine/deliver.ts) both read it, so neither works
 * the split out again.
 *
 * On-receive route:
 * - `inline`: the steps before the first outbound step, run at ingest (filters
 *   may only stand here: the loader refuses a filter after an outbound step);
 * - `deliveries`: one per outbound step, stored with the message and run by
 *   the delivery worker with the variables captured at ingest. The first
 *   runs its outbound step alone; each later one runs the steps after the
 *   previous outbound step up to and including its own (`set:`, local
 *   plugins); the last one also runs the local steps after it. The output of
 *   an outbound step with `as:` reaches later deliveries of the same message
 *   through the store (core/store/ledger.ts), not through the plan.
 *
 * A transform step (the map step, `PluginDefinition.transform`) before the
 * first outbound step of an on-receive route moves the end of `inline` to
 * it: it and the steps up to the first outbound step run in the first
 * delivery (its `run` starts there) and again, as `prefix`, before the
 * `run` of each later delivery, so every delivery has their variables and
 * a failure among them dead-letters the delivery instead of failing the ACK.
 *
 * On-complete route:
 * - `inline`: every step, run at ingest;
 * - `recorded`: its outbound steps, stored as finished deliveries (done or
 *   dead) so the message browser shows what was called.
 *
 * `segments` says what a stored delivery of a plugin step runs, for any
 * plugin step of either kind of route: the queued deliveries of on-receive
 * routes, and dead letters of on-complete routes replayed from the dead
 * letter store. An outbound step gets the same segment as it would in an
 * on-receive route; any other plugin step runs alone.
 */
import type { CompiledStep, PluginStep } from './types.js';

/** Positions [from, to) in `route.steps`. */
export interface StepRange {
  from: number;
  to: number;
}

/** One delivery segment: the plugin step a stored delivery is for, and the steps it runs. */
export interface Segment {
  step: PluginStep;
  /** Position of `step` in `route.steps`. */
  position: number;
  run: StepRange;
  /** Run before `run`: the transform steps (and what follows them) before the first outbound step, for the deliveries after the first. */
  prefix?: StepRange;
}

export interface RoutePlan {
  ack: 'on-receive' | 'on-complete';
  /** Steps run at ingest, before the ACK. */
  inline: StepRange;
  /** On-receive: one durable delivery per outbound step, in file order. Empty for on-complete routes. */
  deliveries: readonly Segment[];
  /** On-complete: the outbound steps recorded as finished deliveries. Empty for on-receive routes. */
  recorded: readonly PluginStep[];
  /** The segment a stored delivery runs, by the step's index in the file (every plugin step has one). */
  segments: ReadonlyMap<number, Segment>;
}

/** Compiles the plan of a route's steps (in file order, as `CompiledRoute.steps`). Linear in the number of steps. */
export function compilePlan(ack: 'on-receive' | 'on-complete', steps: readonly CompiledStep[]): RoutePlan {
  const outbound: number[] = [];
  steps.forEach((s, pos) => {
    if (s.kind === 'plugin' && s.outbound) outbound.push(pos);
  });
  // On-receive: a transform step (map) before the first outbound step starts the part that runs with the deliveries.
  const firstOut = outbound.length ? outbound[0]! : -1;
  const firstTransform = ack === 'on-receive' && firstOut >= 0 ? steps.findIndex((s, pos) => pos < firstOut && s.kind === 'plugin' && s.transform === true) : -1;
  const prefix: StepRange | undefined = firstTransform >= 0 ? { from: firstTransform, to: firstOut } : undefined;
  const segments = new Map<number, Segment>();
  steps.forEach((s, pos) => {
    if (s.kind === 'plugin' && !s.outbound) segments.set(s.index, { step: s, position: pos, run: { from: pos, to: pos + 1 } });
  });
  outbound.forEach((pos, j) => {
    const step = steps[pos] as PluginStep;
    const from = j === 0 ? (prefix ? prefix.from : pos) : outbound[j - 1]! + 1;
    const to = j === outbound.length - 1 ? steps.length : pos + 1;
    segments.set(step.index, { step, position: pos, run: { from, to }, ...(j > 0 && prefix ? { prefix } : {}) });
  });
  if (ack === 'on-complete') {
    return { ack, inline: { from: 0, to: steps.length }, deliveries: [], recorded: outbound.map((pos) => steps[pos] as PluginStep), segments };
  }
  return {
    ack,
    inline: { from: 0, to: prefix ? prefix.from : outbound.length ? outbound[0]! : steps.length },
    deliveries: outbound.map((pos) => segments.get(steps[pos]!.index)!),
    recorded: [],
    segments,
  };
}
