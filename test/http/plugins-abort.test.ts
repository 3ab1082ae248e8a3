/**
 * The plugins hand `call.signal` to the HTTP client: engine shutdown aborts a
 * call held by a slow remote (a real node:http server that never answers
 * until told to) instead of waiting for its deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HisbridgeError } from '../../core/errors.js';
import { createHttpClient } from '../../core/http/client.js';
import { silentLogger } from '../../core/log.js';
import type { AuditEntry, CallContext } from '../../core/sdk.js';
import httpPlugin from '../../plugins/http/index.js';
import authorizePlugin from '../../plugins/gd-ehr-authorize/index.js';
import { createRecognitionClient } from '../../plugins/recognition/client.js';
import { createTokenClient } from '../../plugins/recognition/token.js';
import { readRecognitionSite, recognitionDefaults } from '../../plugins/recognition/site.js';
import { inputOf, makeCtx, sample, testSite } from '../gd-ehr/helpers.js';

/** Paths answered at once; every other request is held until released. */
const answers = new Map<string, unknown>();
const held: { path: string; res: http.ServerResponse }[] = [];
const closed: string[] = [];
let server: http.Server;
let base: string;
const client = createHttpClient({ defaultTimeoutMs: 600_000 });

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    req.resume();
    req.on('end', () => {
      if (answers.has(path)) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answers.get(path)));
      held.push({ path, res });
      res.on('close', () => {
        if (!res.writableFinished) closed.push(path);
      });
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

function callWith(signal: AbortSignal): CallContext {
  return { route: 'r', step: 0, idempotencyKey: 'k-1', attempt: 1, signal, log: silentLogger() };
}

async function heldCount(path: string, n: number): Promise<void> {
  const end = Date.now() + 5000;
  while (held.filter((h) => h.path === path).length < n) {
    if (Date.now() > end) throw new Error(`no request to ${path} arrived`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function rejection(p: Promise<unknown>): Promise<HisbridgeError> {
  try {
    await p;
  } catch (e) {
    return e as HisbridgeError;
  }
  throw new Error('the call did not fail');
}

describe('plugins pass call.signal to the HTTP client', () => {
  it('http: an aborted step fails with the retryable HTTP_E_ABORTED', async () => {
    const ctx = { ...makeCtx({}), http: client };
    const step = await httpPlugin.create(ctx, { url: `${base}/ward/admit`, body: { a: 'x' }, timeoutMs: 600_000 });
    const ac = new AbortController();
    const run = step.process(inputOf('MSH|^~\\&|HIS|H1|X|Y|20260101||ADT^A01|C1|P|2.5\r'), callWith(ac.signal));
    await heldCount('/ward/admit', 1);
    ac.abort();
    const e = await rejection(run);
    expect(e.code).toBe('HTTP_E_ABORTED');
    expect(e.retryable).toBe(true);
  });

  it('gd-ehr-authorize: an aborted authorization fails with HTTP_E_ABORTED and its socket is closed', async () => {
    const audits: AuditEntry[] = [];
    const site = testSite(base);
    const ctx = { ...makeCtx(site, audits), http: client };
    const step = await authorizePlugin.create(ctx, {});
    const ac = new AbortController();
    const path = new URL(String(site.authUrl)).pathname;
    const run = step.process(sample('01-adt-a04-registration-consent.hl7'), callWith(ac.signal));
    await heldCount(path, 1);
    ac.abort();
    expect((await rejection(run)).code).toBe('HTTP_E_ABORTED');
    expect(audits).toEqual([expect.objectContaining({ result: 'failed', detail: 'HTTP_E_ABORTED' })]);
    const end = Date.now() + 5000;
    while (!closed.includes(path) && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    expect(closed).toContain(path);
  });

  it('recognition: an aborted platform call fails with HTTP_E_ABORTED', async () => {
    const site = readRecognitionSite(recognitionDefaults({ simulatorUrl: base }));
    answers.set(site.paths.token, { code: '0', data: { token: 't-1', expiresIn: 3600 } });
    const rc = createRecognitionClient({ http: client, site, token: createTokenClient(client, site), audit: () => undefined, plugin: 'test' });
    const ac = new AbortController();
    const run = rc.call('list', { orgCode: 'H1', patientId: 'P1' }, { signal: ac.signal });
    await heldCount(site.paths.list, 1);
    ac.abort();
    expect((await rejection(run)).code).toBe('HTTP_E_ABORTED');
    answers.delete(site.paths.token);
  });

  it('recognition token: an aborted caller stops waiting while the shared token request goes on for the others', async () => {
    const site = readRecognitionSite({ ...recognitionDefaults({ simulatorUrl: base }), paths: { token: '/slow-token' } });
    const tokens = createTokenClient(client, site);
    const ac = new AbortController();
    const leaving = tokens.get(ac.signal);
    const staying = tokens.get();
    await heldCount('/slow-token', 1);
    ac.abort();
    expect((await rejection(leaving)).code).toBe('HTTP_E_ABORTED');
    held.find((h) => h.path === '/slow-token')!.res.writeHead(200, { 'content-type': 'application/json' }).end('{"code":"0","data":{"token":"t-2","expiresIn":3600}}');
    expect(await staying).toBe('t-2');
    expect(tokens.requests).toBe(1);
    expect(held.filter((h) => h.path === '/slow-token')).toHaveLength(1);
  });
});
