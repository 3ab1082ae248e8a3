/**
 * `HttpRequestOptions.signal` in the outbound client (core/http/client.ts),
 * against a real slow node:http server: engine shutdown aborts calls that a
 * slow remote would otherwise hold for their whole deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { getEventListeners } from 'node:events';
import { createHttpClient } from '../../core/http/client.js';
import { HisbridgeError } from '../../core/errors.js';

/** Requests the server saw, and which of them had their connection closed before an answer. */
const seen: string[] = [];
const dropped: string[] = [];
/** Resolvers waiting for the server to receive a given path. */
const arrivals = new Map<string, () => void>();
let server: http.Server;
let base: string;
const client = createHttpClient();

function arrived(path: string): Promise<void> {
  return new Promise((r) => arrivals.set(path, r));
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    seen.push(path);
    res.on('close', () => {
      if (!res.writableFinished) dropped.push(path);
    });
    req.resume();
    req.on('end', () => {
      arrivals.get(path)?.();
      // /hang never answers; /trickle sends the head and part of the body, then stalls; /ok answers at once.
      if (path.startsWith('/trickle')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"partial":');
      } else if (path.startsWith('/ok')) res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  client.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function rejection(p: Promise<unknown>): Promise<HisbridgeError> {
  try {
    await p;
  } catch (e) {
    return e as HisbridgeError;
  }
  throw new Error('the call did not fail');
}

async function until(cond: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('aborting an outbound call', () => {
  it('aborts a call waiting for a slow remote with a retryable HTTP_E_ABORTED and closes its connection', async () => {
    const ac = new AbortController();
    const here = arrived('/hang?idcard=440106199003071234');
    // A deadline far beyond the test timeout: only the abort can end this call.
    const call = client.request(`${base}/hang?idcard=440106199003071234`, { method: 'POST', body: { a: 1 }, timeoutMs: 600_000, target: 'slow-remote', signal: ac.signal });
    await here;
    ac.abort();
    const e = await rejection(call);
    expect(e).toBeInstanceOf(HisbridgeError);
    expect(e.code).toBe('HTTP_E_ABORTED');
    expect(e.retryable).toBe(true);
    expect(e.message).toContain('aborted');
    expect(e.message).toContain('slow-remote');
    expect(e.message).not.toContain('440106');
    await until(() => dropped.includes('/hang?idcard=440106199003071234'));
  });

  it('aborts while the response body is still arriving', async () => {
    const ac = new AbortController();
    const here = arrived('/trickle');
    const call = client.request(`${base}/trickle`, { timeoutMs: 600_000, signal: ac.signal });
    await here;
    // Give the head and the first body bytes time to reach the client before aborting.
    await new Promise((r) => setTimeout(r, 50));
    ac.abort(new Error('engine shutting down'));
    const e = await rejection(call);
    expect(e.code).toBe('HTTP_E_ABORTED');
    expect(e.cause).toBeInstanceOf(Error);
    await until(() => dropped.includes('/trickle'));
  });

  it('does not even connect when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    const e = await rejection(client.request(`${base}/ok-never`, { signal: ac.signal }));
    expect(e.code).toBe('HTTP_E_ABORTED');
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).not.toContain('/ok-never');
  });

  it('leaves a long-lived signal without listeners once calls finish, and works again after an abort', async () => {
    const shutdown = new AbortController();
    for (let i = 0; i < 20; i++) {
      const res = await client.request(`${base}/ok-${i}`, { signal: shutdown.signal });
      expect(res.status).toBe(200);
    }
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    shutdown.abort();
    const after = await client.request(`${base}/ok-after`, { signal: new AbortController().signal });
    expect(after.json).toEqual({ ok: true });
  });
});
