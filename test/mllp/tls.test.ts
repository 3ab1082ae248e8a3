/**
 * TLS on MLLP listeners (issue 12): a TLS listener answers `hisbridge send
 * --tls --ca` (a CLI process); with `requestCert` + `ca` (mutual TLS) a
 * client with a CA-signed certificate is served, and a client with a
 * self-signed certificate or with none is refused at the handshake: no ACK,
 * nothing stored, one log line naming the peer address and the reason.
 * Certificates are made with openssl at test time.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';
import { loadTlsOptions } from '../../core/config/tls.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { createMllpServer, type MllpServer } from '../../core/mllp/server.js';
import { MllpClient } from '../../core/mllp/client.js';
import { makeCerts, type TestCerts } from '../helpers/certs.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { cli } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hb-mllp-tls-'));
let certs: TestCerts;

const MSG = (id: string) => `MSH|^~\\&|HIS|H1|HB|H2|20240101120000||ADT^A28|${id}|P|2.5\rPID|1||P1^^^^PI||TEST^ONE`;
const ACK = (frame: Buffer) => {
  const id = frame.toString('latin1').split('\r')[0]!.split('|')[9];
  return Buffer.from(`MSH|^~\\&|HB|H2|HIS|H1|20240101120002||ACK|A${id}|P|2.5\rMSA|AA|${id}`, 'latin1');
};

function captureLogger(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({ write(c, _e, cb) { lines.push(...String(c).split('\n').filter(Boolean)); cb(); } });
  return { log: createLogger({ level: 'debug', destination: sink }), lines };
}

/** Sends one message; resolves with the ACK text or with the failure code (connect or send). */
async function tryExchange(port: number, opts: tls.ConnectionOptions): Promise<{ ack?: string; failed?: string }> {
  let client: MllpClient;
  try {
    client = await MllpClient.connect('127.0.0.1', port, { tls: opts, timeoutMs: 5000, connectTimeoutMs: 5000 });
  } catch (e) {
    return { failed: (e as { code?: string }).code ?? 'error' };
  }
  try {
    // TLS 1.3: the client may finish its side of the handshake before the server refuses its certificate.
    return { ack: (await client.send(MSG('T1'))).toString('latin1') };
  } catch (e) {
    return { failed: (e as { code?: string }).code ?? 'error' };
  } finally {
    await client.close();
  }
}

