/**
 * Health that tells the truth (issue 11, item 8): a listener that cannot bind
 * stops `hisbridge start`, a failing store write turns /readyz and /healthz
 * 503 with the reason until the next successful write, and the HTTP code and
 * the body's status always agree.
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { Engine } from '../../core/engine/engine.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { builtinRegistry } from '../../plugins/index.js';
import { silentLogger } from '../../core/log.js';
import { CLI_MAIN } from '../helpers/cli.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';

interface Health { status: string; reasons: string[]; store: { ok: boolean; detail?: string } }

async function health(url: string): Promise<{ code: number; body: Health }> {
  const res = await fetch(url);
  return { code: res.status, body: (await res.json()) as Health };
}

/** The code/status contract on both endpoints. */
function agrees(h: { code: number; body: Health }): boolean {
  return (h.code === 200) === (h.body.status === 'ok') && (h.code === 200 || h.code === 503);
}

async function occupy(port = 0): Promise<net.Server> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => s.once('error', reject).listen(port, '127.0.0.1', resolve));
  return s;
}

function startCli(args: string[]): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_MAIN, 'start', ...args], { env: { ...process.env, HISBRIDGE_LOG_LEVEL: 'silent' } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, stderr, ms: Date.now() - t0 });
    });
  });
}

