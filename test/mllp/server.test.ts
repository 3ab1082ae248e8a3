/**
 * The MLLP listener over real sockets on random ports. Replies are
 * `MSA|AA|<MSH-10>|<frame length>` so each one can be matched to its request
 * and proves the frame arrived whole.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';
import { MllpClient } from '../../core/mllp/client.js';
import { MllpFrameDecoder, encodeFrame } from '../../core/mllp/framing.js';
import { createMllpServer, type MllpServer, type MllpServerOptions } from '../../core/mllp/server.js';

const NAME = '测试患者';
const ID_NUMBER = '440106199001011234';

function message(id: string): Buffer {
  return Buffer.from(`MSH|^~\\&|HIS|H1|HB|H2|20240101120000||ADT^A04|${id}|P|2.5\rPID|1||P${id}^^^^PI~${ID_NUMBER}^^^^NI||${NAME}\r`, 'utf8');
}

function controlId(frame: Buffer): string {
  return frame.toString('latin1').split('\r')[0]!.split('|')[9] ?? '?';
}

function ack(frame: Buffer): Buffer {
  return Buffer.from(`MSA|AA|${controlId(frame)}|${frame.length}`, 'latin1');
}

function expectedAck(id: string): string {
  return `MSA|AA|${id}|${message(id).length}`;
}

interface MemLog {
  log: ReturnType<typeof createLogger>;
  text: () => string;
  entries: () => Record<string, unknown>[];
}

function memoryLog(): MemLog {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return {
    log: createLogger({ level: 'debug', destination: stream }),
    text: () => lines.join('\n'),
    entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A raw TCP peer that writes exact bytes and decodes replies. */
interface RawPeer {
  socket: net.Socket;
  replies: string[];
  closed: Promise<void>;
  waitReplies(n: number, ms?: number): Promise<string[]>;
}

