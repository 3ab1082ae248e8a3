/**
 * The route plan through the real engine: messages over a real MLLP socket,
 * the real store and delivery worker, and a real HTTP server on a random port
 * standing in for a hospital system (the `http` plugin's target).
 *
 * - An on-complete route failing at its second outbound step records that
 *   step as dead (and the first, which ran, as done), answers AE, and the dead
 *   letter replayed runs that step's segment only: the first call is not made
 *   again.
 * - An on-receive route with set steps between outbound steps: the second
 *   delivery runs the set step after the first outbound step, with the first
 *   step's `as:` output carried in vars.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import nodePath from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';

interface Call {
  path: string;
  body: Record<string, unknown>;
}

async function until<T>(fn: () => T, ok: (v: T) => boolean, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ackOf = (b: Buffer) => parseHl7(decodeHl7(b, 'utf-8').text);

const order = (cid: string) =>
  `MSH|^~\\&|HIS|H1|HB|HB|20250312093015||ORM^O01|${cid}|P|2.5\rPID|1||PPLAN01^^^H^PI\rORC|NW|ORDPLAN01\r`;
const update = (cid: string, pv1: string) =>
  `MSH|^~\\&|HIS|H1|HB|HB|20250312093015||ADT^A08|${cid}|P|2.5\rPID|1||PPLAN02^^^H^PI\rPV1|1|${pv1}\r`;

describe('route plan through the engine', () => {
  let server: http.Server;
  let base: string;
  const calls: Call[] = [];
  /** Paths that answer 400 once more (a hospital system refusing, then fixed). */
  const refuseOnce = new Set<string>();
  let t: TestEngine;
  let client: MllpClient;
  let routesDir: string;

  /** The third route's step 1: an http call, or (after an edit) a log step in its place. */
  const changingStep = (call: boolean) => call
    ? `      - name: busy-call\n        plugin: http\n        config: { url: "${base}/busy", body: { control: "\${msg.controlId}" } }\n`
    : '      - log: { message: "no call any more" }\n';
  const routesYaml = (third: string) => `routes:
  - name: oc-two
    match: { events: [ORM^O01] }
    ack: on-complete
    steps:
      - set: { order: "\${ORC-2.1}" }
      - name: first-call
        plugin: http
        config: { url: "${base}/first", body: { order: "\${vars.order}" } }
      - log: { message: "between the calls" }
      - name: second-call
        plugin: http
        config: { url: "${base}/second", body: { control: "\${msg.controlId}" } }
      - reply: { text: "both calls made" }
  - name: or-chain
    match: { events: [ADT^A08] }
    delivery: { orderingKey: "\${PID-3.1}", retry: { max: 3, initial: 50ms } }
    steps:
      - filter: { path: PV1-2, equals: O }
      - set: { pid: "\${PID-3.1}" }
      - name: r1
        plugin: http
        as: first
        config: { url: "${base}/r1", body: { pid: "\${vars.pid}" } }
      - set: { ref: "\${vars.first.body.ref}" }
      - name: r2
        plugin: http
        config: { url: "${base}/r2", body: { pid: "\${vars.pid}", ref: "\${vars.ref}" } }
      - log: { message: "chain done" }
  - name: changing
    match: { events: [ADT^A31] }
    delivery: { retry: { max: 100, initial: 100ms, maxDelay: 200ms } }
    steps:
      - set: { pid: "\${PID-3.1}" }
${third}`;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString('utf8')));
      req.on('end', () => {
        const path = req.url ?? '';
        calls.push({ path, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
        const refused = refuseOnce.delete(path);
        if (path === '/busy') {
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end('{}');
          return;
        }
        res.writeHead(refused ? 400 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(refused ? { error: 'refused' } : path === '/r1' ? { ref: 'T1' } : { ok: true }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    routesDir = tempFiles({ 'plan.yaml': routesYaml(changingStep(true)) });
    t = await startEngine({ routesDir });
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 15_000 });
  });

  afterAll(async () => {
    client?.close();
    await t?.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(routesDir, { recursive: true, force: true });
  });

  const deliveriesOf = (cid: string) => {
    const [m] = t.engine.store.searchMessages({ controlId: cid, limit: 5 });
    return t.engine.store.getMessage(m!.id)!.deliveries;
  };

  it('an on-complete route failing at its second outbound step records that step as dead, answers AE, and its replay runs that step only', async () => {
    refuseOnce.add('/second');
    const ack = ackOf(await client.send(order('PLANOC0001')));
    expect(ack.get('MSA-1')).toBe('AE');
    expect(ack.get('ERR-8')).toMatch(/400/);
    expect(calls.map((c) => c.path)).toEqual(['/first', '/second']);
    expect(calls[0]!.body).toEqual({ order: 'ORDPLAN01' });

    const ds = deliveriesOf('PLANOC0001');
    expect(ds.map((d) => ({ route: d.route, step: d.step, plugin: d.plugin, state: d.state }))).toEqual([
      { route: 'oc-two', step: 1, plugin: 'http', state: 'done' },
      { route: 'oc-two', step: 3, plugin: 'http', state: 'dead' },
    ]);
    const dead = ds[1]!;
    expect(dead.lastErrorCode).toBe('HTTP_E_STATUS');
    expect(t.engine.store.listDead().map((d) => d.id)).toContain(dead.id);

    // Replayed from the dead letters: the delivery worker runs the second call's segment, not the first call again.
    expect(t.engine.store.requeue({ ids: [dead.id] })).toBe(1);
    await until(() => deliveriesOf('PLANOC0001')[1]!.state, (s) => s === 'done', 'the replayed dead letter to be done');
    expect(calls.map((c) => c.path)).toEqual(['/first', '/second', '/second']);
    expect(calls[2]!.body).toEqual({ control: 'PLANOC0001' });
  });

  it('an on-receive route: filtered inline, or queued with each delivery running the set step before its call and the earlier call\'s output', async () => {
    calls.length = 0;
    const filtered = ackOf(await client.send(update('PLANOR0001', 'I')));
    expect(filtered.get('MSA-1')).toBe('AA');
    expect(deliveriesOf('PLANOR0001')).toEqual([]);

    const queued = ackOf(await client.send(update('PLANOR0002', 'O')));
    expect(queued.get('MSA-1')).toBe('AA');
    await until(() => deliveriesOf('PLANOR0002'), (ds) => ds.length === 2 && ds.every((d) => d.state === 'done'), 'both deliveries to be done');
    expect(calls).toEqual([
      { path: '/r1', body: { pid: 'PPLAN02' } },
      // set: ref ran in r2's delivery, from r1's output (as: first) carried by the store.
      { path: '/r2', body: { pid: 'PPLAN02', ref: 'T1' } },
    ]);
    expect(deliveriesOf('PLANOR0002').map((d) => [d.step, d.asName])).toEqual([[2, 'first'], [4, undefined]]);
  });
  it('a queued delivery whose step became another plugin after a reload is dead with a specific reason, not run as the new step', async () => {
    const a = ackOf(await client.send(`MSH|^~\\&|HIS|H1|HB|HB|20250312093015||ADT^A31|PLANCH0001|P|2.5\rPID|1||PPLAN03^^^H^PI\r`));
    expect(a.get('MSA-1')).toBe('AA');
    await until(() => deliveriesOf('PLANCH0001')[0]!, (d) => d.state === 'retrying' && d.lastErrorCode === 'HTTP_E_STATUS_RETRYABLE', 'a retryable failure of the busy call');
    writeFileSync(nodePath.join(routesDir, 'plan.yaml'), routesYaml(changingStep(false)));
    expect(await t.engine.reload()).toMatchObject({ ok: true });
    const d = await until(() => deliveriesOf('PLANCH0001')[0]!, (x) => x.state === 'dead', 'the delivery to be dead');
    expect(d.lastErrorCode).toBe('ENGINE_E_STEP_FAILED');
    expect(d.lastError).toMatch(/route changed: this step is no longer the same plugin/);
  });
});