async function until(ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

beforeAll(() => {
  certs = makeCerts(path.join(dir, 'certs'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadTlsOptions', () => {
  it('reads the PEM files and turns requestCert with ca into rejectUnauthorized', () => {
    const o = loadTlsOptions({ cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true });
    expect(o.requestCert).toBe(true);
    expect(o.rejectUnauthorized).toBe(true);
    expect(Buffer.isBuffer(o.cert) && o.cert.includes('BEGIN CERTIFICATE')).toBe(true);
  });

  it('names the missing file, refuses requestCert without ca, and a key that does not fit the certificate', () => {
    expect(() => loadTlsOptions({ cert: path.join(dir, 'nope.pem'), key: certs.serverKey })).toThrow(/tls\.cert: cannot read .*nope\.pem \(ENOENT\)/);
    expect(() => loadTlsOptions({ cert: certs.serverCert, key: certs.serverKey, requestCert: true })).toThrow(/requestCert needs tls\.ca/);
    expect(() => loadTlsOptions({ cert: certs.serverCert, key: certs.clientKey })).toThrow(/cannot be used/);
    const relative = loadTlsOptions({ cert: 'server.pem', key: 'server.key' }, path.join(dir, 'certs'));
    expect(relative.cert).toBeDefined();
  });

  it('a listener tls block with a missing file refuses to load, naming the listener and the file', () => {
    expect(() => loadSiteConfig(undefined, [], {})).not.toThrow();
    const yaml = path.join(dir, 'bad.yaml');
    writeFileSync(yaml, `listeners:\n  - name: his\n    tls: { cert: missing.pem, key: ${certs.serverKey} }\n`);
    let e: unknown;
    try {
      loadSiteConfig(yaml, [], {});
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(LoadError);
    expect(String((e as LoadError).issues[0])).toMatch(/bad\.yaml:1:1: listeners\[0\]\.tls\.cert: cannot read .*missing\.pem \(ENOENT\)/);
  });

  it('the listener schema rejects unknown keys in tls', () => {
    const yaml = path.join(dir, 'bad2.yaml');
    writeFileSync(yaml, `listeners:\n  - name: his\n    tls: { cert: a.pem, key: b.pem, verify: false }\n`);
    expect(() => loadSiteConfig(yaml, [], {})).toThrow(LoadError);
  });
});

describe('MLLP listener with mutual TLS', () => {
  let server: MllpServer;
  let port: number;
  const received: Buffer[] = [];
  const { log, lines } = captureLogger();

  beforeAll(async () => {
    server = createMllpServer({
      name: 'his-tls', host: '127.0.0.1', port: 0, log,
      tls: loadTlsOptions({ cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, requestCert: true }),
      handler: async (frame) => (received.push(frame), ACK(frame)),
    });
    port = (await server.listen()).port;
  });
  afterAll(() => server?.close(500));

  it('serves a client whose certificate the CA signed, with ordered replies on one connection', async () => {
    const client = await MllpClient.connect('127.0.0.1', port, { tls: { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) } });
    const acks = await Promise.all(['M1', 'M2', 'M3'].map((id) => client.send(MSG(id))));
    await client.close();
    expect(acks.map((a) => a.toString('latin1').match(/MSA\|AA\|(\w+)/)?.[1])).toEqual(['M1', 'M2', 'M3']);
  });

  it('refuses a self-signed client certificate and a client without one at the handshake; nothing reaches the handler', async () => {
    const before = received.length;
    const rogue = await tryExchange(port, { ca: readFileSync(certs.ca), cert: readFileSync(certs.rogueCert), key: readFileSync(certs.rogueKey) });
    const none = await tryExchange(port, { ca: readFileSync(certs.ca) });
    expect(rogue.ack).toBeUndefined();
    expect(none.ack).toBeUndefined();
    expect(rogue.failed).toMatch(/^MLLP_E_(CONNECT|CLOSED|TLS_REFUSED)$/);
    expect(none.failed).toMatch(/^MLLP_E_(CONNECT|CLOSED|TLS_REFUSED)$/);
    expect(received.length).toBe(before);
    await until(() => lines.filter((l) => l.includes('MLLP_E_TLS_HANDSHAKE')).length >= 2);
    const refusals = lines.filter((l) => l.includes('MLLP_E_TLS_HANDSHAKE')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(refusals.length).toBeGreaterThanOrEqual(2);
    for (const r of refusals) {
      expect(r.remoteAddress).toMatch(/127\.0\.0\.1/);
      expect(String(r.reason)).toMatch(/SELF_SIGNED|DID_NOT_RETURN_A_CERTIFICATE/);
    }
    // No open connection was ever handed to the MLLP layer.
    expect(lines.filter((l) => l.includes('mllp connection open')).length).toBe(1);
  });

  it('a plain-TCP client is refused too and the listener keeps serving', async () => {
    const net = await import('node:net');
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(MSG('PLAIN')), Buffer.from([0x1c, 0x0d])])));
      s.on('error', () => undefined);
      s.on('close', () => resolve());
      s.resume();
    });
    const ok = await tryExchange(port, { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) });
    expect(ok.ack).toMatch(/MSA\|AA\|T1/);
    expect(received.some((f) => f.toString('latin1').includes('PLAIN'))).toBe(false);
  });
});

