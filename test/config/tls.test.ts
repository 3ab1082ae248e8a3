import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTlsOptions, tlsSchema } from '../../core/config/tls.js';
import { compileSchema } from '../../core/config/validate.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';

describe('shared TLS options (core/config/tls.ts)', () => {
  let dir: string;
  let certs: TestCerts;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-tls-'));
    certs = makeCerts(path.join(dir, 'pki'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('validates the tls section shape', () => {
    const v = compileSchema(tlsSchema);
    expect(v({ cert: 'a.pem', key: 'a.key' })).toBe(true);
    expect(v({ cert: 'a.pem', key: 'a.key', ca: 'ca.pem', requestCert: true })).toBe(true);
    expect(v({ cert: 'a.pem' })).toBe(false);
    expect(v({ cert: 'a.pem', key: 'a.key', passphrase: 'x' })).toBe(false);
  });

  it('reads PEM files relative to the base directory', () => {
    const o = loadTlsOptions({ cert: 'pki/server.pem', key: 'pki/server.key', ca: 'pki/ca.pem', requestCert: true }, dir);
    expect(String(o.cert)).toContain('-----BEGIN CERTIFICATE-----');
    expect(String(o.ca)).toContain('-----BEGIN CERTIFICATE-----');
    expect(o.requestCert).toBe(true);
    expect(o.rejectUnauthorized).toBe(true);
    const plain = loadTlsOptions({ cert: certs.serverCert, key: certs.serverKey });
    expect(plain.requestCert).toBeUndefined();
  });

  it('names the file that is missing or not PEM', () => {
    expect(() => loadTlsOptions({ cert: 'nope.pem', key: certs.serverKey }, dir)).toThrow(/tls\.cert: cannot read PEM file .*nope\.pem \(ENOENT\)/);
    writeFileSync(path.join(dir, 'junk.key'), 'not a key');
    expect(() => loadTlsOptions({ cert: certs.serverCert, key: 'junk.key' }, dir)).toThrow(/tls\.key: .*junk\.key is not a PEM file/);
  });

  it('with requestCert and ca, refuses a self-signed client at the handshake and accepts a signed one', async () => {
    const server = tls.createServer(loadTlsOptions({ cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true }), (s) => s.end('hello'));
    const refused: string[] = [];
    server.on('tlsClientError', (e) => refused.push(e.message));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const connect = (cert: string, key: string) =>
      new Promise<string>((resolve, reject) => {
        // The server-side options carry what a client needs too; pskCallback and the like differ in type, so pick the fields.
        const o = loadTlsOptions({ cert, key, ca: certs.ca });
        const c = tls.connect({ host: '127.0.0.1', port, cert: o.cert, key: o.key, ca: o.ca, minVersion: o.minVersion });
        let got = '';
        c.on('data', (d) => (got += d));
        c.on('end', () => resolve(got));
        c.on('error', (e) => (got ? reject(e) : resolve(`error: ${e.message}`)));
      });
    try {
      expect(await connect(certs.clientCert, certs.clientKey)).toBe('hello');
      expect(refused).toEqual([]);
      // TLS 1.3 finishes the client side first, so the client sees an alert or a closed socket, never data.
      expect(await connect(certs.rogueCert, certs.rogueKey)).not.toBe('hello');
      expect(refused).toHaveLength(1);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
