/**
 * Issue 13, HTTP source (HL7 over HTTP, and JSON events with `event:`) through
 * real engines: every listener is declared in hisbridge.yaml, so each test goes
 * through the config loader, the engine's own start of the source (plugins/
 * source-http), its ingress port and its real HTTP server. The provincial
 * platform is the built-in gd-ehr simulator (a real HTTP server).
 */
import http from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiToken } from '../../core/http/api-auth.js';
import { startHttpServer } from '../../core/http/server.js';
import { decodeHl7, encodeText, parseHl7, splitBlock } from '../../core/hl7/index.js';
import { compileSchema } from '../../core/config/validate.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { builtinRegistry } from '../../plugins/index.js';
import { silentLogger } from '../../core/log.js';
import type { RunningSource, SourceContext, SourceHttpEndpoint } from '../../core/sdk.js';
import httpSource, { parseContentType, readEventId, type HttpSourceConfig } from '../../plugins/source-http/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';

const HL7_TOKEN = 'hl7-token-5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d';
const WS_TOKEN = 'ws-token-0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const sample = (name: string) => readFileSync(path.resolve('samples', name));

interface SimCall { op: string; verified: boolean; fields?: Record<string, unknown> }

async function simCalls(t: TestEngine): Promise<SimCall[]> {
  const res = await fetch(`${t.engine.simulators.gdEhr!.url}/__sim/calls`);
  return ((await res.json()) as { calls: SimCall[] }).calls;
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The charset parameter of a response's Content-Type. */
function charsetOf(r: Response): string {
  return parseContentType(r.headers.get('content-type') ?? '').params.charset ?? '';
}

/** The ACK messages of a 200 answer, decoded in the charset the answer declares. */
async function acks(r: Response) {
  const body = Buffer.from(await r.arrayBuffer());
  return splitBlock(body).units.map((u) => parseHl7(decodeHl7(u.bytes, charsetOf(r)).text));
}

/** Sample 01 (consented registration, GBK) as text, decoded. */
const registrationText = () => decodeHl7(sample('01-adt-a04-registration-consent.hl7'), 'gb18030').text;

/** The running source the engine started for listener `name`. */
function sourceOf(t: TestEngine, name: string): RunningSource {
  const s = t.engine.sources.find((x) => x.name === name);
  if (!s) throw new Error(`the engine started no source ${name}`);
  return s.running;
}

/** Stored messages with this control id. */
const stored = (t: TestEngine, controlId: string) => t.engine.store.searchMessages({ controlId, limit: 10 });

/**
 * A raw POST over node:http, for what fetch cannot do: stream a body of a given size, Expect: 100-continue,
 * give up half-way. Resolves with the status (or 'reset') and whether 100 Continue came.
 */
function rawPost(url: string, opts: { headers: Record<string, string | number>; total: number; chunk?: number; abortAfter?: number }): Promise<{ status: number | 'reset'; body: string; sawContinue: boolean }> {
  return new Promise((resolve) => {
    const u = new URL(url);
    let sawContinue = false;
    let done = false;
    const finish = (v: { status: number | 'reset'; body: string }) => {
      if (!done) {
        done = true;
        resolve({ ...v, sawContinue });
      }
    };
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: opts.headers });
    const chunk = Buffer.alloc(opts.chunk ?? 64 * 1024, 0x41);
    let sent = 0;
    const pump = () => {
      while (sent < opts.total) {
        if (opts.abortAfter !== undefined && sent >= opts.abortAfter) {
          req.destroy();
          finish({ status: 'reset', body: '' });
          return;
        }
        const n = Math.min(chunk.length, opts.total - sent);
        sent += n;
        if (!req.write(chunk.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    req.on('continue', () => {
      sawContinue = true;
      pump();
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => finish({ status: res.statusCode ?? 0, body }));
      res.on('error', () => finish({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => finish({ status: 'reset', body: '' }));
    if (!opts.headers.expect) pump();
  });
}

/** Simple ASCII message with a given control id and event type. */
const msg = (id: string, type = 'ZZZ^Z99') => `MSH|^~\\&|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||${type}|${id}|P|2.5\rPID|1||P9^^^HOSP^PI\r`;

describe('http source with api.clients', () => {
  let t: TestEngine;
  let url: string;
  const post = (body: Buffer | string, contentType = 'application/hl7-v2', headers: Record<string, string> = bearer(HL7_TOKEN)) =>
    fetch(url, { method: 'POST', body, headers: { 'content-type': contentType, ...headers } });

  beforeAll(async () => {
    // The his-http default is UTF-8, so a GBK body without MSH-18 decodes right only by its Content-Type charset.
    t = await startEngine({
      siteYaml: `listeners:
  - { name: mllp, port: 0 }
  - { name: his-http, type: http, path: /hl7/his, charset: utf-8 }
  - { name: his-small, type: http, path: /hl7/small, maxBodyBytes: 4096 }
  - { name: his-strict, type: http, path: /hl7/strict, noRoute: AR, charset: GBK }
  - { name: his-single, type: http, path: /hl7/single, multiMessageBlocks: reject }
  - { name: his-closing, type: http, path: /hl7/closing }
api:
  clients:
    - name: his-hl7
      tokenHash: "${hashApiToken(HL7_TOKEN)}"
      allow: [hl7]
    - name: his-workstation
      tokenHash: "${hashApiToken(WS_TOKEN)}"
      allow: [gd-ehr, recognition]
`,
    });
    url = `${t.httpUrl}/hl7/his`;
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('the engine started every listener of hisbridge.yaml through its source plugin', () => {
    expect(t.engine.sources.map((x) => [x.name, x.type])).toEqual([
      ['mllp', 'mllp'], ['his-http', 'http'], ['his-small', 'http'], ['his-strict', 'http'], ['his-single', 'http'], ['his-closing', 'http'],
    ]);
    expect(t.logs.some((l) => l.includes('"listener":"his-http"') && l.includes('hl7 over http listening'))).toBe(true);
  });

  it('a consented registration posted as application/hl7-v2 is answered 200 with its AA ACK and reaches the gd-ehr simulator', async () => {
    const raw = sample('01-adt-a04-registration-consent.hl7');
    const before = (await simCalls(t)).filter((c) => c.op === 'authorize').length;
    const r = await post(raw);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/hl7-v2; charset=gb18030');
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
    const [a, ...more] = await acks(r);
    expect(more).toHaveLength(0);
    expect(a!.get('MSH-9.1')).toBe('ACK');
    expect(a!.get('MSA-1')).toBe('AA');
    expect(a!.get('MSA-2')).toBe('HIS202503120001');
    // The viewer route's on-complete reply rides in the same ACK.
    expect(a!.get('ZVU-1')).toMatch(/getPrivilege\?param=[0-9a-f]+&appId=/);
    const m = parseHl7(registrationText());
    const calls = await until(() => simCalls(t), (c) => c.filter((x) => x.op === 'authorize').length > before);
    const auth = calls.filter((c) => c.op === 'authorize').slice(before);
    expect(auth).toHaveLength(1);
    expect(auth[0]!.verified).toBe(true);
    expect(auth[0]!.fields!.patientIdcard).toBe(m.get('PID-3[5=NI].1'));
    expect(auth[0]!.fields!.patientName).toBe(m.get('PID-5.1') + m.get('PID-5.2'));
    // The same post again is a duplicate: the same answer, no second authorization.
    const again = await acks(await post(raw));
    expect(again[0]!.get('MSA-1')).toBe('AA');
    await new Promise((res) => setTimeout(res, 300));
    expect((await simCalls(t)).filter((c) => c.op === 'authorize').length).toBe(before + 1);
  });

  it('a GBK body without MSH-18, declared charset=gb18030, reaches the provincial simulator with the name intact; declared utf-8 it is answered AE, not mangled', async () => {
    // 億 is 83 7C and 區 is 85 5E in GBK: trail bytes equal to | and ^.
    const name = { family: '司马', given: '億區' };
    const text = registrationText()
      .replace('|GB 18030-2000', '')
      .replace('HIS202503120001', 'HTTPGBK0001')
      .replace(/(\rPID\|1\|\|[^|]*\|\|)[^|]*/, `$1${name.family}^${name.given}`);
    const body = encodeText(text, 'gb18030');
    expect(body.includes(Buffer.from([0x83, 0x7c]))).toBe(true);
    expect(parseHl7(decodeHl7(body, 'gb18030').text).get('MSH-18')).toBe('');
    const before = (await simCalls(t)).filter((c) => c.op === 'authorize').length;

    // Declared wrongly as UTF-8 (the listener default is UTF-8 too): AE with ERR-3 102, nothing routed.
    const wrong = await post(body, 'application/hl7-v2; charset=utf-8');
    expect(wrong.status).toBe(200);
    expect(charsetOf(wrong)).toBe('utf-8');
    const [ae] = await acks(wrong);
    expect(ae!.get('MSA-1')).toBe('AE');
    expect(ae!.get('MSA-2')).toBe('HTTPGBK0001');
    expect(ae!.get('ERR-3.1')).toBe('102');
    expect(ae!.get('MSA-3')).toMatch(/^invalid UTF-8 bytes in [A-Z][A-Z0-9]{2}-\d+$/);

    const r = await post(body, 'Application/HL7-v2; Charset="GB18030"');
    expect(r.status).toBe(200);
    expect(charsetOf(r)).toBe('gb18030');
    const [a] = await acks(r);
    expect(a!.get('MSA-1')).toBe('AA');
    expect(a!.get('MSA-2')).toBe('HTTPGBK0001');
    const calls = await until(() => simCalls(t), (c) => c.filter((x) => x.op === 'authorize').length > before);
    const auth = calls.filter((c) => c.op === 'authorize').slice(before);
    expect(auth).toHaveLength(1);
    expect(auth[0]!.fields!.patientName).toBe(name.family + name.given);
    // The name never reaches the log.
    expect(t.logs.join('\n')).not.toContain(name.family + name.given);
  });

  it('a GBK body whose MSH-18 says UNICODE UTF-8, posted with charset=gb18030, is accepted with the name intact: the header wins over MSH-18', async () => {
    const name = { family: '欧阳', given: '億區' };
    const text = registrationText()
      .replace('|GB 18030-2000', '|UNICODE UTF-8')
      .replace('HIS202503120001', 'HTTPMSH18U8')
      .replace(/(\rPID\|1\|\|[^|]*\|\|)[^|]*/, `$1${name.family}^${name.given}`);
    const body = encodeText(text, 'gb18030');
    expect(parseHl7(decodeHl7(body, 'gb18030').text).get('MSH-18')).toBe('UNICODE UTF-8');
    const before = (await simCalls(t)).filter((c) => c.op === 'authorize').length;
    const r = await post(body, 'application/hl7-v2; charset=gb18030');
    expect(r.status).toBe(200);
    expect(charsetOf(r)).toBe('gb18030');
    const [a] = await acks(r);
    expect(a!.get('MSA-1')).toBe('AA');
    expect(a!.get('MSA-2')).toBe('HTTPMSH18U8');
    const calls = await until(() => simCalls(t), (c) => c.filter((x) => x.op === 'authorize').length > before);
    const auth = calls.filter((c) => c.op === 'authorize').slice(before);
    expect(auth).toHaveLength(1);
    expect(auth[0]!.fields!.patientName).toBe(name.family + name.given);
    // Stored in the charset it was read in, so the message browser and replay read the name right too.
    const [m] = stored(t, 'HTTPMSH18U8');
    expect(m!.charset).toBe('gb18030');
    expect(m!.source).toBe('his-http');
  });

  it('multiMessageBlocks: reject on an http listener answers AR to each loose message and stores none; one message alone is taken', async () => {
    const single = `${t.httpUrl}/hl7/single`;
    const send = (body: string) => fetch(single, { method: 'POST', body, headers: { ...bearer(HL7_TOKEN), 'content-type': 'application/hl7-v2' } });
    const r = await send(msg('HTTPMMR1') + msg('HTTPMMR2'));
    expect(r.status).toBe(200);
    const all = await acks(r);
    expect(all.map((a) => [a.get('MSA-1'), a.get('MSA-2')])).toEqual([['AR', 'HTTPMMR1'], ['AR', 'HTTPMMR2']]);
    expect(stored(t, 'HTTPMMR1')).toHaveLength(0);
    expect(stored(t, 'HTTPMMR2')).toHaveLength(0);
    const one = await acks(await send(msg('HTTPMMR3')));
    expect(one.map((a) => [a.get('MSA-1'), a.get('MSA-2')])).toEqual([['AA', 'HTTPMMR3']]);
    expect(stored(t, 'HTTPMMR3')).toHaveLength(1);
  });

  it('a batch body gets the batch ACK: BHS, one MSA per message (AE included), BTS with the count', async () => {
    const batch = ['FHS|^~\\&|HIS|H|HISBRIDGE|GDPLAT|20250312093015', 'BHS|^~\\&|HIS|H|HISBRIDGE|GDPLAT|20250312093015']
      .join('\r') + '\r' + msg('HTTPB001') + msg('HTTPB002') + 'MSH|^~\\&|HIS|H|HB|HB|20250101||ADT^A04||P|2.5\rPID|1\r' + msg('HTTPB004') + 'BTS|4\rFTS|1\r';
    const r = await post(batch, 'x-application/hl7-v2+er7');
    expect(r.status).toBe(200);
    const segs = Buffer.from(await r.arrayBuffer()).toString('utf8').split('\r').filter(Boolean);
    expect(segs[0]).toMatch(/^BHS\|/);
    expect(segs.at(-1)).toMatch(/^BTS\|4/);
    const msa = segs.filter((s) => s.startsWith('MSA|')).map((s) => s.split('|').slice(1, 3));
    expect(msa).toEqual([['AA', 'HTTPB001'], ['AA', 'HTTPB002'], ['AE', ''], ['AA', 'HTTPB004']]);
  });

  it('several loose messages in one body get their ACKs concatenated in order', async () => {
    const r = await post(msg('HTTPL001') + msg('HTTPL002') + msg('HTTPL003'), 'text/plain; charset=utf-8');
    expect(r.status).toBe(200);
    const all = await acks(r);
    expect(all.map((a) => [a.get('MSA-1'), a.get('MSA-2')])).toEqual([['AA', 'HTTPL001'], ['AA', 'HTTPL002'], ['AA', 'HTTPL003']]);
  });

  it('401 API_E_UNAUTHENTICATED without a token or with a wrong one', async () => {
    for (const headers of [{}, bearer('wrong-token-0000000000000000000000000000')]) {
      const r = await post(msg('HTTP401'), 'application/hl7-v2', headers);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await r.json()) as { code: string }).code).toBe('API_E_UNAUTHENTICATED');
    }
  });

  it('403 API_E_FORBIDDEN for a client without hl7 in allow', async () => {
    const r = await post(msg('HTTP403'), 'application/hl7-v2', bearer(WS_TOKEN));
    expect(r.status).toBe(403);
    expect(await r.json()).toEqual({ code: 'API_E_FORBIDDEN', message: 'client his-workstation may not call /hl7/his' });
  });

  it('415 HTTP_E_UNSUPPORTED_MEDIA_TYPE for JSON (no event: set), no content type, forms, and an unknown charset', async () => {
    // A Buffer body: fetch adds no Content-Type of its own (a string body would get text/plain).
    for (const ct of ['application/json', '', 'application/x-www-form-urlencoded', 'application/hl7-v2; charset=klingon']) {
      const r = await fetch(url, { method: 'POST', body: Buffer.from(ct === 'application/json' ? '{"a":1}' : msg('HTTP415')), headers: { ...bearer(HL7_TOKEN), ...(ct ? { 'content-type': ct } : {}) } });
      expect(r.status, ct).toBe(415);
      const body = (await r.json()) as { code: string; message: string };
      expect(body.code).toBe('HTTP_E_UNSUPPORTED_MEDIA_TYPE');
      if (ct === 'application/json') expect(body.message).toMatch(/JSON/);
    }
  });

  it('405 with Allow: POST for GET and other methods', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const r = await fetch(url, { method, headers: bearer(HL7_TOKEN) });
      expect(r.status, method).toBe(405);
      expect(r.headers.get('allow')).toBe('POST');
      expect(((await r.json()) as { code: string }).code).toBe('HTTP_E_METHOD');
    }
  });

  it('400 HTTP_E_EMPTY_BODY for an empty or blank body', async () => {
    for (const body of ['', ' \r\n\r\n']) {
      const r = await post(body);
      expect(r.status).toBe(400);
      expect(((await r.json()) as { code: string }).code).toBe('HTTP_E_EMPTY_BODY');
    }
  });

  it('403 HTTP_E_CROSS_ORIGIN for a post from a page of another site', async () => {
    const r = await post(msg('HTTPXO'), 'text/plain', { ...bearer(HL7_TOKEN), origin: 'https://evil.example' });
    expect(r.status).toBe(403);
    expect(((await r.json()) as { code: string }).code).toBe('HTTP_E_CROSS_ORIGIN');
  });

  it('413 HTTP_E_TOO_LARGE over maxBodyBytes: declared, streamed, and before the body with Expect: 100-continue', async () => {
    {
      const smallUrl = `${t.httpUrl}/hl7/small`;
      const r = await fetch(smallUrl, { method: 'POST', body: msg('HTTPBIG') + 'NTE|1||' + 'x'.repeat(5000) + '\r', headers: { ...bearer(HL7_TOKEN), 'content-type': 'application/hl7-v2' } });
      expect(r.status).toBe(413);
      expect(((await r.json()) as { code: string }).code).toBe('HTTP_E_TOO_LARGE');
      const chunked = await rawPost(smallUrl, { headers: { ...bearer(HL7_TOKEN), 'content-type': 'application/hl7-v2', 'transfer-encoding': 'chunked' }, total: 64 * 1024, chunk: 1024 });
      expect(chunked.status).toBe(413);
      expect(JSON.parse(chunked.body).code).toBe('HTTP_E_TOO_LARGE');
      // Under its cap it is served.
      const ok = await fetch(smallUrl, { method: 'POST', body: msg('HTTPSMALL'), headers: { ...bearer(HL7_TOKEN), 'content-type': 'application/hl7-v2' } });
      expect(ok.status).toBe(200);
    }
    // The default cap is 16 MiB: 17 MiB declared is refused before the body is sent.
    const big = await rawPost(url, { headers: { ...bearer(HL7_TOKEN), 'content-type': 'application/hl7-v2', 'content-length': 17 * 1024 * 1024, expect: '100-continue' }, total: 17 * 1024 * 1024 });
    expect(big).toMatchObject({ status: 413, sawContinue: false });
    expect(JSON.parse(big.body).code).toBe('HTTP_E_TOO_LARGE');
  });

  it('a 2 MiB message with Expect: 100-continue (as curl sends it) is taken: the 1 MiB API cap does not apply to sources', async () => {
    const body = Buffer.from(msg('HTTP2MIB') + 'NTE|1||' + 'x'.repeat(2 * 1024 * 1024) + '\r');
    const u = new URL(url);
    const result = await new Promise<{ status: number; sawContinue: boolean; body: Buffer }>((resolve, reject) => {
      let sawContinue = false;
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { ...bearer(HL7_TOKEN), 'content-type': 'application/hl7-v2', 'content-length': body.length, expect: '100-continue' } });
      req.on('continue', () => {
        sawContinue = true;
        req.end(body);
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, sawContinue, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
    });
    expect(result.status).toBe(200);
    expect(result.sawContinue).toBe(true);
    expect(result.body.toString('utf8')).toMatch(/\rMSA\|AA\|HTTP2MIB\r/);
  });

  it('a client that disconnects mid-body or before its answer crashes nothing, and the message posted whole is kept', async () => {
    const gone = await rawPost(url, { headers: { ...bearer(HL7_TOKEN), 'content-type': 'application/hl7-v2', 'content-length': 100_000 }, total: 100_000, chunk: 1000, abortAfter: 3000 });
    expect(gone.status).toBe('reset');
    // Whole body sent, connection dropped at once, before the engine answers.
    await new Promise<void>((resolve) => {
      const u = new URL(url);
      const body = msg('HTTPGONE1');
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { ...bearer(HL7_TOKEN), 'content-type': 'application/hl7-v2', 'content-length': Buffer.byteLength(body) } });
      req.on('error', () => resolve());
      req.end(body, () => {
        req.destroy();
        resolve();
      });
    });
    await new Promise((res) => setTimeout(res, 300));
    const r = await post(msg('HTTPGONE1'));
    expect(r.status).toBe(200);
    const [a] = await acks(r);
    expect(a!.get('MSA-1')).toBe('AA');
    expect(a!.get('MSA-2')).toBe('HTTPGONE1');
    expect((await fetch(`${t.httpUrl}/healthz`)).status).toBe(200);
  });

  it('the listener settings reach the engine: noRoute: AR refuses an unrouted event; the default charset applies without header or MSH-18', async () => {
    {
      const gbk = encodeText(msg('HTTPAR1').replace('PID|1||P9^^^HOSP^PI', 'PID|1||P9^^^HOSP^PI||欧阳^億'), 'gb18030');
      const r = await fetch(`${t.httpUrl}/hl7/strict`, { method: 'POST', body: gbk, headers: { ...bearer(HL7_TOKEN), 'content-type': 'text/plain' } });
      expect(r.status).toBe(200);
      expect(charsetOf(r)).toBe('gb18030');
      const [a] = await acks(r);
      expect(a!.get('MSA-1')).toBe('AR');
      expect(a!.get('MSA-2')).toBe('HTTPAR1');
    }
  });

  it('after close, posts get 503 ENGINE_E_SHUTTING_DOWN', async () => {
    const other = sourceOf(t, 'his-closing');
    expect((await fetch(`${t.httpUrl}/hl7/closing`, { method: 'POST', body: msg('HTTPOPEN'), headers: { ...bearer(HL7_TOKEN), 'content-type': 'application/hl7-v2' } })).status).toBe(200);
    expect(other.health?.().ready).toBe(true);
    await other.close(1000);
    expect(other.health?.().ready).toBe(false);
    const r = await fetch(`${t.httpUrl}/hl7/closing`, { method: 'POST', body: msg('HTTPCLOSED'), headers: { ...bearer(HL7_TOKEN), 'content-type': 'application/hl7-v2' } });
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(((await r.json()) as { code: string }).code).toBe('ENGINE_E_SHUTTING_DOWN');
    // The other listeners still serve.
    expect((await post(msg('HTTPSTILL'))).status).toBe(200);
  });
});

describe('http source without api.clients: loopback callers only; back-pressure', () => {
  let t: TestEngine;
  const routes = tempFiles({
    'bp.yaml': 'name: bp-authorize\nmatch: { events: [ADT^A04] }\nsteps:\n  - plugin: gd-ehr-authorize\n    config: { consent: false }\ndelivery:\n  retry: { max: 1000, initial: 50ms, maxDelay: 200ms }\n',
  });
  beforeAll(async () => {
    t = await startEngine({
      routesDir: routes,
      siteYaml: 'listeners:\n  - { name: mllp, port: 0 }\n  - { name: his-http, type: http, path: /hl7/his }\nstore: { highWaterMark: 3, overload: pause }\n',
    });
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });

  it('a loopback caller needs no token; a request addressed to another host name (DNS rebinding) gets 403', async () => {
    const ok = await fetch(`${t.httpUrl}/hl7/his`, { method: 'POST', body: msg('HTTPLOOP'), headers: { 'content-type': 'application/hl7-v2' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('application/hl7-v2; charset=gb18030');
    const u = new URL(t.httpUrl);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: u.hostname, port: u.port, path: '/hl7/his', method: 'POST', headers: { host: `evil.example:${u.port}`, 'content-type': 'application/hl7-v2' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(msg('HTTPREBIND'));
    });
    expect(status).toBe(403);
  });

  it('past the high-water mark (the engine\'s one flow controller) posts get 503 with Retry-After, and are served again once deliveries drain', async () => {
    const sim = t.engine.simulators.gdEhr!.url;
    const adt = (i: number) => `MSH|^~\\&|HIS|H1|GD|GD|20250312080000||ADT^A04|HTTPBP${i}|P|2.5||||||UNICODE UTF-8\rPID|1||P${i}^^^HOSP^PI~44010619900101${100 + i}7^^^CHN^NI||测试^患者${i}\r`;
    const send = (i: number) => fetch(`${t.httpUrl}/hl7/his`, { method: 'POST', body: adt(i), headers: { 'content-type': 'application/hl7-v2' } });
    await (await fetch(`${sim}/__sim/faults`, { method: 'POST', body: JSON.stringify({ status: 503 }) })).arrayBuffer();
    try {
      // The platform is down: each accepted message leaves a pending delivery; the third reaches the mark.
      for (let i = 0; i < 3; i++) {
        const r = await send(i);
        expect(r.status).toBe(200);
        expect((await acks(r))[0]!.get('MSA-1')).toBe('AA');
      }
      expect(t.engine.flow.paused).toBe(true);
      const r = await send(3);
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('5');
      expect(((await r.json()) as { code: string }).code).toBe('ENGINE_E_BACKPRESSURE');
      expect(stored(t, 'HTTPBP3')).toHaveLength(0);
    } finally {
      await (await fetch(`${sim}/__sim/reset`, { method: 'POST' })).arrayBuffer();
    }
    // The platform is back: deliveries drain, the controller resumes, the same post is taken.
    await until(async () => t.engine.flow.paused, (p) => !p, 20_000);
    expect(t.engine.flow.paused).toBe(false);
    const again = await send(3);
    expect(again.status).toBe(200);
    expect((await acks(again))[0]!.get('MSA-1')).toBe('AA');
    expect(stored(t, 'HTTPBP3')).toHaveLength(1);
  }, 60_000);
});

describe('http source with event: (JSON events)', () => {
  const EV_TOKEN = 'ev-token-a1b2c3d4e5f60718293a4b5c6d7e8f90';
  const EV2_TOKEN = 'ev2-token-0918273645546372819a0b1c2d3e4f5';
  let t: TestEngine;
  let recorder: http.Server;
  const received: { path: string; body: Record<string, unknown> }[] = [];
  let evUrl: string;
  const postJson = (body: Buffer | string, opts: { url?: string; contentType?: string; token?: string } = {}) =>
    fetch(opts.url ?? evUrl, { method: 'POST', body, headers: { 'content-type': opts.contentType ?? 'application/json', ...bearer(opts.token ?? EV_TOKEN) } });
  interface JsonAnswer { status: string; code: string; reason: string; messageId: number | null; routes: { route: string; outcome: string }[] }

  beforeAll(async () => {
    // The http step's target: a real HTTP server that records what the engine sends it.
    recorder = http.createServer((req, res) => {
      let b = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (b += c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body: JSON.parse(b) as Record<string, unknown> });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => recorder.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
    const routes = tempFiles({
      'registered.yaml': `name: json-registered
sources: [his-json]
match: { events: [patient.registered] }
steps:
  - log: { message: "json registered \${body.patient.id} as \${msg.controlId}" }
  - plugin: http
    config:
      url: "${base}/notify"
      body: { patientId: "\${body.patient.id}", type: "\${msg.type}", eventId: "\${msg.controlId}", source: "\${msg.source}" }
`,
      'visit.yaml': `name: json-visit
sources: [his-visit]
match: { events: [visit.closed] }
steps:
  - log: { message: "visit \${body.visit.no} closed" }
`,
    });
    t = await startEngine({
      routesDir: routes,
      siteYaml: `listeners:
  - { name: mllp, port: 0 }
  - { name: his-json, type: http, path: /events/his, event: patient.registered }
  - { name: his-visit, type: http, path: /events/visit, event: visit.closed, idField: visit.no }
  - { name: his-unrouted, type: http, path: /events/unrouted, event: nobody.listens, noRoute: AR }
api:
  clients:
    - name: his-events
      tokenHash: "${hashApiToken(EV_TOKEN)}"
      allow: [hl7]
    - name: his-backup
      tokenHash: "${hashApiToken(EV2_TOKEN)}"
      allow: [hl7]
`,
    });
    evUrl = `${t.httpUrl}/events/his`;
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
    recorder?.closeAllConnections();
    await new Promise((r) => recorder?.close(r));
  });

  it('a JSON event is matched by match.events on the listener event: type, read as body.<path>, answered with its outcome; a repeat is a duplicate', async () => {
    const event = { eventId: 'EVJSON0001', patient: { id: 'PJ0001', name: '张三' }, consent: 'Y' };
    const r = await postJson(JSON.stringify(event), { contentType: 'Application/JSON; charset=UTF-8' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const a = (await r.json()) as JsonAnswer;
    expect(a).toMatchObject({ status: 'accepted', code: 'OK', reason: '' });
    expect(a.messageId).toEqual(expect.any(Number));
    expect(a.routes).toEqual([expect.objectContaining({ route: 'json-registered', outcome: 'queued' })]);

    await until(async () => received.length, (n) => n >= 1);
    expect(received).toEqual([{ path: '/notify', body: { patientId: 'PJ0001', type: 'patient.registered', eventId: 'EVJSON0001', source: 'his-json' } }]);
    expect(t.logs.some((l) => l.includes('json registered PJ0001 as EVJSON0001'))).toBe(true);
    // Stored as JSON: the sender is the API client that posted, the id the body's eventId; the name never reaches the log.
    const [m] = stored(t, 'EVJSON0001');
    expect(m).toMatchObject({ id: a.messageId, source: 'his-json', sendingApp: 'his-events', sendingFacility: '', type: 'patient.registered', charset: 'utf-8' });
    expect(t.logs.join('\n')).not.toContain('张三');

    // The same event again: duplicate, answered 200 with the first copy's id, not sent again.
    const again = await postJson(JSON.stringify(event));
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ status: 'duplicate', code: 'DUPLICATE', messageId: a.messageId });
    await new Promise((res) => setTimeout(res, 300));
    expect(received).toHaveLength(1);
    expect(stored(t, 'EVJSON0001')).toHaveLength(1);

    // Another client sending the same id is another sender: a new message.
    const other = (await (await postJson(JSON.stringify(event), { token: EV2_TOKEN })).json()) as JsonAnswer;
    expect(other.status).toBe('accepted');
    expect(other.messageId).not.toBe(a.messageId);
    expect(stored(t, 'EVJSON0001').map((x) => x.sendingApp).sort()).toEqual(['his-backup', 'his-events']);
  });

  it('malformed JSON, a top level that is not an object, and bytes that are not UTF-8 get 422 rejected with ENGINE_E_JSON; the body is never echoed', async () => {
    const cases: [Buffer | string, RegExp][] = [
      ['{"eventId":"EVBAD1","patient":{"id":"P-SECRET-1",}', /^bad JSON event: not JSON/],
      ['[{"eventId":"EVBAD2"}]', /^bad JSON event: the top level must be an object, not an array$/],
      ['"EVBAD3"', /^bad JSON event: the top level must be an object, not a string$/],
      [Buffer.concat([Buffer.from('{"eventId":"EVBAD4","patient":{"name":"'), Buffer.from([0xd5, 0xc5, 0xc8, 0xfd]), Buffer.from('"}}')]), /^bad JSON event: the bytes are not valid UTF-8$/],
      // Well-formed but hostile: the source finds the id, the engine refuses the depth.
      ['{"eventId":"EVBAD5","a":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}', /^bad JSON event: nested deeper than 64 levels$/],
    ];
    for (const [body, reason] of cases) {
      const r = await postJson(body);
      expect(r.status, String(body)).toBe(422);
      const a = (await r.json()) as JsonAnswer;
      expect(a).toMatchObject({ status: 'rejected', code: 'ENGINE_E_JSON', messageId: null, routes: [] });
      expect(a.reason).toMatch(reason);
      expect(a.reason).not.toContain('SECRET');
    }
    for (const id of ['EVBAD1', 'EVBAD2', 'EVBAD3', 'EVBAD4', 'EVBAD5']) expect(stored(t, id)).toHaveLength(0);
  });

  it('a body without a usable id at idField gets 400 HTTP_E_EVENT_ID', async () => {
    for (const body of [{ patient: { id: 'P1' } }, { eventId: '' }, { eventId: { v: 1 } }, { eventId: 1.5 }, { eventId: 2 ** 60 }, { eventId: null }]) {
      const r = await postJson(JSON.stringify(body));
      expect(r.status, JSON.stringify(body)).toBe(400);
      const p = (await r.json()) as { code: string; message: string };
      expect(p.code).toBe('HTTP_E_EVENT_ID');
      expect(p.message).toMatch(/eventId/);
    }
  });

  it('idField reads the id at a dot path (a whole number taken as text); a route on the other event type takes it', async () => {
    const visitUrl = `${t.httpUrl}/events/visit`;
    const r = await postJson(JSON.stringify({ visit: { no: 4417, ward: 'W3' }, eventId: 'ignored' }), { url: visitUrl });
    expect(r.status).toBe(200);
    const a = (await r.json()) as JsonAnswer;
    expect(a).toMatchObject({ status: 'accepted', routes: [expect.objectContaining({ route: 'json-visit', outcome: 'ok' })] });
    expect(stored(t, '4417')).toEqual([expect.objectContaining({ source: 'his-visit', type: 'visit.closed' })]);
    expect(t.logs.some((l) => l.includes('visit 4417 closed'))).toBe(true);
    const missing = await postJson(JSON.stringify({ eventId: 'E1', visit: {} }), { url: visitUrl });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { message: string }).message).toMatch(/visit\.no/);
  });

  it('JSON in another charset gets 415; HL7 is still taken on the same listener; an empty body gets 400', async () => {
    for (const ct of ['application/json; charset=gb18030', 'application/json; charset=iso-8859-1']) {
      const r = await postJson(JSON.stringify({ eventId: 'EV415' }), { contentType: ct });
      expect(r.status, ct).toBe(415);
      const p = (await r.json()) as { code: string; message: string };
      expect(p.code).toBe('HTTP_E_UNSUPPORTED_MEDIA_TYPE');
      expect(p.message).toMatch(/UTF-8/);
    }
    expect(stored(t, 'EV415')).toHaveLength(0);
    const empty = await postJson(' \n');
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { code: string }).code).toBe('HTTP_E_EMPTY_BODY');
    const hl7 = await postJson(msg('EVHL7'), { contentType: 'application/hl7-v2' });
    expect(hl7.status).toBe(200);
    expect((await acks(hl7))[0]!.get('MSA-1')).toBe('AA');
    const form = await postJson('a=1', { contentType: 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
    expect(((await form.json()) as { message: string }).message).toMatch(/application\/json/);
  });

  it('noRoute: AR on a JSON listener: an event no route takes gets 422 rejected ENGINE_E_NO_ROUTE', async () => {
    const r = await postJson(JSON.stringify({ eventId: 'EVNOROUTE1' }), { url: `${t.httpUrl}/events/unrouted` });
    expect(r.status).toBe(422);
    expect(await r.json()).toMatchObject({ status: 'rejected', code: 'ENGINE_E_NO_ROUTE', routes: [] });
    // Kept for the record, as an HL7 message refused with AR is, with no delivery.
    expect(stored(t, 'EVNOROUTE1')).toEqual([expect.objectContaining({ ackCode: 'AR', source: 'his-unrouted' })]);
  });

  it('401 without a token for JSON as for HL7', async () => {
    const r = await fetch(evUrl, { method: 'POST', body: JSON.stringify({ eventId: 'EV401' }), headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(401);
    expect(stored(t, 'EV401')).toHaveLength(0);
  });
});

describe('http source with event:, without api.clients, overload: reject', () => {
  let t: TestEngine;
  let down: http.Server;
  let calls = 0;
  beforeAll(async () => {
    // The http step's target is down (503): the first event's delivery stays pending, and the mark is 1.
    down = http.createServer((req, res) => {
      calls++;
      req.resume();
      res.writeHead(503).end();
    });
    await new Promise<void>((r) => down.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
    const routes = tempFiles({
      'registered.yaml': `name: json-down\nmatch: { events: [patient.registered] }\nsteps:\n  - plugin: http\n    config: { url: "${base}/notify", body: { id: "\${body.patient.id}" } }\ndelivery:\n  retry: { max: 1000, initial: 1s, maxDelay: 2s }\n`,
    });
    t = await startEngine({
      routesDir: routes,
      siteYaml: 'listeners:\n  - { name: mllp, port: 0 }\n  - { name: his-json, type: http, path: /events/his, event: patient.registered }\nstore: { highWaterMark: 1, overload: reject }\n',
    });
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
    down?.closeAllConnections();
    await new Promise((r) => down?.close(r));
  });

  it('the sender is the listener name without api.clients; an event the engine refuses for a passing reason gets 503 failed with Retry-After', async () => {
    const post = (id: string) => fetch(`${t.httpUrl}/events/his`, { method: 'POST', body: JSON.stringify({ eventId: id, patient: { id: 'P7' } }), headers: { 'content-type': 'application/json' } });
    const first = await post('EVBP1');
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ status: 'accepted', routes: [{ route: 'json-down', outcome: 'queued' }] });
    expect(stored(t, 'EVBP1')).toEqual([expect.objectContaining({ sendingApp: 'his-json', source: 'his-json' })]);
    await until(async () => calls, (n) => n >= 1);
    const second = await post('EVBP2');
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('5');
    const a = (await second.json()) as { status: string; code: string; reason: string; messageId: unknown };
    expect(a).toMatchObject({ status: 'failed', code: 'ENGINE_E_BACKPRESSURE', messageId: null });
    expect(a.reason).toMatch(/high-water mark/);
    expect(stored(t, 'EVBP2')).toHaveLength(0);
  });
});

describe('readEventId', () => {
  it('walks own keys only and keeps nothing of the body in its reasons', async () => {
    expect(await readEventId(Buffer.from('{"a":{"b":"X1"}}'), 'a.b')).toEqual({ id: 'X1' });
    expect(await readEventId(Buffer.from('{"a":{}}'), 'a.constructor')).toEqual({ missing: 'the JSON event has no id at a.constructor' });
    expect(await readEventId(Buffer.from('{"a":["X"]}'), 'a.0')).toEqual({ missing: 'the JSON event has no id at a.0' });
    expect(await readEventId(Buffer.from('{"a":-7}'), 'a')).toEqual({ id: '-7' });
    // A repeated key counts by its last occurrence, as in JSON.parse (and so in the engine).
    expect(await readEventId(Buffer.from('{"a":{"b":"1"},"a":{}}'), 'a.b')).toEqual({ missing: 'the JSON event has no id at a.b' });
    expect(await readEventId(Buffer.from('{"a":{"b":"1"},"a":{"c":{"b":"2"}},"a":{"b":"3"}}'), 'a.b')).toEqual({ id: '3' });
    for (const bad of ['{"eventId":"E1","a":[1}', '{"eventId":"E1"]', '{"eventId":"E1",}', '{"eventId":"E1"} x', '{"eventId":01}', '{"eventId":"E\\x"}', '{"eventId":tru}', '']) {
      expect(await readEventId(Buffer.from(bad), 'eventId'), bad).toMatchObject({ rejected: expect.stringMatching(/^not JSON/) });
    }
    expect(await readEventId(Buffer.from('\ufeff {"eventId" : "E1"} \n'), 'eventId')).toEqual({ id: 'E1' });
    expect(await readEventId(Buffer.from('{"eventId":"E1","eventId":{}}'), 'eventId')).toEqual({ missing: 'the id at eventId must be a non-empty text or a whole number' });
    const bad = await readEventId(Buffer.from('{"name":"PRIVATE-NAME" "x":1}'), 'eventId');
    expect(bad).toMatchObject({ rejected: expect.stringMatching(/^not JSON/) });
    expect(JSON.stringify(bad)).not.toContain('PRIVATE');
  });

  it('agrees with JSON.parse on 3000 generated and damaged bodies: the same id, or the same refusal kind', async () => {
    // Reference: what the engine will see (JSON.parse, last key wins) and the same id rules.
    const reference = (text: string, p: string): 'rejected' | 'missing' | string => {
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        return 'rejected';
      }
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'rejected';
      for (const k of p.split('.')) {
        if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, k)) return 'missing';
        v = (v as Record<string, unknown>)[k];
      }
      if (typeof v === 'string' && v !== '') return v;
      if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
      return 'missing';
    };
    let seed = 13;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const keysPool = ['eventId', 'a', 'b', 'id', 'x y', 'é', '\\u0061'];
    const gen = (d: number): string => {
      switch (d > 3 ? rnd(5) : rnd(8)) {
        case 0: return JSON.stringify(['E1', '', 'with "quote"', 'tab\t', '事件'][rnd(5)]);
        case 1: return ['0', '-7', '12', '1.5', '1e3', '9007199254740993', '-0', '2E-2'][rnd(8)]!;
        case 2: return ['true', 'false', 'null'][rnd(3)]!;
        case 3: case 4: return '"s"';
        case 5: case 6: {
          const n = rnd(4);
          return '{' + Array.from({ length: n }, () => `${JSON.stringify(keysPool[rnd(keysPool.length)]).replace('\\\\u', '\\u')} : ${gen(d + 1)}`).join(' ,') + '}';
        }
        default: return '[' + Array.from({ length: rnd(3) }, () => gen(d + 1)).join(',') + ']';
      }
    };
    const counts = { id: 0, missing: 0, rejected: 0 };
    for (let n = 0; n < 3000; n++) {
      let text = n % 3 === 0 ? gen(0) : `{"eventId":${gen(2)},"a":${gen(1)}${rnd(2) ? ',"eventId":' + gen(2) : ''}${rnd(2) ? ',"a":' + gen(1) : ''}}`;
      if (n % 4 === 1) {
        // Damage: cut it, or change one byte to a JSON-significant one.
        const at = rnd(text.length + 1);
        text = rnd(2) ? text.slice(0, at) : text.slice(0, at) + '{}[]",:0 \\e-'[rnd(13)] + text.slice(at + 1);
      }
      const p = ['eventId', 'a.b', 'a.id', 'a'][rnd(4)]!;
      const want = reference(text, p);
      const got = await readEventId(Buffer.from(text), p);
      const kind = 'id' in got ? got.id : 'missing' in got ? 'missing' : 'rejected';
      expect(kind, `${text} @ ${p}`).toBe(want);
      counts[want === 'missing' || want === 'rejected' ? want : 'id']++;
    }
    // The corpus exercises all three answers.
    expect(Math.min(counts.id, counts.missing, counts.rejected)).toBeGreaterThan(200);
  });

  it('is linear: a 4 MiB event with 100k keys is read well under a second', async () => {
    const big = Buffer.from(JSON.stringify({ eventId: 'BIG', items: Array.from({ length: 100_000 }, (_, i) => ({ code: `C${i}`, name: '血红蛋白' })) }));
    const t0 = performance.now();
    expect(await readEventId(big, 'eventId')).toEqual({ id: 'BIG' });
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe('mountSource and the http source config', () => {
  const ep = (p: string, extra: Partial<SourceHttpEndpoint> = {}): SourceHttpEndpoint => ({
    method: 'POST', path: p, family: 'hl7', maxBodyBytes: 1024, handler: async () => ({ status: 200, body: 'ok' }), ...extra,
  });

  it('refuses paths under the engine paths, taken paths and malformed paths, naming the path', async () => {
    const s = await startHttpServer({ host: '127.0.0.1', port: 0, log: silentLogger(), endpoints: [{ method: 'GET', path: '/hl7/status', handler: async () => ({ status: 200, body: {} }) }] });
    try {
      s.mountSource(ep('/hl7/his'));
      const refused: [string, RegExp][] = [
        ['/api/hl7', /reserved/], ['/console', /reserved/], ['/healthz', /reserved/], ['/readyz/x', /reserved/], ['/Metrics', /reserved/],
        ['/hl7/his', /another source/], ['//hl7//his/', /another source/], ['/hl7/status', /engine endpoint/],
        ['hl7/his', /start with \//], ['/', /at least one segment/], ['/a/../b', /segments/], ['/a/:id', /segments/], ['/a%2fb', /segments/],
      ];
      for (const [p, why] of refused) {
        expect(() => s.mountSource(ep(p)), p).toThrow(why);
        expect(() => s.mountSource(ep(p)), p).toThrow(`"${p}"`);
      }
      expect(() => s.mountSource(ep('/x', { family: 'HL7!' }))).toThrow(/family/);
      // An engine endpoint added later may not take a source path either.
      expect(() => s.add({ method: 'POST', path: '/hl7/his', handler: async () => ({ status: 200 }) })).toThrow(/taken by a source/);
      // The mounted path answers through the loopback gate.
      const r = await fetch(`${s.url}/hl7/his`, { method: 'POST', body: 'x' });
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('ok');
    } finally {
      await s.close();
    }
  });

  it('the handler gets the raw body as a Buffer, the headers, the caller address and the API client name', async () => {
    const token = 'unit-token-00112233445566778899aabbccddeeff';
    const s = await startHttpServer({ host: '127.0.0.1', port: 0, log: silentLogger(), api: { open: false, clients: [{ name: 'lis-poster', tokenHash: hashApiToken(token), allow: ['hl7'] }] } });
    try {
      s.mountSource(ep('/hl7/lis', {
        maxBodyBytes: 1 << 20,
        handler: async (r) => ({ status: 200, body: JSON.stringify({ isBuffer: Buffer.isBuffer(r.body), hex: r.body.toString('hex'), ct: r.headers['content-type'], client: r.client, remoteAddress: r.remoteAddress }) }),
      }));
      // Bytes that are not valid UTF-8 arrive untouched; a 200 KiB body (copied into place as it arrives) too.
      for (const body of [Buffer.from([0x4d, 0x53, 0x48, 0x83, 0x7c, 0xff, 0x00]), Buffer.alloc(200 * 1024, 0x85)]) {
        const r = await fetch(`${s.url}/hl7/lis`, { method: 'POST', body, headers: { ...bearer(token), 'content-type': 'application/hl7-v2' } });
        expect(await r.json()).toEqual({ isBuffer: true, hex: body.toString('hex'), ct: 'application/hl7-v2', client: 'lis-poster', remoteAddress: '127.0.0.1' });
      }
    } finally {
      await s.close();
    }
  });

  it('the config schema takes the issue form and refuses unknown keys and bad paths', () => {
    const validate = compileSchema(httpSource.configSchema);
    expect(validate({ name: 'his-http', type: 'http', path: '/hl7/his' })).toBe(true);
    expect(validate({ name: 'his-http', type: 'http', path: '/hl7/his', charset: 'GBK', maxBodyBytes: 1048576, noRoute: 'AR', invalidBytes: 'replace', multiMessageBlocks: 'reject' })).toBe(true);
    for (const bad of [
      { name: 'his-http', type: 'http' },
      { name: 'his-http', type: 'http', path: '/hl7/his', port: 2575 },
      { name: 'his-http', type: 'mllp', path: '/hl7/his' },
      { name: 'his-http', type: 'http', path: 'hl7/his' },
      { name: 'his-http', type: 'http', path: '/api/hl7' },
      { name: 'his-http', type: 'http', path: '/metrics' },
      { name: 'his-http', type: 'http', path: '/hl7/../api' },
      { name: 'his-http', type: 'http', path: '/hl7/his', maxBodyBytes: 10 },
      { name: 'his-http', type: 'http', path: '/hl7/his', event: '' },
      { name: 'his-http', type: 'http', path: '/hl7/his', event: 'ADT^A04^ADT_A01' },
      { name: 'his-http', type: 'http', path: '/hl7/his', event: '9lives' },
      { name: 'his-http', type: 'http', path: '/hl7/his', event: 'a\nb' },
      { name: 'his-http', type: 'http', path: '/hl7/his', idField: 'eventId' },
      { name: 'his-http', type: 'http', path: '/hl7/his', event: 'x', idField: 'a..b' },
      { name: 'his-http', type: 'http', path: '/hl7/his', event: 'x', idField: 'items[0].id' },
      { name: 'his-http', type: 'http', path: '/hl7/his', event: 'x', idField: '' },
    ]) expect(validate(bad), JSON.stringify(bad)).toBe(false);
    for (const good of [
      { name: 'his-json', type: 'http', path: '/events/his', event: 'patient.registered' },
      { name: 'his-json', type: 'http', path: '/events/his', event: 'ADT^A04', idField: 'header.messageId' },
      { name: 'his-json', type: 'http', path: '/events/his', event: 'lab-report:signed/v2', idField: '事件.编号' },
    ]) expect(validate(good), JSON.stringify(good)).toBe(true);
  });

  it('start fails naming the listener when HTTP is disabled, for idField without event:, and for an unknown charset', async () => {
    const t = { log: silentLogger(), signal: new AbortController().signal, baseDir: '.', dataDir: '.', flow: { paused: false, onChange: () => () => {} } };
    const ctx = (config: HttpSourceConfig, mount = true) =>
      ({ ...t, config, submitBlock: async () => { throw new Error('not reached'); }, renderAck: () => Buffer.alloc(0), metric() {}, ...(mount ? { mountHttp() {} } : {}) }) as unknown as SourceContext & { config: HttpSourceConfig };
    const none = async () => { throw new Error('not reached'); };
    await expect(httpSource.start(ctx({ name: 'his-http', type: 'http', path: '/hl7/his' }, false), none)).rejects.toThrow(/listener his-http .*http.enabled is false/);
    await expect(httpSource.start(ctx({ name: 'his-json', type: 'http', path: '/hl7/json', idField: 'visit.no' }), none)).rejects.toThrow('listener his-json: idField is for JSON events and needs event:');
    await expect(httpSource.start(ctx({ name: 'his-k', type: 'http', path: '/hl7/k', charset: 'klingon' }), none)).rejects.toThrow(/listener his-k: charset "klingon"/);
    // The server's refusal (a config that skipped the schema) comes back naming the listener and the path.
    const s = await startHttpServer({ host: '127.0.0.1', port: 0, log: silentLogger() });
    try {
      const onServer = { ...ctx({ name: 'his-api', type: 'http', path: '/API/x' }), mountHttp(eps: SourceHttpEndpoint[]) { for (const e of eps) s.mountSource(e); } } as unknown as SourceContext & { config: HttpSourceConfig };
      await expect(httpSource.start(onServer, none)).rejects.toThrow('listener his-api (type http): cannot mount source path "/API/x": /API is reserved');
    } finally {
      await s.close();
    }
    for (const config of [{ name: 'his-ok', type: 'http', path: '/hl7/ok' }, { name: 'his-ev', type: 'http', path: '/ev', event: 'patient.registered', idField: 'a.b' }] as HttpSourceConfig[]) {
      const running: RunningSource = await httpSource.start(ctx(config), none);
      await running.close(0);
    }
  });

  it('hisbridge.yaml with idField but no event: is refused at load, naming file, line and column', async () => {
    const dir = tempFiles({ 'hisbridge.yaml': 'listeners:\n  - { name: mllp, port: 0 }\n  - { name: his-json, type: http, path: /events/his, idField: visit.no }\n' });
    const reg = builtinRegistry();
    let err: unknown;
    try {
      loadSiteConfig(path.join(dir, 'hisbridge.yaml'), reg.extensions, {}, process.env, reg.sources);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LoadError);
    expect(String((err as LoadError).issues.map(String))).toMatch(/hisbridge\.yaml:3:\d+: .*event/);
  });

  it('parses Content-Type parameters case-insensitively, with quotes', () => {
    expect(parseContentType('Application/HL7-V2 ; Charset="GB18030" ; x=1')).toEqual({ type: 'application/hl7-v2', params: { charset: 'GB18030', x: '1' } });
    expect(parseContentType(undefined)).toEqual({ type: '', params: {} });
  });
});