describe('a listener that cannot bind', () => {
  it('makes `hisbridge start` exit non-zero within 10 s, naming the listener, host and port', async () => {
    const taken = await occupy();
    const port = (taken.address() as net.AddressInfo).port;
    const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-bind-'));
    try {
      // No routes and no simulators: nothing else in the way, and no fixed simulator ports shared with other tests.
      const r = await startCli(['--mllp-port', String(port), '--http-port', '0', '--data-dir', dir, '--routes', dir, '--no-simulators']);
      expect(r.code).not.toBe(0);
      expect(r.code).not.toBeNull();
      expect(r.ms).toBeLessThan(10_000);
      expect(r.stderr).toContain('ENGINE_E_LISTEN');
      expect(r.stderr).toContain(`listener mllp on 127.0.0.1:${port}`);
      expect(r.stderr).toContain('address already in use');
      expect(r.stderr).not.toContain('hisbridge ready');
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('a simulator whose port is taken fails Engine.create with its name, host and port', async () => {
    // The simulator's port comes from simulatorPorts (or the HTTP port + 1); point it at a port we hold.
    const taken = await occupy();
    const port = (taken.address() as net.AddressInfo).port;
    const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-bind-'));
    try {
      const reg = builtinRegistry();
      const config = { ...loadSiteConfig(undefined, reg.extensions, { mllpPort: 0, httpPort: 0, dataDir: dir, routesDir: path.resolve('routes') }), simulatorPorts: { gdEhr: port } };
      const err = await Engine.create({ config, registry: reg, log: silentLogger() }).then(
        async (e) => {
          await e.stop(100);
          return undefined;
        },
        (e: unknown) => e as { code?: string; message: string },
      );
      expect(err?.code).toBe('ENGINE_E_LISTEN');
      expect(err?.message).toContain(`simulator gdEhr on 127.0.0.1:${port}: address already in use`);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the HTTP port taken also stops start, naming it', async () => {
    const taken = await occupy();
    const port = (taken.address() as net.AddressInfo).port;
    const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-bind-'));
    try {
      const r = await startCli(['--mllp-port', '0', '--http-port', String(port), '--data-dir', dir, '--routes', dir, '--no-simulators']);
      expect(r.code).toBe(1);
      expect(r.ms).toBeLessThan(10_000);
      expect(r.stderr).toContain(`http on 127.0.0.1:${port}`);
    } finally {
      taken.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('store write failures', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startEngine();
  });
  afterAll(async () => {
    t.engine.store.setSizeLimit(undefined);
    await t?.stop();
  });

  it('a full database turns ACKs into AE and /readyz and /healthz into 503 with the reason, until the next successful write', async () => {
    const ready0 = await health(`${t.httpUrl}/readyz`);
    expect(ready0.code).toBe(200);
    expect(ready0.body.status).toBe('ok');
    expect(ready0.body.reasons).toEqual([]);

    const client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 10_000 });
    try {
      const msg = (id: string) => Buffer.from(`MSH|^~\\&|HIS|H1|HB|H2|20240101120000||ADT^A28|${id}|P|2.5|||||CHN|UNICODE UTF-8\rPID|1||P${id}^^^^PI||${'X'.repeat(60_000)}\r`, 'utf8');
      const code = async (id: string) => parseHl7(decodeHl7(await client.send(msg(id)), 'utf-8').text).get('MSA-1');
      expect(await code('FULL0')).toBe('AA');

      // A real SQLITE_FULL: the database may not grow past its present size.
      t.engine.store.setSizeLimit(t.engine.store.sizeBytes());
      let got = 'AA';
      for (let n = 1; n < 40 && got === 'AA'; n++) got = await code(`FULL${n}`);
      expect(got).toBe('AE');

      for (const ep of ['readyz', 'healthz']) {
        const h = await health(`${t.httpUrl}/${ep}`);
        expect(h.code).toBe(503);
        expect(h.body.status).toBe('failing');
        expect(h.body.reasons.join('\n')).toContain('store: failing: database or disk is full');
        expect(h.body.store.ok).toBe(false);
        expect(agrees(h)).toBe(true);
      }

      // Space again: the next write succeeds and health recovers.
      t.engine.store.setSizeLimit(undefined);
      expect(await code('FULL-AFTER')).toBe('AA');
      const after = await health(`${t.httpUrl}/readyz`);
      expect(after.code).toBe(200);
      expect(after.body.status).toBe('ok');
      expect(after.body.store).toEqual({ ok: true });
    } finally {
      client.close();
    }
  }, 60_000);

  it('a failing critical check gives 503 "not-ready" on /readyz with its name, while /healthz stays 200 "ok"', async () => {
    let ok = false;
    t.engine.ops.registerCheck({ name: 'probe', critical: true, run: () => (ok ? { ok: true } : { ok: false, detail: 'down for the test' }) });
    const r = await health(`${t.httpUrl}/readyz`);
    expect(r.code).toBe(503);
    expect(r.body.status).toBe('not-ready');
    expect(r.body.reasons).toContain('check probe: down for the test');
    const l = await health(`${t.httpUrl}/healthz`);
    expect(l.code).toBe(200);
    expect(l.body.status).toBe('ok');
    ok = true;
    expect((await health(`${t.httpUrl}/readyz`)).code).toBe(200);
  });

  it('a closed listener makes both endpoints 503 "failing", naming it', async () => {
    const e = await startEngine();
    try {
      await e.engine.listeners[0]!.server.close(100);
      for (const ep of ['healthz', 'readyz']) {
        const h = await health(`${e.httpUrl}/${ep}`);
        expect(h.code).toBe(503);
        expect(h.body.status).toBe('failing');
        expect(h.body.reasons.join('\n')).toContain(`listener mllp: not listening on 127.0.0.1:${e.port}`);
      }
    } finally {
      await e.stop();
    }
  });

  it('while stopping, both endpoints answer 503 with status "stopping"', async () => {
    const e = await startEngine();
    const stopped = e.stop();
    try {
      const h0 = e.engine.health('ready');
      expect(h0.status).toBe('stopping');
      expect(h0.reasons[0]).toBe('engine: stopping');
      for (const ep of ['healthz', 'readyz']) {
        const h = await fetch(`${e.httpUrl}/${ep}`).then(async (res) => ({ code: res.status, body: (await res.json()) as Health })).catch(() => undefined);
        // The HTTP server may already be closed; when it answers, it must say stopping with 503.
        if (h) {
          expect(h.code).toBe(503);
          expect(h.body.status).toBe('stopping');
        }
      }
    } finally {
      await stopped;
    }
  });
});
