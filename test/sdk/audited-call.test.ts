/**
 * auditedCall (core/audited-call.ts, exported by core/sdk): the one
 * audit-and-timing wrapper of outbound plugin calls. One row per call, `ok`
 * or `failed`, with the latency; failures rethrown as a HisbridgeError.
 */
import { describe, expect, it } from 'vitest';
import { auditedCall, errorFactory, HisbridgeError, type AuditEntry } from '../../core/sdk.js';

const entry = { plugin: 'demo', operation: 'send', orgCode: 'O1', patientId: 'P1', route: 'r1' };

describe('auditedCall', () => {
  it('writes one ok row with the latency and the ok detail, and returns the value', async () => {
    const rows: AuditEntry[] = [];
    const value = await auditedCall((e) => rows.push(e), entry, async () => {
      await new Promise((r) => setTimeout(r, 20));
      return { code: '1' };
    }, { ok: (v) => `returnCode ${v.code}` });
    expect(value).toEqual({ code: '1' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ ...entry, result: 'ok', detail: 'returnCode 1' });
    expect(Number.isInteger(rows[0]!.latencyMs)).toBe(true);
    expect(rows[0]!.latencyMs).toBeGreaterThanOrEqual(15);
  });

  it('leaves detail out when the ok callback gives none', async () => {
    const rows: AuditEntry[] = [];
    await auditedCall((e) => rows.push(e), entry, async () => 1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).not.toHaveProperty('detail');
  });

  it('writes one failed row with the error code and rethrows the same HisbridgeError', async () => {
    const { error } = errorFactory('DEMO', { DEMO_E_REFUSED: { retryable: false, message: 'refused: {why}' } });
    const thrown = error('DEMO_E_REFUSED', { why: 'no' });
    const rows: AuditEntry[] = [];
    await expect(auditedCall((e) => rows.push(e), entry, async () => {
      throw thrown;
    })).rejects.toBe(thrown);
    expect(rows).toEqual([{ ...entry, result: 'failed', latencyMs: expect.any(Number), detail: 'DEMO_E_REFUSED' }]);
  });

  it('turns a plain Error into the retryable ENGINE_E_INTERNAL, and the failed callback writes the detail', async () => {
    const rows: AuditEntry[] = [];
    const err = await auditedCall((e) => rows.push(e), entry, async () => {
      throw new Error('socket hang up');
    }, { failed: (e) => `${e.code} (wrapped)` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HisbridgeError);
    expect((err as HisbridgeError).code).toBe('ENGINE_E_INTERNAL');
    expect((err as HisbridgeError).retryable).toBe(true);
    expect(rows.map((r) => [r.result, r.detail])).toEqual([['failed', 'ENGINE_E_INTERNAL (wrapped)']]);
  });
});
