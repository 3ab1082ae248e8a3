/**
 * Untrusted peers over real sockets (issue 11, item 7): a frame that never
 * finishes is timed out, dripping bytes do not keep a connection alive, and a
 * flood of idle sockets is capped while the real HIS keeps being served.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';
import { MllpClient } from '../../core/mllp/client.js';
import { MllpFrameDecoder, encodeFrame } from '../../core/mllp/framing.js';
import { createMllpServer, type MllpServer, type MllpServerOptions } from '../../core/mllp/server.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';

function message(id: string): Buffer {
  return Buffer.from(`MSH|^~\\&|HIS|H1|HB|H2|20240101120000||ADT^A04|${id}|P|2.5\rPID|1||P${id}^^^^PI\r`, 'utf8');
}

function controlId(frame: Buffer): string {
  return frame.toString('latin1').split('\r')[0]!.split('|')[9] ?? '?';
}

function memoryLog() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination: stream }), entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function connect(port: number): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  return s;
}

function closed(s: net.Socket): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve) => (s.destroyed ? resolve(0) : s.once('close', () => resolve(Date.now() - t0))));
}

const servers: MllpServer[] = [];
const sockets: net.Socket[] = [];
const engines: TestEngine[] = [];

async function start(mem: ReturnType<typeof memoryLog>, over: Partial<MllpServerOptions>): Promise<{ server: MllpServer; port: number }> {
  const server = createMllpServer({
    name: 'test', host: '127.0.0.1', port: 0, log: mem.log,
    handler: async (f) => Buffer.from(`MSA|AA|${controlId(f)}`, 'latin1'),
    ...over,
  });
  servers.push(server);
  const { port } = await server.listen();
  return { server, port };
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close(200)));
  await Promise.all(engines.splice(0).map((e) => e.stop()));
});

describe('frameTimeout', () => {
  it('closes a connection that sent only the start byte, with one warn line naming the peer address', async () => {
    const mem = memoryLog();
    const { server, port } = await start(mem, { frameTimeoutMs: 300, idleTimeoutMs: 0 });
    const s = await connect(port);
    sockets.push(s);
    const localPort = s.localPort;
    s.write(Buffer.from([0x0b]));
    const ms = await closed(s);
    expect(ms).toBeGreaterThanOrEqual(200);
    expect(ms).toBeLessThan(5000);
    const warns = mem.entries().filter((e) => e.code === 'MLLP_E_FRAME_TIMEOUT');
    expect(warns).toHaveLength(1);
    expect(warns[0]!.level).toBe('warn');
    expect(warns[0]!.remoteAddress).toBe('127.0.0.1');
    expect(warns[0]!.remotePort).toBe(localPort);
    expect(server.stats().frameTimeouts).toBe(1);
  });

  it('closes a connection that drips one byte of a frame at a time, even though bytes keep arriving', async () => {
    const mem = memoryLog();
    // Without the frame timer only the idle timer could act; each byte must not reset it either.
    const { port } = await start(mem, { frameTimeoutMs: 400, idleTimeoutMs: 60_000 });
    const s = await connect(port);
    sockets.push(s);
    const bytes = encodeFrame(message('DRIP')).subarray(0, -2);
    let i = 0;
    const drip = setInterval(() => {
      if (!s.destroyed && i < bytes.length) s.write(bytes.subarray(i, ++i));
    }, 50);
    try {
      const ms = await closed(s);
      expect(ms).toBeLessThan(5000);
      expect(i).toBeGreaterThan(3);
    } finally {
      clearInterval(drip);
    }
    expect(mem.entries().filter((e) => e.code === 'MLLP_E_FRAME_TIMEOUT')).toHaveLength(1);
  });

  it('the idle timer is not reset by dripping bytes when the frame timer is off', async () => {
    const mem = memoryLog();
    const { port } = await start(mem, { frameTimeoutMs: 0, idleTimeoutMs: 400 });
    const s = await connect(port);
    sockets.push(s);
    const bytes = encodeFrame(message('IDLE')).subarray(0, -2);
    let i = 0;
    const drip = setInterval(() => {
      if (!s.destroyed && i < bytes.length) s.write(bytes.subarray(i, ++i));
    }, 50);
    try {
      expect(await closed(s)).toBeLessThan(5000);
    } finally {
      clearInterval(drip);
    }
    expect(mem.entries().filter((e) => e.code === 'MLLP_E_IDLE_TIMEOUT')).toHaveLength(1);
  });

  it('a connection that finishes its frames in time is answered and stays open past the frame timeout', async () => {
    const mem = memoryLog();
    const { port } = await start(mem, { frameTimeoutMs: 300, idleTimeoutMs: 0 });
    const client = await MllpClient.connect('127.0.0.1', port, { timeoutMs: 5000 });
    try {
      for (let n = 0; n < 4; n++) {
        const reply = await client.send(message(`OK${n}`));
        expect(reply.toString('latin1')).toBe(`MSA|AA|OK${n}`);
        await new Promise((r) => setTimeout(r, 150));
      }
    } finally {
      client.close();
    }
    expect(mem.entries().filter((e) => e.code === 'MLLP_E_FRAME_TIMEOUT')).toHaveLength(0);
  });

  it('answers the frames completed before the stalled one, then closes', async () => {
    const mem = memoryLog();
    const { port } = await start(mem, { frameTimeoutMs: 300, idleTimeoutMs: 0 });
    const s = await connect(port);
    sockets.push(s);
    const replies: string[] = [];
    const dec = new MllpFrameDecoder();
    s.on('data', (c: Buffer) => {
      for (const ev of dec.push(c)) if (ev.kind === 'frame') replies.push(ev.frame.toString('latin1'));
    });
    s.write(Buffer.concat([encodeFrame(message('DONE1')), Buffer.from([0x0b]), Buffer.from('MSH|^~\\&|HIS')]));
    await closed(s);
    expect(replies).toEqual(['MSA|AA|DONE1']);
  });

  it('rejects a negative frameTimeoutMs or a zero maxConnections when created', () => {
    const mem = memoryLog();
    expect(() => createMllpServer({ name: 'x', host: '127.0.0.1', port: 0, log: mem.log, handler: async () => null, frameTimeoutMs: -1 })).toThrow(RangeError);
    expect(() => createMllpServer({ name: 'x', host: '127.0.0.1', port: 0, log: mem.log, handler: async () => null, maxConnections: 0 })).toThrow(RangeError);
  });
});

describe('maxConnections', () => {
  it('refuses connections over the cap with a rate-limited warn line, and answers again once a slot is free', async () => {
    const mem = memoryLog();
    const { server, port } = await start(mem, { maxConnections: 5, frameTimeoutMs: 0, idleTimeoutMs: 0 });
    const held: net.Socket[] = [];
    for (let n = 0; n < 5; n++) held.push(await connect(port));
    sockets.push(...held);
    await expect.poll(() => server.connectionCount).toBe(5);
    const extra: net.Socket[] = [];
    for (let n = 0; n < 20; n++) {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      extra.push(s);
    }
    sockets.push(...extra);
    await Promise.all(extra.map(closed));
    await expect.poll(() => server.stats().refusedConnections).toBe(20);
    const warns = mem.entries().filter((e) => e.code === 'MLLP_E_TOO_MANY_CONNECTIONS');
    // Twenty refusals within the rate-limit period: one line now (the first), the rest summed later or at close.
    expect(warns.length).toBe(1);
    expect(warns[0]!.level).toBe('warn');
    expect(warns[0]!.limit).toBe(5);
    held[0]!.destroy();
    await expect.poll(() => server.connectionCount).toBe(4);
    const client = await MllpClient.connect('127.0.0.1', port, { timeoutMs: 5000 });
    try {
      expect((await client.send(message('AFTER'))).toString('latin1')).toBe('MSA|AA|AFTER');
    } finally {
      client.close();
    }
    await server.close(200);
    servers.splice(servers.indexOf(server), 1);
    const all = mem.entries().filter((e) => e.code === 'MLLP_E_TOO_MANY_CONNECTIONS');
    expect(all.reduce((n, e) => n + (e.refused as number), 0)).toBe(20);
  });
});

describe('an engine under a socket flood', () => {
  it('600 stalled sockets against maxConnections 512: the connected HIS keeps getting AA, the rest are refused and counted, stalled ones time out', async () => {
    const t = await startEngine({
      siteYaml: 'simulators: true\nlisteners:\n  - name: mllp\n    frameTimeout: 1500ms\n',
    });
    engines.push(t);
    const raw = readFileSync(path.resolve('samples', '06-adt-a28-add-person-no-msh18.hl7'));
    const his = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 10_000 });
    try {
      const attackers = await Promise.all(Array.from({ length: 600 }, () => new Promise<net.Socket>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: t.port });
        s.on('error', () => undefined);
        s.once('connect', () => {
          s.write(Buffer.from([0x0b]));
          resolve(s);
        });
        s.once('close', () => resolve(s));
      })));
      sockets.push(...attackers);
      const server = t.engine.listeners[0]!.server;
      await expect.poll(() => server.stats().refusedConnections, { timeout: 10_000 }).toBeGreaterThanOrEqual(89);
      expect(server.connectionCount).toBeLessThanOrEqual(512);
      const ack = parseHl7(decodeHl7(await his.send(raw), 'gb18030').text);
      expect(ack.get('MSA-1')).toBe('AA');
      const metrics = await (await fetch(`${t.httpUrl}/metrics`)).text();
      const m = /hisbridge_mllp_connections_refused_total\{listener="mllp"\} (\d+)/.exec(metrics);
      expect(Number(m?.[1])).toBe(server.stats().refusedConnections);
      // The stalled ones are dropped by the frame timer; a new connection is then served.
      await Promise.all(attackers.map(closed));
      await expect.poll(() => server.connectionCount, { timeout: 10_000 }).toBe(1);
      const late = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 10_000 });
      try {
        const again = parseHl7(decodeHl7(await late.send(raw), 'gb18030').text);
        expect(again.get('MSA-1')).toBe('AA');
      } finally {
        late.close();
      }
      expect(parseHl7(decodeHl7(await his.send(raw), 'gb18030').text).get('MSA-1')).toBe('AA');
      const timeouts = t.logs.filter((l) => l.includes('"MLLP_E_FRAME_TIMEOUT"'));
      expect(timeouts.length).toBe(server.stats().frameTimeouts);
      expect(timeouts.length).toBeGreaterThanOrEqual(511 - 1);
    } finally {
      his.close();
    }
  }, 60_000);
});
