/**
 * Alerts from a real engine: real MLLP input, a route whose remote (a local
 * HTTP server) refuses permanently, the WeCom and DingTalk robots as local
 * servers checking payloads and the DingTalk signature. A dead-letter burst
 * fires once per target, is not repeated while it holds, and resolves once
 * the dead letters are replayed to a remote that accepts them; a closed
 * listener and a quiet sender fire too; every send is in the audit trail
 * and no log line carries a robot token or secret.
 */
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { AlertEvaluator, alertHost } from '../../core/alerts/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';
import { dingtalkRobot, webhookReceiver, wecomRobot, type Robot } from './robots.js';

const WECOM_KEY = 'wk-3f9a-secret-key';
const DING_TOKEN = 'dt-77c1-access-token';
const DING_SECRET = 'SEC0b1d2e3f4a5b6c7d8e9f+/=';

function adt(controlId: string, sender = 'HIS'): string {
  return [
    `MSH|^~\\&|${sender}|HOSP|HISBRIDGE|HOSP|20261201080000||ADT^A04^ADT_A01|${controlId}|P|2.5|||||CHN|UNICODE UTF-8`,
    'EVN|A04|20261201080000',
    `PID|1||P${controlId}^^^HOSP^PI||TEST^PATIENT||19900101|M`,
    'PV1|1|O',
  ].join('\r') + '\r';
}

