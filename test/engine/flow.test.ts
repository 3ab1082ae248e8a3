/**
 * One back-pressure controller for every source (issue 13): past the store's
 * high-water mark the engine's FlowController tells every source to pause
 * (MLLP stops reading its sockets, Kafka pauses its topics, the HTTP source
 * answers 503 with Retry-After, the file source claims no new file), and
 * below 80% of the mark to resume. No source polls the store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { hashApiToken } from '../../core/http/api-auth.js';
import { FlowController, untilResumed } from '../../core/engine/flow.js';
import { silentLogger } from '../../core/log.js';
import { MllpClient } from '../../core/mllp/client.js';
import { parseHl7 } from '../../core/hl7/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { KafkaTool, startTestBroker, uniq, until, type TestBroker } from '../helpers/kafka.js';
import { tempFiles } from '../helpers/routes.js';
import { idNumberOf } from '../../bench/lib/messages.js';

describe('FlowController', () => {
  it('pauses at the mark, stays paused down to 80%, resumes below it, and tells every subscriber once per change', () => {
    let pending = 0;
    const flow = new FlowController({ pending: () => pending, highWaterMark: 10, overload: 'pause', log: silentLogger() });
    const a: boolean[] = [];
    const b: boolean[] = [];
    flow.onChange((p) => a.push(p));
    const off = flow.onChange((p) => b.push(p));
    for (const n of [5, 9, 10, 12, 9, 8]) {
      pending = n;
      flow.check();
    }
    expect(flow.paused).toBe(true);
    pending = 7;
    flow.check();
    expect(flow.paused).toBe(false);
    off();
    pending = 10;
    flow.check();
    expect(a).toEqual([true, false, true]);
    expect(b).toEqual([true, false]);
  });

  it('never pauses under overload: reject (the port refuses instead)', () => {
    const flow = new FlowController({ pending: () => 1000, highWaterMark: 10, overload: 'reject', log: silentLogger() });
    flow.check();
    expect(flow.paused).toBe(false);
  });

  it('untilResumed (the database and file sources\' wait) settles at once when running, on the resume when paused, or on the stop, and unsubscribes', async () => {
    const subs = new Set<(paused: boolean) => void>();
    const flow = {
      paused: false,
      onChange(l: (paused: boolean) => void) {
        subs.add(l);
        return () => void subs.delete(l);
      },
    };
    const set = (paused: boolean) => {
      flow.paused = paused;
      for (const l of [...subs]) l(paused);
    };
    const settled = (p: Promise<void>) => {
      const s = { done: false };
      void p.then(() => (s.done = true));
      return s;
    };
    const running = settled(untilResumed(flow, new AbortController().signal));
    await until(() => running.done, Boolean);
    expect(subs.size).toBe(0);

    set(true);
    const waiting = settled(untilResumed(flow, new AbortController().signal));
    const stop = new AbortController();
    const stopped = settled(untilResumed(flow, stop.signal));
    expect(subs.size).toBe(2);
    stop.abort();
    await until(() => stopped.done, Boolean);
    expect([waiting.done, subs.size]).toEqual([false, 1]);
    // A second pause notice does not release it; the resume does.
    set(true);
    await new Promise((r) => setImmediate(r));
    expect(waiting.done).toBe(false);
    set(false);
    await until(() => waiting.done, Boolean);
    expect(subs.size).toBe(0);
    const aborted = new AbortController();
    aborted.abort();
    set(true);
    const already = settled(untilResumed(flow, aborted.signal));
    await until(() => already.done, Boolean);
    expect(subs.size).toBe(0);
  });
});

function hl7(id: string, i: number): string {
  return [
    `MSH|^~\\&|HIS|H1|HISBRIDGE|GDEHR|20250312093015||ADT^A04^ADT_A01|${id}|P|2.5|||||CHN|UNICODE UTF-8`,
    `PID|1||P${i}^^^HOSP^PI~${idNumberOf(i)}^^^CHN^NI||测试^${i}`,
  ].join('\r') + '\r';
}

interface Health { paused: boolean; pendingDeliveries: number; kafka: { paused: boolean; handled: number } }

const HL7_TOKEN = 'hl7-token-flow-7c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f';

describe('back-pressure pauses all four sources (MLLP, Kafka, HTTP, file) through the one controller', () => {
  let broker: TestBroker;
  let tool: KafkaTool;
  let t: TestEngine;
  const topic = uniq('flow');

  beforeAll(async () => {
    broker = await startTestBroker();
    tool = new KafkaTool(broker.brokers);
    const routes = tempFiles({
      'authorize.yaml': 'name: bp\nmatch: { events: ["ADT^A04"] }\nsteps:\n  - plugin: gd-ehr-authorize\n    config: { consent: false }\ndelivery: { retry: { max: 1000, initial: 100ms, maxDelay: 200ms } }\n',
    });
    t = await startEngine({
      routesDir: routes,
      siteYaml: [
        'store: { highWaterMark: 5, overload: pause }',
        'api:',
        '  clients:',
        `    - { name: his-hl7, tokenHash: "${hashApiToken(HL7_TOKEN)}", allow: [hl7] }`,
        'listeners:',
        '  - { name: mllp, port: 0 }',
        '  - { name: his-http, type: http, path: /hl7/his, charset: utf-8 }',
        '  - { name: lis-drop, type: file, dir: inbox, poll: 50ms }',
        '',
      ].join('\n') + `kafka:\n  brokers: [${broker.brokers.join(', ')}]\n  groupId: ${uniq('g')}\n  maxInFlight: 1\n  topics: [{ name: ${topic} }]\n`,
    });
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    await tool?.close();
    await broker?.stop();
  });

  it('all four pause past the mark and hold their input; all four resume below 80% of the mark and the held input is processed', async () => {
    const health = () => t.engine.health() as unknown as Health;
    const sim = t.engine.simulators.gdEhr!.url;
    const stored = (id: string) => t.engine.store.searchMessages({ controlId: id, limit: 10 }).length;
    const postHl7 = (body: string) => fetch(`${t.httpUrl}/hl7/his`, { method: 'POST', body, headers: { 'content-type': 'application/hl7-v2', authorization: `Bearer ${HL7_TOKEN}` } });
    const inbox = path.join(t.dataDir, 'inbox');
    await (await fetch(`${sim}/__sim/faults`, { method: 'POST', body: JSON.stringify({ status: 503 }) })).arrayBuffer();
    // Every change, with the pending count when it was told.
    const changes: { paused: boolean; pending: number }[] = [];
    t.engine.flow.onChange((p) => changes.push({ paused: p, pending: t.engine.store.pendingCount() }));

    // Before the mark the HTTP source takes messages (one pending delivery each).
    const r0 = await postHl7(hl7('FLOWH0', 200));
    expect(r0.status).toBe(200);
    expect(parseHl7(Buffer.from(await r0.arrayBuffer()).toString('utf8')).get('MSA-1')).toBe('AA');
    // MLLP fills the store up to the mark (5 pending deliveries, one per message).
    const client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 60_000 });
    for (let i = 0; i < 4; i++) expect(parseHl7((await client.send(hl7(`FLOWM${i}`, i))).toString('utf8')).get('MSA-1')).toBe('AA');
    expect(t.engine.flow.paused).toBe(true);
    expect(t.engine.store.pendingCount()).toBe(5);

    // Kafka, started with records waiting, holds them while paused.
    const n = 10;
    await tool.produce(topic, Array.from({ length: n }, (_, i) => ({ key: `K${i}`, value: hl7(`FLOWK${i}`, 100 + i) })));
    const h1 = await until(async () => health(), (h) => h.kafka.paused, 20_000);
    expect(h1.paused).toBe(true);
    expect(h1.kafka.paused).toBe(true);

    // HTTP: 503 with Retry-After, nothing stored.
    const r1 = await postHl7(hl7('FLOWH1', 201));
    expect(r1.status).toBe(503);
    expect(Number(r1.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(JSON.stringify(await r1.json())).toContain('ENGINE_E_BACKPRESSURE');
    expect(stored('FLOWH1')).toBe(0);

    // File: a file dropped now is not claimed.
    writeFileSync(path.join(inbox, '.held.part'), hl7('FLOWF0', 300) + hl7('FLOWF1', 301));
    renameSync(path.join(inbox, '.held.part'), path.join(inbox, 'held.hl7'));

    // MLLP: the socket is not read, a message sent now gets no answer while paused.
    let answered = false;
    const late = client.send(hl7('FLOWLATE', 50)).then((b) => {
      answered = true;
      return b;
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(answered).toBe(false);
    expect(t.engine.listeners[0]!.server.stats().pausedConnections).toBeGreaterThanOrEqual(1);
    expect(health().kafka.handled).toBeLessThan(n);
    expect(existsSync(path.join(inbox, 'held.hl7'))).toBe(true);
    expect(readdirSync(path.join(inbox, '.work')).flatMap((d) => readdirSync(path.join(inbox, '.work', d)))).toEqual([]);
    expect(stored('FLOWF0') + stored('FLOWF1') + stored('FLOWLATE')).toBe(0);
    expect(t.engine.flow.paused).toBe(true);

    // The platform comes back: deliveries drain below 80% of the mark, one resume reaches all four.
    await (await fetch(`${sim}/__sim/reset`, { method: 'POST' })).arrayBuffer();
    expect(parseHl7((await late).toString('utf8')).get('MSA-1')).toBe('AA');
    const r2 = await until(async () => {
      const r = await postHl7(hl7('FLOWH1', 201));
      return { status: r.status, body: Buffer.from(await r.arrayBuffer()).toString('utf8') };
    }, (r) => r.status === 200, 20_000);
    expect(parseHl7(r2.body).get('MSA-1')).toBe('AA');
    await until(async () => existsSync(path.join(inbox, 'done', 'held.hl7')), Boolean, 20_000);
    const done = await until(async () => health(), (h) => h.kafka.handled >= n && h.pendingDeliveries === 0, 40_000);
    expect(done.kafka.handled).toBe(n);
    expect(done.kafka.paused).toBe(false);
    expect(done.paused).toBe(false);
    for (const id of ['FLOWH0', 'FLOWH1', 'FLOWF0', 'FLOWF1', 'FLOWLATE', ...Array.from({ length: n }, (_, i) => `FLOWK${i}`)]) expect(stored(id)).toBe(1);
    expect(changes[0]).toEqual({ paused: true, pending: 5 });
    const resume = changes.find((c) => !c.paused)!;
    expect(resume.pending).toBeLessThan(5 * 0.8);
    const logs = t.logs.join('\n');
    expect(logs).toContain('back-pressure: sources paused');
    expect(logs).toContain('back-pressure: kafka topics paused');
    client.close();
  }, 120_000);
});
