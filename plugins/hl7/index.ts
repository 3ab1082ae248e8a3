/**
 * `hl7`: rewrites the message the later steps see (issue 17):
 *
 *   plugin: hl7
 *   config:
 *     set: { MSH-5: LIS, MSH-6: LAB, PV1-3.1: "${PV1-3.1|lookup:dept}" }
 *     clear: [PID-13]
 *     remove: [ZCN]
 *
 * - `set`: field paths (the route path syntax: `PID-3[2].1`, `PID-3[5=NI].1`,
 *   `OBX[2]-5`) to templates. Every template is rendered from the message as
 *   it was before this step, then written; values are escaped (`|` → \F\,
 *   `^` → \S\, `&` → \T\, `~` → \R\, `\` → \E\).
 * - `clear`: field paths emptied.
 * - `remove`: segments removed, every occurrence (`ZCN`), or one (`NTE[2]`).
 *   MSH cannot be removed.
 * - `each: OBX`: `set` and `clear` are applied to every OBX in turn; their
 *   keys must be OBX fields without `[n]` (the current OBX), and in the
 *   templates a path of OBX without `[n]` reads the current OBX (other
 *   segments read the message as usual). Not with `remove`.
 *
 * The stored message never changes: the step works on a copy, hands it to
 * the following steps and keeps its text with the deliveries
 * (core/routes/rewrite.ts), so an outbound step after it sends the rewritten
 * message and the console shows it next to the original. Linear in the
 * message size.
 *
 * It is a transform step: in an on-receive route it (and the steps after it
 * up to the first outbound step) runs with the deliveries after the message
 * is stored and the sender has its AA, not before the ACK. A failure (a code
 * missing from a `missing: error` table) dead-letters the delivery with a
 * reason naming the table and the key; a replay after the table is fixed and
 * reloaded rewrites again. In an on-complete route it runs before the ACK as
 * every step does.
 */
import {
  compilePath,
  compileTemplate,
  hbError,
  isHisbridgeError,
  parseHl7,
  REWRITTEN_HL7_VAR,
  type FieldPath,
  type Hl7Message,
  type Hl7Segment,
  type PluginDefinition,
  type StepInput,
  type Template,
} from '../../core/sdk.js';

export interface Hl7Config {
  each?: string;
  set?: Record<string, string>;
  clear?: string[];
  remove?: string[];
}

const SEGMENT = /^[A-Z][A-Z0-9]{2}$/;

/**
 * The message as seen while rewriting one repetition under `each: OBX`:
 * paths of OBX without an occurrence read the current OBX, straight from
 * that segment; every other path reads the message as usual. Reading costs
 * the same however many OBX the message has.
 */
class EachView {
  constructor(
    readonly base: Hl7Message,
    readonly name: string,
    readonly occurrence: number,
    readonly seg: Hl7Segment,
  ) {}

