import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeliveryWorker, type SettledOutcome } from '../../core/delivery/worker.js';
import { hbError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import type { Store } from '../../core/store/sqlite.js';
import type { DeliveryJob, DeliveryRunner } from '../../core/store/types.js';
import { delivery, message, openStore, sleep, tempDir } from '../helpers/store.js';

/** A remote platform on a random port: applies operations, can fail or hang on demand. */
interface Remote {
  url: string;
  received: string[];
  applied: string[];
  maxConcurrent: number;
  /** op name → status codes to answer before succeeding. */
  failures: Map<string, number[]>;
  hang: Set<string>;
  aborted: string[];
  close(): Promise<void>;
}

async function startRemote(): Promise<Remote> {
  let current = 0;
  const r: Omit<Remote, 'url' | 'close'> = { received: [], applied: [], maxConcurrent: 0, failures: new Map(), hang: new Set(), aborted: [] };
  const server: Server = createServer((req, res) => {
    const op = decodeURIComponent((req.url ?? '/').slice(1));
    r.received.push(op);
    current++;
    r.maxConcurrent = Math.max(r.maxConcurrent, current);
    const finish = (status: number) => {
      current--;
      if (status === 200) r.applied.push(op);
      res.writeHead(status, status === 503 ? { 'retry-after': '0' } : {}).end();
    };
    const queued = r.failures.get(op);
    if (queued && queued.length) return void setTimeout(() => finish(queued.shift()!), 5);
    if (r.hang.has(op)) {
      req.socket.on('close', () => {
        current--;
        r.aborted.push(op);
      });
      return;
    }
    setTimeout(() => finish(200), 20);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return { ...r, get maxConcurrent() { return r.maxConcurrent; }, url: `http://127.0.0.1:${port}`, close: () => new Promise((ok) => { server.closeAllConnections(); server.close(() => ok()); }) } as Remote;
}

/** A runner that calls the remote with the plugin name as the operation, as plugins do through their HTTP client. */
function httpRunner(remote: Remote, seen: DeliveryJob[] = []): DeliveryRunner {
  return async (job) => {
    seen.push(job);
    const op = String(job.vars.op ?? job.plugin);
    if (op === 'crash') throw new TypeError('bug in a plugin');
    const res = await fetch(`${remote.url}/${encodeURIComponent(op)}`, { method: 'POST', signal: job.signal });
    if (res.status === 503) throw hbError('HTTP_E_STATUS_RETRYABLE', { status: 503, target: 'remote' }, { retryAfterMs: 1 });
    if (res.status >= 400) throw hbError('HTTP_E_STATUS', { status: res.status, target: 'remote' });
    return { outcome: 'ok', output: { op } };
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(opts: { perPluginConcurrency?: Record<string, number>; concurrency?: number } = {}) {
  const tmp = tempDir();
  const store = openStore(tmp.dir);
  const remote = await startRemote();
  const settled: { id: number; outcome: SettledOutcome; code?: string }[] = [];
  const seen: DeliveryJob[] = [];
  const worker = new DeliveryWorker(store, httpRunner(remote, seen), {
    log: silentLogger(),
    pollMs: 10,
    ...opts,
    onSettled: (job, outcome, _ms, code) => settled.push({ id: job.id, outcome, ...(code ? { code } : {}) }),
  });
  cleanups.push(tmp.cleanup, () => store.close(), () => remote.close(), () => worker.stop(100));
  return { store, remote, worker, settled, seen, dir: tmp.dir };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

async function queue(store: Store, op: string, key?: string, extra: Partial<Parameters<typeof delivery>[0]> = {}) {
  return store.accept(message(), [delivery({ plugin: op, ...(key ? { orderingKey: key } : {}), retry: { max: 5, initialMs: 5, maxDelayMs: 20 }, ...extra })]);
}

describe('DeliveryWorker against a remote on a random port', () => {
  it('keeps order under retries: upload fails twice (503), revoke of the same report waits for it', async () => {
    const { store, remote, worker, settled } = await setup();
    remote.failures.set('upload', [503, 503]);
    await queue(store, 'upload', 'report:R1');
    await queue(store, 'revoke', 'report:R1');
    worker.start();
    await until(() => settled.length === 4);
    expect(remote.received).toEqual(['upload', 'upload', 'upload', 'revoke']);
    expect(remote.applied).toEqual(['upload', 'revoke']);
    expect(settled.map((s) => s.outcome)).toEqual(['retry', 'retry', 'done', 'done']);
    expect(settled[0]!.code).toBe('HTTP_E_STATUS_RETRYABLE');
    await until(() => store.pendingCount() === 0);
  });

  it('runs different keys in parallel, bounded per plugin', async () => {
    const { store, remote, worker } = await setup({ perPluginConcurrency: { serial: 1 } });
    for (let i = 0; i < 6; i++) await queue(store, 'fast', `k${i}`);
    for (let i = 0; i < 4; i++) await queue(store, 'serial', `s${i}`);
    worker.start();
    await until(() => remote.applied.length === 10);
    expect(remote.maxConcurrent).toBeGreaterThan(1);
    const r2 = await setup({ perPluginConcurrency: { serial: 1 } });
    for (let i = 0; i < 4; i++) await queue(r2.store, 'serial', `s${i}`);
    r2.worker.start();
    await until(() => r2.remote.applied.length === 4);
    expect(r2.remote.maxConcurrent).toBe(1);
  });

  it('claims no more of a plugin than its room: nothing is claimed and released again (issue 15)', async () => {
    const { store, remote, worker } = await setup({ perPluginConcurrency: { serial: 2 } });
    for (let i = 0; i < 8; i++) await queue(store, 'serial', `s${i}`);
    const released: number[] = [];
    const release = store.release.bind(store);
    store.release = (ids, opts) => {
      released.push(...ids);
      return release(ids, opts);
    };
    worker.start();
    await until(() => remote.applied.length === 8);
    expect(remote.maxConcurrent).toBeLessThanOrEqual(2);
    // Before: each claim took up to 16 rows of `serial` and gave all but its room back in a second write.
    expect(released).toEqual([]);
    await until(() => store.pendingCount() === 0);
  });

  it('dead-letters a permanent error with its reason; replay after the cause is fixed delivers it', async () => {
    const { store, remote, worker, settled } = await setup();
    remote.failures.set('authorize', [400]);
    const { messageId } = await queue(store, 'authorize', 'p1');
    worker.start();
    await until(() => settled.length === 1);
    expect(settled[0]).toMatchObject({ outcome: 'dead', code: 'HTTP_E_STATUS' });
    const [dead] = store.listDead();
    expect(dead).toMatchObject({ messageId, lastErrorCode: 'HTTP_E_STATUS', lastError: 'HTTP 400 from remote', attempts: 1 });
    expect(store.requeue({ ids: [dead!.id] })).toBe(1);
    worker.kick();
    await until(() => remote.applied.includes('authorize'));
    await until(() => store.getMessage(messageId)!.status === 'done');
    expect(store.listDead()).toHaveLength(0);
  });

  it('treats a non-catalogued throw as a retryable internal error', async () => {
    const { store, worker, settled } = await setup();
    await queue(store, 'x', 'k', { vars: { op: 'crash' }, retry: { max: 2, initialMs: 1, maxDelayMs: 1 } });
    worker.start();
    await until(() => settled.length === 2);
    expect(settled.map((s) => [s.outcome, s.code])).toEqual([['retry', 'ENGINE_E_INTERNAL'], ['dead', 'ENGINE_E_INTERNAL']]);
    expect(store.listDead()[0]!.lastError).toMatch(/gave up after 2 attempts: internal error: bug in a plugin/);
  });

  it('stop(grace) aborts what hangs past the grace and releases it back to pending', async () => {
    const { store, remote, worker } = await setup();
    remote.hang.add('slow');
    const { messageId } = await queue(store, 'slow', 'k1');
    await queue(store, 'quick', 'k2');
    worker.start();
    await until(() => remote.applied.includes('quick') && remote.received.includes('slow'));
    await worker.stop(50);
    await until(() => remote.aborted.includes('slow'));
    const d = store.getMessage(messageId)!.deliveries[0]!;
    expect(d).toMatchObject({ state: 'pending', attempts: 0 });
    expect(d.attemptLog.map((a) => a.outcome)).toEqual(['released']);
    expect(store.pendingCount()).toBe(1);
  });

  it('gives each delivery a stable idempotency key across retries', async () => {
    const { store, remote, worker, seen } = await setup();
    remote.failures.set('up', [503]);
    await queue(store, 'up', 'k');
    worker.start();
    await until(() => remote.applied.length === 1);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.idempotencyKey).toBe(seen[1]!.idempotencyKey);
    expect(seen.map((j) => j.attempt)).toEqual([1, 2]);
  });
});
