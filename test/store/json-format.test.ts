/**
 * Stored JSON events (issue 13): the messages table's `format` column (schema
 * v8), returned by the readers and the claim, and the delivery runner giving
 * steps the parsed event as `body` (a real route, a real HTTP endpoint).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../core/store/schema.js';
import Database from 'better-sqlite3';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { createDeliveryRunner } from '../../core/engine/deliver.js';
import { listRouteFiles, loadRoutes } from '../../core/routes/loader.js';
import { RouteTable } from '../../core/routes/matcher.js';
import { builtinRegistry } from '../../plugins/index.js';
import { offlineContext } from '../../core/cli/common.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { silentLogger } from '../../core/log.js';
import { Store } from '../../core/store/sqlite.js';
import { tempFiles } from '../helpers/routes.js';
import { run as replayCli } from '../../core/cli/cmd-replay.js';
import { run as dlqCli } from '../../core/cli/cmd-dlq.js';
import { delivery, freshDirs, message, openStore } from '../helpers/store.js';

/** The schema version a store reaches today (migrations are appended; never a hard-coded number). */

const fresh = freshDirs();

const event = {
  specVersion: '1', eventId: 'E-9', eventType: 'ADT^A04', source: { system: 'HIS', facility: 'H1' }, occurredAt: '2025-03-12T09:30:15+08:00',
  patient: { id: 'P9', idNumber: '440106198512120029', name: '欧阳娜' }, body: { items: [{ code: 'A1' }] },
};
const jsonMessage = (over: Parameters<typeof message>[0] = {}) =>
  message({ format: 'json', raw: Buffer.from(JSON.stringify(event)), controlId: 'E-9', patientId: 'P9', ...over });

