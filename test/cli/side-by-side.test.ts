/**
 * Issue 14 item 5: simulators that share a machine. Each engine's simulators
 * listen on its HTTP port + 1, + 2, so two `hisbridge start` with simulators
 * on, with different --mllp-port/--http-port/--data-dir, run side by side and
 * each authorizes at its own simulator. A simulator that cannot bind names
 * itself, its host and port, and the start exits non-zero.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { spawnEngine, type EngineProcess } from '../helpers/proc.js';
import { cli } from '../helpers/cli.js';

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A port P with P, P+1 and P+2 free (the engine's HTTP port and its two simulators), away from `avoid`. */
async function freeTriple(avoid: number[] = []): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const p = 20_000 + Math.floor(Math.random() * 30_000);
    if (avoid.some((a) => Math.abs(a - p) < 6)) continue;
    if ((await canBind(p)) && (await canBind(p + 1)) && (await canBind(p + 2)) && (await canBind(p + 3))) return p;
  }
  throw new Error('no free port triple found');
}

interface SimCall { op: string; verified: boolean }

async function simCalls(url: string): Promise<SimCall[]> {
  const res = await fetch(`${url}/__sim/calls`);
  return ((await res.json()) as { calls: SimCall[] }).calls;
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('two engines with simulators side by side', () => {
  const engines: EngineProcess[] = [];
  const ports: number[] = [];
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-side-'));
    for (const n of [0, 1]) {
      const http = await freeTriple(ports);
      ports.push(http);
      engines.push(await spawnEngine(['--mllp-port', '0', '--http-port', String(http), '--data-dir', path.join(dir, `data-${n}`)], {}, 40_000));
    }
  }, 90_000);
  afterAll(async () => {
    for (const e of engines) {
      e.child.kill('SIGTERM');
      await e.exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('both are ready, each with its simulators on its HTTP port + 1, + 2 and + 3', async () => {
    for (const [i, e] of engines.entries()) {
      const res = await fetch(`${e.httpUrl}/readyz`);
      const body = (await res.json()) as { status: string; simulators: Record<string, string> };
      expect(res.status).toBe(200);
      expect(body.status).toBe('ok');
      expect(body.simulators).toEqual({ gdEhr: `http://127.0.0.1:${ports[i]! + 1}`, recognition: `http://127.0.0.1:${ports[i]! + 2}`, mllpReceiver: `mllp://127.0.0.1:${ports[i]! + 3}` });
      expect(e.stderr()).toContain(`simulator gdEhr: http://127.0.0.1:${ports[i]! + 1}`);
    }
  });

  it('each authorizes sample 01 at its own simulator', async () => {
    const raw = readFileSync(path.resolve('samples/01-adt-a04-registration-consent.hl7'));
    for (const e of engines) {
      const client = await MllpClient.connect('127.0.0.1', e.mllpPort, { timeoutMs: 10_000 });
      try {
        const a = parseHl7(decodeHl7(await client.send(raw), 'gb18030').text);
        expect(a.get('MSA-1')).toBe('AA');
      } finally {
        client.close();
      }
    }
    for (const [i] of engines.entries()) {
      const calls = await until(() => simCalls(`http://127.0.0.1:${ports[i]! + 1}`), (c) => c.some((x) => x.op === 'authorize'));
      const auth = calls.filter((c) => c.op === 'authorize');
      // One each: neither engine reached the other's simulator.
      expect(auth).toHaveLength(1);
      expect(auth[0]!.verified).toBe(true);
    }
  });

  it('a simulator that cannot bind names itself, host and port, and the start exits 1', async () => {
    // HTTP port one below engine 0's: its gdEhr simulator would take engine 0's HTTP port.
    const r = await cli(['start', '--mllp-port', '0', '--http-port', String(ports[0]! - 1), '--data-dir', path.join(dir, 'data-clash')], { HISBRIDGE_LOG_LEVEL: 'warn' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`ENGINE_E_LISTEN: cannot listen: simulator gdEhr on 127.0.0.1:${ports[0]}: address already in use`);
  }, 30_000);

  it('simulatorPorts in hisbridge.yaml moves one simulator', async () => {
    const http = await freeTriple(ports);
    const moved = await freeTriple([...ports, http]);
    const file = path.join(dir, 'ports.yaml');
    writeFileSync(file, `simulatorPorts:\n  gdEhr: ${moved}\n`);
    const e = await spawnEngine(['--config', file, '--mllp-port', '0', '--http-port', String(http), '--data-dir', path.join(dir, 'data-ports')], {}, 40_000);
    try {
      const body = (await (await fetch(`${e.httpUrl}/readyz`)).json()) as { simulators: Record<string, string> };
      expect(body.simulators).toEqual({ gdEhr: `http://127.0.0.1:${moved}`, recognition: `http://127.0.0.1:${http + 2}`, mllpReceiver: `mllp://127.0.0.1:${http + 3}` });
    } finally {
      e.child.kill('SIGTERM');
      await e.exited;
    }
  }, 60_000);

  it('simulatorPorts naming no simulator is refused with file:line:col', async () => {
    const file = path.join(dir, 'bad-ports.yaml');
    writeFileSync(file, 'simulatorPorts:\n  szEhr: 9999\n');
    const r = await cli(['validate', '--config', file, path.resolve('routes')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad-ports\.yaml:2:3: simulatorPorts\.szEhr: no simulator of that name \(known: gdEhr, recognition, mllpReceiver\)/);
  });
});
