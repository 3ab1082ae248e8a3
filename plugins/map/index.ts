/**
 * `map`: builds a JSON value from the message, for the `http` and
 * `kafka-publish` steps after it (`as: payload`, then `${vars.payload}`).
 *
 * Each entry of `fields` is one of:
 * - a template: `"${PID-5.1}"`, `"${OBR-4.1|lookup:lab-items.platformCode}"`;
 * - `{ path: OBX-5 }` or `{ value: TEMPLATE }`, with `type: string | number | date`,
 *   `format` (dates, default `YYYY-MM-DD HH:mm:ss`), `default` (for an empty value)
 *   and `when` (a condition; the key is left out when it does not hold);
 * - `{ fields: {...} }`: a nested object (with an optional `when`);
 * - `{ each: OBX, fields: {...} }`: an array with one object per OBX segment
 *   (or per repetition of a field: `each: PID-3`); inside, paths of that
 *   segment (or field) read the current one; `when` keeps only the items it
 *   holds for.
 * - a number or boolean: written as is.
 *
 * Everything is compiled at load: a bad path, an unknown table or column, a
 * malformed entry refuses the route at the entry's file:line:col. Building the
 * value is linear in the message: each item reads its own segment by index.
 */
import {
  compileCondition,
  compilePath,
  compileTemplate,
  formatDate,
  hbError,
  isHisbridgeError,
  type Condition,
  type ConditionSpec,
  type FieldPath,
  type Hl7Message,
  type Hl7Segment,
  type PluginDefinition,
  type StepInput,
  type Template,
} from '../../core/sdk.js';

export type MapField =
  | string
  | number
  | boolean
  | { path?: string; value?: string; type?: 'string' | 'number' | 'date'; format?: string; default?: string | number; when?: ConditionSpec }
  | { fields: Record<string, MapField>; when?: ConditionSpec }
  | { each: string; fields: Record<string, MapField>; when?: ConditionSpec };

export interface MapConfig {
  fields: Record<string, MapField>;
}

type Where = (string | number)[];

type Node =
  | { kind: 'const'; key: string; value: number | boolean }
  | { kind: 'scalar'; key: string; t: Template; type: 'string' | 'number' | 'date'; format: string; dflt?: string | number; when?: Condition; where: string }
  | { kind: 'object'; key: string; fields: Node[]; when?: Condition }
  | { kind: 'each'; key: string; segment: string; field?: FieldPath; fields: Node[]; when?: Condition };

/** A load-time problem at `configPath` inside the step's config (the loader turns it into file:line:col). */
function bad(configPath: Where, detail: string): never {
  throw hbError('ROUTE_E_COMPILE', { detail }, { data: { configPath } });
}

/** The same error (code and message) carrying where it was found. */
function withMessage(e: Error & { code: string }, configPath: Where): never {
  const copy = hbError('ROUTE_E_COMPILE', { detail: e.message }, { data: { configPath } });
  Object.defineProperty(copy, 'code', { value: e.code });
  throw copy;
}

function attempt<T>(configPath: Where, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isHisbridgeError(e)) withMessage(e, configPath);
    return bad(configPath, (e as Error).message);
  }
}

const SCALAR_KEYS = new Set(['path', 'value', 'type', 'format', 'default', 'when']);
const SEGMENT = /^[A-Z][A-Z0-9]{2}$/;

function compileFields(fields: unknown, at: Where, label: string): Node[] {
  if (!fields || typeof fields !== 'object' || Array.isArray(fields)) bad(at, 'fields must be a mapping of output keys to entries');
  const out: Node[] = [];
  for (const [key, spec] of Object.entries(fields as Record<string, unknown>)) {
    out.push(compileField(key, spec, [...at, key], label ? `${label}.${key}` : key));
  }
  return out;
}

function compileWhen(spec: Record<string, unknown>, at: Where): Condition | undefined {
  return spec.when === undefined ? undefined : attempt([...at, 'when'], () => compileCondition(spec.when as ConditionSpec));
}

