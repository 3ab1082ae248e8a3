/**
 * Replay of stored messages at store level (`Store.replayStored`): done and
 * dead deliveries go back to pending and run again through a real worker
 * against a real HTTP remote that honours idempotency keys, keeping their
 * ordering key and their place in it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeliveryWorker } from '../../core/delivery/worker.js';
import { classifyHttpStatus, createHttpClient } from '../../core/http/client.js';
import { silentLogger } from '../../core/log.js';
import type { Store } from '../../core/store/sqlite.js';
import type { DeliveryRunner } from '../../core/store/types.js';
import { delivery, message, openStore, sleep, tempDir } from '../helpers/store.js';

const DAY = 86_400_000;

/** A remote that applies each idempotency key once and answers a repeat with 200 without applying it again. */
interface Remote {
  url: string;
  /** Every request in arrival order. */
  received: { op: string; key: string }[];
  applied: string[];
  dropped: string[];
  close(): Promise<void>;
}

async function startRemote(): Promise<Remote> {
  const seen = new Set<string>();
  const r = { received: [] as Remote['received'], applied: [] as string[], dropped: [] as string[] };
  const server = createServer((req, res) => {
    const op = decodeURIComponent((req.url ?? '/').slice(1));
    const key = String(req.headers['idempotency-key'] ?? '');
    r.received.push({ op, key });
    if (seen.has(key)) r.dropped.push(op);
    else {
      seen.add(key);
      r.applied.push(op);
    }
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    ...r,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup() {
  const tmp = tempDir();
  const store = openStore(tmp.dir);
  const remote = await startRemote();
  const http = createHttpClient();
  const runner: DeliveryRunner = async (job) => {
    const res = await http.request(`${remote.url}/${encodeURIComponent(String(job.vars.op))}`, {
      method: 'POST',
      headers: { 'idempotency-key': job.idempotencyKey },
      body: {},
      signal: job.signal,
      target: 'remote',
    });
    const err = classifyHttpStatus(res.status, res.headers, 'remote');
    if (err) throw err;
    return { outcome: 'ok' };
  };
  const workers: DeliveryWorker[] = [];
  const startWorker = () => {
    const w = new DeliveryWorker(store, runner, { log: silentLogger(), pollMs: 10 });
    workers.push(w);
    w.start();
    return w;
  };
  cleanups.push(async () => {
    for (const w of workers) await w.stop(100);
    http.close();
    await remote.close();
    store.close();
    tmp.cleanup();
  });
  return { store, remote, startWorker };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

function deliveryOf(store: Store, messageId: number, index = 0) {
  return store.getMessage(messageId)!.deliveries[index]!;
}

describe('Store.replayStored', () => {
  it('runs a done delivery again with the same idempotency key, so the remote can drop the repeat', async () => {
    const { store, remote, startWorker } = await setup();
    const m = await store.accept(message(), [delivery({ vars: { op: 'upload' } })]);
    const worker = startWorker();
    await until(() => deliveryOf(store, m.messageId).state === 'done');
    expect(remote.received).toHaveLength(1);
    await worker.stop(1000);

    const r = store.replayStored({ messageIds: [m.messageId] }, { staffNo: 'alice' });
    expect(r).toEqual({ missing: [], messages: [{ messageId: m.messageId, controlId: expect.any(String), requeued: 1, stillOpen: 0, purged: false }] });
    const d = deliveryOf(store, m.messageId);
    expect(d).toMatchObject({ state: 'pending', attempts: 0 });
    expect(store.getMessage(m.messageId)!.status).toBe('queued');
    expect(store.pendingCount()).toBe(1);

    startWorker();
    await until(() => remote.received.length === 2 && deliveryOf(store, m.messageId).state === 'done');
    expect(remote.received[1]!.key).toBe(remote.received[0]!.key);
    expect(remote.applied).toEqual(['upload']);
    expect(remote.dropped).toEqual(['upload']);
    expect(deliveryOf(store, m.messageId).attempts).toBe(1);
    await until(() => store.getMessage(m.messageId)!.status === 'done');

    const [audit] = store.queryAudit({ operation: 'replay' });
    expect(audit).toMatchObject({ plugin: 'operator', staffNo: 'alice', messageId: String(m.messageId), result: 'ok', detail: 'requeued 1, still open 0' });
    expect(audit!.patientMasked).toBeTruthy();
  });

  it('puts a replayed older delivery back ahead of a pending later one of the same key', async () => {
    const { store, remote, startWorker } = await setup();
    const key = 'report:R1';
    const upload = await store.accept(message(), [delivery({ orderingKey: key, vars: { op: 'upload' } })]);
    const worker = startWorker();
    await until(() => deliveryOf(store, upload.messageId).state === 'done');
    await worker.stop(1000);
    // The revoke arrives while no worker runs: it is the head of the key.
    const revoke = await store.accept(message(), [delivery({ orderingKey: key, vars: { op: 'revoke' } })]);

    expect(store.replayStored({ messageIds: [upload.messageId] }, { staffNo: 'alice' }).messages[0]!.requeued).toBe(1);
    startWorker();
    await until(() => deliveryOf(store, revoke.messageId).state === 'done' && deliveryOf(store, upload.messageId).state === 'done');
    expect(remote.received.map((x) => x.op)).toEqual(['upload', 'upload', 'revoke']);
  });

  it('lets a running head of the key finish first, then runs the replayed one before later ones', async () => {
    const { store } = await setup();
    const key = 'order:O7';
    const first = await store.accept(message(), [delivery({ orderingKey: key, vars: { op: 'a' } })]);
    const [a] = store.claimDue(Date.now(), 10);
    await store.complete(a!.id, { outcome: 'ok' });
    await store.accept(message(), [delivery({ orderingKey: key, vars: { op: 'b' } })]);
    await store.accept(message(), [delivery({ orderingKey: key, vars: { op: 'c' } })]);
    const [b] = store.claimDue(Date.now(), 10);
    expect(b!.vars.op).toBe('b');

    store.replayStored({ messageIds: [first.messageId] }, { staffNo: 'alice' });
    expect(store.claimDue(Date.now(), 10)).toEqual([]);
    await store.complete(b!.id, { outcome: 'ok' });
    const next = store.claimDue(Date.now(), 10);
    expect(next.map((j) => j.vars.op)).toEqual(['a']);
    expect(next[0]!.idempotencyKey).toBe(a!.idempotencyKey);
    expect(next[0]!.attempt).toBe(1);
    await store.complete(next[0]!.id, { outcome: 'ok' });
    expect(store.claimDue(Date.now(), 10).map((j) => j.vars.op)).toEqual(['c']);
  });

  it('re-queues dead deliveries too, skips open ones and purged bodies, and re-queues nothing when an id is unknown', async () => {
    const { store } = await setup();
    const settled = await store.accept(message(), [delivery({ route: 'r1' }), delivery({ route: 'r2' })]);
    const jobs = store.claimDue(Date.now(), 10);
    expect(jobs.map((j) => j.messageId)).toEqual([settled.messageId, settled.messageId]);
    const open = await store.accept(message(), [delivery({ route: 'r1' })]);
    await store.complete(jobs.find((j) => j.route === 'r1')!.id, { outcome: 'ok' });
    await store.fail(jobs.find((j) => j.route === 'r2')!.id, { code: 'HTTP_E_STATUS', reason: 'HTTP 400', retryable: false });
    expect(store.getMessage(settled.messageId)!.status).toBe('dead');

    const unknown = store.replayStored({ messageIds: [settled.messageId, 999_999] }, { staffNo: 'alice' });
    expect(unknown).toEqual({ messages: [], missing: [999_999] });
    expect(store.getMessage(settled.messageId)!.deliveries.map((d) => d.state)).toEqual(['done', 'dead']);
    expect(store.queryAudit({ operation: 'replay' })).toEqual([]);

    const r = store.replayStored({ messageIds: [settled.messageId, open.messageId] }, { staffNo: 'alice' });
    expect(r.messages.map((m) => [m.messageId, m.requeued, m.stillOpen])).toEqual([[settled.messageId, 2, 0], [open.messageId, 0, 1]]);
    expect(store.getMessage(settled.messageId)!.deliveries.map((d) => [d.state, d.attempts])).toEqual([['pending', 0], ['pending', 0]]);
    expect(store.getMessage(open.messageId)!.deliveries[0]!.state).toBe('pending');
    expect(store.getMessage(settled.messageId)!.status).toBe('queued');

    // Run them to done, then let retention take the body: a purged message cannot be sent again.
    for (const j of store.claimDue(Date.now(), 10)) await store.complete(j.id, { outcome: 'ok' });
    expect(store.purge(Date.now() + 31 * DAY).bodiesPurged).toBe(2);
    const purged = store.replayStored({ messageIds: [settled.messageId] }, { staffNo: 'alice' });
    expect(purged.messages[0]).toMatchObject({ requeued: 0, purged: true });
    expect(store.getMessage(settled.messageId)!.deliveries.map((d) => d.state)).toEqual(['done', 'done']);
    expect(store.pendingCount()).toBe(0);
  });

  it('selects by receive time and route', async () => {
    const { store } = await setup();
    const now = Date.now();
    const old = await store.accept(message({ receivedAt: now - 2 * 3_600_000 }), [delivery({ route: 'r1' })]);
    const recent = await store.accept(message({ receivedAt: now - 60_000 }), [delivery({ route: 'r1' }), delivery({ route: 'r2' })]);
    const other = await store.accept(message({ receivedAt: now - 30_000 }), [delivery({ route: 'r2' })]);
    for (const j of store.claimDue(Date.now(), 10)) await store.complete(j.id, { outcome: 'ok' });

    const r = store.replayStored({ since: now - 3_600_000, route: 'r1' }, { staffNo: 'bob' });
    expect(r.messages.map((m) => [m.messageId, m.requeued])).toEqual([[recent.messageId, 1]]);
    expect(store.getMessage(recent.messageId)!.deliveries.map((d) => [d.route, d.state])).toEqual([['r1', 'pending'], ['r2', 'done']]);
    expect(store.getMessage(old.messageId)!.deliveries[0]!.state).toBe('done');
    expect(store.getMessage(other.messageId)!.deliveries[0]!.state).toBe('done');
    expect(store.queryAudit({ operation: 'replay' })).toMatchObject([{ route: 'r1', staffNo: 'bob', messageId: String(recent.messageId) }]);
  });
});
