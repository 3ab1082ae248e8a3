/**
 * ajv validation that reports each error at the YAML node it concerns.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { LoadIssue, type YamlSource } from './yaml-source.js';
import type { JsonSchema } from '../sdk.js';

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** One ajv instance for the whole process; compiled validators are cached per schema object. */
export const ajv = addFormats(new Ajv({ allErrors: true, strict: false, useDefaults: false, verbose: true }));

const cache = new WeakMap<object, ValidateFunction>();

export function compileSchema(schema: JsonSchema): ValidateFunction {
  let fn = cache.get(schema);
  if (!fn) {
    // Schemas built per call (route schema with the registry's plugins) share an $id; ajv must not register them globally.
    const { $id: _id, ...anonymous } = schema;
    fn = ajv.compile(anonymous);
    cache.set(schema, fn);
  }
  return fn;
}

function pathSegments(instancePath: string): string[] {
  if (!instancePath) return [];
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function describe(e: ErrorObject, where: string): { msg: string; extra?: string } {
  switch (e.keyword) {
    case 'additionalProperties':
      return { msg: `unknown key "${String(e.params.additionalProperty)}"${where ? ` in ${where}` : ''}`, extra: String(e.params.additionalProperty) };
    case 'required':
      return { msg: `missing required key "${String(e.params.missingProperty)}"${where ? ` in ${where}` : ''}` };
    case 'enum':
      return { msg: `${where || 'value'} must be one of: ${(e.params.allowedValues as unknown[]).map(String).join(', ')}` };
    case 'type':
      return { msg: `${where || 'value'} must be ${String(e.params.type)}` };
    case 'pattern':
      return { msg: `${where || 'value'} does not match ${String(e.params.pattern)}` };
    case 'anyOf':
    case 'oneOf': {
      const forms = (e.parentSchema?.description as string | undefined) ?? 'an allowed form';
      return { msg: `${where || 'value'} must be ${forms}` };
    }
    default:
      return { msg: `${where || 'value'} ${e.message ?? 'is invalid'}` };
  }
}

/**
 * Validates `data` (the JS value of the node at `base` in `src`) and returns
 * issues positioned in the file. oneOf/anyOf noise is reduced to the most
 * specific errors.
 */
export function validateAt(schema: JsonSchema, data: unknown, src: YamlSource, base: readonly (string | number)[], label = ''): LoadIssue[] {
  const fn = compileSchema(schema);
  if (fn(data)) return [];
  const all = fn.errors ?? [];
  // Combinator errors only repeat what their branches said; keep them only when nothing more specific exists below them.
  const errors = all.filter((e) => {
    if (e.keyword === 'if') return false;
    if (e.keyword !== 'oneOf' && e.keyword !== 'anyOf') return true;
    return !all.some((o) => o !== e && o.keyword !== 'if' && o.keyword !== 'anyOf' && o.keyword !== 'oneOf' && o.instancePath.startsWith(e.instancePath));
  });
  const seen = new Set<string>();
  const out: LoadIssue[] = [];
  for (const e of errors.length ? errors : fn.errors ?? []) {
    const segs = pathSegments(e.instancePath);
    const where = [label, ...segs].filter(Boolean).join('.');
    const { msg, extra } = describe(e, where);
    const pos = src.posOf([...base, ...segs, ...(extra ? [extra] : [])], extra !== undefined);
    const key = `${pos.line}:${pos.col}:${msg}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(new LoadIssue(pos, msg, 'CONFIG_E_SCHEMA'));
  }
  return out;
}