function compileField(key: string, spec: unknown, at: Where, label: string): Node {
  if (typeof spec === 'number' || typeof spec === 'boolean') return { kind: 'const', key, value: spec };
  if (typeof spec === 'string') return { kind: 'scalar', key, t: attempt(at, () => compileTemplate(spec)), type: 'string', format: '', where: label };
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) bad(at, `entry "${label}" must be a template, a number, or a mapping with path/value, fields or each`);
  const s = spec as Record<string, unknown>;
  if ('each' in s) {
    for (const k of Object.keys(s)) if (!['each', 'fields', 'when'].includes(k)) bad([...at, k], `"${k}" is not a key of an each entry (each, fields, when)`);
    if (typeof s.each !== 'string') bad([...at, 'each'], 'each names a repeating segment (OBX) or field (PID-3)');
    const each = s.each;
    let segment: string;
    let field: FieldPath | undefined;
    if (SEGMENT.test(each)) segment = each;
    else {
      field = attempt([...at, 'each'], () => compilePath(each));
      if (field.component !== undefined || field.repetition !== undefined || field.selector) bad([...at, 'each'], 'each over a field names the field only (PID-3), without repetition or component');
      segment = field.segment;
    }
    if (!('fields' in s)) bad(at, `entry "${label}" with each needs fields`);
    return { kind: 'each', key, segment, ...(field ? { field } : {}), fields: compileFields(s.fields, [...at, 'fields'], `${label}[]`), ...whenOf(s, at) };
  }
  if ('fields' in s) {
    for (const k of Object.keys(s)) if (!['fields', 'when'].includes(k)) bad([...at, k], `"${k}" is not a key of an object entry (fields, when)`);
    return { kind: 'object', key, fields: compileFields(s.fields, [...at, 'fields'], label), ...whenOf(s, at) };
  }
  for (const k of Object.keys(s)) if (!SCALAR_KEYS.has(k)) bad([...at, k], `"${k}" is not a key of a value entry (path, value, type, format, default, when)`);
  if ((s.path === undefined) === (s.value === undefined)) bad(at, `entry "${label}" needs exactly one of path or value`);
  let t: Template;
  if (s.path !== undefined) {
    if (typeof s.path !== 'string') bad([...at, 'path'], 'path is a field path such as OBX-5 or PID-3[5=PI].1');
    const p = s.path;
    attempt([...at, 'path'], () => compilePath(p));
    t = attempt([...at, 'path'], () => compileTemplate('${' + p + '}'));
  } else {
    if (typeof s.value !== 'string') bad([...at, 'value'], 'value is a template');
    const v = s.value;
    t = attempt([...at, 'value'], () => compileTemplate(v));
  }
  const type = s.type ?? 'string';
  if (type !== 'string' && type !== 'number' && type !== 'date') bad([...at, 'type'], 'type is string, number or date');
  if (s.format !== undefined && (type !== 'date' || typeof s.format !== 'string')) bad([...at, 'format'], 'format is for type: date (e.g. "YYYY-MM-DD")');
  if (s.default !== undefined && typeof s.default !== 'string' && typeof s.default !== 'number') bad([...at, 'default'], 'default is a string or number');
  return {
    kind: 'scalar',
    key,
    t,
    type,
    format: typeof s.format === 'string' ? s.format : 'YYYY-MM-DD HH:mm:ss',
    ...(s.default !== undefined ? { dflt: s.default as string | number } : {}),
    ...whenOf(s, at),
    where: label,
  };
}

function whenOf(s: Record<string, unknown>, at: Where): { when?: Condition } {
  const when = compileWhen(s, at);
  return when ? { when } : {};
}

/**
 * A message as seen from inside an `each`: paths of the iterated segment
 * without an occurrence read the current one (and, for a field each, paths
 * of that field without a repetition read the current repetition). Reads go
 * straight to the segment's index, so an item costs the same however long
 * the message is.
 */
class ItemView {
  constructor(
    readonly base: Hl7Message,
    readonly segment: string,
    readonly occurrence: number,
    /** The current segment itself: reads of it skip the search by name and split its fields once. */
    readonly seg: Hl7Segment,
    readonly field?: number,
    readonly repetition?: number,
  ) {}

  /** The occurrence of `segment` an enclosing each has bound, if any. */
  bound(segment: string): number | undefined {
    if (segment === this.segment) return this.occurrence;
    return this.base instanceof ItemView ? this.base.bound(segment) : undefined;
  }

  /** The current segment object an enclosing each has bound, if any. */
  boundSegment(segment: string): Hl7Segment | undefined {
    if (segment === this.segment) return this.seg;
    return this.base instanceof ItemView ? this.base.boundSegment(segment) : undefined;
  }

  get(path: string | FieldPath): string {
    const p = typeof path === 'string' ? compilePath(path) : path;
    if (p.segment !== this.segment || p.occurrence !== undefined) return this.base.get(p);
    if (p.selector) return this.base.get({ ...p, occurrence: this.occurrence });
    const rep = p.repetition ?? (this.field !== undefined && p.field === this.field ? this.repetition! : 1);
    return this.seg.get(p.field, rep, p.component, p.subcomponent);
  }

