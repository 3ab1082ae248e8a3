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
  type PluginDefinition,
  type Template,
} from '../../core/sdk.js';

export interface Hl7Config {
  set?: Record<string, string>;
  clear?: string[];
  remove?: string[];
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
      set: { type: 'object', minProperties: 1, additionalProperties: { type: ['string', 'number'] }, description: 'Field path -> template, e.g. MSH-5: LIS, PV1-3.1: "${PV1-3.1|lookup:dept}"' },
      clear: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Field paths to empty, e.g. [PID-13, PID-19]' },
      remove: { type: 'array', items: { type: 'string' }, minItems: 1, description: 'Segments to remove: ZCN (every one) or NTE[2] (one occurrence); not MSH' },
    },
  },
  examples: [{ title: 'Forward to the LIS with its own receiver and department codes', yaml: 'plugin: hl7\nconfig:\n  set: { MSH-5: LIS, PV1-3.1: "${PV1-3.1|lookup:dept}" }\n  remove: [ZCN]' }],
  create(_ctx, config) {
    const sets: [FieldPath, Template][] = Object.entries(config.set ?? {}).map(([p, v]) => {
      const path = pathAt(p, ['set', p]);
      if (path.segment === 'MSH' && path.field <= 2) at(['set', p], new Error('MSH-1 and MSH-2 (the delimiters) cannot be set'));
      try {
        return [path, compileTemplate(String(v))];
      } catch (e) {
        return at(['set', p], e);
      }
    });
    const clears: FieldPath[] = (config.clear ?? []).map((p, i) => {
      const path = pathAt(p, ['clear', i]);
      if (path.segment === 'MSH' && path.field <= 2) at(['clear', i], new Error('MSH-1 and MSH-2 (the delimiters) cannot be cleared'));
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
