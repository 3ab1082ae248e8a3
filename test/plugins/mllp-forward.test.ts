/**
 * The `mllp` destination plugin over real sockets: a real engine (MLLP
 * listener in, the plugin out) forwards to the receiver simulator
 * (plugins/mllp/simulator.ts) started here on a free port. Also Debian's
 * `mllp_send` (python3-hl7) as the independent sender into the engine.
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { MllpClient } from '../../core/mllp/client.js';
import { silentLogger } from '../../core/log.js';
import { startMllpReceiver, type MllpReceiver } from '../../plugins/mllp/index.js';
import { MllpPool } from '../../plugins/mllp/pool.js';
import { useEngine, withEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';

const ORU = readFileSync('samples/15-oru-r01-lab-report-final.hl7');

/** The sample ORU with its own MSH-10 and patient number (still GB 18030 bytes). */
function oru(controlId: string, patient = 'P000100001'): Buffer {
  const text = iconv.decode(ORU, 'gb18030').replace('LIS202503120015', controlId).replace('P000100001', patient);
  return iconv.encode(text, 'gb18030');
}

function route(port: number, extra = ''): string {
  return `name: lab-to-lis
match:
  events: [ORU^R01]
ack: on-receive
steps:
  - plugin: mllp
    config: { host: 127.0.0.1, port: ${port}, timeout: 400ms, pool: 2${extra} }
delivery:
  orderingKey: \${PID-3[5=PI].1}
  retry: { max: 4, initial: 30ms, maxDelay: 100ms }
`;
}

const SITE = ['simulators: false', 'listeners: [{ name: mllp, port: 0, charset: gb18030 }]', 'http: { port: 0 }'].join('\n');

type Delivery = { state: string; attempts: number; lastErrorCode?: string; lastError?: string; attemptLog: { outcome: string; errorCode?: string }[] };

