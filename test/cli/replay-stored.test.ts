/**
 * `hisbridge replay --stored` through the CLI surface: real processes from
 * dist/ (built by the global setup). With an engine running, a message it
 * delivered is re-queued by the CLI and the engine sends it again with the
 * same idempotency key; without one, the store shows the replayed delivery
 * back at its place in the ordering key.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHl7 } from '../../core/hl7/index.js';
import { MllpClient } from '../../core/mllp/client.js';
import { Store } from '../../core/store/sqlite.js';
import { spawnEngine, type EngineProcess } from '../helpers/proc.js';
import { delivery, message, openStore } from '../helpers/store.js';
import { cli } from '../helpers/cli.js';


async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'hisbridge-replay-stored-'));
  dirs.push(d);
  return d;
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('hisbridge replay --stored with the engine running', () => {
  /** A ward system that applies each idempotency key once. */
  const received: { key: string; controlId: string }[] = [];
  const applied = new Set<string>();
  let server: http.Server;
  let engine: EngineProcess | undefined;
  let dir: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const key = String(req.headers['idempotency-key'] ?? '');
        received.push({ key, controlId: (JSON.parse(body) as { controlId: string }).controlId });
        applied.add(key);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = tempDir();
    mkdirSync(path.join(dir, 'routes'));
    writeFileSync(path.join(dir, 'routes', 'ward.yaml'), `name: ward
match: { events: [ADT^A04] }
ack: on-receive
steps:
  - plugin: http
    config: { url: "${base}/admit", body: { controlId: "\${msg.controlId}" } }
delivery:
  orderingKey: \${PID-3.1}
`);
    writeFileSync(path.join(dir, 'hisbridge.yaml'), ['simulators: false', 'listeners: [{ name: mllp, port: 0 }]', 'http: { port: 0 }', `dataDir: ${path.join(dir, 'data')}`].join('\n'));
    engine = await spawnEngine(['--config', path.join(dir, 'hisbridge.yaml'), '--routes', path.join(dir, 'routes')]);
  }, 60_000);

  afterAll(async () => {
    if (engine) {
      engine.child.kill('SIGTERM');
      await engine.exited;
    }
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('re-queues a delivered message; the engine sends it again with the same idempotency key; the replay is audited', async () => {
    const mllp = await MllpClient.connect('127.0.0.1', engine!.mllpPort, { timeoutMs: 5000 });
    const ack = parseHl7((await mllp.send('MSH|^~\\&|HIS|H1|WARD|H1|20260101120000||ADT^A04|REPLAY-1|P|2.5\rPID|1||PAT001^^^H1^PI||Test^Patient\r')).toString('utf8'));
    await mllp.close();
    expect(ack.get('MSA-1')).toBe('AA');
    await until(() => received.length === 1, 'the first delivery');

    const store = Store.open(path.join(dir, 'data'));
    const [m] = store.searchMessages({ controlId: 'REPLAY-1', limit: 1 });
    store.close();
    expect(m).toBeDefined();

    const run = await cli(['replay', '--stored', String(m!.id), '--config', path.join(dir, 'hisbridge.yaml')], { USER: 'nurse.li', SUDO_USER: '' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`message ${m!.id} (MSH-10 REPLAY-1): 1 delivery re-queued`);
    expect(run.stdout).toContain('re-queued 1 deliveries of 1 message(s)');

    // The engine sees it by polling the shared file.
    await until(() => received.length === 2, 'the replayed delivery');
    expect(received.map((r) => r.controlId)).toEqual(['REPLAY-1', 'REPLAY-1']);
    expect(received[1]!.key).toBe(received[0]!.key);
    expect(applied.size).toBe(1);

    const after = Store.open(path.join(dir, 'data'));
    try {
      await until(() => after.getMessage(m!.id)!.deliveries[0]!.state === 'done', 'the delivery to settle');
      expect(after.getMessage(m!.id)!.deliveries[0]!.attempts).toBe(1);
      const [audit] = after.queryAudit({ operation: 'replay' });
      expect(audit).toMatchObject({ plugin: 'operator', staffNo: 'nurse.li', messageId: String(m!.id), result: 'ok', detail: 'requeued 1, still open 0' });
      expect(audit!.patientMasked).toBeTruthy();
      expect(JSON.stringify(audit)).not.toContain('PAT001');
    } finally {
      after.close();
    }
  }, 60_000);
});

describe('hisbridge replay --stored on a data directory', () => {
  it('puts the replayed delivery back ahead of a pending later one of the same key', async () => {
    const data = tempDir();
    const store = openStore(data);
    const first = await store.accept(message({ controlId: 'UPLOAD-1' }), [delivery({ orderingKey: 'report:R9', vars: { op: 'upload' } })]);
    for (const j of store.claimDue(Date.now(), 10)) await store.complete(j.id, { outcome: 'ok' });
    const second = await store.accept(message({ controlId: 'REVOKE-1' }), [delivery({ orderingKey: 'report:R9', vars: { op: 'revoke' } })]);
    store.close();

    const run = await cli(['replay', '--stored', String(first.messageId), '--data-dir', data, '--json']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ requeued: 1, messages: [{ messageId: first.messageId, controlId: 'UPLOAD-1', requeued: 1, stillOpen: 0, purged: false }] });

    const again = openStore(data);
    try {
      const due = again.claimDue(Date.now(), 10);
      expect(due.map((j) => j.vars.op)).toEqual(['upload']);
      await again.complete(due[0]!.id, { outcome: 'ok' });
      expect(again.claimDue(Date.now(), 10).map((j) => j.messageId)).toEqual([second.messageId]);
    } finally {
      again.close();
    }
  });

  it('selects by --stored-since and --route, and leaves running deliveries alone', async () => {
    const data = tempDir();
    const store = openStore(data);
    const old = await store.accept(message({ receivedAt: Date.now() - 3 * 3_600_000 }), [delivery({ route: 'a' })]);
    const recent = await store.accept(message({ controlId: 'RECENT-1' }), [delivery({ route: 'a' }), delivery({ route: 'b' })]);
    for (const j of store.claimDue(Date.now(), 10)) await store.complete(j.id, { outcome: 'ok' });
    const open = await store.accept(message({ controlId: 'OPEN-1' }), [delivery({ route: 'a' })]);
    store.close();

    const run = await cli(['replay', '--stored-since', '1h', '--route', 'a', '--data-dir', data]);
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n').filter(Boolean)).toEqual([
      `message ${recent.messageId} (MSH-10 RECENT-1): 1 delivery re-queued`,
      `message ${open.messageId} (MSH-10 OPEN-1): 0 deliveries re-queued; 1 still running, left alone`,
      're-queued 1 deliveries of 2 message(s) (route a); a running engine picks them up at its next poll',
    ]);
    const check = openStore(data);
    try {
      expect(check.getMessage(old.messageId)!.deliveries[0]!.state).toBe('done');
      expect(check.getMessage(recent.messageId)!.deliveries.map((d) => [d.route, d.state])).toEqual([['a', 'pending'], ['b', 'done']]);
    } finally {
      check.close();
    }
  });

  it('exits 1 and re-queues nothing when an id does not exist; 2 on usage errors', async () => {
    const data = tempDir();
    const store = openStore(data);
    const m = await store.accept(message(), [delivery()]);
    for (const j of store.claimDue(Date.now(), 10)) await store.complete(j.id, { outcome: 'ok' });
    store.close();

    const missing = await cli(['replay', '--stored', `${m.messageId},424242`, '--data-dir', data]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no stored message with id 424242; nothing re-queued');
    const check = openStore(data);
    expect(check.getMessage(m.messageId)!.deliveries[0]!.state).toBe('done');
    expect(check.queryAudit({ operation: 'replay' })).toEqual([]);
    check.close();

    expect((await cli(['replay', '--stored', 'abc', '--data-dir', data])).code).toBe(2);
    expect((await cli(['replay', '--stored', '1', '--stored-since', '1h', '--data-dir', data])).code).toBe(2);
    expect((await cli(['replay', '--stored-since', 'yesterday-ish', '--data-dir', data])).code).toBe(2);
    const noStore = await cli(['replay', '--stored', '1', '--data-dir', path.join(data, 'nowhere')]);
    expect(noStore.code).toBe(1);
    expect(noStore.stderr).toContain('no hisbridge store');
  });
});
