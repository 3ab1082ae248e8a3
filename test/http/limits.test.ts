/**
 * Connection limits of the engine's HTTP server (http.maxConnections,
 * http.headersTimeout, http.requestTimeout). Found by the issue 13 acceptance
 * probe: 800 loopback connections trickling bodies all stayed open, and half
 * a header block held a connection for node's default 60 s.
 */
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { startHttpServer, type HttpServer } from '../../core/http/server.js';
import { createLogger } from '../../core/log.js';
import { builtinRegistry } from '../../plugins/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ENDPOINTS = [
  { method: 'GET' as const, path: '/healthz', handler: async () => ({ status: 200, body: { ok: true } }) },
  { method: 'POST' as const, path: '/echo', handler: async (r: { body: unknown }) => ({ status: 200, body: { got: r.body } }) },
  // A handler slower than requestTimeout (a remote platform taking its time): the timer covers receiving only.
  { method: 'POST' as const, path: '/slow', handler: async (r: { body: unknown }) => { await sleep(1600); return { status: 200, body: { got: r.body } }; } },
];

/** A logger writing JSON lines into `lines`. */
function memoryLogger(lines: string[]) {
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return createLogger({ level: 'info', destination });
}

interface Conn {
  socket: net.Socket;
  /** Everything the server sent. */
  received: () => string;
  /** Resolves when the server closed (or reset) the connection, with ms since connect. */
  closed: Promise<number>;
}

function connect(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let data = '';
    const socket = net.connect(port, '127.0.0.1');
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - started)));
    socket.on('data', (c) => (data += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('error', reject);
  });
}