async function settled(t: { engine: { store: { getMessage(id: number): { deliveries: Delivery[] } | undefined } } }, messageId: number, ms = 15_000): Promise<Delivery> {
  const by = Date.now() + ms;
  for (;;) {
    const d = t.engine.store.getMessage(messageId)?.deliveries[0];
    if (d && (d.state === 'done' || d.state === 'dead')) return d;
    if (Date.now() > by) throw new Error(`delivery not settled: ${JSON.stringify(d)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function send(port: number, frame: Buffer): Promise<number> {
  const c = await MllpClient.connect('127.0.0.1', port);
  try {
    const ack = (await c.send(frame)).toString('latin1');
    expect(ack).toMatch(/MSA\|AA\|/);
  } finally {
    await c.close();
  }
  return 0;
}

describe('mllp destination plugin', () => {
  let rx: MllpReceiver;
  let routesDir: string;
  beforeAll(async () => {
    rx = await startMllpReceiver({ host: '127.0.0.1', port: 0, site: {}, log: silentLogger() });
    routesDir = tempFiles({ 'lab.yaml': route(rx.port) });
  });
  afterAll(async () => {
    await rx.close();
    rmSync(routesDir, { recursive: true, force: true });
  });
  const t = useEngine(() => ({ routesDir, siteYaml: SITE }));

  const idOf = (controlId: string): number => t.engine.store.searchMessages({ controlId, limit: 1 })[0]!.id;

  it('forwards a GB 18030 lab ORU as is and is done on AA; the receiver reads the Chinese text', async () => {
    rx.answer = 'AA';
    const before = rx.received.length;
    await send(t.port, oru('FWD-1'));
    const d = await settled(t, idOf('FWD-1'));
    expect(d).toMatchObject({ state: 'done', attempts: 1 });
    const got = rx.received.slice(before);
    expect(got).toHaveLength(1);
    expect(got[0]!.controlId).toBe('FWD-1');
    // Sent in the message's own charset (MSH-18 GB 18030): the same bytes the HIS sent.
    expect(got[0]!.bytes.equals(oru('FWD-1'))).toBe(true);
    expect(got[0]!.text).toContain('血常规');
    expect(got[0]!.text).toContain('MSH|^~\\&|LIS|H4413020001|HISBRIDGE|GDPLAT|');
  });

  it('AE then AA: retried by the policy and done on the second attempt', async () => {
    rx.answers(['AE']);
    await send(t.port, oru('FWD-AE'));
    const d = await settled(t, idOf('FWD-AE'));
    expect(d).toMatchObject({ state: 'done', attempts: 2 });
    expect(d.attemptLog.map((a) => [a.outcome, a.errorCode])).toEqual([['retry', 'MLLPOUT_E_AE'], ['ok', undefined]]);
    expect(rx.received.filter((m) => m.controlId === 'FWD-AE').map((m) => m.answer)).toEqual(['AE', 'AA']);
  });

  it('AR: dead-lettered at once with the receiver ERR text', async () => {
    rx.answers(['AR']);
    await send(t.port, oru('FWD-AR'));
    const d = await settled(t, idOf('FWD-AR'));
    expect(d).toMatchObject({ state: 'dead', attempts: 1, lastErrorCode: 'MLLPOUT_E_AR' });
    expect(d.lastError).toContain('refused by the receiver simulator');
    expect(rx.received.filter((m) => m.controlId === 'FWD-AR')).toHaveLength(1);
  });

  it('no ACK (hang): MLLP_E_TIMEOUT, retried on a new connection, done when the receiver answers', async () => {
    rx.answers(['hang']);
    await send(t.port, oru('FWD-HANG'));
    const d = await settled(t, idOf('FWD-HANG'));
    expect(d).toMatchObject({ state: 'done', attempts: 2 });
    expect(d.attemptLog[0]).toMatchObject({ outcome: 'retry', errorCode: 'MLLP_E_TIMEOUT' });
  });

  it('keeps connections open: 30 messages over at most 2 (pool) connections plus the one the timeout replaced', async () => {
    rx.answer = 'AA';
    const conns = rx.connections;
    const ids = Array.from({ length: 30 }, (_, i) => `FWD-POOL-${i}`);
    for (const id of ids) await send(t.port, oru(id, `PP${id}`));
    for (const id of ids) expect(await settled(t, idOf(id))).toMatchObject({ state: 'done' });
    expect(rx.connections - conns).toBeLessThanOrEqual(2);
  });

  it('honours the ordering key: a message waits while the one before it (same patient) is retried', async () => {
    rx.answers(['AE', 'AE']);
    const c = await MllpClient.connect('127.0.0.1', t.port);
    try {
      for (const id of ['ORD-1', 'ORD-2', 'ORD-3']) await c.send(oru(id, 'P-ORDER'));
    } finally {
      await c.close();
    }
    for (const id of ['ORD-1', 'ORD-2', 'ORD-3']) await settled(t, idOf(id));
    const seen = rx.received.filter((m) => m.controlId.startsWith('ORD-')).map((m) => `${m.controlId}:${m.answer}`);
    expect(seen).toEqual(['ORD-1:AE', 'ORD-1:AE', 'ORD-1:AA', 'ORD-2:AA', 'ORD-3:AA']);
  });

  it('takes a message from Debian mllp_send (an independent sender) and forwards it byte-exact', async () => {
    const file = path.join(routesDir, 'in.hl7');
    const frame = oru('FWD-PY');
    // --loose reads \r\n line ends and sends \r; the file holds the GB 18030 bytes.
    writeFileSync(file, Buffer.from(frame.toString('latin1').split('\r').filter(Boolean).join('\r\n') + '\r\n', 'latin1'));
    const out = await new Promise<string>((resolve, reject) =>
      execFile('/usr/bin/mllp_send', ['--loose', '--file', file, '-p', String(t.port), '127.0.0.1'], { encoding: 'latin1', timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    expect(out).toContain('MSA|AA|FWD-PY');
    const d = await settled(t, idOf('FWD-PY'));
    expect(d.state).toBe('done');
    const got = rx.received.filter((m) => m.controlId === 'FWD-PY');
    expect(got).toHaveLength(1);
    // The same bytes, up to the final segment terminator (mllp_send drops it; the forward ends every segment with CR).
    const trim = (b: Buffer) => b.subarray(0, b.length - (b[b.length - 1] === 0x0d ? 1 : 0));
    expect(trim(got[0]!.bytes).equals(trim(frame))).toBe(true);
  });

  it('logs no patient name or ID number', () => {
    const all = t.logs.join('\n');
    expect(all).not.toContain('440106199003152314');
    expect(all).not.toContain('张');
  });
});

describe('mllp plugin: receiver down, then up', () => {
  it('retries MLLP_E_CONNECT and delivers once the receiver listens', async () => {
    const probe = await startMllpReceiver({ host: '127.0.0.1', port: 0, site: {}, log: silentLogger() });
    const port = probe.port;
    await probe.close();
    const pool = new MllpPool('127.0.0.1', port, 1, { timeoutMs: 500, connectTimeoutMs: 500 });
    await expect(pool.take()).rejects.toMatchObject({ code: 'MLLP_E_CONNECT', retryable: true });
    const rx = await startMllpReceiver({ host: '127.0.0.1', port, site: {}, log: silentLogger() });
    try {
      const c = await pool.take();
      const ack = await c.send(oru('POOL-1'));
      expect(ack.toString('latin1')).toMatch(/MSA\|AA\|POOL-1/);
      pool.release(c, true);
      const again = await pool.take();
      expect(again).toBe(c); // kept open and reused
      pool.release(again, true);
      expect(pool.opened).toBe(1);
    } finally {
      await pool.close();
      await rx.close();
    }
  });
});

describe('mllpReceiver simulator, started with the other simulators', () => {
  it('listens on its own port and answers what its section says', async () => {
    await withEngine({ siteYaml: ['simulators: true', 'listeners: [{ name: mllp, port: 0 }]', 'http: { port: 0 }', 'mllpReceiver: { answer: AE, text: LIS busy }'].join('\n') }, async (t) => {
      const sim = t.engine.simulators.mllpReceiver;
      expect(sim?.url).toMatch(/^mllp:\/\/127\.0\.0\.1:\d+$/);
      const port = Number(/:(\d+)$/.exec(sim!.url)![1]);
      const c = await MllpClient.connect('127.0.0.1', port);
      try {
        const ack = iconv.decode(await c.send(oru('SIM-1')), 'gb18030');
        expect(ack).toMatch(/MSA\|AE\|SIM-1\|LIS busy/);
        expect(ack).toContain('ERR|');
      } finally {
        await c.close();
      }
    });
  });
});
