// Tests of the generic outbound client (core/http/client.ts) against a real node:http server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { classifyHttpStatus, createHttpClient, parseRetryAfter } from '../../core/http/client.js';
import { rejection } from '../helpers/errors.js';

let server: http.Server;
let base: string;
const client = createHttpClient({ defaultTimeoutMs: 2000 });
const sockets = new Set<string>();

beforeAll(async () => {
  server = http.createServer((req, res) => {
    sockets.add(`${req.socket.remotePort}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/echo') {
        res.setHeader('content-type', 'application/json');
        res.setHeader('set-cookie', ['a=1', 'b=2']);
        res.end(JSON.stringify({ method: req.method, type: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8'), h: req.headers['x-test'] }));
      } else if (url.pathname === '/slow') {
        setTimeout(() => res.end('late'), 1500);
      } else if (url.pathname === '/status') {
        res.statusCode = Number(url.searchParams.get('s'));
        if (url.searchParams.get('ra')) res.setHeader('retry-after', url.searchParams.get('ra')!);
        res.end('x');
      } else if (url.pathname === '/text') {
        res.end('plain words');
      } else {
        res.statusCode = 404;
        res.end();
      }
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


describe('createHttpClient', () => {
  it('sends JSON bodies as UTF-8 and parses JSON answers', async () => {
    const res = await client.request(`${base}/echo`, { method: 'POST', body: { name: '张三' }, headers: { 'x-test': 'yes' } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ method: 'POST', type: 'application/json; charset=utf-8', body: '{"name":"张三"}', h: 'yes' });
    expect(res.headers['set-cookie']).toBe('a=1, b=2');
    expect(res.latencyMs).toBeGreaterThan(0);
  });

  it('sends strings as is and leaves non-JSON answers unparsed', async () => {
    const res = await client.request(`${base}/echo`, { method: 'PUT', body: 'raw', headers: { 'content-type': 'text/plain' } });
    expect((res.json as { body: string; type: string }).body).toBe('raw');
    expect((res.json as { type: string }).type).toBe('text/plain');
    const text = await client.request(`${base}/text`);
    expect(text.json).toBeUndefined();
    expect(text.body.toString()).toBe('plain words');
  });

  it('reuses connections (keep-alive)', async () => {
    sockets.clear();
    for (let i = 0; i < 10; i++) await client.request(`${base}/echo`);
    // undici reuses a connection one event-loop turn after its answer ended (so that a server's close is seen
    // first), and a call made as soon as the previous one resolves takes a second connection: two, not ten.
    expect(sockets.size).toBeLessThanOrEqual(2);
  });

  it('returns any status for the caller to classify', async () => {
    const res = await client.request(`${base}/status?s=503`);
    expect(res.status).toBe(503);
  });

  it('times out with HTTP_E_TIMEOUT naming the target, not the query', async () => {
    const e = await rejection(client.request(`${base}/slow?secret=abc`, { timeoutMs: 200, target: 'slow-remote' }));
    expect(e.code).toBe('HTTP_E_TIMEOUT');
    expect(e.retryable).toBe(true);
    expect(e.message).toBe('timeout after 200 ms calling slow-remote');
  });

  it('reports a refused connection as retryable HTTP_E_NETWORK without the URL', async () => {
    const spare = net.createServer();
    await new Promise<void>((r) => spare.listen(0, '127.0.0.1', r));
    const port = (spare.address() as AddressInfo).port;
    await new Promise((r) => spare.close(r));
    const e = await rejection(client.request(`http://127.0.0.1:${port}/x?idcard=440106199001011234`));
    expect(e.code).toBe('HTTP_E_NETWORK');
    expect(e.retryable).toBe(true);
    expect(e.message).toContain(`127.0.0.1:${port}`);
    expect(e.message).toContain('ECONNREFUSED');
    expect(e.message).not.toContain('idcard');
  });

  it('reports a connection reset mid-request as HTTP_E_NETWORK', async () => {
    const rude = net.createServer((s) => s.once('data', () => s.destroy()));
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
    const e = await rejection(client.request(`http://127.0.0.1:${(rude.address() as AddressInfo).port}/`, { target: 'rude' }));
    expect(e.code).toBe('HTTP_E_NETWORK');
    expect(e.message).toMatch(/^network error calling rude: /);
    await new Promise((r) => rude.close(r));
  });

  it('refuses a bad URL', async () => {
    expect((await rejection(client.request('not a url'))).code).toBe('HTTP_E_BAD_REQUEST');
    expect((await rejection(client.request('ftp://x/'))).code).toBe('HTTP_E_BAD_REQUEST');
  });
});

describe('classifyHttpStatus', () => {
  it('2xx is fine', () => {
    expect(classifyHttpStatus(200, {}, 't')).toBeUndefined();
    expect(classifyHttpStatus(204, {}, 't')).toBeUndefined();
  });

  it('429 and 5xx are retryable, with Retry-After in seconds or as a date', async () => {
    const res = await client.request(`${base}/status?s=429&ra=7`);
    const e = classifyHttpStatus(res.status, res.headers, 'gw')!;
    expect(e.code).toBe('HTTP_E_STATUS_RETRYABLE');
    expect(e.retryable).toBe(true);
    expect(e.retryAfterMs).toBe(7000);
    expect(e.message).toBe('HTTP 429 from gw');
    const now = Date.parse('2026-01-01T00:00:00Z');
    const d = classifyHttpStatus(503, { 'retry-after': 'Thu, 01 Jan 2026 00:00:30 GMT' }, 'gw', now)!;
    expect(d.retryable).toBe(true);
    expect(d.retryAfterMs).toBe(30_000);
    expect(classifyHttpStatus(500, {}, 'gw')!.retryAfterMs).toBeUndefined();
  });

  it('other statuses are permanent', () => {
    for (const s of [301, 400, 401, 404, 422]) {
      const e = classifyHttpStatus(s, {}, 'gw')!;
      expect(e.code).toBe('HTTP_E_STATUS');
      expect(e.retryable).toBe(false);
    }
  });

  it('parseRetryAfter ignores junk and clamps past dates to 0', () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter('Thu, 01 Jan 1970 00:00:00 GMT')).toBe(0);
  });
});
