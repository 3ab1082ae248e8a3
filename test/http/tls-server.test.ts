/**
 * The engine's HTTP server over TLS (http.tls): plain HTTPS, and with
 * `requestCert` + `ca` a client without a certificate signed by `ca` is
 * refused at the handshake. Certificates are made with openssl at test time.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTlsOptions } from '../../core/config/tls.js';
import { startHttpServer, type HttpServer } from '../../core/http/server.js';
import { silentLogger } from '../../core/log.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';

function get(url: string, opts: { ca: string; cert?: string; key?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ca: opts.ca, ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}) }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS with client certificates (requestCert + ca)', () => {
  let dir: string;
  let certs: TestCerts;
  let s: HttpServer;
  const read = (f: string) => readFileSync(f, 'utf8');

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-mtls-http-'));
    certs = makeCerts(dir);
    s = await startHttpServer({
      host: '127.0.0.1', port: 0, log: silentLogger(),
      tls: loadTlsOptions({ cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true }),
      endpoints: [{ method: 'GET', path: '/api/x/who', handler: async (r) => ({ status: 200, body: { client: r.client ?? null, address: r.remoteAddress } }) }],
    });
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a client with a certificate signed by the CA', async () => {
    expect(s.url).toMatch(/^https:/);
    const r = await get(`${s.url}/api/x/who`, { ca: read(certs.ca), cert: read(certs.clientCert), key: read(certs.clientKey) });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ client: null, address: '127.0.0.1' });
  });

  it('refuses a self-signed client certificate and no certificate at the handshake', async () => {
    await expect(get(`${s.url}/api/x/who`, { ca: read(certs.ca), cert: read(certs.rogueCert), key: read(certs.rogueKey) })).rejects.toThrow();
    await expect(get(`${s.url}/api/x/who`, { ca: read(certs.ca) })).rejects.toThrow();
  });
});

describe('an unreadable TLS file', () => {
  it('stops hisbridge start at load with file:line:col naming the key and the PEM file', async () => {
    const { writeFileSync } = await import('node:fs');
    const { cli } = await import('../helpers/cli.js');
    const d = mkdtempSync(path.join(tmpdir(), 'hisbridge-tls-missing-'));
    try {
      writeFileSync(path.join(d, 'hisbridge.yaml'), 'http:\n  tls:\n    cert: nope/server.pem\n    key: nope/server.key\n');
      const r = await cli(['start', '--config', path.join(d, 'hisbridge.yaml'), '--data-dir', path.join(d, 'store'), '--mllp-port', '0', '--http-port', '0']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/hisbridge\.yaml:3:\d+: .*http\.tls\.cert: cannot read PEM file .*nope\/server\.pem \(ENOENT\)/);
      expect(r.stderr).toContain('refusing to start');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
