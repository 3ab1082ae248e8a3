import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { OPERATION_SCHEMAS } from '../../plugins/recognition/sim-schemas.js';
import { OPERATIONS, readRecognitionSite, recognitionDefaults, recognitionSiteSchema } from '../../plugins/recognition/site.js';
import upload from '../../plugins/recognition-upload/index.js';
import check from '../../plugins/recognition-check/index.js';
import guard from '../../plugins/sensitive-guard/index.js';
import { isHisbridgeError } from '../../core/errors.js';

const SCHEMAS = path.resolve(import.meta.dirname, '../../schemas');

describe('recognition schemas', () => {
  it('every schemas/recognition-*.schema.json is the contract of at least one operation, and every operation has one', () => {
    const files = readdirSync(SCHEMAS).filter((f) => /^recognition-.*\.schema\.json$/.test(f));
    const used = new Set(Object.values(OPERATION_SCHEMAS).map((s) => (s as { $id: string }).$id));
    for (const f of files) {
      const s = JSON.parse(readFileSync(path.join(SCHEMAS, f), 'utf8')) as { $id: string };
      expect(s.$id.endsWith(`/${f}`)).toBe(true);
      expect(used.has(s.$id)).toBe(true);
    }
    expect(Object.keys(OPERATION_SCHEMAS).sort()).toEqual([...OPERATIONS].sort());
  });

  it('the site schema accepts the embedded defaults and rejects a bad path', () => {
    const validate = new Ajv({ strict: false }).compile(recognitionSiteSchema);
    expect(validate(recognitionDefaults({ simulatorUrl: 'http://127.0.0.1:8482' }))).toBe(true);
    expect(validate(recognitionDefaults({}))).toBe(true);
    expect(validate({ paths: { token: 'no-slash' } })).toBe(false);
    expect(validate({ paths: { unknownOp: '/x' } })).toBe(false);
  });

  it('without simulators the defaults hold no credentials, and a plugin refuses to start', () => {
    const d = recognitionDefaults({});
    expect(d.baseUrl).toBeUndefined();
    const err = (() => {
      try {
        readRecognitionSite(d);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isHisbridgeError(err) && [err.code, err.message]).toEqual(['CONFIG_E_SITE_MISSING', 'recognition.baseUrl is not set in hisbridge.yaml']);
  });

  it('plugin config schemas compile and reject unknown keys', () => {
    const ajv = new Ajv({ strict: false });
    for (const def of [upload, check, guard]) {
      const v = ajv.compile(def.configSchema);
      expect(v({ typo: 1, ...(def === upload ? { kind: 'lab' } : {}) })).toBe(false);
    }
    expect(ajv.compile(upload.configSchema)({ kind: 'lab' })).toBe(true);
    expect(ajv.compile(upload.configSchema)({ kind: 'radiology' })).toBe(false);
  });
});
