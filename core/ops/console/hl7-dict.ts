/**
 * Names of HL7 segments, fields and components for the console's message
 * tree, for the message's own version (MSH-12), from the `hl7-dictionary`
 * package (MIT, v2.1 to v2.7.1; docs/operations.md says what was checked).
 * Site segments (ZCN, ZVU, ZRC...) are named by the plugins and site
 * extensions that define them (`segments` in core/sdk.ts).
 *
 * A version's tables are loaded on first use and kept: one file per
 * version, a few MB, read once per engine.
 */
import { createRequire } from 'node:module';
import type { SegmentDefinition } from '../../sdk.js';

interface DictField {
  datatype: string;
  desc: string;
}
interface DictVersion {
  segments: Record<string, { desc: string; fields: DictField[] } | undefined>;
  fields: Record<string, { desc: string; subfields: DictField[] } | undefined>;
}

/** Versions the package has, oldest first. */
export const DICTIONARY_VERSIONS = ['2.1', '2.2', '2.3', '2.3.1', '2.4', '2.5', '2.5.1', '2.6', '2.7', '2.7.1'];
/** Used when MSH-12 is empty or unreadable. */
const DEFAULT_VERSION = '2.5';

const require = createRequire(import.meta.url);
const loaded = new Map<string, DictVersion>();

/** A name and, when known, the data type: `Patient Name (XPN)`. */
export interface Named {
  name: string;
  datatype?: string;
}

function versionKey(v: string): number[] {
  return v.split('.').map((p) => Number.parseInt(p, 10) || 0);
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The dictionary version for an MSH-12 value: the same version, else the
 * newest one not newer than it (2.8 reads as 2.7.1), else 2.5.
 */
export function dictionaryVersion(msh12: string | undefined): string {
  const v = (msh12 ?? '').split(/[\^&]/)[0]!.trim();
  if (DICTIONARY_VERSIONS.includes(v)) return v;
  if (!/^2(\.\d+){1,2}$/.test(v)) return DEFAULT_VERSION;
  const k = versionKey(v);
  let best: string | undefined;
  for (const d of DICTIONARY_VERSIONS) if (compare(versionKey(d), k) <= 0) best = d;
  return best ?? DEFAULT_VERSION;
}

function load(version: string): DictVersion {
  let d = loaded.get(version);
  if (!d) {
    const m = require(`hl7-dictionary/lib/${version}/index.js`) as DictVersion;
    d = { segments: m.segments, fields: m.fields };
    loaded.set(version, d);
  }
  return d;
}

/** Names for one message: its version's tables plus the site segments. */
export class Hl7Names {
  readonly version: string;
  readonly #dict: DictVersion;
  readonly #site: ReadonlyMap<string, SegmentDefinition>;

  constructor(msh12: string | undefined, site: ReadonlyMap<string, SegmentDefinition> = new Map()) {
    this.version = dictionaryVersion(msh12);
    this.#dict = load(this.version);
    this.#site = site;
  }

  segment(name: string): string | undefined {
    return this.#site.get(name)?.description ?? this.#dict.segments[name]?.desc;
  }

  field(segment: string, index: number): Named | undefined {
    const site = this.#site.get(segment);
    if (site) {
      const f = site.fields[index - 1];
      return f ? { name: f.name, ...(f.datatype ? { datatype: f.datatype } : {}) } : undefined;
    }
    const f = this.#dict.segments[segment]?.fields[index - 1];
    return f ? { name: f.desc, datatype: f.datatype } : undefined;
  }

  /** Component `c` (1-based) of field `index`: from the field's data type, or the site segment's component names. */
  component(segment: string, index: number, c: number): Named | undefined {
    const site = this.#site.get(segment);
    if (site) {
      const n = site.fields[index - 1]?.components?.[c - 1];
      return n ? { name: n } : undefined;
    }
    const type = this.#dict.segments[segment]?.fields[index - 1]?.datatype;
    const sub = type ? this.#dict.fields[type]?.subfields[c - 1] : undefined;
    return sub ? { name: sub.desc, datatype: sub.datatype } : undefined;
  }
}

/** The site segments of a set of plugins and extensions, by name (the first definition of a name wins). */
export function siteSegments(owners: readonly { segments?: readonly SegmentDefinition[] }[]): Map<string, SegmentDefinition> {
  const out = new Map<string, SegmentDefinition>();
  for (const o of owners) for (const s of o.segments ?? []) if (!out.has(s.name)) out.set(s.name, s);
  return out;
}
