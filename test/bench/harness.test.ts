/**
 * The benchmark harness measures what it claims: messages have the promised
 * size and unique ids, the load generator counts ACKs, rejections, timeouts
 * and missed rates correctly against real MLLP servers on random ports.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Message } from 'node-hl7-client';
import { closedLoop, fixedRate } from '../../bench/lib/load.js';
import { controlIdOf, idNumberOf, indexOfIdNumber, MessageFactory } from '../../bench/lib/messages.js';
import { ackCode } from '../../bench/lib/mllp-sender.js';
import { percentile, spread } from '../../bench/lib/stats.js';
import { entry } from '../../bench/lib/result.js';

type Reply = (payload: Buffer, n: number, socket: net.Socket) => void;

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function frame(text: string): Buffer {
  return Buffer.concat([Buffer.from([0x0b]), Buffer.from(text, 'utf8'), Buffer.from([0x1c, 0x0d])]);
}

/** A test MLLP server; `reply` decides what (if anything) to answer to message n. */
async function mllpServer(reply: Reply): Promise<{ host: string; port: number; received: string[] }> {
  const received: string[] = [];
  let n = 0;
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf(0x1c);
        if (end < 0 || end + 1 >= buf.length) return;
        const payload = buf.subarray(buf.indexOf(0x0b) + 1, end);
        buf = buf.subarray(end + 2);
        received.push(controlIdOf(payload));
        reply(payload, n++, socket);
      }
    });
    socket.on('error', () => socket.destroy());
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, received };
}

const ack = (code: string, payload: Buffer) => frame(`MSH|^~\\&|A|B|C|D|20250101||ACK|X|P|2.5\rMSA|${code}|${controlIdOf(payload)}`);

describe('message factory', () => {
  it('builds ~1 KB ADT and ~50 KB ORU messages that parse, with unique MSH-10 across factories', () => {
    const adt = new MessageFactory('adt', 'ta');
    const oru = new MessageFactory('oru', 'tb');
    const a = adt.next();
    const o = oru.next();
    expect(a.length).toBeGreaterThan(800);
    expect(a.length).toBeLessThan(1300);
    expect(o.length).toBeGreaterThan(45_000);
    expect(o.length).toBeLessThan(55_000);
    const parsed = new Message({ text: o.toString('utf8') });
    expect(parsed.get('MSH.9.1').toString()).toBe('ORU');
    const ed = o.toString('utf8').split('\r').find((seg) => seg.startsWith('OBX|3|ED|'))!;
    const b64 = ed.split('|')[5]!.split('^')[4]!;
    expect(Buffer.from(b64, 'base64').subarray(0, 8).toString('latin1')).toBe('%PDF-1.4');
    const ids = new Set<string>([controlIdOf(a), controlIdOf(o)]);
    for (let i = 0; i < 2000; i++) ids.add(controlIdOf(adt.next()));
    const again = new MessageFactory('adt', 'tc');
    for (let i = 0; i < 100; i++) ids.add(controlIdOf(again.next()));
    expect(ids.size).toBe(2102);
    expect([...ids].every((id) => id.length === 20)).toBe(true);
  });

  it('gives each message a distinct, checksum-valid ID number that maps back to its index', () => {
    const f = new MessageFactory('adt', 'id');
    f.next();
    const second = new Message({ text: f.next().toString('utf8') });
    const id = second.get('PID.3').toRaw().split('~')[1]!.split('^')[0]!;
    expect(id).toBe(idNumberOf(1));
    for (const i of [0, 1, 999, 1000, 123_456]) expect(indexOfIdNumber(idNumberOf(i))).toBe(i);
    const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const n = idNumberOf(4242);
    const sum = weights.reduce((s, w, k) => s + w * Number(n[k]), 0);
    expect(n[17]).toBe('10X98765432'[sum % 11]);
    expect(indexOfIdNumber('110101199001011234')).toBe(-1);
  });
});

describe('stats', () => {
  it('computes nearest-rank percentiles and median/min/max', () => {
    const s = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(s, 50)).toBe(50);
    expect(percentile(s, 99)).toBe(99);
    expect(percentile(s, 100)).toBe(100);
    expect(spread([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5 });
    expect(spread([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4 });
  });

  it('reports ratios of medians per baseline', () => {
    const e = entry({ name: 'x', scenario: 1, title: 't', unit: 'msg/s', better: 'higher', target: '-' }, { hisbridge: [40, 50, 60], baselines: { raw: [100, 90, 110] } });
    expect(e.ratios.raw).toBe(0.5);
    expect(e.trials).toBe(3);
    expect(e.status).toBe('ok');
  });
});

describe('load generator', () => {
  it('closed loop: every message is acknowledged, latencies are ordered, AE is counted as rejected', async () => {
    const srv = await mllpServer((p, n, s) => s.write(ack(n % 5 === 4 ? 'AE' : 'AA', p)));
    const r = await closedLoop(srv, { connections: 3, messages: 100, factory: new MessageFactory('adt', 'cl') });
    expect(r.acked).toBe(100);
    expect(r.rejected).toBe(20);
    expect(r.firstRejection).toBe('AE');
    expect(r.errors).toBe(0);
    expect(new Set(srv.received).size).toBe(100);
    expect(r.msgPerSec).toBeGreaterThan(0);
    expect(r.latency.p50).toBeLessThanOrEqual(r.latency.p99);
    expect(r.latency.p99).toBeLessThanOrEqual(r.latency.max);
  });

  it('reassembles an ACK split across TCP chunks', async () => {
    const srv = await mllpServer((p, _n, s) => {
      const a = ack('AA', p);
      s.write(a.subarray(0, 7));
      setTimeout(() => s.write(a.subarray(7)), 5);
    });
    const r = await closedLoop(srv, { connections: 1, messages: 10, factory: new MessageFactory('adt', 'sp') });
    expect(r.acked).toBe(10);
    expect(r.rejected).toBe(0);
  });

  it('counts a server that never answers as a transport error, within the timeout', async () => {
    const srv = await mllpServer(() => {});
    const t0 = Date.now();
    const r = await closedLoop(srv, { connections: 2, messages: 10, factory: new MessageFactory('adt', 'to'), timeoutMs: 300 });
    expect(r.acked).toBe(0);
    expect(r.errors).toBe(2);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('fixed rate: a prompt server sustains the offered rate; a slow one does not', async () => {
    const fast = await mllpServer((p, _n, s) => s.write(ack('AA', p)));
    const ok = await fixedRate(fast, { connections: 2, rate: 200, durationMs: 500, factory: new MessageFactory('adt', 'fr') });
    expect(ok.scheduled).toBe(100);
    expect(ok.acked).toBe(100);
    expect(ok.sustained).toBe(true);

    const slow = await mllpServer((p, _n, s) => setTimeout(() => s.write(ack('AA', p)), 40));
    const bad = await fixedRate(slow, { connections: 1, rate: 100, durationMs: 500, factory: new MessageFactory('adt', 'fs') });
    expect(bad.scheduled).toBe(50);
    expect(bad.sustained).toBe(false);
    // Latency counts from the scheduled time, so the backlog shows up in p99.
    expect(bad.latency.p99).toBeGreaterThan(100);
  });

  it('reads MSA-1 from an ACK', () => {
    expect(ackCode(Buffer.from('MSH|^~\\&|||||||ACK|1|P|2.5\rMSA|CA|X'))).toBe('CA');
    expect(ackCode(Buffer.from('MSH|^~\\&|||||||ACK|1|P|2.5'))).toBe('');
  });
});
