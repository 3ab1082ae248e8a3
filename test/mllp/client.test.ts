/**
 * MllpClient against hand-written raw TCP servers on random ports, so each
 * reply pattern (batched ACKs, split ACKs, silence, hang-up) is exact.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { MllpFrameDecoder, encodeFrame } from '../../core/mllp/framing.js';

const servers: net.Server[] = [];
const clients: MllpClient[] = [];
const sockets: net.Socket[] = [];

/** A raw server; `onFrames` gets every decoded request with the socket to answer on. */
async function rawServer(onFrames: (frames: Buffer[], socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    sockets.push(socket);
    const d = new MllpFrameDecoder();
    socket.on('error', () => undefined);
    socket.on('data', (c: Buffer) => {
      const frames = d.push(c).flatMap((e) => (e.kind === 'frame' ? [e.frame] : []));
      if (frames.length) onFrames(frames, socket);
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

async function connect(port: number, opts?: Parameters<typeof MllpClient.connect>[2]): Promise<MllpClient> {
  const c = await MllpClient.connect('127.0.0.1', port, opts);
  clients.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) {
    await new Promise((r) => s.close(r));
  }
});

describe('MllpClient', () => {
  it('rejects with MLLP_E_CONNECT when the port refuses', async () => {
    const port = await rawServer(() => undefined);
    const s = servers.pop()!;
    await new Promise((r) => s.close(r));
    await expect(MllpClient.connect('127.0.0.1', port)).rejects.toMatchObject({ code: 'MLLP_E_CONNECT', retryable: true });
  });

  it('delivers several ACKs that arrive in one TCP chunk to pipelined sends, in FIFO order', async () => {
    const pending: Buffer[] = [];
    const port = await rawServer((frames, socket) => {
      pending.push(...frames);
      if (pending.length === 3) socket.write(Buffer.concat(pending.splice(0).map((f) => encodeFrame(Buffer.concat([Buffer.from('ACK:'), f])))));
    });
    const c = await connect(port);
    const acks = await Promise.all(['one', 'two', 'three'].map((m) => c.send(m)));
    expect(acks.map((a) => a.toString())).toEqual(['ACK:one', 'ACK:two', 'ACK:three']);
    expect(c.pending).toBe(0);
  });

  it('reassembles an ACK split into single bytes and keeps non-ASCII bytes exact', async () => {
    const port = await rawServer((frames, socket) => {
      const wire = encodeFrame(Buffer.concat([Buffer.from('ACK:'), frames[0]!]));
      let i = 0;
      const drip = (): void => {
        if (i < wire.length) socket.write(wire.subarray(i, ++i), () => setImmediate(drip));
      };
      drip();
    });
    const c = await connect(port);
    const gbk = Buffer.from([0x4d, 0x53, 0x48, 0x7c, 0x83, 0x7c, 0x85, 0x5e]);
    expect(await c.send(gbk)).toEqual(Buffer.concat([Buffer.from('ACK:'), gbk]));
  });

  it('times out with MLLP_E_TIMEOUT when no ACK comes, and is broken afterwards', async () => {
    const port = await rawServer(() => undefined);
    const c = await connect(port, { timeoutMs: 200 });
    const [a, b] = await Promise.allSettled([c.send('first'), c.send('second')]);
    expect(a).toMatchObject({ status: 'rejected', reason: { code: 'MLLP_E_TIMEOUT' } });
    expect(b).toMatchObject({ status: 'rejected', reason: { code: 'MLLP_E_TIMEOUT' } });
    expect(c.broken).toBe(true);
    await expect(c.send('third')).rejects.toMatchObject({ code: 'MLLP_E_TIMEOUT' });
  });

  it('judges the timeout on progress: a slow but steady pipeline completes', async () => {
    let n = 0;
    const port = await rawServer((frames, socket) => {
      for (const f of frames) setTimeout(() => socket.write(encodeFrame(f)), 100 * ++n);
    });
    const c = await connect(port, { timeoutMs: 250 });
    // ACKs come 100 ms apart; the last one after about 400 ms, beyond the 250 ms timeout.
    const acks = await Promise.all(['a', 'b', 'c', 'd'].map((m) => c.send(m)));
    expect(acks.map(String)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('rejects outstanding sends with MLLP_E_CLOSED when the server hangs up', async () => {
    const port = await rawServer((_frames, socket) => socket.destroy());
    const c = await connect(port);
    await expect(c.send('x')).rejects.toMatchObject({ code: 'MLLP_E_CLOSED' });
    expect(c.broken).toBe(true);
  });
});