  #own(p: FieldPath): boolean {
    return p.segment === this.name && p.occurrence === undefined;
  }

  get(path: string | FieldPath): string {
    const p = typeof path === 'string' ? compilePath(path) : path;
    if (!this.#own(p)) return this.base.get(p);
    if (p.selector) return this.base.get({ ...p, occurrence: this.occurrence });
    return this.seg.get(p.field, p.repetition ?? 1, p.component, p.subcomponent);
  }

  getAll(path: string | FieldPath): string[] {
    const p = typeof path === 'string' ? compilePath(path) : path;
    return this.base.getAll(this.#own(p) ? { ...p, occurrence: this.occurrence } : p);
  }

  has(path: string | FieldPath): boolean {
    return this.get(path) !== '';
  }

  segment(name: string, occurrence = 1) {
    return this.base.segment(name, occurrence);
  }

  segments(name?: string) {
    return this.base.segments(name);
  }

  encode(): string {
    return this.base.encode();
  }
}

const REMOVE = /^([A-Z][A-Z0-9]{2})(?:\[(\d{1,4})\])?$/;

function at(configPath: (string | number)[], e: unknown): never {
  const copy = hbError('ROUTE_E_COMPILE', { detail: (e as Error).message }, { data: { configPath } });
  if (isHisbridgeError(e)) Object.defineProperty(copy, 'code', { value: e.code });
  throw copy;
}

function pathAt(p: string, configPath: (string | number)[]): FieldPath {
  try {
    return compilePath(p);
  } catch (e) {
    return at(configPath, e);
  }
}

/**
 * `each: OBX`: every value for every OBX is rendered from the message as it
 * was before the step (the current OBX through an EachView), then written to
 * that OBX of the copy by its occurrence number. Each segment is read and
 * written once, by index: linear in the number of segments.
 */
function rewriteEach(input: StepInput, msg: Hl7Message, each: string, sets: [FieldPath, Template][], clears: FieldPath[]) {
  const segs = msg.segments(each);
  const values: string[][] = [];
  for (let k = 0; k < segs.length; k++) {
    const item: StepInput = { ...input, hl7: new EachView(msg, each, k + 1, segs[k]!) as unknown as Hl7Message };
    values.push(sets.map(([, t]) => t.render(item)));
  }
  const out = parseHl7(msg.encode());
  for (let k = 0; k < segs.length; k++) {
    const occurrence = k + 1;
    sets.forEach(([p], j) => out.set({ ...p, occurrence }, values[k]![j]!));
    for (const p of clears) out.set({ ...p, occurrence }, '');
  }
  input.hl7 = out;
  input.vars[REWRITTEN_HL7_VAR] = out.encode();
  return { outcome: 'ok' as const };
}

const plugin: PluginDefinition<Hl7Config> = {
  name: 'hl7',
  summary: 'Rewrite the message for the later steps: set, clear and remove fields and segments (escape-correct); the stored original is kept',
  kind: 'local',
  // A transform step (as map): in on-receive routes it runs with the deliveries, after the ACK, so a code missing
  // from a `missing: error` table dead-letters the delivery with the reason, and a replay rewrites again.
  transform: true,
  configSchema: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: {
      each: { type: 'string', description: 'A repeating segment (OBX): set and clear are applied to every occurrence, and paths of that segment without [n] address the current one' },
      set: { type: 'object', minProperties: 1, additionalProperties: { type: ['string', 'number'] }, description: 'Field path -> template, e.g. MSH-5: LIS, PV1-3.1: "${PV1-3.1|lookup:dept}"' },
      clear: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Field paths to empty, e.g. [PID-13, PID-19]' },
      remove: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Segments to remove: ZCN (every one) or NTE[2] (one occurrence); not MSH' },
    },
  },
  examples: [
    { title: 'Forward to the LIS with its own receiver and department codes', yaml: 'plugin: hl7\nconfig:\n  set: { MSH-5: LIS, PV1-3.1: "${PV1-3.1|lookup:dept}" }\n  remove: [ZCN]' },
    { title: 'Platform item codes in every OBX', yaml: 'plugin: hl7\nconfig:\n  each: OBX\n  set:\n    OBX-3.1: "${OBX-3.1|lookup:lab-items}"\n    OBX-3.2: "${OBX-3.1|lookup:lab-items.name}"' },
  ],
  create(_ctx, config) {
    const each = config.each;
    if (each !== undefined) {
      if (typeof each !== 'string' || !SEGMENT.test(each)) at(['each'], new Error(`each names a repeating segment such as OBX (3 upper-case letters or digits), not "${String(each)}"`));
      if (each === 'MSH') at(['each'], new Error('each: MSH is not a repeating segment'));
      if (config.remove !== undefined) at(['remove'], new Error('remove cannot be used with each: put it in a separate hl7 step'));
      if (config.set === undefined && config.clear === undefined) at(['each'], new Error('each needs set or clear'));
    }
    /** Under each, a path written to must be of the iterated segment, without an occurrence (it addresses the current one). */
    const ownPath = (path: FieldPath, where: (string | number)[]) => {
      if (each === undefined) return;
      if (path.segment !== each) at(where, new Error(`with each: ${each}, set and clear write fields of ${each} only (the current one); "${path.source}" is another segment`));
      if (path.occurrence !== undefined) at(where, new Error(`with each: ${each}, write ${each}-… without [n]: the path addresses the current ${each}`));
    };
    const sets: [FieldPath, Template][] = Object.entries(config.set ?? {}).map(([p, v]) => {
      const path = pathAt(p, ['set', p]);
      if (path.segment === 'MSH' && path.field <= 2) at(['set', p], new Error('MSH-1 and MSH-2 (the delimiters) cannot be set'));
      ownPath(path, ['set', p]);
      try {
        return [path, compileTemplate(String(v))];
      } catch (e) {
        return at(['set', p], e);
      }
    });
    const clears: FieldPath[] = (config.clear ?? []).map((p, i) => {
      const path = pathAt(p, ['clear', i]);
      if (path.segment === 'MSH' && path.field <= 2) at(['clear', i], new Error('MSH-1 and MSH-2 (the delimiters) cannot be cleared'));
      ownPath(path, ['clear', i]);
      return path;
    });
    // Segment name -> occurrences to drop (empty set: every occurrence).
    const removes = new Map<string, Set<number>>();
    (config.remove ?? []).forEach((r, i) => {
      const m = REMOVE.exec(r);
      if (!m) at(['remove', i], new Error(`"${r}" is not a segment: write ZCN, or NTE[2] for one occurrence`));
      const name = m[1]!;
      if (name === 'MSH') at(['remove', i], new Error('MSH cannot be removed'));
      const set = removes.get(name) ?? new Set<number>();
      if (m[2] === undefined) set.clear();
      else if (!removes.has(name) || set.size) set.add(Number(m[2]));
      removes.set(name, set);
    });
    return {
      async process(input) {
        const msg = input.hl7;
        if (!msg) throw hbError('ENGINE_E_STEP_FAILED', { step: 'hl7', detail: 'the message is not HL7 (a JSON event has no segments to rewrite)' }, { retryable: false });
        if (each !== undefined) return rewriteEach(input, msg, each, sets, clears);
        // Every value comes from the message as it was before this step.
        const values = sets.map(([, t]) => t.render(input));
        let text = msg.encode();
        if (removes.size) {
          const seen = new Map<string, number>();
          const kept: string[] = [];
          const fs = msg.delimiters.field;
          for (const line of text.split('\r')) {
            if (line === '') continue;
            const name = line.slice(0, 3);
            const drop = removes.get(name);
            if (drop && (line.length === 3 || line[3] === fs)) {
              const n = (seen.get(name) ?? 0) + 1;
              seen.set(name, n);
              if (drop.size === 0 || drop.has(n)) continue;
            }
            kept.push(line);
          }
          text = kept.join('\r') + '\r';
        }
        const out = parseHl7(text);
        // An empty value for a segment the message lacks creates nothing (as clear): a route listing OBX[1] .. OBX[n] does not add empty OBX segments to a shorter report.
        sets.forEach(([p], k) => {
          if (values[k] === '' && !out.segment(p.segment, p.occurrence ?? 1)) return;
          out.set(p, values[k]!);
        });
        for (const p of clears) if (out.segment(p.segment, p.occurrence ?? 1)) out.set(p, '');
        input.hl7 = out;
        input.vars[REWRITTEN_HL7_VAR] = out.encode();
        return { outcome: 'ok' };
      },
    };
  },
};
export default plugin;
