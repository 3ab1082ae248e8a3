/**
 * Per-plugin concurrency (issue 14): a plugin declares `concurrency`, a site
 * may override it with `delivery.pluginConcurrency`, and the engine passes
 * the limits to its delivery workers. Counted at a real, slow local HTTP
 * server: how many calls of each plugin are in flight at once.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { Engine } from '../../core/engine/engine.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { silentLogger } from '../../core/log.js';
import { pluginConcurrency } from '../../core/engine/plugin-host.js';
import { classifyHttpStatus, type PluginDefinition } from '../../core/sdk.js';
import { builtinRegistry } from '../../plugins/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';
import { cli } from '../helpers/cli.js';

/** A slow remote: each path counts its calls in flight, the most at once, and answers after `holdMs`. */
class SlowServer {
  readonly server: Server;
  readonly inFlight = new Map<string, number>();
  readonly maxInFlight = new Map<string, number>();
  readonly done = new Map<string, number>();
  holdMs = 60;
  /** Path whose calls wait (no answer) until `release()`; the others answer after holdMs. */
  held?: string;
  #waiting: (() => void)[] = [];

  constructor() {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const p = req.url ?? '/';
      req.resume();
      req.on('end', () => {
        const now = (this.inFlight.get(p) ?? 0) + 1;
        this.inFlight.set(p, now);
        this.maxInFlight.set(p, Math.max(now, this.maxInFlight.get(p) ?? 0));
        const answer = () => {
          this.inFlight.set(p, (this.inFlight.get(p) ?? 1) - 1);
          this.done.set(p, (this.done.get(p) ?? 0) + 1);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        };
        if (p === this.held) this.#waiting.push(answer);
        else setTimeout(answer, this.holdMs);
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  release(): void {
    this.held = undefined;
    for (const a of this.#waiting.splice(0)) a();
  }

  reset(): void {
    this.inFlight.clear();
    this.maxInFlight.clear();
    this.done.clear();
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** A test plugin written against core/sdk only: one POST to `url` per message. */
function caller(name: string, concurrency?: number): PluginDefinition<{ url: string }> {
  return {
    name,
    summary: 'test plugin: one POST per message',
    kind: 'outbound',
    ...(concurrency !== undefined ? { concurrency } : {}),
    configSchema: { type: 'object', additionalProperties: false, required: ['url'], properties: { url: { type: 'string' } } },
    create(ctx, config) {
      return {
        async process(input, call) {
          const res = await ctx.http.request(config.url, { method: 'POST', body: { id: input.controlId }, signal: call.signal, target: name });
          const failed = classifyHttpStatus(res.status, res.headers, name);
          if (failed) throw failed;
          return { outcome: 'ok' };
        },
      };
    },
  };
}

const msg = (cid: string, type: string, patient: string) => `MSH|^~\\&|LIS|H1|HB|HB|20250312093015||${type}|${cid}|P|2.5\rPID|1||${patient}^^^H^PI\r`;
const ackCode = (b: Buffer) => parseHl7(decodeHl7(b, 'utf-8').text).get('MSA-1');

async function until<T>(fn: () => T, ok: (v: T) => boolean, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const routes = (url: string) => ({
  'limited.yaml': `name: limited
match: { events: [ORU^R01] }
ack: on-receive
steps:
  - plugin: one-at-a-time
    config: { url: "${url}/one" }
`,
  'free.yaml': `name: free
match: { events: [ORU^R30] }
ack: on-receive
steps:
  - plugin: free-caller
    config: { url: "${url}/free" }
`,
});

const registry = () => builtinRegistry().plugin(caller('one-at-a-time', 1)).plugin(caller('free-caller'));

describe('per-plugin concurrency through a real engine', () => {
  const remote = new SlowServer();
  let url: string;
  let routesDir: string;
  let t: TestEngine | undefined;
  let client: MllpClient | undefined;

  beforeAll(async () => {
    url = await remote.listen();
    routesDir = tempFiles(routes(url));
  });

  afterEach(async () => {
    remote.release();
    client?.close();
    client = undefined;
    await t?.stop();
    t = undefined;
    remote.reset();
  });

  afterAll(async () => {
    await remote.close();
    rmSync(routesDir, { recursive: true, force: true });
  });

  async function send(type: string, n: number, prefix: string): Promise<void> {
    for (let i = 0; i < n; i++) expect(ackCode(await client!.send(msg(`${prefix}${i}`, type, `P${prefix}${i}`)))).toBe('AA');
  }

  it('a plugin declaring concurrency 1 has at most one call in flight, while another plugin\'s deliveries proceed', async () => {
    t = await startEngine({ routesDir, registry: registry() });
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 15_000 });
    // The limited plugin's first call hangs at the remote: the free plugin's 8 deliveries must still all be made, several at once.
    remote.held = '/one';
    await send('ORU^R01', 8, 'LIM');
    remote.holdMs = 100;
    await send('ORU^R30', 8, 'FREE');
    await until(() => remote.done.get('/free') ?? 0, (n) => n === 8, 'the free plugin\'s 8 calls');
    expect(remote.inFlight.get('/one')).toBe(1);
    expect(remote.maxInFlight.get('/one')).toBe(1);
    expect(remote.maxInFlight.get('/free')).toBeGreaterThan(1);
    // Released, the limited plugin's 8 calls are made one at a time.
    remote.holdMs = 30;
    remote.release();
    await until(() => remote.done.get('/one') ?? 0, (n) => n === 8, 'the limited plugin\'s 8 calls');
    expect(remote.maxInFlight.get('/one')).toBe(1);
    await until(() => t!.engine.store.pendingCount(), (n) => n === 0, 'no pending deliveries');
  });

  it('delivery.pluginConcurrency in hisbridge.yaml overrides the declared limits', async () => {
    t = await startEngine({ routesDir, registry: registry(), siteYaml: 'delivery:\n  pluginConcurrency:\n    one-at-a-time: 3\n    free-caller: 2\n' });
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 15_000 });
    remote.holdMs = 150;
    await send('ORU^R01', 9, 'OV');
    await send('ORU^R30', 9, 'OVF');
    await until(() => (remote.done.get('/one') ?? 0) + (remote.done.get('/free') ?? 0), (n) => n === 18, 'all 18 calls');
    expect(remote.maxInFlight.get('/one')).toBe(3);
    expect(remote.maxInFlight.get('/free')).toBe(2);
  });

  it('the effective limits: declared, then the site override; plugins with neither are absent', () => {
    const reg = registry();
    // The built-in mllp plugin declares 8 (plugins/mllp/index.ts).
    expect(pluginConcurrency(reg, { delivery: { concurrency: 16, pollMs: 200 } })).toEqual({ 'one-at-a-time': 1, mllp: 8 });
    expect(pluginConcurrency(reg, { delivery: { concurrency: 16, pollMs: 200, pluginConcurrency: { 'one-at-a-time': 4, 'free-caller': 2 } } })).toEqual({ 'one-at-a-time': 4, 'free-caller': 2, mllp: 8 });
  });
});

describe('delivery.pluginConcurrency is checked at load', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempFiles({
      'typo.yaml': 'delivery:\n  concurrency: 8\n  pluginConcurrency:\n    gd-ehr-authorise: 2\n',
      'zero.yaml': 'delivery:\n  pluginConcurrency:\n    gd-ehr-authorize: 0\n',
      'ok.yaml': 'simulators: true\ndelivery:\n  pluginConcurrency:\n    gd-ehr-authorize: 2\n',
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an unknown plugin name refuses the engine with file:line:col at the key', async () => {
    const reg = builtinRegistry();
    const file = path.join(dir, 'typo.yaml');
    const config = loadSiteConfig(file, reg.extensions, { dataDir: path.join(dir, 'data'), httpPort: 0, mllpPort: 0 }, process.env, reg.sources);
    const e = await Engine.create({ config, registry: reg, log: silentLogger(), simulatorPorts: 'random' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LoadError);
    expect(String((e as LoadError).issues[0])).toBe(`${file}:4:5: delivery.pluginConcurrency.gd-ehr-authorise: no plugin of that name (known: ${reg.plugins.map((p) => p.name).join(', ')})`);
  });

  it('hisbridge validate reports it (exit 1) and a limit below 1 is a schema error; a known name validates', async () => {
    const typo = await cli(['validate', '--config', path.join(dir, 'typo.yaml')]);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain(`${path.join(dir, 'typo.yaml')}:4:5: delivery.pluginConcurrency.gd-ehr-authorise: no plugin of that name`);
    const zero = await cli(['validate', '--config', path.join(dir, 'zero.yaml')]);
    expect(zero.code).toBe(1);
    expect(zero.stderr).toContain(`${path.join(dir, 'zero.yaml')}:3:23`);
    const ok = await cli(['validate', '--config', path.join(dir, 'ok.yaml')]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
  });
});
