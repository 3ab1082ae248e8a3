/**
 * Finds the routes a message goes to. Routes are indexed by event so that
 * matching against a hundred routes costs little more than against one:
 * only routes whose event set names the message's event are examined.
 */
import type { StepInput } from '../sdk.js';
import type { CompiledRoute } from './types.js';

export interface MatchKey {
  source: string;
  /** `ADT^A04`. */
  type: string;
  sendingApp: string;
  sendingFacility: string;
}

export class RouteTable {
  readonly routes: readonly CompiledRoute[];
  readonly #byEvent = new Map<string, CompiledRoute[]>();
  readonly #byCode = new Map<string, CompiledRoute[]>();
  readonly #any: CompiledRoute[] = [];

  constructor(routes: readonly CompiledRoute[]) {
    this.routes = routes;
    const push = (m: Map<string, CompiledRoute[]>, k: string, r: CompiledRoute) => {
      const l = m.get(k);
      if (l) l.push(r);
      else m.set(k, [r]);
    };
    for (const r of routes) {
      if (r.anyEvent) this.#any.push(r);
      for (const e of r.events) push(this.#byEvent, e, r);
      for (const c of r.eventCodes) push(this.#byCode, c, r);
    }
  }

  get(name: string): CompiledRoute | undefined {
    return this.routes.find((r) => r.name === name);
  }

  /** Routes accepting the message, in file order (name order within the set). */
  match(key: MatchKey, input: StepInput): CompiledRoute[] {
    const code = key.type.split('^', 1)[0] ?? '';
    const exact = this.#byEvent.get(key.type);
    const byCode = this.#byCode.get(code);
    let candidates: CompiledRoute[];
    if (!byCode && this.#any.length === 0) candidates = exact ?? [];
    else candidates = [...(exact ?? []), ...(byCode ?? []), ...this.#any].sort((a, b) => this.routes.indexOf(a) - this.routes.indexOf(b));
    const out: CompiledRoute[] = [];
    for (const r of candidates) {
      if (r.sources && !r.sources.has(key.source)) continue;
      if (r.sender.application !== undefined && r.sender.application !== key.sendingApp) continue;
      if (r.sender.facility !== undefined && r.sender.facility !== key.sendingFacility) continue;
      if (!r.when.every((c) => c(input))) continue;
      if (!out.includes(r)) out.push(r);
    }
    return out;
  }
}
