/**
 * Plugin-owned error catalogues (issue 14): a family's codes live in its
 * plugin folder, are registered through the registry (collisions refuse the
 * start), and a plugin's non-retryable code reaches the dead-letter list with
 * its catalogued reason after one attempt. A plain Error stays retryable
 * (documented in core/sdk.ts and docs/delivery.md); `permanentError` is the
 * explicit "do not retry".
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, errorFactory, ErrorCatalogues, HisbridgeError, hbError, permanentError, toHisbridgeError } from '../../core/errors.js';
import { Registry } from '../../core/registry.js';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { builtinRegistry } from '../../plugins/index.js';
import { gdEhrErrors } from '../../plugins/gd-ehr/errors.js';
import { recognitionErrors } from '../../plugins/recognition/errors.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';
import acmeRefuser, { calls } from './fixtures/acme-refuser/index.js';
import { acmeErrors } from './fixtures/acme-refuser/errors.js';

describe('error catalogues', () => {
  it('core keeps only core codes; GDEHR_* and RECOG_* come from the plugin folders through the registry', () => {
    const core = Object.keys(ERRORS);
    expect(core.filter((c) => /^(GDEHR|RECOG)_/.test(c))).toEqual([]);
    const cat = builtinRegistry().errorCatalogue;
    expect(cat.lookup('GDEHR_E_BUSINESS')).toMatchObject({ family: 'gdEhr', retryable: false });
    expect(cat.lookup('RECOG_E_AUTH')).toMatchObject({ family: 'recognition', retryable: true });
    expect(cat.lookup('HTTP_E_STATUS')).toMatchObject({ family: 'core' });
    expect(cat.isRetryable('RECOG_E_REVOKE_BEFORE_UPLOAD')).toBe(true);
    expect(cat.isRetryable('NOPE_E_NOTHING')).toBeUndefined();
    // Every code of both families is listed, each once.
    const listed = cat.list().map((e) => e.code);
    for (const c of [...Object.keys(gdEhrErrors.catalogue), ...Object.keys(recognitionErrors.catalogue), ...core]) expect(listed).toContain(c);
    expect(new Set(listed).size).toBe(listed.length);
    // The lookup is per registry: a bare registry does not know plugin codes.
    expect(new Registry().errorCatalogue.lookup('GDEHR_E_BUSINESS')).toBeUndefined();
    expect(() => new Registry().errorCatalogue.error('GDEHR_E_BUSINESS')).toThrow(/unknown error code GDEHR_E_BUSINESS/);
  });

  it('the factory raises HisbridgeErrors whose message, retryable and status come from the catalogue', () => {
    const e = gdEhrErrors.error('GDEHR_E_MISSING_PARAM', { field: 'idcard' });
    expect(e).toBeInstanceOf(HisbridgeError);
    expect(e).toMatchObject({ code: 'GDEHR_E_MISSING_PARAM', message: 'missing parameter idcard', retryable: false, status: 400 });
    expect(gdEhrErrors.is(e)).toBe(true);
    expect(recognitionErrors.is(e)).toBe(false);
    expect(toHisbridgeError(e)).toBe(e);
    // The registry's catalogue builds the same error from the code alone.
    expect(builtinRegistry().errorCatalogue.error('GDEHR_E_MISSING_PARAM', { field: 'idcard' }).toJSON()).toEqual(e.toJSON());
    // A code outside the catalogue is refused when raised, and bad codes when declared.
    expect(() => (gdEhrErrors.error as (c: string) => unknown)('GDEHR_E_NOT_THERE')).toThrow(/not in the catalogue of "gdEhr"/);
    expect(() => errorFactory('x', { lowercase: { message: 'm', retryable: false } })).toThrow(/must look like AREA_E_WHAT/);
    expect(() => errorFactory('x', { X_E_A: { message: 'm' } as never })).toThrow(/needs a message and retryable/);
  });

  it('a code registered twice (two families, or a family and core) refuses the registry with a clear message', () => {
    const twin = errorFactory('sz-ehr', { GDEHR_E_BUSINESS: { message: 'refused', retryable: false } });
    expect(() => builtinRegistry().errors(twin)).toThrow('error code GDEHR_E_BUSINESS of "sz-ehr" is already registered by "gdEhr": every code must have one owner');
    const coreTwin = errorFactory('sz-ehr', { SZEHR_E_OK: { message: 'ok', retryable: false }, HTTP_E_STATUS: { message: 'mine', retryable: true } });
    const cat = new ErrorCatalogues();
    expect(() => cat.register(coreTwin)).toThrow('error code HTTP_E_STATUS of "sz-ehr" is already registered by "core"');
    expect(cat.lookup('SZEHR_E_OK')).toBeUndefined(); // nothing of a refused family is added
    expect(() => builtinRegistry().errors(errorFactory('gdEhr', {}))).toThrow('error catalogue "gdEhr" registered twice');
    // The same family object named by two plugins is registered once.
    const reg = new Registry().plugin(acmeRefuser).plugin({ ...acmeRefuser, name: 'acme-other' });
    expect(reg.errorCatalogue.lookup('ACME_E_REFUSED')?.family).toBe('acme');
  });

  it('a plain Error is the retryable ENGINE_E_INTERNAL; permanentError is not retryable', () => {
    expect(toHisbridgeError(new Error('boom'))).toMatchObject({ code: 'ENGINE_E_INTERNAL', retryable: true });
    expect(permanentError('the platform says never')).toMatchObject({ code: 'PLUGIN_E_PERMANENT', message: 'the platform says never', retryable: false });
    expect(hbError('HTTP_E_NOT_FOUND')).toMatchObject({ status: 404, message: 'no such endpoint' });
  });
});

const ackOf = (b: Buffer) => parseHl7(decodeHl7(b, 'utf-8').text);
const msg = (cid: string, type: string) => `MSH|^~\\&|LIS|H1|HB|HB|20250312093015||${type}|${cid}|P|2.5\rPID|1||PERR01^^^H^PI\r`;

async function until<T>(fn: () => T, ok: (v: T) => boolean, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a plugin error code through the engine', () => {
  let t: TestEngine;
  let client: MllpClient;
  let routesDir: string;

  beforeAll(async () => {
    routesDir = tempFiles({
      'acme.yaml': `routes:
  - name: acme-refuse
    match: { events: [ORU^R01] }
    delivery: { retry: { max: 3, initial: 20ms, maxDelay: 50ms } }
    steps:
      - plugin: acme-refuser
        config: { mode: refuse }
  - name: acme-permanent
    match: { events: [ORU^R30] }
    delivery: { retry: { max: 3, initial: 20ms, maxDelay: 50ms } }
    steps:
      - plugin: acme-refuser
        config: { mode: permanent }
  - name: acme-crash
    match: { events: [ORU^R31] }
    delivery: { retry: { max: 3, initial: 20ms, maxDelay: 50ms } }
    steps:
      - plugin: acme-refuser
        config: { mode: crash }
`,
    });
    t = await startEngine({ routesDir, registry: builtinRegistry().plugin(acmeRefuser) });
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 15_000 });
  });

  afterAll(async () => {
    client?.close();
    await t?.stop();
    rmSync(routesDir, { recursive: true, force: true });
  });

  const deadOf = (cid: string) => t.engine.store.listDead().find((d) => d.controlId === cid);

  it('a non-retryable code registered from the plugin folder reaches the dead-letter reason after one attempt', async () => {
    expect(ackOf(await client.send(msg('ACMEERR001', 'ORU^R01'))).get('MSA-1')).toBe('AA');
    const dead = await until(() => deadOf('ACMEERR001'), Boolean, 'the dead letter');
    expect(dead).toMatchObject({ lastErrorCode: 'ACME_E_REFUSED', lastError: 'acme platform refused the report: code E42', attempts: 1, plugin: 'acme-refuser' });
    expect(calls.filter((c) => c === 'refuse:ACMEERR001')).toHaveLength(1);
    // The dead letter is visible in the table a moment before the worker logs it (after the WAL sync of its commit).
    const line = await until(() => t.logs.find((l) => l.includes('delivery dead-lettered') && l.includes('ACME_E_REFUSED')), Boolean, 'the dead-letter log line');
    expect(line).toBeDefined();
  });

  it('permanentError goes to the dead-letter list after one attempt with the plugin\'s reason', async () => {
    expect(ackOf(await client.send(msg('ACMEERR002', 'ORU^R30'))).get('MSA-1')).toBe('AA');
    const dead = await until(() => deadOf('ACMEERR002'), Boolean, 'the dead letter');
    expect(dead).toMatchObject({ lastErrorCode: 'PLUGIN_E_PERMANENT', lastError: 'acme says the item code is unknown', attempts: 1 });
  });

  it('a plain Error is retried up to the route\'s max, then dead-lettered as ENGINE_E_INTERNAL', async () => {
    expect(ackOf(await client.send(msg('ACMEERR003', 'ORU^R31'))).get('MSA-1')).toBe('AA');
    const dead = await until(() => deadOf('ACMEERR003'), Boolean, 'the dead letter');
    expect(dead).toMatchObject({ lastErrorCode: 'ENGINE_E_INTERNAL', lastError: "gave up after 3 attempts: internal error: socket hang up", attempts: 3 });
    expect(calls.filter((c) => c === 'crash:ACMEERR003')).toHaveLength(3);
  });
});