/** Sends one keep-alive GET on the connection and resolves with the status line once a full answer arrived. */
function getOn(c: Conn, pathname: string): Promise<string> {
  const before = c.received().length;
  c.socket.write(`GET ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer')), 5000);
    const check = () => {
      const got = c.received().slice(before);
      if (/\r\n\r\n[\s\S]*\}/.test(got)) {
        clearTimeout(timer);
        c.socket.off('data', check);
        resolve(got.split('\r\n')[0]!);
      }
    };
    c.socket.on('data', check);
    void c.closed.then(() => {
      clearTimeout(timer);
      reject(new Error('closed'));
    });
  });
}


describe('http.maxConnections', () => {
  const CAP = 6;
  let s: HttpServer;
  let refused = 0;
  const lines: string[] = [];
  beforeAll(async () => {
    s = await startHttpServer({ host: '127.0.0.1', port: 0, log: memoryLogger(lines), endpoints: ENDPOINTS, maxConnections: CAP, onRefused: () => refused++ });
  });
  afterAll(() => s.close());

  it('closes connections over the cap at once while the ones under it still get answers', async () => {
    const held: Conn[] = [];
    for (let i = 0; i < CAP; i++) {
      const c = await connect(s.port);
      // One answered request each: the server has accepted the connection (keep-alive keeps it open).
      expect(await getOn(c, '/healthz')).toBe('HTTP/1.1 200 OK');
      held.push(c);
    }
    const extra: Conn[] = [];
    for (let i = 0; i < 4; i++) extra.push(await connect(s.port));
    for (const c of extra) c.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const closedIn = await Promise.all(extra.map((c) => c.closed));
    for (const ms of closedIn) expect(ms).toBeLessThan(2000);
    for (const c of extra) expect(c.received()).toBe('');
    expect(refused).toBe(4);
    // The held connections are still served.
    for (const c of held) expect(await getOn(c, '/healthz')).toBe('HTTP/1.1 200 OK');
    // One warn line (rate-limited), with the count and no client address.
    const warns = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.code === 'HTTP_E_TOO_MANY_CONNECTIONS');
    expect(warns).toHaveLength(1);
    expect(warns[0]!.level).toBe('warn');
    expect(warns[0]!.limit).toBe(CAP);
    expect(JSON.stringify(warns[0])).not.toContain('127.0.0.1');
    // Once the held ones are gone, a fresh connection is answered.
    for (const c of held) c.socket.destroy();
    await Promise.all(held.map((c) => c.closed));
    await sleep(50);
    const r = await fetch(`${s.url}/healthz`);
    expect(r.status).toBe(200);
  });
});

describe('http.headersTimeout and http.requestTimeout', () => {
  let s: HttpServer;
  beforeAll(async () => {
    s = await startHttpServer({ host: '127.0.0.1', port: 0, log: createLogger({ level: 'silent' }), endpoints: ENDPOINTS, headersTimeoutMs: 500, requestTimeoutMs: 1000 });
  });
  afterAll(() => s.close());

  it('disconnects a client that sent half a header block after headersTimeout, answering others meanwhile', async () => {
    const slow = await connect(s.port);
    slow.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: ');
    // Meanwhile normal requests are answered.
    for (let i = 0; i < 3; i++) {
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
      await sleep(100);
    }
    const ms = await slow.closed;
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(3000);
    // Node answers 408 when it can; a closed socket is enough either way.
    expect(slow.received()).toMatch(/^(HTTP\/1\.1 408|)/);
    expect(slow.received()).not.toContain('200 OK');
  });

  it('cuts a body trickled slower than requestTimeout', async () => {
    const slow = await connect(s.port);
    slow.socket.write('POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n');
    let sent = 0;
    const trickle = setInterval(() => {
      if (slow.socket.destroyed || sent >= 99) return;
      slow.socket.write(' ');
      sent++;
    }, 100);
    try {
      const ms = await slow.closed;
      expect(ms).toBeGreaterThanOrEqual(900);
      expect(ms).toBeLessThan(4000);
      expect(sent).toBeLessThan(99);
      expect(slow.received()).not.toContain('200 OK');
      expect(slow.received()).toMatch(/^(HTTP\/1\.1 408|)/);
    } finally {
      clearInterval(trickle);
    }
    // A body sent promptly is still answered.
    const r = await fetch(`${s.url}/echo`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    expect(await r.json()).toEqual({ got: { a: 1 } });
  });
});

describe('requestTimeout and slow handlers', () => {
  let s: HttpServer;
  beforeAll(async () => {
    s = await startHttpServer({ host: '127.0.0.1', port: 0, log: createLogger({ level: 'silent' }), endpoints: ENDPOINTS, headersTimeoutMs: 500, requestTimeoutMs: 1000 });
  });
  afterAll(() => s.close());

  it('answers a request received in time even when its handler works longer than requestTimeout', async () => {
    const r = await fetch(`${s.url}/slow`, { method: 'POST', body: '{"a":2}', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ got: { a: 2 } });
  });
});

describe('an engine with http limits in hisbridge.yaml', () => {
  let t: TestEngine | undefined;
  afterAll(async () => {
    await t?.stop();
  });

  it('refuses connections over http.maxConnections, counts them with listener="http" and times out half a header block', async () => {
    t = await startEngine({ siteYaml: 'http:\n  maxConnections: 4\n  headersTimeout: 500ms\n  requestTimeout: 1s\n' });
    const port = Number(new URL(t.httpUrl).port);
    const held: Conn[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await connect(port);
      expect(await getOn(c, '/healthz')).toMatch(/^HTTP\/1\.1 200/);
      held.push(c);
    }
    const extra = await Promise.all([connect(port), connect(port), connect(port)]);
    await Promise.all(extra.map((c) => c.closed));
    for (const c of extra) expect(c.received()).toBe('');
    for (const c of held) c.socket.destroy();
    await Promise.all(held.map((c) => c.closed));
    // Half a header block from a fresh connection is cut after the engine's 500ms.
    const slow = await connect(port);
    slow.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const ms = await slow.closed;
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(3000);
    const metrics = await (await fetch(`${t.httpUrl}/metrics`)).text();
    expect(/hisbridge_mllp_connections_refused_total\{listener="http"\} (\d+)/.exec(metrics)?.[1]).toBe('3');
    const warn = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.code === 'HTTP_E_TOO_MANY_CONNECTIONS');
    expect(warn).toMatchObject({ level: 'warn', limit: 4 });
  });
});

describe('http limits in hisbridge.yaml', () => {
  function load(yaml: string) {
    const dir = tempFiles({ 'hisbridge.yaml': yaml });
    const file = path.join(dir, 'hisbridge.yaml');
    const reg = builtinRegistry();
    try {
      return { config: loadSiteConfig(file, reg.extensions, {}, process.env, reg.sources), issues: [] as string[] };
    } catch (e) {
      if (e instanceof LoadError) return { config: undefined, issues: e.issues.map(String) };
      throw e;
    }
  }

  it('defaults to 1024 connections, 10s for headers and 120s for the request', () => {
    const { config } = load('http:\n  port: 8480\n');
    expect(config?.http).toMatchObject({ maxConnections: 1024, headersTimeoutMs: 10_000, requestTimeoutMs: 120_000 });
  });

  it('takes the keys as written', () => {
    const { config } = load('http:\n  maxConnections: 50\n  headersTimeout: 2s\n  requestTimeout: 1m\n');
    expect(config?.http).toMatchObject({ maxConnections: 50, headersTimeoutMs: 2000, requestTimeoutMs: 60_000 });
  });

  it('refuses bad durations and a bad cap with file:line:col', () => {
    const { issues } = load('http:\n  port: 8480\n  headersTimeout: soon\n  requestTimeout: -5\n  maxConnections: 0\n');
    expect(issues.some((i) => /hisbridge\.yaml:3:\d+/.test(i) && i.includes('headersTimeout'))).toBe(true);
    expect(issues.some((i) => /hisbridge\.yaml:4:\d+/.test(i) && i.includes('requestTimeout'))).toBe(true);
    expect(issues.some((i) => /hisbridge\.yaml:5:\d+/.test(i) && i.includes('maxConnections'))).toBe(true);
  });

  it('refuses a headersTimeout longer than the requestTimeout, at the headersTimeout key', () => {
    const { issues } = load('http:\n  requestTimeout: 5s\n  headersTimeout: 30s\n');
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/hisbridge\.yaml:3:\d+/);
    expect(issues[0]).toContain('must not be longer than http.requestTimeout');
  });
});
