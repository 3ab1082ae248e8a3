/**
 * Issue 11: a 4.5 MB MLLP frame used to be joined into one Buffer in a single
 * Buffer.concat when its end byte arrived (20-70 ms of one event-loop turn on
 * a busy machine). The server now asks the decoder for the frame's pieces
 * (`joinAbove`) and joins them over several turns (concatYielding). The
 * handler must still get exactly the bytes sent, frames in order.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { concatYielding } from '../../core/cooperative.js';
import { createLogger } from '../../core/log.js';
import { MllpFrameDecoder, encodeFrame, type FrameEvent } from '../../core/mllp/framing.js';
import { createMllpServer, type MllpServer } from '../../core/mllp/server.js';
import { Writable } from 'node:stream';
import { manyObxSegments } from '../../bench/lib/pathological.js';

const quiet = createLogger({ level: 'error', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const servers: MllpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(200)));
});

describe('big frames joined over several turns', () => {
  it('the decoder reports a frame over joinAbove as its pieces, and concatYielding joins them to the same bytes', async () => {
    const payload = Buffer.from(manyObxSegments(20_000), 'utf8');
    const wire = encodeFrame(payload);
    const dec = new MllpFrameDecoder({ joinAbove: 64 * 1024 });
    const events: FrameEvent[] = [];
    for (let i = 0; i < wire.length; i += 10_000) events.push(...dec.push(wire.subarray(i, i + 10_000)));
    expect(events).toHaveLength(1);
    const ev = events[0]!;
    expect(ev.kind).toBe('frame-parts');
    if (ev.kind !== 'frame-parts') return;
    expect(ev.bytes).toBe(payload.length);
    let turns = 0;
    const timer = setInterval(() => turns++, 0);
    const joined = await concatYielding(ev.parts, ev.bytes);
    clearInterval(timer);
    expect(joined.equals(payload)).toBe(true);
    // Without joinAbove (the client, older callers): one Buffer, as before.
    const plain = new MllpFrameDecoder();
    const out: FrameEvent[] = [];
    for (let i = 0; i < wire.length; i += 10_000) out.push(...plain.push(wire.subarray(i, i + 10_000)));
    expect(out.map((e) => e.kind)).toEqual(['frame']);
    expect(out[0]!.kind === 'frame' && out[0]!.frame.equals(payload)).toBe(true);
    // A small frame stays one Buffer even with joinAbove.
    expect(dec.push(encodeFrame(Buffer.from('MSH|^~\\&|A'))).map((e) => e.kind)).toEqual(['frame']);
  });

  it('concatYielding copies at most about 1 MiB per turn and handles parts longer than the total', async () => {
    const parts = Array.from({ length: 40 }, (_, i) => Buffer.alloc(100_000, i));
    let turns = 0;
    const timer = setInterval(() => turns++, 0);
    const out = await concatYielding(parts, 4_000_000);
    clearInterval(timer);
    expect(out.equals(Buffer.concat(parts))).toBe(true);
    expect(turns).toBeGreaterThanOrEqual(1);
    expect((await concatYielding([Buffer.from('abcdef')], 3)).toString()).toBe('abc');
  });

  it('a 4.5 MB frame sent in small pieces over a real socket reaches the handler byte for byte, between two small frames, in order', async () => {
    const got: Buffer[] = [];
    const server = createMllpServer({ name: 'big', host: '127.0.0.1', port: 0, log: quiet, handler: async (f) => { got.push(f); return Buffer.from(`MSA|AA|${got.length}`, 'latin1'); } });
    servers.push(server);
    const { port } = await server.listen();
    const big = Buffer.from(manyObxSegments(100_000), 'utf8');
    expect(big.length).toBeGreaterThan(4_000_000);
    const small = (n: number) => Buffer.from(`MSH|^~\\&|S|F|R|F|20250101||ADT^A04|S${n}|P|2.5\r`, 'latin1');
    const wire = Buffer.concat([encodeFrame(small(1)), encodeFrame(big), encodeFrame(small(2))]);
    const sock = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    let acks = '';
    sock.on('data', (d: Buffer) => (acks += d.toString('latin1')));
    for (let i = 0; i < wire.length; i += 16 * 1024) sock.write(wire.subarray(i, i + 16 * 1024));
    const end = Date.now() + 60_000;
    while ((acks.match(/MSA/g) ?? []).length < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    sock.destroy();
    expect(got).toHaveLength(3);
    expect(got[0]!.equals(small(1))).toBe(true);
    expect(got[1]!.equals(big)).toBe(true);
    expect(got[2]!.equals(small(2))).toBe(true);
    expect(acks.match(/MSA\|AA\|\d/g)).toEqual(['MSA|AA|1', 'MSA|AA|2', 'MSA|AA|3']);
  }, 90_000);
});