  getAll(path: string | FieldPath): string[] {
    const p = typeof path === 'string' ? compilePath(path) : path;
    return this.base.getAll(p.segment === this.segment && p.occurrence === undefined ? { ...p, occurrence: this.occurrence } : p);
  }

  has(path: string | FieldPath): boolean {
    return this.get(path) !== '';
  }

  segments(name?: string) {
    return this.base.segments(name);
  }
}

function typed(n: Extract<Node, { kind: 'scalar' }>, v: string, where: string): unknown {
  if (v === '') return n.dflt !== undefined ? n.dflt : n.type === 'string' ? '' : null;
  if (n.type === 'string') return v;
  if (n.type === 'number') {
    const x = Number(v.trim());
    if (v.trim() === '' || !Number.isFinite(x)) throw hbError('ROUTE_E_MAP', { field: where, detail: 'the value is not a number' });
    return x;
  }
  if (!/^\d{4}/.test(v)) throw hbError('ROUTE_E_MAP', { field: where, detail: 'the value is not an HL7 date (YYYYMMDD[HHMM[SS]])' });
  return formatDate(v, n.format);
}

function build(nodes: readonly Node[], input: StepInput, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of nodes) {
    const w = where ? `${where}.${n.key}` : n.key;
    switch (n.kind) {
      case 'const':
        out[n.key] = n.value;
        break;
      case 'scalar':
        if (n.when && !n.when(input)) break;
        out[n.key] = typed(n, n.t.render(input), w);
        break;
      case 'object':
        if (n.when && !n.when(input)) break;
        out[n.key] = build(n.fields, input, w);
        break;
      case 'each':
        out[n.key] = buildEach(n, input, w);
        break;
    }
  }
  return out;
}

function buildEach(n: Extract<Node, { kind: 'each' }>, input: StepInput, where: string): Record<string, unknown>[] {
  const msg = input.hl7;
  const items: Record<string, unknown>[] = [];
  if (!msg) return items;
  const add = (view: ItemView) => {
    const item: StepInput = { ...input, hl7: view as unknown as Hl7Message };
    if (n.when && !n.when(item)) return;
    items.push(build(n.fields, item, `${where}[${items.length}]`));
  };
  if (!n.field) {
    const segs = msg.segments(n.segment);
    for (let k = 0; k < segs.length; k++) add(new ItemView(msg, n.segment, k + 1, segs[k]!));
    return items;
  }
  const f = n.field;
  const outer = msg instanceof ItemView && f.occurrence === undefined ? msg : undefined;
  const occurrence = f.occurrence ?? outer?.bound(f.segment) ?? 1;
  const seg = outer?.boundSegment(f.segment) ?? msg.segment(f.segment, occurrence);
  if (!seg) return items;
  const count = seg.repetitions(f.field);
  for (let r = 1; r <= count; r++) add(new ItemView(msg, f.segment, occurrence, seg, f.field, r));
  return items;
}

const fieldEntry = { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'object' }] };

const plugin: PluginDefinition<MapConfig> = {
  name: 'map',
  summary: 'Build a JSON value from the message (paths, templates, lookups, conditions, each: OBX arrays, number and date types) as vars.<as>',
  kind: 'local',
  // In on-receive routes it runs with the deliveries: a missing code dead-letters the delivery, and a replay maps again.
  transform: true,
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['fields'],
    properties: {
      fields: {
        type: 'object',
        minProperties: 1,
        description: 'Output key -> a template, { path|value, type, format, default, when }, { fields } or { each, fields, when }',
        additionalProperties: fieldEntry,
      },
    },
  },
  examples: [
    {
      title: 'Lab results as a JSON list with platform item codes',
      yaml: [
        'plugin: map',
        'as: report',
        'config:',
        '  fields:',
        '    reportNo: "${OBR-3.1}"',
        '    reportTime: { path: OBR-22, type: date }',
        '    items:',
        '      each: OBX',
        '      fields:',
        '        code: "${OBX-3.1|lookup:lab-items.platformCode}"',
        '        value: { path: OBX-5, type: number, when: { path: OBX-2, equals: NM } }',
      ].join('\n'),
    },
  ],
  create(_ctx, config) {
    const nodes = compileFields(config.fields, ['fields'], '');
    return {
      async process(input) {
        const value = build(nodes, input, '');
        return { outcome: 'ok', output: value };
      },
    };
  },
};
export default plugin;