describe('format column', () => {
  it('stores and returns format json, and hl7 for HL7 messages, in search, detail and claims', async () => {
    const store = openStore(fresh());
    const j = await store.accept(jsonMessage(), [delivery({ route: 'rj' })]);
    const h = await store.accept(message(), [delivery({ route: 'rh' })]);
    const byId = new Map(store.searchMessages({ limit: 10 }).map((m) => [m.id, m.format]));
    expect(byId.get(j.messageId)).toBe('json');
    expect(byId.get(h.messageId)).toBe('hl7');
    expect(store.getMessage(j.messageId)!.format).toBe('json');
    expect(JSON.parse(store.getMessage(j.messageId)!.raw!.toString('utf8'))).toEqual(event);
    const jobs = store.claimDue(Date.now() + 1000, 10);
    expect(Object.fromEntries(jobs.map((x) => [x.route, x.message.format]))).toEqual({ rj: 'json', rh: 'hl7' });
    store.close();
  });

  it('opens a schema v7 database: migrates to v8, and rows stored before read as hl7', async () => {
    const dir = fresh();
    const s = openStore(dir);
    const old = await s.accept(message({ controlId: 'OLD7' }), [delivery()]);
    s.close();
    const db = new Database(path.join(dir, 'hisbridge.db'));
    db.exec('ALTER TABLE messages DROP COLUMN format; PRAGMA user_version = 7;');
    db.close();

    const store = Store.open(dir, { synchronous: 'NORMAL' });
    const v = new Database(path.join(dir, 'hisbridge.db'), { readonly: true });
    expect(v.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    v.close();
    expect(store.getMessage(old.messageId)!.format).toBe('hl7');
    const [job] = store.claimDue(Date.now() + 1000, 5);
    expect(job!.message.format).toBe('hl7');
    const j = await store.accept(jsonMessage(), []);
    expect(store.getMessage(j.messageId)!.format).toBe('json');
    store.close();
  });
});

describe('delivery of a stored JSON event', () => {
  let server: Server;
  let url = '';
  const received: unknown[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/notify`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('gives the step the parsed event as body (HL7 paths empty), and an HL7 message as hl7, through one route', async () => {
    const reg = builtinRegistry();
    const ctx = offlineContext(reg, loadSiteConfig(undefined, reg.extensions));
    const dir = tempFiles({
      'r.yaml': [
        'name: notify',
        'match: { events: ["ADT^A04"] }',
        'steps:',
        '  - plugin: http',
        `    config: { url: "${url}", body: { id: "\${body.patient.id}", name: "\${body.patient.name}", item: "\${body.body.items[0].code}", pid: "\${PID-3.1}", type: "\${msg.type}" } }`,
      ].join('\n') + '\n',
    });
    const routes = new RouteTable(await loadRoutes(listRouteFiles([dir]), { registry: reg, contextFor: (d) => ctx(d), sources: ['mllp', 'kafka-json'] }));
    const run = createDeliveryRunner(() => routes, silentLogger());
    const store = openStore(fresh());
    await store.accept(jsonMessage({ source: 'kafka-json' }), [delivery({ route: 'notify', step: 0, plugin: 'http' })]);
    await store.accept(message({ controlId: 'H-1' }), [delivery({ route: 'notify', step: 0, plugin: 'http' })]);
    const jobs = store.claimDue(Date.now() + 1000, 10);
    expect(jobs).toHaveLength(2);
    const signal = new AbortController().signal;
    for (const job of jobs) expect((await run({ ...job, signal })).outcome).toBe('ok');
    const jsonCall = received.find((r) => (r as { id: string }).id === 'P9');
    expect(jsonCall).toEqual({ id: 'P9', name: '欧阳娜', item: 'A1', pid: '', type: 'ADT^A04' });
    const hl7Call = received.find((r) => (r as { pid: string }).pid !== '');
    expect(hl7Call).toMatchObject({ id: '', name: '', item: '', type: 'ADT^A04' });
    expect((hl7Call as { pid: string }).pid).toMatch(/^P\d+$/);
    store.close();
  });

  it('fails a stored JSON event that cannot be parsed with a specific, non-retryable error', async () => {
    const reg = builtinRegistry();
    const ctx = offlineContext(reg, loadSiteConfig(undefined, reg.extensions));
    const dir = tempFiles({ 'r.yaml': `name: notify\nmatch: { events: ["ADT^A04"] }\nsteps:\n  - plugin: http\n    config: { url: "${url}", body: { id: "\${body.patient.id}" } }\n` });
    const routes = new RouteTable(await loadRoutes(listRouteFiles([dir]), { registry: reg, contextFor: (d) => ctx(d), sources: ['mllp'] }));
    const run = createDeliveryRunner(() => routes, silentLogger());
    const store = openStore(fresh());
    await store.accept(message({ format: 'json', raw: Buffer.from('{"patient":'), controlId: 'BROKEN' }), [delivery({ route: 'notify', step: 0, plugin: 'http' })]);
    const [job] = store.claimDue(Date.now() + 1000, 10);
    await expect(run({ ...job!, signal: new AbortController().signal })).rejects.toMatchObject({ code: 'ENGINE_E_STEP_FAILED', retryable: false, message: expect.stringMatching(/stored JSON event cannot be parsed/) });
    store.close();
  });

  it('replays a stored JSON event (hisbridge replay --stored) and a dead one (hisbridge dlq replay): the step gets the body again', async () => {
    const reg = builtinRegistry();
    const ctx = offlineContext(reg, loadSiteConfig(undefined, reg.extensions));
    const dir = tempFiles({ 'r.yaml': `name: notify\nmatch: { events: ["ADT^A04"] }\nsteps:\n  - plugin: http\n    config: { url: "${url}", body: { replayed: "\${body.patient.id}" } }\n` });
    const routes = new RouteTable(await loadRoutes(listRouteFiles([dir]), { registry: reg, contextFor: (d) => ctx(d), sources: ['mllp'] }));
    const run = createDeliveryRunner(() => routes, silentLogger());
    const data = fresh();
    let store = openStore(data);
    const { messageId } = await store.accept(jsonMessage({ controlId: 'E-R1' }), [delivery({ route: 'notify', step: 0, plugin: 'http' })]);
    const signal = new AbortController().signal;
    const once = async () => {
      const [job] = store.claimDue(Date.now() + 1000, 10);
      expect(job!.message.format).toBe('json');
      const r = await run({ ...job!, signal });
      await store.complete(job!.id, r);
    };
    await once();
    store.close();
    const quiet = async (fn: () => Promise<number>) => {
      const o = process.stdout.write.bind(process.stdout);
      process.stdout.write = (() => true) as typeof process.stdout.write;
      try {
        return await fn();
      } finally {
        process.stdout.write = o;
      }
    };
    expect(await quiet(() => replayCli(['--stored', String(messageId), '--data-dir', data]))).toBe(0);
    store = openStore(data);
    await once();
    // Dead letter: fail it for good, then replay it from the dead-letter list.
    store.close();
    expect(await quiet(() => replayCli(['--stored', String(messageId), '--data-dir', data]))).toBe(0);
    store = openStore(data);
    const [job] = store.claimDue(Date.now() + 1000, 10);
    await store.fail(job!.id, { code: 'HTTP_E_STATUS', reason: 'gave up', retryable: false });
    store.close();
    expect(await quiet(() => dlqCli(['replay', String(job!.id), '--data-dir', data]))).toBe(0);
    store = openStore(data);
    await once();
    store.close();
    expect(received.filter((r) => (r as { replayed?: string }).replayed === 'P9')).toHaveLength(3);
  });
});
