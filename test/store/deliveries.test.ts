import { describe, expect, it } from 'vitest';
import { delivery, freshDirs, message, openStore, sleep } from '../helpers/store.js';
import type { Store } from '../../core/store/sqlite.js';

const fresh = freshDirs();

const retryable = { code: 'HTTP_E_STATUS_RETRYABLE', reason: 'HTTP 503 from sim', retryable: true };
const FAR = Date.now() + 3_600_000;

async function claimOne(store: Store, waitMs = 500) {
  const until = Date.now() + waitMs;
  for (;;) {
    const got = store.claimDue(Date.now(), 10);
    if (got.length || Date.now() > until) return got;
    await sleep(2);
  }
}

describe('deliveries: ordering, retries, dead letter', () => {
  it('runs deliveries sharing a key strictly in order across retries; other keys in parallel', async () => {
    const store = openStore(fresh());
    const ids: number[] = [];
    for (const op of ['upload', 'revoke', 'upload-again']) {
      const { messageId } = await store.accept(message({ controlId: op }), [delivery({ orderingKey: 'report:42', plugin: op })]);
      ids.push(store.getMessage(messageId)!.deliveries[0]!.id);
    }
    await store.accept(message(), [delivery({ orderingKey: 'report:43', plugin: 'other' })]);

    const order: string[] = [];
    // First claim: heads of both keys, never the second delivery of report:42.
    let batch = store.claimDue(FAR, 10);
    expect(batch.map((j) => j.plugin).sort()).toEqual(['other', 'upload']);
    await store.complete(batch.find((j) => j.plugin === 'other')!.id, { outcome: 'ok' });
    let head = batch.find((j) => j.plugin === 'upload')!;
    for (let i = 0; i < 2; i++) {
      expect(await store.fail(head.id, retryable)).toBe('retrying');
      // While the head waits for its retry, nothing else of its key is due even far in the future.
      const again = store.claimDue(FAR, 10);
      expect(again.map((j) => j.id)).toEqual([head.id]);
      expect(again[0]!.attempt).toBe(i + 2);
      head = again[0]!;
    }
    order.push(head.plugin);
    await store.complete(head.id, { outcome: 'ok' });
    for (;;) {
      batch = store.claimDue(FAR, 10);
      if (!batch.length) break;
      expect(batch).toHaveLength(1);
      order.push(batch[0]!.plugin);
      await store.complete(batch[0]!.id, { outcome: 'ok' });
    }
    expect(order).toEqual(['upload', 'revoke', 'upload-again']);
    const attempts = store.getMessage(store.getMessage(1)!.id)!.deliveries[0]!.attemptLog.map((a) => a.outcome);
    expect(attempts).toEqual(['retry', 'retry', 'ok']);
    expect(store.pendingCount()).toBe(0);
    store.close();
  });

  it('waits for the back-off before a retry is due, and honours Retry-After', async () => {
    const store = openStore(fresh());
    await store.accept(message(), [delivery({ retry: { max: 5, initialMs: 10, maxDelayMs: 10 } })]);
    const [job] = store.claimDue(Date.now(), 1);
    await store.fail(job!.id, { ...retryable, retryAfterMs: 60_000 });
    expect(store.claimDue(Date.now() + 30_000, 1)).toHaveLength(0);
    expect(store.claimDue(Date.now() + 61_000, 1)).toHaveLength(1);
    store.close();
  });

  it('sends a permanent error straight to dead letter with its reason, and exhausted retries too', async () => {
    const store = openStore(fresh());
    const a = await store.accept(message(), [delivery({ orderingKey: 'A' })]);
    const b = await store.accept(message(), [delivery({ orderingKey: 'B', retry: { max: 2, initialMs: 1, maxDelayMs: 1 } })]);
    const jobs = store.claimDue(Date.now(), 10);
    const ja = jobs.find((j) => j.messageId === a.messageId)!;
    const jb = jobs.find((j) => j.messageId === b.messageId)!;
    expect(await store.fail(ja.id, { code: 'HTTP_E_STATUS', reason: 'HTTP 400 from gd-ehr', retryable: false })).toBe('dead');
    expect(await store.fail(jb.id, retryable)).toBe('retrying');
    const [jb2] = store.claimDue(FAR, 10);
    expect(await store.fail(jb2!.id, retryable)).toBe('dead');
    const dead = store.listDead();
    expect(dead.map((d) => d.id).sort()).toEqual([ja.id, jb.id].sort());
    expect(dead.find((d) => d.id === ja.id)).toMatchObject({ lastErrorCode: 'HTTP_E_STATUS', lastError: 'HTTP 400 from gd-ehr', attempts: 1 });
    expect(dead.find((d) => d.id === jb.id)!.lastError).toMatch(/^gave up after 2 attempts/);
    expect(store.getMessage(a.messageId)!.status).toBe('dead');
    expect(store.pendingCount()).toBe(0);
    store.close();
  });

  it('requeues dead deliveries (attempts reset, key kept) and they complete', async () => {
    const store = openStore(fresh());
    const m = await store.accept(message(), [delivery({ orderingKey: 'K', route: 'gd' })]);
    const [job] = store.claimDue(Date.now(), 1);
    await store.fail(job!.id, { code: 'HTTP_E_STATUS', reason: 'bad', retryable: false });
    expect(store.requeue({})).toBe(0);
    expect(store.requeue({ route: 'other' })).toBe(0);
    expect(store.requeue({ ids: [job!.id] })).toBe(1);
    expect(store.pendingCount()).toBe(1);
    const d = store.getMessage(m.messageId)!.deliveries[0]!;
    expect(d).toMatchObject({ state: 'pending', attempts: 0, orderingKey: 'K' });
    const [again] = store.claimDue(Date.now(), 1);
    expect(again!.id).toBe(job!.id);
    expect(again!.idempotencyKey).toBe(job!.idempotencyKey);
    await store.complete(again!.id, { outcome: 'ok' });
    expect(store.getMessage(m.messageId)!.status).toBe('done');
    store.close();
  });

  it('a replayed older delivery waits for the running head of its key, then runs before later ones', async () => {
    const store = openStore(fresh());
    await store.accept(message(), [delivery({ orderingKey: 'K', plugin: 'p1' })]);
    const [first] = store.claimDue(Date.now(), 5);
    await store.fail(first!.id, { code: 'X', reason: 'bad', retryable: false });
    await store.accept(message(), [delivery({ orderingKey: 'K', plugin: 'p2' })]);
    await store.accept(message(), [delivery({ orderingKey: 'K', plugin: 'p3' })]);
    const [second] = store.claimDue(Date.now(), 5);
    expect(second!.plugin).toBe('p2');
    store.requeue({ all: true });
    expect(store.claimDue(Date.now(), 5)).toHaveLength(0);
    await store.complete(second!.id, { outcome: 'ok' });
    expect(store.claimDue(Date.now(), 5).map((j) => j.plugin)).toEqual(['p1']);
    store.close();
  });

  it('hands a step output to later steps of the same message and route (vars[as])', async () => {
    const store = openStore(fresh());
    const m = await store.accept(message(), [
      delivery({ step: 1, as: 'auth', plugin: 'gd-ehr-authorize' }),
      delivery({ step: 2, plugin: 'log-url', vars: { keep: 1 } }),
    ]);
    const [first] = store.claimDue(Date.now(), 10);
    expect(first!.step).toBe(1);
    await store.complete(first!.id, { outcome: 'ok', output: { code: 'A1' } });
    const [second] = store.claimDue(Date.now(), 10);
    expect(second!.step).toBe(2);
    expect(second!.vars).toEqual({ keep: 1, auth: { code: 'A1' } });
    expect(store.getMessage(m.messageId)!.deliveries[0]!.output).toEqual({ code: 'A1' });
    store.close();
  });

  it('recovers in-flight deliveries after a crash (closed without completing): due again, attempt not counted', async () => {
    const dir = fresh();
    const store = openStore(dir);
    await store.accept(message(), [delivery({ orderingKey: 'K' })]);
    await store.accept(message(), [delivery({ orderingKey: 'K' })]);
    const [job] = store.claimDue(Date.now(), 10);
    expect(job!.attempt).toBe(1);
    store.close();
    const again = openStore(dir);
    expect(again.claimDue(Date.now(), 10)).toHaveLength(0);
    expect(again.recover()).toBe(1);
    const [retry] = await claimOne(again);
    expect(retry!.id).toBe(job!.id);
    expect(retry!.attempt).toBe(1);
    // A late answer for an attempt that was released must not settle the new one.
    again.release([retry!.id]);
    expect(await again.complete(retry!.id, { outcome: 'ok' })).toBe(false);
    again.close();
  });
});
