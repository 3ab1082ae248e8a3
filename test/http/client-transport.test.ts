/**
 * What the outbound client (core/http/client.ts) does itself on top of
 * undici, against real servers over TCP on 127.0.0.1: one more attempt when
 * a kept-alive connection turns out closed by the server, and only then; the
 * deadline closing the connection and never sending a call that waited past
 * it; close(); the user-agent and URL credentials; HTTPS with the system CA
 * store (NODE_EXTRA_CA_CERTS in a child process) and refusal of an unknown CA.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient, type OwnedHttpClient } from '../../core/http/client.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { rejection } from '../helpers/errors.js';

const OK = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: keep-alive\r\n\r\n{"ok":true}';

/**
 * A raw HTTP/1.1 server: answers every request (one request per data event;
 * the client sends one at a time per connection) with `OK`, except that
 * `onRequest` may take over a request by returning true.
 */
interface RawServer {
  port: number;
  connections: number;
  requests: string[];
  closed: number;
  close(): Promise<void>;
}

async function rawServer(onRequest: (s: net.Socket, nth: number, firstLine: string) => boolean): Promise<RawServer> {
  const state = { connections: 0, requests: [] as string[], closed: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    state.connections++;
    sockets.add(s);
    let nth = 0;
    s.on('close', () => {
      state.closed++;
      sockets.delete(s);
    });
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      const firstLine = d.toString('latin1').split('\r\n', 1)[0]!;
      state.requests.push(firstLine);
      nth++;
      if (!onRequest(s, nth, firstLine)) s.write(OK);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(state, {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  }) as RawServer;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not met in time`);
    await new Promise((r) => setTimeout(r, 5));
  }
}


/** Lets the client see that its connection is free again (undici reuses a connection a loop turn after its answer). */
const nextTurns = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

const clients: OwnedHttpClient[] = [];
const servers: RawServer[] = [];
function client(opts?: Parameters<typeof createHttpClient>[0]): OwnedHttpClient {
  const c = createHttpClient(opts);
  clients.push(c);
  return c;
}
async function server(onRequest: Parameters<typeof rawServer>[0]): Promise<RawServer> {
  const s = await rawServer(onRequest);
  servers.push(s);
  return s;
}
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('a kept-alive connection the server closed', () => {
  for (const how of ['FIN', 'RST'] as const) {
    it(`sends the call again on another connection (${how} on the reused one)`, async () => {
      let dropped = 0;
      // The second request on any connection meets a server that had closed it: nothing is answered.
      const s = await server((sock, nth) => {
        if (nth !== 2) return false;
        dropped++;
        if (how === 'RST') sock.resetAndDestroy();
        else sock.destroy();
        return true;
      });
      const c = client({ defaultTimeoutMs: 3000 });
      const url = `http://127.0.0.1:${s.port}/deliver?idcard=440106199001011234`;
      expect((await c.request(url, { body: { n: 1 } })).status).toBe(200);
      await nextTurns();
      const res = await c.request(url, { body: { n: 2 } });
      expect(res.status).toBe(200);
      expect(res.json).toEqual({ ok: true });
      // The reused connection was really met closed, and the call went out once more on a new one.
      expect(dropped).toBe(1);
      expect(s.connections).toBe(2);
      expect(s.requests).toHaveLength(3);
    });
  }

  it('does not send again once the answer had begun on the reused connection', async () => {
    const s = await server((sock, nth) => {
      if (nth !== 2) return false;
      sock.write('HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{"par');
      setTimeout(() => sock.destroy(), 20);
      return true;
    });
    const c = client({ defaultTimeoutMs: 3000 });
    const url = `http://127.0.0.1:${s.port}/deliver`;
    await c.request(url, { body: { n: 1 } });
    await nextTurns();
    const e = await rejection(c.request(url, { body: { n: 2 }, target: 'platform' }));
    expect(e.code).toBe('HTTP_E_NETWORK');
    expect(e.message).toMatch(/^network error calling platform: /);
    expect(s.requests).toHaveLength(2);
  });

  it('does not send again when a new connection is reset', async () => {
    const s = await server((sock) => {
      sock.resetAndDestroy();
      return true;
    });
    const c = client({ defaultTimeoutMs: 3000 });
    const e = await rejection(c.request(`http://127.0.0.1:${s.port}/x?token=abc`, { body: { n: 1 } }));
    expect(e.code).toBe('HTTP_E_NETWORK');
    expect(e.message).toContain(`127.0.0.1:${s.port}`);
    expect(e.message).not.toContain('token');
    expect(s.connections).toBe(1);
    expect(s.requests).toHaveLength(1);
  });
});

