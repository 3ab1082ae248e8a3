import type { Condition } from './condition.js';
import type { Template } from '../template.js';
import type { PluginDefinition, PluginInstance } from '../sdk.js';
import type { RetryPolicy } from '../store/types.js';

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
      as?: string;
    };

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
  /** Step index (in the file) of the first outbound plugin step, -1 when none. */
  firstOutbound: number;
  orderingKey?: Template;
  retry: RetryPolicy;
  deadLetter: boolean;
}
