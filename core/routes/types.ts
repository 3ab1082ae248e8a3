import type { Condition } from './condition.js';
import type { Template } from '../template.js';
import type { PluginDefinition, PluginInstance } from '../sdk.js';
import type { RetryPolicy } from '../store/types.js';
import type { RoutePlan } from './plan.js';

export type CompiledStep =
  | { kind: 'filter'; index: number; label: string; cond: Condition }
  | { kind: 'set'; index: number; label: string; entries: [string, Template][] }
  | {
      kind: 'plugin';
      index: number;
      label: string;
      plugin: string;
      def: PluginDefinition;
      instance: PluginInstance;
      /** Outbound steps become durable deliveries in on-receive routes. */
      outbound: boolean;
      /** A transform step (`PluginDefinition.transform`): runs with the deliveries in on-receive routes (core/routes/plan.ts). */
      transform?: boolean;
      as?: string;
    };

/** A plugin step (`plugin:`, `log:`, `reply:`). */
export type PluginStep = Extract<CompiledStep, { kind: 'plugin' }>;

export interface CompiledRoute {
  name: string;
  file: string;
  /** Listener/source names; undefined = every source. */
  sources?: Set<string>;
  /** Exact `ADT^A04` events. */
  events: Set<string>;
  /** Message codes matched with any trigger (`ADT^*`). */
  eventCodes: Set<string>;
  anyEvent: boolean;
  sender: { application?: string; facility?: string };
  when: Condition[];
  ack: 'on-receive' | 'on-complete';
  steps: CompiledStep[];
  /** How the steps split between ingest and delivery, compiled once at load (core/routes/plan.ts). */
  plan: RoutePlan;
  orderingKey?: Template;
  retry: RetryPolicy;
}
