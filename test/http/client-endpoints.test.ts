/**
 * The outbound client parses each URL once and builds plain request options
 * from it (issue 15): the options must carry everything the URL said. Real
 * node:http servers on 127.0.0.1 and ::1, random ports.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient } from '../../core/http/client.js';

const seen: { url: string; auth?: string; host?: string }[] = [];
const servers: http.Server[] = [];
const client = createHttpClient();

function listen(host: string): Promise<number> {
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', ...(req.headers.authorization ? { auth: req.headers.authorization } : {}), ...(req.headers.host ? { host: req.headers.host } : {}) });
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url })));
  });
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

let port4 = 0;
let port6 = 0;
beforeAll(async () => {
  port4 = await listen('127.0.0.1');
  port6 = await listen('::1').catch(() => 0);
});
afterAll(async () => {
  client.close();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

describe('outbound client endpoints', () => {
  it('sends path, query and credentials from the URL, and the Host header with the port', async () => {
    const res = await client.request(`http://user%40x:p%3Ass@127.0.0.1:${port4}/a/b?c=1&d=%E4%B8%AD`, { method: 'POST', body: { k: 1 } });
    expect(res.status).toBe(200);
    const last = seen[seen.length - 1]!;
    expect(last.url).toBe('/a/b?c=1&d=%E4%B8%AD');
    expect(last.host).toBe(`127.0.0.1:${port4}`);
    expect(Buffer.from(last.auth!.replace('Basic ', ''), 'base64').toString()).toBe('user@x:p:ss');
  });

  it('reaches an IPv6 literal host (brackets removed for node:http)', async (ctx) => {
    if (!port6) ctx.skip();
    const res = await client.request(`http://[::1]:${port6}/six`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ path: '/six' });
  });

  it('serves many distinct URLs right after its parse cache fills and is cleared', async () => {
    for (let i = 0; i < 300; i++) {
      const res = await client.request(`http://127.0.0.1:${port4}/n/${i}`);
      expect(res.json).toEqual({ path: `/n/${i}` });
    }
    // Earlier URLs, parsed before the clear, still go to their own path.
    expect((await client.request(`http://127.0.0.1:${port4}/n/0`)).json).toEqual({ path: '/n/0' });
  });

  it('still refuses an invalid URL and another protocol, naming the target but not the URL', async () => {
    await expect(client.request('not a url')).rejects.toMatchObject({ code: 'HTTP_E_BAD_REQUEST' });
    const e = await client.request('ftp://secret-host/token=abc', { target: 'remote' }).catch((x: Error) => x);
    expect(e).toMatchObject({ code: 'HTTP_E_BAD_REQUEST' });
    expect((e as Error).message).toContain('remote');
    expect((e as Error).message).not.toContain('token=abc');
  });
});
