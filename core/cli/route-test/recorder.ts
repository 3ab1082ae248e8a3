/**
 * Watches plugin calls for `hisbridge test` without a test hook in the SDK:
 * a registry for the run whose plugin definitions wrap every instance's
 * `process`. The plugin really runs (against the simulators); the wrapper
 * only copies what went in and what came out.
 */
import { isHisbridgeError } from '../../errors.js';
import { Registry } from '../../registry.js';
import type { PluginDefinition, PluginInstance } from '../../sdk.js';

/** One plugin call as a test file addresses it (`vars.x`, `output.y`, `outcome`...). */
export interface CallRecord {
  plugin: string;
  route: string;
  step: number;
  attempt: number;
  /** Variables as the step saw them. */
  vars: Record<string, unknown>;
  /** `ok` / `skipped` as returned, or `error` when the call threw. */
  outcome: string;
  detail?: string;
  output?: Record<string, unknown>;
  /** Error code when the call threw. */
  errorCode?: string;
}

function copy<T>(v: T): T {
  try {
    return structuredClone(v);
  } catch {
    return v;
  }
}

export class CallRecorder {
  readonly calls: CallRecord[] = [];

  clear(): void {
    this.calls.length = 0;
  }

  /** A registry with the same plugins and extensions as `base`, every plugin instance recorded here. */
  registry(base: Registry): Registry {
    const reg = new Registry();
    for (const ext of base.extensions) reg.extension(ext);
    for (const def of base.plugins) reg.plugin(this.#wrap(def));
    for (const src of base.sources) reg.source(src);
    return reg;
  }

  #wrap(def: PluginDefinition): PluginDefinition {
    const calls = this.calls;
    // Everything of the definition but `create` is kept as it is (its state namespace, its error family...).
    return {
      ...def,
      async create(ctx, config): Promise<PluginInstance> {
        const inner = await def.create(ctx, config);
        return {
          async process(input, call) {
            const rec: CallRecord = { plugin: def.name, route: call.route, step: call.step, attempt: call.attempt, vars: copy(input.vars), outcome: 'pending' };
            calls.push(rec);
            try {
              const r = await inner.process(input, call);
              rec.outcome = r.outcome;
              if (r.detail !== undefined) rec.detail = r.detail;
              if (r.output !== undefined) rec.output = copy(r.output);
              return r;
            } catch (e) {
              rec.outcome = 'error';
              rec.errorCode = isHisbridgeError(e) ? e.code : 'ENGINE_E_INTERNAL';
              throw e;
            }
          },
          ...(inner.close ? { close: () => inner.close!() } : {}),
        };
      },
    };
  }
}