async function until<T>(read: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`condition not met in ${timeoutMs} ms: ${JSON.stringify(v).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A hospital-side HTTP system that refuses (400: permanent, or `refuseWith`) until `accept` is set. */
async function wardServer(): Promise<{ url: string; accept: boolean; refuseWith: number; hits: number; close(): Promise<void> }> {
  const s = {
    url: '', accept: false, refuseWith: 400, hits: 0,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      s.hits++;
      res.writeHead(s.accept ? 200 : s.refuseWith, { 'content-type': 'application/json' }).end(s.accept ? '{"ok":true}' : '{"error":"refused"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return s;
}

function routesDir(wardUrl: string, retry = ''): string {
  const dir = tempFiles({});
  mkdirSync(path.join(dir, 'routes'));
  writeFileSync(path.join(dir, 'routes', 'ward.yaml'), `name: ward
match: { events: [ADT^A04] }
ack: on-receive
steps:
  - plugin: http
    config: { url: "${wardUrl}/admit", body: { controlId: "\${msg.controlId}" } }
delivery:
  orderingKey: \${msg.controlId}
${retry}`);
  return path.join(dir, 'routes');
}

describe('alerts from a real engine', () => {
  let ward: Awaited<ReturnType<typeof wardServer>>;
  let wecom: Robot;
  let ding: Robot;
  let hook: Robot;
  let t: TestEngine | undefined;

  beforeAll(async () => {
    [ward, wecom, ding, hook] = await Promise.all([wardServer(), wecomRobot(WECOM_KEY), dingtalkRobot(DING_TOKEN, { secret: DING_SECRET, keyword: 'hisbridge' }), webhookReceiver()]);
  });
  afterEach(async () => {
    await t?.stop();
    t = undefined;
    for (const r of [wecom, ding, hook]) r.hits.length = 0;
    ward.accept = false;
    ward.refuseWith = 400;
  });
  afterAll(async () => {
    await Promise.all([ward.close(), wecom.close(), ding.close(), hook.close()]);
  });

  const env = () => ({
    T_WECOM_HOOK: `${wecom.url}/cgi-bin/webhook/send?key=${WECOM_KEY}`,
    T_DING_HOOK: `${ding.url}/robot/send?access_token=${DING_TOKEN}`,
    T_DING_SECRET: DING_SECRET,
    T_NOC_HOOK: `${hook.url}/hook?k=1`,
  });
  const targets = `  targets:
    - { name: oncall, type: wecom, url: "\${env:T_WECOM_HOOK}" }
    - { name: ops, type: dingtalk, url: "\${env:T_DING_HOOK}", secret: "\${env:T_DING_SECRET}" }
    - { name: noc, type: webhook, url: "\${env:T_NOC_HOOK}" }
`;

  it('a dead-letter burst reaches WeCom and DingTalk (valid sign) once, then a resolved message after the dead letters are replayed', async () => {
    t = await startEngine({
      routesDir: routesDir(ward.url),
      env: env(),
      siteYaml: `simulators: false\nlisteners: [{ name: mllp, port: 0 }]\nalerts:\n  interval: 100ms\n${targets}  rules:\n    - { name: dead-letters, when: dead-letters, above: 0, every: 30m, to: [oncall, ops] }\n`,
    });
    const engine = t.engine;
    expect(engine.alerts).toBeDefined();
    const c = await MllpClient.connect('127.0.0.1', t.port);
    for (let i = 1; i <= 5; i++) expect((await c.send(adt(`DL-${i}`))).toString('latin1')).toContain('MSA|AA|');
    await c.close();
    await until(() => engine.store.listDead({}).length, (n) => n === 5);

    await wecom.waitFor((h) => h.some((x) => x.errcode === 0));
    await ding.waitFor((h) => h.some((x) => x.errcode === 0));
    const w = wecom.accepted()[0]!.body.markdown.content as string;
    expect(w).toContain('### hisbridge FIRING 告警: dead-letters');
    expect(w).toMatch(/\*\*[1-5] dead letter\(s\) \(alert above 0\)\*\*/);
    expect(w).toMatch(/- route ward: [1-5] dead \(HTTP_E_STATUS\)/);
    const d = ding.accepted()[0]!;
    expect(d.body.markdown.title).toBe('hisbridge FIRING 告警: dead-letters');
    expect(d.query.sign).toBeTruthy(); // verified by the robot: a wrong sign is errcode 310000, never accepted
    expect(ding.hits.every((h) => h.errcode === 0)).toBe(true);

    // De-duplicated: further ticks while the dead letters stay send nothing more (every: 30m).
    for (let i = 0; i < 5; i++) await engine.alerts!.tick();
    await engine.alerts!.idle();
    expect(wecom.hits).toHaveLength(1);
    expect(ding.hits).toHaveLength(1);
    expect(engine.alerts!.states()['dead-letters']!.phase).toBe('firing');

    // The remote accepts again; the dead letters are replayed, delivered, and the alert resolves.
    ward.accept = true;
    expect(engine.store.requeue({ all: true })).toBe(5);
    await until(() => engine.store.listDead({}).length, (n) => n === 0);
    await wecom.waitFor((h) => h.length === 2);
    await ding.waitFor((h) => h.length === 2);
    expect(wecom.accepted()[1]!.body.markdown.content).toContain('### hisbridge RESOLVED 恢复: dead-letters');
    expect(ding.accepted()[1]!.body.markdown.title).toBe('hisbridge RESOLVED 恢复: dead-letters');
    expect(ding.accepted()[1]!.body.markdown.text).toContain('resolved: 0 dead letter(s)');

    // Audited: one row per target and message; operator rows, so not in the call statistics.
    await engine.alerts!.idle();
    const rows = await until(() => engine.store.queryAudit({ plugin: 'alerts' }), (r) => r.length === 4);
    expect(rows.map((r) => `${r.operation} ${r.result} ${r.detail}`).sort()).toEqual([
      'firing ok rule dead-letters new to oncall (wecom), 1 attempt(s)',
      'firing ok rule dead-letters new to ops (dingtalk), 1 attempt(s)',
      'resolved ok rule dead-letters resolved to oncall (wecom), 1 attempt(s)',
      'resolved ok rule dead-letters resolved to ops (dingtalk), 1 attempt(s)',
    ]);
    expect(engine.ops.queries.stats('operation', {}).groups.map((g) => g.key)).not.toContain('alerts/firing');

    // No token, key or secret in any log line.
    const logs = t.logs.join('\n');
    expect(logs).toContain('alert sent');
    for (const s of [WECOM_KEY, DING_TOKEN, DING_SECRET, 'access_token', 'key=']) expect(logs).not.toContain(s);
  }, 90_000);

  it('listener-down: a listener that lost its socket fires to the webhook, naming it; store and other rules stay quiet', async () => {
    t = await startEngine({
      env: env(),
      siteYaml: `simulators: false\nlisteners: [{ name: mllp, port: 0 }]\nalerts:\n  interval: 100ms\n${targets}  rules:\n    - { name: listener-down, when: listener-down, to: [noc] }\n    - { name: store-failing, when: store-failing, to: [noc] }\n`,
    });
    for (let i = 0; i < 3; i++) await t.engine.alerts!.tick();
    expect(hook.hits).toHaveLength(0);
    await t.engine.listeners[0]!.server.close(100);
    await hook.waitFor((h) => h.length === 1);
    const b = hook.hits[0]!.body;
    expect(b).toMatchObject({ source: 'hisbridge', status: 'firing', rule: 'listener-down', kind: 'listener-down', summary: '1 listener(s) down', value: 1 });
    expect(b.details).toEqual([`listener mllp (mllp): not listening on 127.0.0.1:${t.port}`]);
    for (let i = 0; i < 3; i++) await t.engine.alerts!.tick();
    await t.engine.alerts!.idle();
    expect(hook.hits).toHaveLength(1);
  }, 60_000);

  it('store-failing: a full store fires, and resolves once writes succeed again', async () => {
    t = await startEngine({
      routesDir: routesDir(ward.url),
      env: env(),
      siteYaml: `simulators: false\nlisteners: [{ name: mllp, port: 0 }]\nalerts:\n  interval: 100ms\n${targets}  rules:\n    - { name: store-failing, when: store-failing, to: [noc] }\n`,
    });
    ward.accept = true;
    const engine = t.engine;
    engine.store.setSizeLimit(engine.store.sizeBytes());
    const c = await MllpClient.connect('127.0.0.1', t.port);
    const big = adt('FULL-1').replace('PV1|1|O', `PV1|1|O\rNTE|1||${'x'.repeat(200_000)}`);
    expect((await c.send(big)).toString('latin1')).toMatch(/MSA\|(AE|AR)\|/);
    await hook.waitFor((h) => h.length === 1);
    expect(hook.hits[0]!.body).toMatchObject({ status: 'firing', rule: 'store-failing', summary: 'the store is failing: messages cannot be accepted' });
    engine.store.setSizeLimit(undefined);
    expect((await c.send(adt('FULL-2'))).toString('latin1')).toContain('MSA|AA|');
    await c.close();
    await hook.waitFor((h) => h.length === 2);
    expect(hook.hits[1]!.body).toMatchObject({ status: 'resolved', rule: 'store-failing' });
  }, 60_000);

  it('sender-silent: no message from MSH-3 HIS for `for` fires; a message from HIS resolves it; another sender does not', async () => {
    t = await startEngine({
      routesDir: routesDir(ward.url),
      env: env(),
      siteYaml: `simulators: false\nlisteners: [{ name: mllp, port: 0 }]\nalerts:\n  interval: 100ms\n${targets}  rules:\n    - { name: his-quiet, when: sender-silent, sender: HIS, for: 1s, hours: "00:00-23:59", to: [noc] }\n`,
    });
    ward.accept = true;
    const c = await MllpClient.connect('127.0.0.1', t.port);
    await c.send(adt('Q-1', 'LIS'));
    await hook.waitFor((h) => h.length === 1);
    expect(hook.hits[0]!.body).toMatchObject({ status: 'firing', rule: 'his-quiet', kind: 'sender-silent' });
    expect(hook.hits[0]!.body.summary).toMatch(/^no message from sender HIS for \d+ s \(watched 00:00-23:59\)$/);
    await c.send(adt('Q-2', 'LIS'));
    for (let i = 0; i < 3; i++) await t.engine.alerts!.tick();
    expect(hook.hits).toHaveLength(1);
    await c.send(adt('Q-3', 'HIS'));
    await c.close();
    await hook.waitFor((h) => h.length === 2);
    expect(hook.hits[1]!.body).toMatchObject({ status: 'resolved', rule: 'his-quiet', summary: 'resolved: messages from sender HIS again' });
  }, 60_000);

  it('remote-failing: failed attempts in a row above the threshold fire, naming the plugin and code; a success resolves', async () => {
    ward.refuseWith = 503;
    t = await startEngine({
      routesDir: routesDir(ward.url, '  retry: { max: 1000, initial: 100ms, maxDelay: 200ms }\n'),
      env: env(),
      siteYaml: `simulators: false\nlisteners: [{ name: mllp, port: 0 }]\nalerts:\n  interval: 100ms\n${targets}  rules:\n    - { name: remote-down, when: remote-failing, above: 2, to: [noc] }\n`,
    });
    const c = await MllpClient.connect('127.0.0.1', t.port);
    await c.send(adt('RF-1'));
    await hook.waitFor((h) => h.length === 1);
    const fired = hook.hits[0]!.body;
    expect(fired).toMatchObject({ status: 'firing', rule: 'remote-down', kind: 'remote-failing', summary: '1 remote(s) failing', above: 2 });
    expect(fired.value).toBeGreaterThanOrEqual(3);
    expect(fired.details[0]).toMatch(/^plugin http: \d+ failed attempt\(s\) in a row \(last HTTP_E_STATUS_RETRYABLE\)$/);
    expect(ward.hits).toBeGreaterThanOrEqual(3);
    ward.accept = true;
    await hook.waitFor((h) => h.length === 2);
    expect(hook.hits[1]!.body).toMatchObject({ status: 'resolved', rule: 'remote-down', summary: 'resolved: remotes answering' });
    await c.close();
  }, 60_000);

  it('kafka-lag: the lag the Kafka source reports (hisbridge_kafka_lag) above the threshold fires per topic, and resolves when it drops', async () => {
    t = await startEngine({
      env: env(),
      siteYaml: `simulators: false\nlisteners: [{ name: mllp, port: 0 }]\nalerts:\n  interval: 100ms\n${targets}  rules:\n    - { name: kafka-lag, when: kafka-lag, above: 10000, to: [noc] }\n`,
    });
    // The path the Kafka source uses (SourceContext.gauge('kafka_lag') -> metrics); partitions of a topic add up.
    t.engine.ops.metrics.setKafkaLag('his.adt', 0, 6000);
    t.engine.ops.metrics.setKafkaLag('his.adt', 1, 3000);
    for (let i = 0; i < 3; i++) await t.engine.alerts!.tick();
    expect(hook.hits).toHaveLength(0);
    t.engine.ops.metrics.setKafkaLag('his.adt', 1, 6000);
    await hook.waitFor((h) => h.length === 1);
    expect(hook.hits[0]!.body).toMatchObject({ status: 'firing', rule: 'kafka-lag', value: 12000, above: 10000, details: ['topic his.adt: 12000 records behind'] });
    t.engine.ops.metrics.setKafkaLag('his.adt', 0, 0);
    t.engine.ops.metrics.setKafkaLag('his.adt', 1, 0);
    await hook.waitFor((h) => h.length === 2);
    expect(hook.hits[1]!.body).toMatchObject({ status: 'resolved', rule: 'kafka-lag' });
  }, 60_000);

  it('for, every and restarts: an evaluator on the engine\'s real state with a controlled clock', async () => {
    t = await startEngine({ routesDir: routesDir(ward.url), env: env(), siteYaml: `simulators: false\nlisteners: [{ name: mllp, port: 0 }]\nalerts:\n${targets}` });
    const engine = t.engine;
    expect(engine.alerts).toBeUndefined(); // targets but no rules: nothing evaluated
    const c = await MllpClient.connect('127.0.0.1', t.port);
    await c.send(adt('F-1'));
    await c.close();
    await until(() => engine.store.listDead({}).length, (n) => n === 1);
    let now = Date.now();
    const config = {
      intervalMs: 3_600_000, targets: engine.config.alerts!.targets,
      rules: [{ name: 'dl', when: 'dead-letters' as const, above: 0, forMs: 5 * 60_000, everyMs: 30 * 60_000, to: ['noc'] }],
    };
    const ev = new AlertEvaluator(config, alertHost(engine), { now: () => now });
    await ev.start();
    await ev.tick();
    expect(ev.states().dl!.phase).toBe('pending');
    now += 4 * 60_000;
    await ev.tick();
    await ev.idle();
    expect(hook.hits).toHaveLength(0); // has not held for 5 min yet
    now += 60_000;
    await ev.tick();
    await ev.idle();
    expect(hook.hits.map((h) => h.body.status)).toEqual(['firing']);
    now += 29 * 60_000;
    await ev.tick();
    await ev.idle();
    expect(hook.hits).toHaveLength(1);
    now += 60_000;
    await ev.tick();
    await ev.idle();
    expect(hook.hits.map((h) => h.body.status)).toEqual(['firing', 'firing']); // repeated after every: 30m
    await ev.stop();

    // A restart keeps the firing: no second "firing" at once, and the resolution is still sent.
    const again = new AlertEvaluator(config, alertHost(engine), { now: () => now });
    await again.start();
    await again.tick();
    await again.idle();
    expect(hook.hits).toHaveLength(2);
    expect(again.states().dl!.phase).toBe('firing');
    ward.accept = true;
    engine.store.requeue({ all: true });
    await until(() => engine.store.listDead({}).length, (n) => n === 0);
    await again.tick();
    await again.idle();
    expect(hook.hits.map((h) => h.body.status)).toEqual(['firing', 'firing', 'resolved']);
    await again.stop();
  }, 60_000);
});
