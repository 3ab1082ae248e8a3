/**
 * The example site plugin end to end: a real engine built the way
 * `hisbridge start --config examples/sz-ehr/hisbridge.yaml` builds it
 * (external plugins loaded from the config, then the site config, then the
 * engine), an ADT^A04 over a real MLLP socket, and the example's own
 * simulator checking the HMAC-signed authorization. A refusal by the
 * simulator reaches the dead-letter list with the example's SZEHR_E_REFUSED.
 */
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../core/engine/engine.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { loadExternalPlugins } from '../../core/config/plugins.js';
import { createLogger } from '../../core/log.js';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { builtinRegistry } from '../../plugins/index.js';
import { until } from '../../test/helpers/kafka.js';

const HERE = path.resolve('examples/sz-ehr');
const CONFIG = path.join(HERE, 'hisbridge.yaml');
/** The demo credentials the defaults give the plugin and the simulator (site-plugins/sz-ehr.mjs DEMO). */
const DEMO_APP_KEY = 'sz-demo-app';
const DEMO_SECRET = 'sz-demo-secret-not-for-production';
const SAMPLE = readFileSync(path.resolve('samples/01-adt-a04-registration-consent.hl7'));

/** The sample ADT^A04 (GB18030, consent ZCN-1 = Y) with another MSH-10: a byte-level replace of an ASCII id. */
function adt(controlId: string): Buffer {
  const text = SAMPLE.toString('latin1').replace('HIS202503120001', controlId).replace(/\r?\n/g, '\r');
  return Buffer.from(text.endsWith('\r') ? text : `${text}\r`, 'latin1');
}

interface SimCall {
  headers: Record<string, string>;
  body: string;
  signatureValid: boolean;
  httpStatus: number;
  code?: string;
}

/** The signature recomputed here from the wire contract, independently of the plugin's own code. */
function expectedSignature(h: Record<string, string>, body: string): string {
  const digest = createHash('sha256').update(Buffer.from(body, 'utf8')).digest('hex');
  return createHmac('sha256', DEMO_SECRET).update(`POST\n/api/v1/consent/authorize\n${h['x-sz-timestamp']}\n${h['x-sz-nonce']}\n${digest}`).digest('hex');
}

describe('examples/sz-ehr: a city platform written as a site plugin', () => {
  let engine: Engine;
  let client: MllpClient;
  let dir: string;
  let sim: string;
  const logs: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-szehr-'));
    const registry = builtinRegistry();
    const loaded = await loadExternalPlugins(CONFIG, registry);
    expect(loaded).toMatchObject([{ entry: './site-plugins/sz-ehr.mjs', plugins: ['sz-ehr-authorize'], extensions: ['szEhr'], errorFamilies: ['szEhr'] }]);
    const config = loadSiteConfig(CONFIG, registry.extensions, { mllpPort: 0, httpPort: 0, dataDir: path.join(dir, 'data') }, process.env, registry.sources);
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logs.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    engine = await Engine.create({ config, registry, log: createLogger({ level: 'debug', destination: sink }), simulatorPorts: 'random' });
    await engine.start();
    sim = engine.simulators.szEhr!.url;
    client = await MllpClient.connect('127.0.0.1', engine.listeners[0]!.port!, { timeoutMs: 15_000 });
  });

  afterAll(async () => {
    client?.close();
    await engine?.stop(2000);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const simCalls = async (): Promise<SimCall[]> => ((await (await fetch(`${sim}/__sim/calls`)).json()) as { calls: SimCall[] }).calls;
  const ackCode = (b: Buffer) => parseHl7(decodeHl7(b, 'gb18030').text).get('MSA-1');

  it('loads only the example route, with the example simulator started like the built-in ones', () => {
    expect(engine.routes.routes.map((r) => r.name)).toEqual(['sz-ehr-authorize']);
    expect(sim).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('an ADT^A04 with consent over MLLP reaches the simulator as a correctly signed authorization', async () => {
    expect(ackCode(await client.send(adt('SZEHR0001')))).toBe('AA');
    const calls = await until(simCalls, (c) => c.some((x) => x.code === '0000'));
    const call = calls.find((x) => x.code === '0000')!;
    expect(call).toMatchObject({ signatureValid: true, httpStatus: 200 });
    expect(call.headers['x-sz-app-key']).toBe(DEMO_APP_KEY);
    expect(call.headers['x-sz-signature']).toBe(expectedSignature(call.headers, call.body));
    const body = JSON.parse(call.body) as { orgCode: string; patient: { idType: string; idNumber: string; name: string }; validDays: number; requestId: string };
    // The GB18030 name arrives intact; the ID number comes from PID-3 typed NI.
    expect(body).toMatchObject({ orgCode: 'SZ4403000001', patient: { idType: '01', idNumber: '440106199003152314', name: '张三丰' }, validDays: 30 });
    expect(body.requestId).toBe(call.headers['idempotency-key']);
    // The plugin never logs the plain ID number or name.
    expect(logs.join('\n')).not.toContain('440106199003152314');
    expect(logs.join('\n')).not.toContain('张三丰');
  });

  it('a refusal by the platform is permanent: dead-lettered after one attempt with SZEHR_E_REFUSED and the platform code', async () => {
    await fetch(`${sim}/__sim/faults`, { method: 'POST', body: JSON.stringify({ refuse: '2001', count: 1 }) });
    expect(ackCode(await client.send(adt('SZEHR0002')))).toBe('AA');
    const dead = await until(() => engine.store.listDead().find((d) => d.controlId === 'SZEHR0002'), Boolean);
    expect(dead).toMatchObject({ lastErrorCode: 'SZEHR_E_REFUSED', lastError: 'Shenzhen platform refused the authorization: code 2001', attempts: 1, plugin: 'sz-ehr-authorize' });
    expect((await simCalls()).filter((c) => c.code === '2001')).toHaveLength(1);
  });

  it('health probes the example platform through the extension\'s health declaration', async () => {
    const res = await fetch(`${engine.httpServer!.url}/healthz`);
    const body = (await res.json()) as { remotes?: Record<string, { target: string }> };
    // host:port of the example simulator, which the szEhr defaults point at.
    expect(body.remotes?.szEhr?.target).toBe(new URL(sim).host);
  });

  it('the route tests of the example pass through hisbridge test --config (CLI process)', () => {
    const r = spawnSync(process.execPath, [path.resolve('dist/core/cli/main.js'), 'test', '--config', CONFIG, '--routes', path.join(HERE, 'routes'), path.join(HERE, 'routes')], { encoding: 'utf8' });
    expect(r.stdout).toContain('3 passed, 0 failed');
    expect(r.status).toBe(0);
  });

  it('the CLI knows the example: validate accepts it and errors lists its SZEHR_E_ codes', () => {
    const cli = (args: string[]) => spawnSync(process.execPath, [path.resolve('dist/core/cli/main.js'), ...args], { encoding: 'utf8' });
    const v = cli(['validate', '--config', CONFIG]);
    expect(v.stderr).toBe('');
    expect(v.stdout).toMatch(/^ok: 1 routes in 1 files/);
    const e = cli(['errors', '--config', CONFIG, '--family', 'szEhr']);
    expect(e.status).toBe(0);
    expect(e.stdout.split('\n').filter(Boolean).map((l) => l.split('\t').slice(0, 3).join(' '))).toEqual([
      'SZEHR_E_BAD_RESPONSE szEhr retryable',
      'SZEHR_E_NO_ID_NUMBER szEhr permanent',
      'SZEHR_E_REFUSED szEhr permanent',
      'SZEHR_E_SIGNATURE szEhr permanent',
    ]);
  });
});
