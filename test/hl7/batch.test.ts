/**
 * The byte-level block splitter (core/hl7/batch.ts), the three-character
 * MSH-2 and the batch ACK envelope: units, without sockets (the socket tests
 * are in test/engine/block.test.ts and test/corpus/corpus.test.ts).
 */
import { describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { buildAck, buildBatchAckEnvelope, decodeHl7, escapeHl7, messagesOf, parseHl7, splitBlock, type BlockUnit } from '../../core/hl7/index.js';

const msg = (id: string, t = '\r', name = 'TEST^ONE') => `MSH|^~\\&|LIS|H1|HB|GD|20250101||ORU^R01|${id}|P|2.5${t}PID|1||P1^^^^PI||${name}${t}`;
const bytes = (s: string) => Buffer.from(s, 'latin1');
const text = (u: BlockUnit) => (u.kind === 'message' ? u.bytes.toString('latin1') : u.messages.map((m) => m.toString('latin1')));

describe('splitBlock', () => {
  it('keeps a single message byte for byte (the same Buffer), trailing blank lines included', () => {
    for (const s of [msg('1'), msg('1', '\n') + '\n\n', msg('1', '\r\n'), `\ufeff${msg('1')}`]) {
      const buf = Buffer.from(s, 'utf8');
      const r = splitBlock(buf);
      expect(r.units).toHaveLength(1);
      expect(r.units[0]!.kind).toBe('message');
      expect((r.units[0] as { bytes: Buffer }).bytes).toBe(buf);
    }
  });

  it('splits several messages on CR, LF and CRLF, in order, each keeping its own terminators', () => {
    for (const t of ['\r', '\n', '\r\n']) {
      const r = splitBlock(bytes(msg('1', t) + msg('2', t) + msg('3', t)));
      expect(r.units.map(text)).toEqual([msg('1', t), msg('2', t), msg('3', t)]);
      expect(r.messageCount).toBe(3);
    }
  });

  it('splits a message without a final terminator and ignores blank lines between messages', () => {
    const r = splitBlock(bytes(`${msg('1')}\r\n\r\n${msg('2').slice(0, -1)}`));
    expect(r.units.map(text)).toEqual([msg('1'), msg('2').slice(0, -1)]);
  });

  it('never splits inside a GBK name whose trail bytes are | and ^ (bytes, not text)', () => {
    const m1 = iconv.encode(msg('G1', '\r', '億區^華'), 'gbk');
    const m2 = iconv.encode(msg('G2', '\r', '區億'), 'gbk');
    const r = splitBlock(Buffer.concat([m1, m2]));
    expect(messagesOf(r)).toEqual([m1, m2]);
  });

  it('does not take MSH inside a field, or a segment named MSHX, as a new message', () => {
    const s = `${msg('1')}NTE|1||MSH|^~\\&|fake\rZMSH|x\r`;
    expect(splitBlock(bytes(s)).units).toHaveLength(1);
  });

  it('leaves a block that does not start with MSH/FHS/BHS whole, for the ingest to refuse', () => {
    const buf = bytes(`PID|1\r${msg('1')}`);
    const r = splitBlock(buf);
    expect(r.units).toEqual([{ kind: 'message', bytes: buf }]);
  });

  it('strips MLLP envelope bytes left in a captured file', () => {
    const r = splitBlock(bytes(`\x0b${msg('1')}\x1c\r\x0b${msg('2')}\x1c\r`));
    expect(r.units.map(text)).toEqual([msg('1'), msg('2')]);
  });

  it('reads FHS/BHS ... BTS/FTS as one batch with its messages and the BHS as header', () => {
    const s = `FHS|^~\\&|LIS|H1\rBHS|^~\\&|LIS|H1|HB|GD|20250101||||B77\r${msg('1')}${msg('2')}BTS|2\rFTS|1\r`;
    const r = splitBlock(bytes(s));
    expect(r.units).toHaveLength(1);
    const u = r.units[0]!;
    expect(u.kind).toBe('batch');
    if (u.kind !== 'batch') return;
    expect(text(u)).toEqual([msg('1'), msg('2')]);
    expect(u.batch.header.toString('latin1')).toBe('BHS|^~\\&|LIS|H1|HB|GD|20250101||||B77');
    expect(u.batch.problems).toEqual([]);
    expect(u.bytes.toString('latin1')).toBe(s);
  });

  it('reads BHS without FHS, and a file of two batches', () => {
    const one = splitBlock(bytes(`BHS|^~\\&\n${msg('1', '\n')}BTS|1\n`));
    expect(one.units.map(text)).toEqual([[msg('1', '\n')]]);
    const two = splitBlock(bytes(`FHS|^~\\&\rBHS|^~\\&\r${msg('1')}BTS|1\rBHS|^~\\&\r${msg('2')}${msg('3')}BTS|2\rFTS|2\r`));
    expect(two.units.map(text)).toEqual([[msg('1'), msg('2'), msg('3')]]);
    expect((two.units[0] as { batch: { batches: number; problems: string[] } }).batch).toMatchObject({ batches: 2, problems: [] });
  });

  it('reports trailer counts that disagree and missing trailers, and still returns every message', () => {
    const r = splitBlock(bytes(`FHS|^~\\&\rBHS|^~\\&\r${msg('1')}${msg('2')}BTS|5\rFTS|3\r`));
    const u = r.units[0]!;
    if (u.kind !== 'batch') throw new Error('not a batch');
    expect(u.messages).toHaveLength(2);
    expect(u.batch.problems).toEqual(['BTS-1 says 5 messages, batch 1 holds 2', 'FTS-1 says 3 batches, the file holds 1']);
    const open = splitBlock(bytes(`BHS|^~\\&\r${msg('1')}`)).units[0]!;
    expect(open.kind === 'batch' && open.batch.problems).toEqual(['batch 1 has no BTS trailer']);
  });

  it('counts lines that belong to no message instead of dropping them silently', () => {
    const r = splitBlock(bytes(`BHS|^~\\&\rNTE|stray\r${msg('1')}BTS|1\r`));
    expect(r.strayLines).toBe(1);
    expect(messagesOf(r)).toHaveLength(1);
  });

  it('is linear: 200,000 segments split in well under a second', () => {
    const seg = 'OBX|1|NM|X^Y||1|||N|||F\r';
    const big = bytes(msg('1') + seg.repeat(100_000) + msg('2') + seg.repeat(100_000));
    const t0 = performance.now();
    const r = splitBlock(big);
    const ms = performance.now() - t0;
    expect(r.messageCount).toBe(2);
    expect(ms).toBeLessThan(1000);
  });
});

describe('MSH-2 of three characters (no sub-component separator)', () => {
  const three = 'MSH|^~\\|HIS|H1|HB|GD|20250101||ADT^A28|T3|P|2.3\rPID|1||P9^^^^PI||A&B^C\r';

  it('parses, and & is plain data', () => {
    const m = parseHl7(three);
    expect(m.get('MSH-2')).toBe('^~\\');
    expect(m.get('PID-5.1')).toBe('A&B');
    expect(m.get('PID-5.1.1')).toBe('A&B');
    expect(m.controlId).toBe('T3');
  });

  it('the ACK echoes the same three encoding characters', () => {
    const ack = buildAck(parseHl7(three), { code: 'AA', controlId: 'X1' });
    expect(ack.startsWith('MSH|^~\\|HB|GD|HIS|H1|')).toBe(true);
    expect(parseHl7(ack).get('MSA-2')).toBe('T3');
  });

  it('escaping a value with & or a carriage return stays correct', () => {
    const d = parseHl7(three).delimiters;
    expect(escapeHl7('A&B', d)).toBe('A&B');
    expect(escapeHl7('a\rb', d)).toBe('a\\X0D\\b');
  });
});

describe('batch ACK envelope', () => {
  it('swaps sender and receiver, references the request batch id and counts the ACKs', () => {
    const env = buildBatchAckEnvelope('BHS|^~\\&|LIS|H1|HB|GD|20250101||||B77', 3, { controlId: 'R1', now: new Date(2025, 0, 2, 3, 4, 5) });
    const f = env.header.trimEnd().split('|');
    expect(f.slice(0, 6)).toEqual(['BHS', '^~\\&', 'HB', 'GD', 'LIS', 'H1']);
    expect(f[10]).toBe('R1');
    expect(f[11]).toBe('B77');
    expect(env.trailer).toBe('BTS|3\r');
  });

  it('falls back to default delimiters for an unreadable header', () => {
    const env = buildBatchAckEnvelope('', 0, { controlId: 'R2' });
    expect(env.header.startsWith('BHS|^~\\&|')).toBe(true);
    expect(env.trailer).toBe('BTS|0\r');
  });
});

describe('invalid bytes in the declared charset', () => {
  const utf8 = (name: Buffer, field = 'PID') => Buffer.concat([
    Buffer.from('MSH|^~\\&|HIS|H1|HB|GD|20250101||ADT^A28|C1|P|2.5||||||UNICODE UTF-8\r', 'latin1'),
    Buffer.from(`${field}|1||P1^^^^PI||`, 'latin1'), name, Buffer.from('^X\r', 'latin1'),
  ]);

  it('valid text has no mark', () => {
    expect(decodeHl7(utf8(Buffer.from('张三', 'utf8')), 'gb18030').invalid).toBeUndefined();
  });

  it('names the segment and field of the first invalid UTF-8 sequence', () => {
    const bad = Buffer.concat([Buffer.from('张', 'utf8'), Buffer.from([0xe4, 0x28]), Buffer.from('三', 'utf8')]);
    const d = decodeHl7(utf8(bad), 'gb18030');
    expect(d.invalid).toMatchObject({ segment: 'PID', field: 5, location: 'PID-5' });
    expect(d.text).toContain('\ufffd');
  });

  it('counts MSH fields from MSH-1, and finds bad bytes in a GBK name', () => {
    const msh = Buffer.concat([Buffer.from('MSH|^~\\&|HIS|', 'latin1'), Buffer.from([0xff, 0x41]), Buffer.from('|HB|GD|20250101||ADT^A28|C1|P|2.5||||||GBK\r', 'latin1')]);
    expect(decodeHl7(msh, 'gb18030').invalid?.location).toBe('MSH-4');
    const gbk = Buffer.concat([
      Buffer.from('MSH|^~\\&|HIS|H1|HB|GD|20250101||ADT^A28|C1|P|2.5||||||GB 18030-2000\rPID|1||P1^^^^PI||', 'latin1'),
      iconv.encode('區億', 'gbk'), Buffer.from([0x81, 0x7f]), Buffer.from('\r', 'latin1'),
    ]);
    expect(decodeHl7(gbk, 'gb18030').invalid?.location).toBe('PID-5');
  });

  it('a truncated UTF-8 sequence at the end of the frame is found', () => {
    const m = Buffer.concat([utf8(Buffer.from('A', 'latin1')), Buffer.from('OBX|1|ST|||', 'latin1'), Buffer.from([0xe5, 0xbc])]);
    expect(decodeHl7(m, 'gb18030').invalid?.location).toBe('OBX-5');
  });
});

describe('splitBlock edge cases', () => {
  it('a block of blank lines is one message as received (the ingest answers it), never zero', () => {
    const buf = Buffer.from('\r\n  \r\n', 'latin1');
    expect(splitBlock(buf).units).toEqual([{ kind: 'message', bytes: buf }]);
    expect(splitBlock(Buffer.alloc(0)).units).toHaveLength(1);
  });

  it('a block that starts with MSH splits on MSH only: a BHS line inside it stays a segment', () => {
    const s = `${msg('1')}BHS|^~\\&\r${msg('2')}`;
    const r = splitBlock(Buffer.from(s, 'latin1'));
    expect(r.units.map((u) => u.kind)).toEqual(['message', 'message']);
    expect(r.units[0]!.kind === 'message' && r.units[0]!.bytes.toString('latin1')).toBe(`${msg('1')}BHS|^~\\&\r`);
  });

  it('an empty batch is a batch of zero messages', () => {
    const r = splitBlock(Buffer.from('BHS|^~\\&\rBTS|0\r', 'latin1'));
    expect(r.units).toHaveLength(1);
    expect(r.units[0]!.kind === 'batch' && r.units[0]!.messages).toEqual([]);
  });
});

describe('invalid-byte locator agrees with the platform decoder', () => {
  const head = (cs: string) => Buffer.from(`MSH|^~\\&|HIS|H1|HB|GD|20250101||ADT^A28|C1|P|2.5||||||${cs}\rPID|1||P1||`, 'latin1');
  // A fixed-seed generator: the same cases on every run.
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const pick = (alphabet: number[]) => alphabet[Math.floor(rnd() * alphabet.length)]!;

  for (const [cs, strict, bytes] of [
    ['UNICODE UTF-8', new TextDecoder('utf-8', { fatal: true }), [0x41, 0x7c, 0x80, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe4, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0x8f, 0x90, 0x9f]],
    ['GB 18030-2000', new TextDecoder('gb18030', { fatal: true }), [0x41, 0x30, 0x39, 0x7c, 0x5e, 0x80, 0x81, 0x84, 0x90, 0xe3, 0xfe, 0xff, 0x40, 0x7f, 0x31, 0x82, 0x35, 0x20]],
  ] as const) {
    it(`${cs}: 3,000 random byte strings: invalid exactly when the fatal decoder throws, and always located`, () => {
      for (let n = 0; n < 3000; n++) {
        const tail = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => pick([...bytes])));
        const frame = Buffer.concat([head(cs), tail, Buffer.from('\r', 'latin1')]);
        let throws = false;
        try {
          strict.decode(frame);
        } catch {
          throws = true;
        }
        const d = decodeHl7(frame, 'gb18030');
        expect(d.invalid !== undefined, tail.toString('hex')).toBe(throws);
        if (d.invalid) expect(d.invalid.location, tail.toString('hex')).toMatch(/^PID-\d+$/);
      }
    });
  }

  it('is fast on a 16 MiB frame with the bad byte at the very end', () => {
    const body = Buffer.from('张三丰'.repeat(1_900_000), 'utf8');
    const frame = Buffer.concat([head('UNICODE UTF-8'), body, Buffer.from([0xe4, 0x28, 0x0d])]);
    expect(frame.length).toBeGreaterThan(16_000_000);
    const t0 = performance.now();
    const d = decodeHl7(frame, 'gb18030');
    const ms = performance.now() - t0;
    expect(d.invalid?.location).toBe('PID-5');
    expect(ms).toBeLessThan(2000);
    console.log(`decodeHl7 16 MiB UTF-8 frame with one invalid sequence at the end: ${ms.toFixed(0)} ms`);
  });
});
