/**
 * Extension services (issue 14): what a platform's plugins share within one
 * engine is `SiteExtension.service`, reached through `ctx.service(key)`:
 * made once per engine on first use, never shared between two engines in one
 * process, closed at stop. The recognition hub (token client, checks awaiting
 * a decision) is one.
 */
import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { LoadError } from '../../core/config/yaml-source.js';
import type { PluginDefinition, SiteExtension } from '../../core/sdk.js';
import type { RecognitionHub } from '../../plugins/recognition/hub.js';
import { builtinRegistry } from '../../plugins/index.js';
import { ExtensionServices, offlineContext } from '../../core/engine/plugin-host.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { silentLogger } from '../../core/log.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';

/** What the acme extension's services saw, across engines. */
interface Counter {
  id: number;
  calls: string[];
  closed: boolean;
  close(): Promise<void>;
}
const made: Counter[] = [];

const acme: SiteExtension = {
  key: 'acme',
  summary: 'test extension with a service',
  configSchema: { type: 'object', additionalProperties: false, properties: { name: { type: 'string' } } },
  defaults: () => ({ name: 'acme' }),
  service(ctx) {
    if (ctx.site.name !== 'acme') throw new Error('the service gets the extension context with its section');
    const c: Counter = {
      id: made.length + 1,
      calls: [],
      closed: false,
      async close() {
        c.closed = true;
      },
    };
    made.push(c);
    return c;
  },
};

/** One step that records, in the engine's acme service, which route ran it. */
const counter: PluginDefinition<{ service?: string }> = {
  name: 'acme-counter',
  summary: 'test plugin using the acme service',
  kind: 'outbound',
  siteKey: 'acme',
  configSchema: { type: 'object', additionalProperties: false, properties: { service: { type: 'string' } } },
  create(ctx, config) {
    const svc = ctx.service!<Counter>(config.service ?? 'acme');
    return {
      async process(input, call) {
        svc.calls.push(`${call.route}:${input.controlId}`);
        return { outcome: 'ok', output: { service: svc.id } };
      },
    };
  },
};

const routes = {
  'a.yaml': 'name: acme-a\nmatch: { events: [ZZZ^Z01] }\nsteps:\n  - plugin: acme-counter\n',
  'b.yaml': 'name: acme-b\nmatch: { events: [ZZZ^Z01] }\nsteps:\n  - plugin: acme-counter\n',
};
const registry = () => builtinRegistry().extension(acme).plugin(counter);
const msg = (cid: string) => `MSH|^~\\&|HIS|H1|HB|HB|20250312093015||ZZZ^Z01|${cid}|P|2.5\rPID|1||P1^^^H^PI\r`;
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