async function rawPeer(port: number): Promise<RawPeer> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  const decoder = new MllpFrameDecoder();
  const replies: string[] = [];
  let wake: (() => void) | null = null;
  socket.on('data', (c: Buffer) => {
    for (const ev of decoder.push(c)) if (ev.kind === 'frame') replies.push(ev.frame.toString('latin1'));
    wake?.();
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    socket,
    replies,
    closed,
    async waitReplies(n, ms = 5000) {
      const deadline = Date.now() + ms;
      while (replies.length < n) {
        if (Date.now() > deadline || socket.destroyed) throw new Error(`expected ${n} replies, got ${replies.length}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
      return replies.slice(0, n);
    },
  };
}

const mem = memoryLog();
const servers: MllpServer[] = [];
const peers: net.Socket[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => {
  unhandled.push(e);
};

async function start(over: Partial<MllpServerOptions> = {}): Promise<{ server: MllpServer; port: number }> {
  const server = createMllpServer({ name: 'test', host: '127.0.0.1', port: 0, log: mem.log, handler: async (f) => ack(f), ...over });
  servers.push(server);
  const { port } = await server.listen();
  return { server, port };
}

async function peer(port: number): Promise<RawPeer> {
  const p = await rawPeer(port);
  peers.push(p.socket);
  return p;
}

function logsWith(code: string): Record<string, unknown>[] {
  return mem.entries().filter((e) => e.code === code);
}

beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  for (const s of peers.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close(500)));
});

afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
  // No log line may carry payload text, names or ID numbers.
  const text = mem.text();
  expect(text.length).toBeGreaterThan(0);
  for (const needle of ['MSH|', 'PID|', NAME, ID_NUMBER, 'ADT^A04']) expect(text).not.toContain(needle);
});

describe('MLLP server framing over a socket', () => {
  it('answers a frame sent one byte per packet', async () => {
    const { port } = await start();
    const p = await peer(port);
    for (const byte of encodeFrame(message('SPLIT1'))) {
      p.socket.write(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    expect(await p.waitReplies(1)).toEqual([expectedAck('SPLIT1')]);
  });

  it('answers two frames and then fifty frames sent in one packet, in order', async () => {
    const { port } = await start();
    const p = await peer(port);
    p.socket.write(Buffer.concat([encodeFrame(message('TWO1')), encodeFrame(message('TWO2'))]));
    expect(await p.waitReplies(2)).toEqual([expectedAck('TWO1'), expectedAck('TWO2')]);
    const ids = Array.from({ length: 50 }, (_, i) => `F${i}`);
    p.socket.write(Buffer.concat(ids.map((id) => encodeFrame(message(id)))));
    expect((await p.waitReplies(52)).slice(2)).toEqual(ids.map(expectedAck));
  });

  it('serves 20 concurrent connections of 50 pipelined frames: replies matched, per-connection order kept, one frame at a time per connection', async () => {
    const seen = new Map<number, string[]>();
    const inFlight = new Map<number, number>();
    let maxPerConn = 0;
    let active = 0;
    let maxActive = 0;
    const { server, port } = await start({
      handler: async (frame, conn) => {
        const n = (inFlight.get(conn.id) ?? 0) + 1;
        inFlight.set(conn.id, n);
        maxPerConn = Math.max(maxPerConn, n);
        maxActive = Math.max(maxActive, ++active);
        const list = seen.get(conn.id) ?? [];
        list.push(controlId(frame));
        seen.set(conn.id, list);
        await sleep(Math.floor(Math.random() * 3));
        active--;
        inFlight.set(conn.id, n - 1);
        return ack(frame);
      },
    });
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, c) => {
        const client = await MllpClient.connect('127.0.0.1', port, { timeoutMs: 10_000 });
        const ids = Array.from({ length: 50 }, (_, i) => `C${c}M${i}`);
        // Batches with a pause between them make the frames arrive in several TCP reads while earlier ones are still being handled.
        const sends: Promise<Buffer>[] = [];
        for (let i = 0; i < ids.length; i++) {
          sends.push(client.send(message(ids[i]!)));
          if (i % 10 === 9) await sleep(2);
        }
        const acks = await Promise.all(sends);
        await client.close();
        return { ids, acks: acks.map((a) => a.toString('latin1')) };
      }),
    );
    for (const r of results) expect(r.acks).toEqual(r.ids.map(expectedAck));
    expect(seen.size).toBe(20);
    for (const list of seen.values()) {
      const c = list[0]!.split('M')[0];
      expect(list).toEqual(Array.from({ length: 50 }, (_, i) => `${c}M${i}`));
    }
    expect(maxPerConn).toBe(1);
    expect(maxActive).toBeGreaterThan(1);
    expect(server.framesHandled).toBe(1000);
  });

  it('logs garbage before and between frames with its byte count and still answers the frames', async () => {
    const { port } = await start();
    const p = await peer(port);
    p.socket.write(Buffer.concat([Buffer.from('hello\n'), encodeFrame(message('G1')), Buffer.from('??'), encodeFrame(message('G2'))]));
    expect(await p.waitReplies(2)).toEqual([expectedAck('G1'), expectedAck('G2')]);
    const g = logsWith('MLLP_E_GARBAGE');
    expect(g.length).toBeGreaterThan(0);
    expect(g.reduce((sum, e) => sum + (e.bytes as number), 0)).toBe(8);
  });

  it('logs a frame truncated by the peer closing, without crashing, and keeps serving', async () => {
    const { port } = await start();
    const p = await peer(port);
    p.socket.end(Buffer.concat([encodeFrame(message('T0')), Buffer.from('\x0bMSH|^~\\&|HIS|partial')]));
    await p.closed;
    expect(p.replies).toEqual([expectedAck('T0')]);
    await expect.poll(() => logsWith('MLLP_E_TRUNCATED').length).toBe(1);
    expect(logsWith('MLLP_E_TRUNCATED')[0]).toMatchObject({ bytes: 20 });
    const q = await peer(port);
    q.socket.write(encodeFrame(message('T1')));
    expect(await q.waitReplies(1)).toEqual([expectedAck('T1')]);
  });

  it('answers an oversized frame with the onBadFrame reply and keeps the connection for the next frame', async () => {
    const heads: string[] = [];
    const { port } = await start({
      maxFrameBytes: 1024,
      onBadFrame: (ev) => {
        if (ev.kind !== 'too-large') return null;
        heads.push(ev.head!.toString('latin1'));
        return Buffer.from(`MSA|AR|${controlId(ev.head!)}|${ev.bytes}`);
      },
    });
    const p = await peer(port);
    const big = Buffer.concat([message('BIG1'), Buffer.from(`OBX|1|ED|||${'A'.repeat(5000)}\r`)]);
    p.socket.write(Buffer.concat([encodeFrame(big), encodeFrame(message('AFTER'))]));
    expect(await p.waitReplies(2)).toEqual([`MSA|AR|BIG1|${big.length}`, expectedAck('AFTER')]);
    expect(heads[0]!.length).toBe(4096);
    expect(logsWith('MLLP_E_FRAME_TOO_LARGE').at(-1)).toMatchObject({ bytes: big.length, limit: 1024 });
  });
});

describe('MLLP server connection handling', () => {
  it('closes an idle connection after idleTimeoutMs and logs it, but not one whose handler is still running', async () => {
    const { port } = await start({
      idleTimeoutMs: 150,
      handler: async (f) => {
        if (controlId(f) === 'SLOW') await sleep(500);
        return ack(f);
      },
    });
    const slow = await peer(port);
    slow.socket.write(encodeFrame(message('SLOW')));
    const idle = await peer(port);
    await idle.closed;
    expect(logsWith('MLLP_E_IDLE_TIMEOUT').length).toBeGreaterThanOrEqual(1);
    expect(await slow.waitReplies(1)).toEqual([expectedAck('SLOW')]);
  });

  it('replies with onHandlerError when the handler throws or rejects, and other connections are unaffected', async () => {
    const { server, port } = await start({
      handler: (f) => {
        const id = controlId(f);
        if (id === 'THROW') throw new Error(`boom for ${ID_NUMBER}`);
        if (id === 'REJECT') return sleep(20).then(() => Promise.reject(new Error('async boom')));
        return Promise.resolve(ack(f));
      },
      onHandlerError: (err, f) => Buffer.from(`MSA|AE|${controlId(f)}|${(err as Error).message.startsWith('boom') ? 'sync' : 'async'}`),
    });
    const bad = await peer(port);
    const good = await peer(port);
    bad.socket.write(Buffer.concat(['THROW', 'OK1', 'REJECT', 'OK2'].map((id) => encodeFrame(message(id)))));
    good.socket.write(Buffer.concat(['G1', 'G2'].map((id) => encodeFrame(message(id)))));
    expect(await bad.waitReplies(4)).toEqual(['MSA|AE|THROW|sync', expectedAck('OK1'), 'MSA|AE|REJECT|async', expectedAck('OK2')]);
    expect(await good.waitReplies(2)).toEqual([expectedAck('G1'), expectedAck('G2')]);
    expect(logsWith('MLLP_E_HANDLER')).toHaveLength(2);
    expect(server.connectionCount).toBe(2);
  });

  it('survives a peer that resets while its frame is being handled', async () => {
    const { port } = await start({ handler: async (f) => (await sleep(100), ack(f)) });
    const p = await peer(port);
    p.socket.write(encodeFrame(message('RST')));
    await sleep(20);
    p.socket.resetAndDestroy();
    await sleep(150);
    const q = await peer(port);
    q.socket.write(encodeFrame(message('AFTER-RST')));
    expect(await q.waitReplies(1)).toEqual([expectedAck('AFTER-RST')]);
  });

  it('pauseAll holds queued frames unanswered and stops reading; resumeAll answers them in order', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const handled: string[] = [];
    const { server, port } = await start({
      handler: async (f) => {
        handled.push(controlId(f));
        if (controlId(f) === 'Q1') await gate;
        return ack(f);
      },
    });
    const p = await peer(port);
    p.socket.write(Buffer.concat(['Q1', 'Q2', 'Q3'].map((id) => encodeFrame(message(id)))));
    await expect.poll(() => handled).toEqual(['Q1']);
    server.pauseAll();
    release();
    // The frame in flight finishes; the queued ones wait (engine back-pressure must not turn into new deliveries).
    expect(await p.waitReplies(1)).toEqual(['Q1'].map(expectedAck));
    p.socket.write(encodeFrame(message('Q4')));
    await sleep(300);
    expect(handled).toEqual(['Q1']);
    server.resumeAll();
    expect(await p.waitReplies(4)).toEqual(['Q1', 'Q2', 'Q3', 'Q4'].map(expectedAck));
    expect(handled).toEqual(['Q1', 'Q2', 'Q3', 'Q4']);
  });

  it('pauses a connection whose queue is full and loses nothing when it resumes', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { server, port } = await start({ maxQueuedFrames: 2, handler: async (f) => (await gate, ack(f)) });
    const p = await peer(port);
    const ids = Array.from({ length: 300 }, (_, i) => `P${i}`);
    // ~2 KiB frames: at most ~32 fit in one socket read, so the cap is visible in the queue length.
    const bulky = (id: string): Buffer => Buffer.concat([message(id), Buffer.from(`NTE|1||${'n'.repeat(2000)}\r`)]);
    p.socket.write(Buffer.concat(ids.map((id) => encodeFrame(bulky(id)))));
    await expect.poll(() => server.stats().pausedConnections).toBe(1);
    await sleep(100);
    expect(server.stats().queuedFrames).toBeLessThan(100);
    release();
    expect(await p.waitReplies(300)).toEqual(ids.map((id) => `MSA|AA|${id}|${bulky(id).length}`));
    expect(server.stats()).toMatchObject({ queuedFrames: 0, pausedConnections: 0 });
  });

  it('close() lets queued frames finish, then closes the connections', async () => {
    const { server, port } = await start({ handler: async (f) => (await sleep(50), ack(f)) });
    const p = await peer(port);
    p.socket.write(Buffer.concat(['S1', 'S2', 'S3'].map((id) => encodeFrame(message(id)))));
    await expect.poll(() => server.connectionCount).toBe(1);
    await sleep(10);
    await server.close(5000);
    await p.closed;
    expect(p.replies).toEqual(['S1', 'S2', 'S3'].map(expectedAck));
    expect(server.connectionCount).toBe(0);
    await expect(MllpClient.connect('127.0.0.1', port, { connectTimeoutMs: 2000 })).rejects.toMatchObject({ code: 'MLLP_E_CONNECT' });
  });

  it('answers all queued frames of a peer that half-closes after sending', async () => {
    const { port } = await start({ handler: async (f) => (await sleep(10), ack(f)) });
    const p = await peer(port);
    p.socket.end(Buffer.concat(['H1', 'H2'].map((id) => encodeFrame(message(id)))));
    await p.closed;
    expect(p.replies).toEqual(['H1', 'H2'].map(expectedAck));
  });

  it('logs connection open and close with counts', async () => {
    const { port } = await start();
    const p = await peer(port);
    p.socket.write(encodeFrame(message('L1')));
    await p.waitReplies(1);
    p.socket.end();
    await p.closed;
    await expect.poll(() => mem.entries().filter((e) => e.msg === 'mllp connection closed' && e.frames === 1 && e.replies === 1).length).toBeGreaterThan(0);
    expect(mem.entries().some((e) => e.msg === 'mllp connection open' && typeof e.remotePort === 'number')).toBe(true);
  });
});
