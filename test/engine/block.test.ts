/**
 * Issue 11, observed items 2-5, through a real engine and real MLLP sockets
 * (shipped routes, simulators on random ports): several messages in one
 * block, HL7 batches, MSH-2 of three characters, bytes invalid in the
 * declared charset. Each test failed on main before the change.
 */
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { MllpClient } from '../../core/mllp/client.js';
import { MllpFrameDecoder, encodeFrame } from '../../core/mllp/framing.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { cli } from '../helpers/cli.js';

const SITE = `
listeners:
  - { name: mllp, port: 0 }
  - { name: strict, port: 0, multiMessageBlocks: reject }
  - { name: lenient, port: 0, invalidBytes: replace }
`;

let seq = 0;
/** A patient update (recognition-patient route, on-receive); `id` is MSH-10. */
function a28(id: string, opts: { t?: string; name?: string; msh2?: string; msh18?: string } = {}): string {
  const t = opts.t ?? '\r';
  seq++;
  return [
    `MSH|${opts.msh2 ?? '^~\\&'}|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||ADT^A28^ADT_A05|${id}|P|2.5||||||${opts.msh18 ?? 'UNICODE UTF-8'}`,
    'EVN|A28|20250312093015',
    `PID|1||T${String(seq).padStart(8, '0')}^^^HOSP^PI||${opts.name ?? 'CESHI^YI'}||19000101|M`,
  ].join(t) + t;
}

function ackOf(bytes: Buffer) {
  return parseHl7(decodeHl7(bytes, 'gb18030').text);
}

/** Sends one block on a fresh socket and collects reply frames until `want` arrived or `ms` passed. */
async function rawBlock(port: number, payload: Buffer, want: number, ms = 5000): Promise<Buffer[]> {
  const sock = net.connect({ host: '127.0.0.1', port });
  const dec = new MllpFrameDecoder();
  const frames: Buffer[] = [];
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  sock.write(encodeFrame(payload));
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    sock.on('data', (c: Buffer) => {
      for (const ev of dec.push(c)) if (ev.kind === 'frame') frames.push(ev.frame);
      // Wait a little past the wanted count: an extra frame would show up too.
      if (frames.length >= want) {
        clearTimeout(timer);
        setTimeout(resolve, 200);
      }
    });
  });
  sock.destroy();
  return frames;
}

