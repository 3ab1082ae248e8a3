/**
 * Issue 11, remaining gaps of "invalid bytes", over real MLLP sockets with
 * the shipped routes:
 * - UTF-8 bytes under an MSH-18 label of GB18030/GBK decoded without any
 *   invalid byte, so the name became mojibake silently (锟斤拷-style) and was
 *   answered AA. Now HL7_E_CHARSET_LABEL, by the listener's invalidBytes
 *   policy; genuine GBK text that happens to be valid UTF-8 is still accepted.
 * - Raw C0 control characters (NUL, SUB, ...) inside fields were accepted and
 *   sent on. Now HL7_E_CONTROL_BYTES by the same policy; TAB is allowed.
 * Both failed (AA, nothing logged, no mark) before the change.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { MllpFrameDecoder, encodeFrame } from '../../core/mllp/framing.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { utf8UnderGbLabel } from '../../core/hl7/charset.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';

const SITE = `
listeners:
  - { name: mllp, port: 0 }
  - { name: lenient, port: 0, invalidBytes: replace }
`;

let seq = 0;
/** A patient update whose PID-5 is `name` (bytes as given); MSH-18 as given. */
function a28(id: string, msh18: string, name: Buffer): Buffer {
  seq++;
  return Buffer.concat([
    Buffer.from(`MSH|^~\\&|HIS|H4413020001|HISBRIDGE|GDPLAT|20250312093015||ADT^A28^ADT_A05|${id}|P|2.5||||||${msh18}\rEVN|A28|20250312093015\rPID|1||T${String(seq).padStart(8, '0')}^^^HOSP^PI||`, 'latin1'),
    name,
    Buffer.from('||19000101|M\r', 'latin1'),
  ]);
}

const ackOf = (bytes: Buffer) => parseHl7(decodeHl7(bytes, 'gb18030').text);

async function send(port: number, payload: Buffer): Promise<Buffer> {
  const sock = net.connect({ host: '127.0.0.1', port });
  const dec = new MllpFrameDecoder();
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no ACK within 10 s')), 10_000);
      sock.on('error', reject);
      sock.on('connect', () => sock.write(encodeFrame(payload)));
      sock.on('data', (c: Buffer) => {
        for (const ev of dec.push(c)) if (ev.kind === 'frame') {
          clearTimeout(timer);
          resolve(ev.frame);
        }
      });
    });
  } finally {
    sock.destroy();
  }
}