describe('TLS handshake timeout', () => {
  it('a peer that opens TCP and never starts the handshake is dropped after tlsHandshakeTimeoutMs, logged with its address', async () => {
    const { log, lines } = captureLogger();
    const server = createMllpServer({
      name: 'stall', host: '127.0.0.1', port: 0, log, tlsHandshakeTimeoutMs: 300,
      tls: loadTlsOptions({ cert: certs.serverCert, key: certs.serverKey }),
      handler: async (frame) => ACK(frame),
    });
    const { port } = await server.listen();
    try {
      const net = await import('node:net');
      const started = Date.now();
      await new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => undefined);
        s.on('close', () => resolve());
        s.resume();
      });
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(250);
      expect(took).toBeLessThan(5000);
      await until(() => lines.some((l) => l.includes('MLLP_E_TLS_HANDSHAKE')));
      const r = JSON.parse(lines.find((l) => l.includes('MLLP_E_TLS_HANDSHAKE'))!) as Record<string, unknown>;
      expect(r).toMatchObject({ remoteAddress: expect.stringMatching(/127\.0\.0\.1/), reason: 'ERR_TLS_HANDSHAKE_TIMEOUT' });
    } finally {
      await server.close(200);
    }
  });
});

describe('engine listener with tls in hisbridge.yaml, driven by `hisbridge send --tls`', () => {
  let t: TestEngine;
  const sample = path.resolve('samples/06-adt-a28-add-person-no-msh18.hl7');
  const stored = () => t.engine.store.searchMessages({ limit: 100 }).length;

  beforeAll(async () => {
    t = await startEngine({
      siteYaml: `listeners:\n  - name: mllp\n    tls: { cert: ${certs.serverCert}, key: ${certs.serverKey}, ca: ${certs.ca}, requestCert: true }\n`,
    });
  });
  afterAll(() => t?.stop());

  it('send --tls --ca --cert --key gets the AA; the message is stored', async () => {
    const r = await cli(['send', sample, '--port', String(t.port), '--tls', '--ca', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/MSA\|AA\|/);
    expect(stored()).toBe(1);
  });

  it('send with the rogue certificate or with no certificate fails: no ACK, nothing stored, the refusal is logged without PHI', async () => {
    const rogue = await cli(['send', sample, '--port', String(t.port), '--tls', '--ca', certs.ca, '--cert', certs.rogueCert, '--key', certs.rogueKey]);
    const none = await cli(['send', sample, '--port', String(t.port), '--tls', '--ca', certs.ca]);
    for (const r of [rogue, none]) {
      expect(r.code).toBe(1);
      expect(r.stdout).not.toMatch(/MSA/);
      expect(r.stderr).toMatch(/MLLP_E_(CONNECT|CLOSED|TLS_REFUSED)/);
    }
    // The operator is told it was the TLS refusal (TLS 1.3: an alert after the client's side of the handshake).
    expect(none.stderr).toMatch(/MLLP_E_TLS_REFUSED: the server refused the TLS connection \(certificate required\)/);
    expect(stored()).toBe(1);
    const refusals = t.logs.filter((l) => l.includes('MLLP_E_TLS_HANDSHAKE'));
    expect(refusals.length).toBeGreaterThanOrEqual(2);
    const text = readFileSync(sample, 'latin1');
    const pid3 = /PID\|[^|]*\|[^|]*\|([^^|]+)/.exec(text)?.[1] ?? 'none';
    for (const l of refusals) expect(l).not.toContain(pid3);
  });

  it('send without --tls against the TLS listener gets no ACK; flag mistakes are usage errors', async () => {
    const plain = await cli(['send', sample, '--port', String(t.port), '--timeout', '3000']);
    expect(plain.code).not.toBe(0);
    expect(plain.stdout).not.toMatch(/MSA/);
    const noTls = await cli(['send', sample, '--port', String(t.port), '--ca', certs.ca]);
    expect(noTls.code).toBe(2);
    expect(noTls.stderr).toMatch(/--ca, --cert and --key need --tls/);
    const half = await cli(['send', sample, '--port', String(t.port), '--tls', '--cert', certs.clientCert]);
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/--cert and --key go together/);
    const missing = await cli(['send', sample, '--port', String(t.port), '--tls', '--ca', path.join(dir, 'nope.pem')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--ca: cannot read .*nope\.pem \(ENOENT\)/);
    expect(stored()).toBe(1);
  });
});