describe('deadline and close()', () => {
  it('closes the connection of a call past its deadline, and the next call works', async () => {
    let hung: net.Socket | undefined;
    let hungClosed = false;
    const s = await server((sock, _nth, line) => {
      if (!line.includes('/hang')) return false;
      hung = sock;
      sock.once('close', () => (hungClosed = true));
      return true;
    });
    const c = client();
    const e = await rejection(c.request(`http://127.0.0.1:${s.port}/hang`, { method: 'POST', body: { a: 1 }, timeoutMs: 400, target: 'slow' }));
    expect(e.code).toBe('HTTP_E_TIMEOUT');
    expect(e.message).toBe('timeout after 400 ms calling slow');
    // The request was written (the server holds it), so its connection must go: HTTP/1.1 cannot take a request back.
    // (A deadline that passed before the connection was up sends nothing: the next test covers that.)
    expect(hung).toBeDefined();
    await until(() => hungClosed, 'the timed-out connection closed');
    expect((await c.request(`http://127.0.0.1:${s.port}/ok`)).status).toBe(200);
  });

  it('never sends a call whose deadline passed while it waited for a connection', async () => {
    let held: net.Socket | undefined;
    const s = await server((sock, _nth, line) => {
      if (!line.includes('/hold')) return false;
      held = sock;
      return true;
    });
    const c = client({ maxSockets: 1 });
    const first = c.request(`http://127.0.0.1:${s.port}/hold`, { timeoutMs: 5000 });
    await until(() => held !== undefined, 'the first call arrived');
    const e = await rejection(c.request(`http://127.0.0.1:${s.port}/queued`, { timeoutMs: 100 }));
    expect(e.code).toBe('HTTP_E_TIMEOUT');
    held!.write(OK);
    expect((await first).status).toBe(200);
    expect((await c.request(`http://127.0.0.1:${s.port}/after`)).status).toBe(200);
    expect(s.requests.some((l) => l.includes('/after'))).toBe(true);
    expect(s.requests.some((l) => l.includes('/queued'))).toBe(false);
  });

  it('close() drops the open connections; later calls open new ones', async () => {
    const s = await server(() => false);
    const c = client();
    expect((await c.request(`http://127.0.0.1:${s.port}/a`)).status).toBe(200);
    c.close();
    await until(() => s.closed === 1, 'the kept-alive connection closed');
    expect((await c.request(`http://127.0.0.1:${s.port}/b`)).status).toBe(200);
    expect(s.connections).toBe(2);
  });
});

describe('request headers', () => {
  it('sends the default user-agent unless the call sets one, and URL credentials unless it sets authorization', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const srv = http.createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => res.end());
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    try {
      const c = client({ userAgent: 'hisbridge-test' });
      await c.request(`http://u:p@127.0.0.1:${port}/`);
      await c.request(`http://u:p@127.0.0.1:${port}/`, { headers: { 'User-Agent': 'mine', Authorization: 'Bearer t' } });
      expect(seen[0]!['user-agent']).toBe('hisbridge-test');
      expect(seen[0]!.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
      expect(seen[1]!['user-agent']).toBe('mine');
      expect(seen[1]!.authorization).toBe('Bearer t');
    } finally {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });

  it('drops connection-level headers a route may set (undici refuses them) and sends the call with the others', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const srv = http.createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => res.end('{"ok":true}'));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    try {
      const c = client();
      const res = await c.request(`http://127.0.0.1:${port}/`, {
        body: { a: 1 },
        headers: { Connection: 'keep-alive', 'Keep-Alive': 'timeout=5', Expect: '100-continue', 'Transfer-Encoding': 'chunked', Upgrade: 'h2c', 'X-Site': 'ward-3' },
      });
      expect(res.status).toBe(200);
      expect(seen).toHaveLength(1);
      expect(seen[0]!['x-site']).toBe('ward-3');
      expect(seen[0]!['content-length']).toBe('7');
      expect(seen[0]!.expect).toBeUndefined();
      expect(seen[0]!.upgrade).toBeUndefined();
      expect(seen[0]!['transfer-encoding']).toBeUndefined();
    } finally {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  });
});

describe('HTTPS', () => {
  let dir: string;
  let certs: TestCerts;
  let srv: https.Server;
  let base: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-https-client-'));
    certs = makeCerts(dir);
    srv = https.createServer({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) }, (req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ secure: true, path: req.url })));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    base = `https://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    srv.closeAllConnections();
    await new Promise((r) => srv.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a server whose CA the system does not trust, without the URL in the error', async () => {
    const c = client();
    const e = await rejection(c.request(`${base}/lab?idcard=440106199001011234`, { target: 'platform' }));
    expect(e.code).toBe('HTTP_E_NETWORK');
    expect(e.message).toMatch(/^network error calling platform: /);
    expect(e.message).not.toContain('idcard');
  });

  it('talks to a server signed by a CA added to the system store (NODE_EXTRA_CA_CERTS)', async () => {
    const clientModule = pathToFileURL(path.resolve('dist/core/http/client.js')).href;
    const script = `const { createHttpClient } = await import(${JSON.stringify(clientModule)});
const c = createHttpClient();
const a = await c.request(${JSON.stringify(`${base}/one`)}, { body: { n: 1 } });
const b = await c.request(${JSON.stringify(`${base}/two`)});
c.close();
process.stdout.write(JSON.stringify([a.status, a.json, b.json]));`;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.ca }, timeout: 30_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    expect(JSON.parse(out)).toEqual([200, { secure: true, path: '/one' }, { secure: true, path: '/two' }]);
  });
});
