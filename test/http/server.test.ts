import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type HttpServer } from '../../core/http/server.js';
import { gdEhrError } from '../../plugins/gd-ehr/errors.js';
import { silentLogger } from '../../core/log.js';

describe('engine HTTP server', () => {
  let s: HttpServer;
  beforeAll(async () => {
    s = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      log: silentLogger(),
      endpoints: [
        { method: 'POST', path: '/echo/:id', handler: async (r) => ({ status: 200, body: { id: r.params.id, q: r.query, body: r.body } }) },
        { method: 'GET', path: '/fail', handler: async () => { throw gdEhrError('GDEHR_E_MISSING_PARAM', { field: 'idcard' }); } },
        { method: 'GET', path: '/crash', handler: async () => { throw new Error('secret detail 440106199001011237'); } },
      ],
    });
  });
  afterAll(() => s.close());

  it('routes params, query and JSON bodies', async () => {
    const r = await fetch(`${s.url}/echo/%E5%BC%A0?a=1`, { method: 'POST', body: JSON.stringify({ x: 1 }), headers: { 'content-type': 'application/json' } });
    expect(await r.json()).toEqual({ id: '张', q: { a: '1' }, body: { x: 1 } });
  });

  it('accepts form-encoded bodies', async () => {
    const r = await fetch(`${s.url}/echo/1`, { method: 'POST', body: 'a=1&b=%E4%B8%89', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(((await r.json()) as { body: unknown }).body).toEqual({ a: '1', b: '三' });
  });

  it('answers 400 with a code for invalid JSON, 404 and 405 for unknown paths and methods', async () => {
    const bad = await fetch(`${s.url}/echo/1`, { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('HTTP_E_BAD_REQUEST');
    expect((await fetch(`${s.url}/nope`)).status).toBe(404);
    expect((await fetch(`${s.url}/echo/1`)).status).toBe(405);
  });

  it('maps catalogued errors to their status and hides unexpected ones', async () => {
    const f = await fetch(`${s.url}/fail`);
    expect(f.status).toBe(400);
    expect(await f.json()).toEqual({ code: 'GDEHR_E_MISSING_PARAM', message: 'missing parameter idcard' });
    const c = await fetch(`${s.url}/crash`);
    expect(c.status).toBe(500);
    expect(await c.text()).not.toContain('440106');
  });

  it('refuses bodies over 1 MiB with 413', async () => {
    // fetch sends the whole body first; with lingering close it reads the 413 instead of a reset.
    const r = await fetch(`${s.url}/echo/1`, { method: 'POST', body: 'x'.repeat(1024 * 1024 + 10), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(413);
    expect(((await r.json()) as { code: string }).code).toBe('HTTP_E_TOO_LARGE');
    expect((await fetch(`${s.url}/echo/2`, { method: 'POST', body: '{}' })).status).toBe(200);
  });

  /** Streams `total` bytes of body in 64 KiB chunks and resolves with the status the server answers (or 'reset'). */
  function bigPost(total: number, headers: Record<string, string | number>): Promise<{ status: number | 'reset'; code?: string; sawContinue: boolean }> {
    return new Promise((resolve) => {
      const u = new URL(`${s.url}/echo/big`);
      let sawContinue = false;
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', ...headers } });
      req.on('error', () => resolve({ status: 'reset', sawContinue }));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, code: (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code: string }).code, sawContinue }));
        res.on('error', () => resolve({ status: 'reset', sawContinue }));
      });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = () => {
        while (sent < total && !req.destroyed) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        if (!req.destroyed) req.end();
      };
      if (headers.expect) {
        req.on('continue', () => {
          sawContinue = true;
          pump();
        });
        req.flushHeaders();
      } else pump();
    });
  }

  it('answers a 5 MB body with a declared length 413 HTTP_E_TOO_LARGE, not a reset', async () => {
    expect(await bigPost(5_000_000, { 'content-length': 5_000_000 })).toMatchObject({ status: 413, code: 'HTTP_E_TOO_LARGE' });
  });

  it('answers a 5 MB chunked body 413 HTTP_E_TOO_LARGE, not a reset', async () => {
    expect(await bigPost(5_000_000, { 'transfer-encoding': 'chunked' })).toMatchObject({ status: 413, code: 'HTTP_E_TOO_LARGE' });
  });

  it('answers Expect: 100-continue with a declared length over the limit 413 before the body is sent', async () => {
    expect(await bigPost(5_000_000, { 'content-length': 5_000_000, expect: '100-continue' })).toEqual({ status: 413, code: 'HTTP_E_TOO_LARGE', sawContinue: false });
    // A small body with the same header still gets its 100 Continue.
    expect(await bigPost(64 * 1024, { 'content-length': 64 * 1024, expect: '100-continue' })).toMatchObject({ status: 400, sawContinue: true });
  });

  it('parses a body as a form only when the media type is application/x-www-form-urlencoded, not when a parameter mentions it', async () => {
    const r = await fetch(`${s.url}/echo/1`, { method: 'POST', body: 'a=b', headers: { 'content-type': 'application/json; x=application/x-www-form-urlencoded' } });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { code: string }).code).toBe('HTTP_E_BAD_REQUEST');
  });
});