describe('untrusted senders over MLLP: blocks, batches, MSH-2, invalid bytes', () => {
  let t: TestEngine;
  let port: (name: string) => number;
  beforeAll(async () => {
    t = await startEngine({ siteYaml: SITE });
    port = (name) => t.engine.listeners.find((l) => l.config.name === name)!.port!;
  });
  afterAll(async () => {
    await t?.stop();
  });

  const stored = (controlId: string) => t.engine.store.searchMessages({ controlId, limit: 10 });

  it('two messages in one block: each routed, one ACK frame each, in order', async () => {
    for (const term of ['\r', '\n', '\r\n']) {
      const ids = [`TWO-A${term.length}${term[0] === '\n' ? 'L' : 'C'}`, `TWO-B${term.length}${term[0] === '\n' ? 'L' : 'C'}`];
      const frames = await rawBlock(port('mllp'), Buffer.from(a28(ids[0]!, { t: term }) + a28(ids[1]!, { t: term }), 'utf8'), 2);
      expect(frames.map((f) => [ackOf(f).get('MSA-1'), ackOf(f).get('MSA-2')])).toEqual([['AA', ids[0]], ['AA', ids[1]]]);
      for (const id of ids) {
        const rows = stored(id);
        expect(rows).toHaveLength(1);
        // Each message is stored on its own: the second is not hidden in the first one's bytes.
        expect(rows[0]!.rawBytes).toBeLessThan(400);
      }
    }
  });

  it('the MLLP client can pipeline a multi-message block and a following single message on one connection', async () => {
    const c = await MllpClient.connect('127.0.0.1', port('mllp'), { timeoutMs: 5000 });
    try {
      const replies = await c.sendBlock(a28('PIPE-1') + a28('PIPE-2') + a28('PIPE-3'), 3);
      expect(replies.map((r) => ackOf(r).get('MSA-2'))).toEqual(['PIPE-1', 'PIPE-2', 'PIPE-3']);
      // Exactly three: the next reply on the connection belongs to the next message.
      expect(ackOf(await c.send(a28('PIPE-4'))).get('MSA-2')).toBe('PIPE-4');
    } finally {
      await c.close();
    }
  });

  it('multiMessageBlocks: reject answers AR to each message and routes none', async () => {
    const frames = await rawBlock(port('strict'), Buffer.from(a28('REJ-1') + a28('REJ-2'), 'utf8'), 2);
    expect(frames.map((f) => [ackOf(f).get('MSA-1'), ackOf(f).get('MSA-2')])).toEqual([['AR', 'REJ-1'], ['AR', 'REJ-2']]);
    expect(ackOf(frames[0]!).get('MSA-3')).toContain('multiMessageBlocks: reject');
    expect(stored('REJ-1')).toHaveLength(0);
    expect(stored('REJ-2')).toHaveLength(0);
    // One message per block is still fine on that listener.
    const one = await rawBlock(port('strict'), Buffer.from(a28('REJ-3'), 'utf8'), 1);
    expect(ackOf(one[0]!).get('MSA-1')).toBe('AA');
  });

  it('an FHS/BHS batch: each message routed; one reply frame BHS, one ACK per message in order, BTS with the count', async () => {
    const batch = `FHS|^~\\&|LIS|H1\rBHS|^~\\&|LIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||||LB-0001\r${a28('BAT-1')}${a28('BAT-2')}${a28('BAT-3')}BTS|3\rFTS|1\r`;
    const frames = await rawBlock(port('mllp'), Buffer.from(batch, 'utf8'), 1);
    expect(frames).toHaveLength(1);
    const lines = frames[0]!.toString('utf8').split('\r').filter(Boolean);
    expect(lines.map((l) => l.slice(0, 3))).toEqual(['BHS', 'MSH', 'MSA', 'MSH', 'MSA', 'MSH', 'MSA', 'BTS']);
    expect(lines[0]!.split('|').slice(2, 6)).toEqual(['HISBRIDGE', 'GDPLAT', 'LIS', 'H4413020001']);
    expect(lines[0]!.split('|')[11]).toBe('LB-0001');
    expect(lines.filter((l) => l.startsWith('MSA')).map((l) => l.split('|').slice(1, 3))).toEqual([['AA', 'BAT-1'], ['AA', 'BAT-2'], ['AA', 'BAT-3']]);
    expect(lines[7]).toBe('BTS|3');
    for (const id of ['BAT-1', 'BAT-2', 'BAT-3']) expect(stored(id)).toHaveLength(1);
  });

  it('a BHS batch without FHS and with a wrong BTS count is processed anyway, and the mismatch is logged at warn', async () => {
    const before = t.logs.length;
    const batch = `BHS|^~\\&|LIS|H1\n${a28('BWC-1', { t: '\n' })}${a28('BWC-2', { t: '\n' })}BTS|7\n`;
    const frames = await rawBlock(port('mllp'), Buffer.from(batch, 'utf8'), 1);
    const text = frames[0]!.toString('utf8');
    expect(text.match(/MSA\|AA\|BWC-\d/g)).toEqual(['MSA|AA|BWC-1', 'MSA|AA|BWC-2']);
    expect(text.trimEnd().endsWith('BTS|2')).toBe(true);
    const warn = t.logs.slice(before).map((l) => JSON.parse(l) as { level: string; problem?: string }).find((l) => l.problem?.includes('BTS-1 says 7'));
    expect(warn?.level).toBe('warn');
  });

  it('MSH-2 of three characters (no sub-component separator) is accepted and the ACK echoes it', async () => {
    const frames = await rawBlock(port('mllp'), Buffer.from(a28('THREE-1', { msh2: '^~\\', name: 'A&B^C' }), 'utf8'), 1);
    const ack = frames[0]!.toString('utf8');
    expect(ack.startsWith('MSH|^~\\|HISBRIDGE|')).toBe(true);
    expect(ackOf(frames[0]!).get('MSA-1')).toBe('AA');
    expect(ackOf(frames[0]!).get('MSA-2')).toBe('THREE-1');
    expect(stored('THREE-1')).toHaveLength(1);
  });

  const badUtf8 = () => {
    const m = a28('BADU-1', { name: 'NAME^X' });
    const at = m.indexOf('NAME');
    return Buffer.concat([Buffer.from(m.slice(0, at), 'utf8'), Buffer.from('张', 'utf8'), Buffer.from([0xe4, 0x28]), Buffer.from(m.slice(at + 4), 'utf8')]);
  };

  it('invalid UTF-8 in PID-5 under MSH-18 UNICODE UTF-8: AE, ERR-3 102 naming PID-5, nothing stored, no bytes logged', async () => {
    const before = t.logs.length;
    const frames = await rawBlock(port('mllp'), badUtf8(), 1);
    const ack = ackOf(frames[0]!);
    expect(ack.get('MSA-1')).toBe('AE');
    expect(ack.get('MSA-2')).toBe('BADU-1');
    expect(ack.get('ERR-3.1')).toBe('102');
    expect(ack.get('MSA-3')).toBe('invalid UTF-8 bytes in PID-5');
    expect(stored('BADU-1')).toHaveLength(0);
    const lines = t.logs.slice(before).join('\n');
    expect(lines).toContain('HL7_E_INVALID_BYTES');
    expect(lines).not.toContain('张');
  });

  it('invalid GBK bytes under MSH-18 GB 18030-2000: AE naming the field', async () => {
    const head = a28('BADG-1', { msh18: 'GB 18030-2000', name: 'NAME' });
    const at = head.indexOf('NAME');
    const frame = Buffer.concat([Buffer.from(head.slice(0, at), 'latin1'), iconv.encode('區億', 'gbk'), Buffer.from([0xff]), Buffer.from(head.slice(at + 4), 'latin1')]);
    const ack = ackOf((await rawBlock(port('mllp'), frame, 1))[0]!);
    expect([ack.get('MSA-1'), ack.get('MSA-2'), ack.get('ERR-3.1'), ack.get('MSA-3')]).toEqual(['AE', 'BADG-1', '102', 'invalid GB18030/GBK bytes in PID-5']);
  });

  it('invalidBytes: replace accepts, stores with a U+FFFD and marks the message (warn logged)', async () => {
    const before = t.logs.length;
    const ack = ackOf((await rawBlock(port('lenient'), badUtf8(), 1))[0]!);
    expect(ack.get('MSA-1')).toBe('AA');
    const rows = stored('BADU-1');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.flags).toEqual(['invalid-bytes-replaced']);
    const detail = t.engine.store.getMessage(rows[0]!.id)!;
    expect(decodeHl7(detail.raw!, detail.charset).text).toContain('\ufffd');
    const warn = t.logs.slice(before).map((l) => JSON.parse(l) as { level: string; code?: string }).find((l) => l.code === 'HL7_E_INVALID_BYTES');
    expect(warn?.level).toBe('warn');
    // The mark is visible to operators: hisbridge messages show (a real process on the same data directory).
    const show = await cli(['messages', 'show', String(rows[0]!.id), '--data-dir', path.join(t.dataDir, 'store')]);
    expect(show.stdout).toContain('marked invalid-bytes-replaced');
    expect(show.code).toBe(0);
  });
});