describe('charset label mismatch and raw control characters over MLLP', () => {
  let t: TestEngine;
  let port: (name: string) => number;
  beforeAll(async () => {
    t = await startEngine({ siteYaml: SITE });
    port = (name) => t.engine.listeners.find((l) => l.config.name === name)!.port!;
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
  });
  const stored = (controlId: string) => t.engine.store.searchMessages({ controlId, limit: 10 });
  const logsSince = (n: number) => t.logs.slice(n).map((l) => JSON.parse(l) as { level: string | number; code?: string; location?: string; msg?: string });

  it('UTF-8 Chinese under MSH-18 GB18030: AE, ERR-3 102, ERR-2 PID^1^5, HL7_E_CHARSET_LABEL, nothing stored, no name logged', async () => {
    const before = t.logs.length;
    const ack = ackOf(await send(port('mllp'), a28('LABEL-1', 'GB18030', Buffer.from('欧阳^娜娜', 'utf8'))));
    expect(ack.get('MSA-1')).toBe('AE');
    expect(ack.get('MSA-2')).toBe('LABEL-1');
    expect(ack.get('ERR-3.1')).toBe('102');
    expect(ack.get('ERR-2')).toBe('PID^1^5');
    expect(ack.get('MSA-3')).toBe('the message is labelled GB18030/GBK but its bytes are UTF-8 (first at PID-5); label it UNICODE UTF-8 in MSH-18 or send GBK bytes');
    expect(stored('LABEL-1')).toHaveLength(0);
    const lines = logsSince(before);
    expect(lines.find((l) => l.code === 'HL7_E_CHARSET_LABEL')?.location).toBe('PID-5');
    expect(t.logs.slice(before).join('\n')).not.toMatch(/欧阳|娜/);
  });

  it('the same under MSH-18 GBK with the name in MSH-4 (a Chinese facility name): ERR-2 MSH^1^4', async () => {
    const frame = Buffer.concat([Buffer.from('MSH|^~\\&|HIS|', 'latin1'), Buffer.from('中山医院', 'utf8'), Buffer.from('|HISBRIDGE|GDPLAT|20250312093015||ADT^A28^ADT_A05|LABEL-2|P|2.5||||||GBK\rPID|1||T1^^^HOSP^PI||A^B\r', 'latin1')]);
    const ack = ackOf(await send(port('mllp'), frame));
    expect([ack.get('MSA-1'), ack.get('MSA-2'), ack.get('ERR-2'), ack.get('ERR-3.1')]).toEqual(['AE', 'LABEL-2', 'MSH^1^4', '102']);
  });

  it('genuine GBK names are accepted under a GBK label, including ones whose bytes happen to be valid UTF-8 (中文 = D6 D0 CE C4)', async () => {
    const names = ['中文', '欧阳億華', '张三丰', '區伟'];
    for (const [i, name] of names.entries()) {
      const bytes = iconv.encode(`${name}^X`, 'gbk');
      if (i === 0) expect(bytes.subarray(0, 4).toString('hex')).toBe('d6d0cec4');
      const ack = ackOf(await send(port('mllp'), a28(`GBKOK-${i}`, 'GBK', bytes)));
      expect([ack.get('MSA-1'), ack.get('MSA-2')]).toEqual(['AA', `GBKOK-${i}`]);
      const row = stored(`GBKOK-${i}`)[0]!;
      const detail = t.engine.store.getMessage(row.id)!;
      expect(decodeHl7(detail.raw!, detail.charset, detail.charset).text).toContain(`||${name}^X||`);
      expect(row.flags ?? []).toEqual([]);
    }
  });

  it('invalidBytes: replace accepts a mislabelled message as read in GB18030, logs a warn and marks it charset-label-mismatch', async () => {
    const before = t.logs.length;
    const ack = ackOf(await send(port('lenient'), a28('LABEL-R1', 'GB18030', Buffer.from('欧阳^娜娜', 'utf8'))));
    expect(ack.get('MSA-1')).toBe('AA');
    const rows = stored('LABEL-R1');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.flags).toEqual(['charset-label-mismatch']);
    const warn = logsSince(before).find((l) => l.code === 'HL7_E_CHARSET_LABEL');
    expect(warn?.level === 'warn' || warn?.level === 40).toBe(true);
  });

  it('a NUL inside PID-5: AE, ERR-3 102, ERR-2 PID^1^5, HL7_E_CONTROL_BYTES naming the byte, nothing stored', async () => {
    const before = t.logs.length;
    const ack = ackOf(await send(port('mllp'), a28('CTRL-1', 'UNICODE UTF-8', Buffer.from('ZHANG\u0000^SAN', 'utf8'))));
    expect([ack.get('MSA-1'), ack.get('MSA-2'), ack.get('ERR-2'), ack.get('ERR-3.1')]).toEqual(['AE', 'CTRL-1', 'PID^1^5', '102']);
    expect(ack.get('MSA-3')).toBe('control character 0x00 in PID-5; HL7 carries control characters escaped (\\X00\\), never raw');
    expect(stored('CTRL-1')).toHaveLength(0);
    expect(logsSince(before).find((l) => l.code === 'HL7_E_CONTROL_BYTES')?.location).toBe('PID-5');
  });

  it('a DOS end-of-file byte (0x1A) in a GBK message is located by field, counted on characters (a GBK trail byte may equal |)', async () => {
    const name = Buffer.concat([iconv.encode('億^區', 'gbk'), Buffer.from([0x1a])]);
    const ack = ackOf(await send(port('mllp'), a28('CTRL-2', 'GBK', name)));
    expect([ack.get('MSA-1'), ack.get('ERR-2'), ack.get('ERR-3.1')]).toEqual(['AE', 'PID^1^5', '102']);
    expect(ack.get('MSA-3')).toContain('control character 0x1A in PID-5');
  });

  it('TAB inside a field is allowed', async () => {
    const ack = ackOf(await send(port('mllp'), a28('CTRL-TAB', 'UNICODE UTF-8', Buffer.from('ZHANG\tSAN^X', 'utf8'))));
    expect(ack.get('MSA-1')).toBe('AA');
  });

  it('invalidBytes: replace accepts, the control character becomes U+FFFD in what routes and later reads see, and the message is marked', async () => {
    const ack = ackOf(await send(port('lenient'), a28('CTRL-R1', 'UNICODE UTF-8', Buffer.from('ZHANG\u0000^SAN', 'utf8'))));
    expect(ack.get('MSA-1')).toBe('AA');
    const rows = stored('CTRL-R1');
    expect(rows[0]!.flags).toEqual(['control-bytes-replaced']);
    const detail = t.engine.store.getMessage(rows[0]!.id)!;
    const text = decodeHl7(detail.raw!, detail.charset, detail.charset).text;
    expect(text).toContain('ZHANG\ufffd^SAN');
    expect(text).not.toContain('\u0000');
  });
});

describe('utf8UnderGbLabel: the heuristic does not refuse genuine GBK text', () => {
  it('no pair of the 3,755 most common characters (GB2312 level 1), encoded in GBK, is taken for UTF-8', () => {
    // Every GB2312 level-1 character, then every ordered pair of a sample of
    // them (a name is usually two or three characters): none may match.
    const chars: string[] = [];
    for (let hi = 0xb0; hi <= 0xd7; hi++) {
      for (let lo = 0xa1; lo <= 0xfe; lo++) {
        if (hi === 0xd7 && lo > 0xf9) break;
        chars.push(iconv.decode(Buffer.from([hi, lo]), 'gbk'));
      }
    }
    expect(chars).toHaveLength(3755);
    for (const c of chars) expect(utf8UnderGbLabel(iconv.encode(`PID|1||${c}|`, 'gbk'))).toBe(-1);
    let checked = 0;
    for (let i = 0; i < chars.length; i += 7) {
      for (let j = 0; j < chars.length; j += 3) {
        if (utf8UnderGbLabel(iconv.encode(chars[i]! + chars[j]!, 'gbk')) >= 0) throw new Error(`${chars[i]}${chars[j]} taken for UTF-8`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(600_000);
  });

  it('finds UTF-8 Chinese, and returns the offset of the first non-ASCII byte', () => {
    const b = Buffer.from('PID|1||张三^先生|', 'utf8');
    expect(utf8UnderGbLabel(b)).toBe(7);
    expect(utf8UnderGbLabel(Buffer.from('PID|1||ZHANG|', 'utf8'))).toBe(-1);
    // Valid UTF-8 but no ideograph (accented Latin): not Chinese text, left to the GB reading.
    expect(utf8UnderGbLabel(Buffer.from('PID|1||José|', 'utf8'))).toBe(-1);
  });
});