describe('SiteExtension.service through real engines', () => {
  let dir: string;
  const engines: TestEngine[] = [];
  beforeAll(() => {
    dir = tempFiles(routes);
  });
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((t) => t.stop()));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('one service per engine, shared by every route and plugin instance, another for a second engine, closed at stop', async () => {
    made.length = 0;
    const a = await startEngine({ routesDir: dir, registry: registry() });
    engines.push(a);
    const b = await startEngine({ routesDir: dir, registry: registry() });
    engines.push(b);
    // Two routes' instances in each engine: one service each engine.
    expect(made.map((c) => c.id)).toEqual([1, 2]);
    const [svcA, svcB] = made as [Counter, Counter];
    expect(a.engine.contextFor({ name: 'probe' }).service!('acme')).toBe(svcA);
    expect(b.engine.contextFor({ name: 'probe' }).service!('acme')).toBe(svcB);

    const client = await MllpClient.connect('127.0.0.1', a.port, { timeoutMs: 15_000 });
    try {
      expect(ackCode(await client.send(msg('SVC0001')))).toBe('AA');
    } finally {
      client.close();
    }
    await until(() => svcA.calls.length, (n) => n === 2, 'both routes of engine A');
    expect(svcA.calls.sort()).toEqual(['acme-a:SVC0001', 'acme-b:SVC0001']);
    expect(svcB.calls).toEqual([]);

    const ctxA = a.engine.contextFor({ name: 'probe' });
    await a.stop();
    engines.splice(engines.indexOf(a), 1);
    expect(svcA.closed).toBe(true);
    expect(svcB.closed).toBe(false);
    expect(() => ctxA.service!('acme')).toThrow(expect.objectContaining({ code: 'ENGINE_E_SHUTTING_DOWN' }));
    // A route reload keeps the engine's service.
    expect(await b.engine.reload()).toEqual({ ok: true, routes: 2 });
    expect(made).toHaveLength(2);
  });

  it('a plugin asking for a service no extension offers refuses the route set with PLUGIN_E_NO_SERVICE', async () => {
    const bad = tempFiles({ 'x.yaml': 'name: acme-x\nmatch: { events: [ZZZ^Z01] }\nsteps:\n  - plugin: acme-counter\n    config: { service: gdEhr }\n' });
    try {
      const e = await startEngine({ routesDir: bad, registry: registry() }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(LoadError);
      const text = (e as LoadError).issues.map(String).join('\n');
      expect(text).toContain('x.yaml:5:');
      expect(text).toContain('no site extension "gdEhr" with a service is registered (known: recognition, acme)');
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});

describe('the recognition hub is the recognition extension\'s service', () => {
  let a: TestEngine;
  let b: TestEngine;
  beforeAll(async () => {
    a = await startEngine();
    b = await startEngine();
  });
  afterAll(async () => {
    await b?.stop();
  });

  const hubOf = (t: TestEngine) => t.engine.contextFor({ name: 'probe', siteKey: 'recognition' }).service!<RecognitionHub>('recognition');

  it('two engines in one process share no token and no pending check; stop forgets the pending checks', async () => {
    const hubA = hubOf(a);
    const hubB = hubOf(b);
    expect(hubA).not.toBe(hubB);
    // The workstation endpoints and the plugins of one engine use one hub.
    expect(hubOf(a)).toBe(hubA);

    // The sample patient P000100001 (synthetic ID number, as in test/recognition/workstation-fixes.test.ts).
    const order = { orderNo: 'ORD-SVC-1', patientId: 'P000100001', idNumber: '440106199003152314', staffNo: 'D0012', items: [{ itemCode: 'LAB0001', itemName: '血常规' }] };
    const r = await fetch(`${a.httpUrl}/api/recognition/check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(order) });
    expect([r.status, await r.json()]).toEqual([200, expect.objectContaining({ mustDecide: true })]);
    expect([...hubA.pending.keys()]).toEqual([expect.stringContaining('ORD-SVC-1')]);
    expect(hubB.pending.size).toBe(0);
    expect(hubA.token.requests).toBe(1);
    expect(hubB.token.requests).toBe(0);

    // Engine B does not know A's pending check: its decision is refused.
    const d = await fetch(`${b.httpUrl}/api/recognition/decision`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ orderNo: 'ORD-SVC-1', itemCode: 'LAB0001', decision: 'recognize', staffNo: 'D0012' }) });
    expect([d.status, ((await d.json()) as { code: string }).code]).toEqual([409, 'RECOG_E_NO_PENDING_CHECK']);

    await a.stop();
    expect(hubA.pending.size).toBe(0);
    expect(hubOf(b)).toBe(hubB);
  });
});

describe('ExtensionServices', () => {
  it('keeps nothing when the service throws (an incomplete section): the next call tries again', () => {
    let fail = true;
    let n = 0;
    const ext: SiteExtension = {
      key: 'flaky', summary: 'x', configSchema: { type: 'object' }, defaults: () => ({}),
      service: () => {
        n++;
        if (fail) throw new Error('section incomplete');
        return { n };
      },
    };
    const services = new ExtensionServices({ extensions: [ext] }, () => ({ log: silentLogger() } as never));
    expect(() => services.get('flaky')).toThrow('section incomplete');
    fail = false;
    const made = services.get('flaky');
    expect(made).toEqual({ n: 2 });
    expect(services.get('flaky')).toBe(made);
    expect(n).toBe(2);
  });

  it('the load-time tools (validate, route tests) share one service across the contexts of one run', () => {
    const reg = builtinRegistry();
    const ctx = offlineContext(reg, loadSiteConfig(undefined, reg.extensions));
    const one = ctx({ name: 'recognition-upload', siteKey: 'recognition' }).service!<RecognitionHub>('recognition');
    expect(ctx({ name: 'recognition-check', siteKey: 'recognition' }).service!('recognition')).toBe(one);
    const other = offlineContext(reg, loadSiteConfig(undefined, reg.extensions));
    expect(other({ name: 'recognition-check', siteKey: 'recognition' }).service!('recognition')).not.toBe(one);
  });
});
