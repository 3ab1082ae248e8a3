/**
 * parseHl7Yielding and decodeHl7Yielding (issue 11): the same results as
 * parseHl7 and decodeHl7, with turns of the event loop while a big message
 * is decoded and parsed.
 */
import { describe, expect, it } from 'vitest';
import { decodeHl7, decodeHl7Yielding, encodeText, parseHl7, parseHl7Yielding } from '../../core/hl7/index.js';
import { manyObxSegments } from '../../bench/lib/pathological.js';

async function turnsDuring<T>(p: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let done = false;
  const tick = () => {
    if (done) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  const value = await p();
  done = true;
  return { value, turns };
}

const pad = (n: number) => Array.from({ length: n }, (_, i) => `NTE|${i + 1}||${'x'.repeat(40)}`).join('\r');
const head = 'MSH|^~\\&|LIS|H1|EHR|GD|20260101120000||ORU^R01|C1|P|2.5';

describe('parseHl7Yielding', () => {
  it('gives the same message as parseHl7 for CR, LF and CRLF terminators, blank lines and a BOM', async () => {
    const body = `${head}\rPID|1||P1^^^^PI||张^三\r${pad(3000)}\rOBX|1|ST|A^B||v1\r`;
    const variants = [body, body.replace(/\r/g, '\n'), body.replace(/\r/g, '\r\n'), `\ufeff  ${body}\r\r\n\n`, body.replace(/\r/g, '\r\r')];
    for (const text of variants) {
      expect(text.length).toBeGreaterThan(64 * 1024);
      const a = parseHl7(text);
      const b = await parseHl7Yielding(text);
      expect(b.encode()).toBe(a.encode());
      expect(b.segmentCount).toBe(a.segmentCount);
      expect(b.get('PID-5.1')).toBe('张');
      expect(b.getAll('OBX-5')).toEqual(['v1']);
      expect(b.segments('NTE')).toHaveLength(3000);
      expect(b.segments('NTE').map((x) => x.index)).toEqual(a.segments('NTE').map((x) => x.index));
      expect(b.segment('NTE', 2999)!.get(1)).toBe('2999');
      expect(b.segments('MSH').map((x) => x.index)).toEqual([0]);
      b.addSegment(['NTE', '9999']);
      expect(b.segments('NTE')).toHaveLength(3001);
    }
  });

  it('refuses what parseHl7 refuses, with the same code and detail', async () => {
    const bad = [`${head}\r${pad(2000)}\rpid|1\r`, `XSH|^~\\&|${pad(2000)}`, `MSH|^~\\&|A|B|C|D|1||ORU^R01||P|2.5\r${pad(2000)}`];
    for (const text of bad) {
      let want: unknown;
      try {
        parseHl7(text);
      } catch (e) {
        want = e;
      }
      expect(want).toBeDefined();
      await expect(parseHl7Yielding(text)).rejects.toMatchObject({ code: (want as { code: string }).code, message: (want as Error).message });
    }
  });

  it('a 100,000-OBX message is decoded and parsed with turns of the event loop in between', async () => {
    const text = manyObxSegments(100_000);
    const bytes = encodeText(text, 'utf-8');
    const { value: decoded, turns: decodeTurns } = await turnsDuring(() => decodeHl7Yielding(bytes, 'utf-8'));
    expect(decoded.text).toBe(decodeHl7(bytes, 'utf-8').text);
    expect(decodeTurns).toBeGreaterThanOrEqual(Math.floor(bytes.length / (256 * 1024)));
    const { value: msg, turns } = await turnsDuring(() => parseHl7Yielding(decoded.text));
    expect(msg.segments('OBX')).toHaveLength(100_000);
    // At least one turn: a parse in one go gave none (how many depends on the machine's speed).
    expect(turns).toBeGreaterThanOrEqual(1);
  });

  it('decodeHl7Yielding decodes GB18030 characters that straddle a slice boundary', async () => {
    const text = `MSH|^~\\&|HIS|H1|EHR|GD|20260101120000||ADT^A04|C1|P|2.5|||||CHN|GB 18030-2000\r${Array.from({ length: 40_000 }, (_, i) => `NTE|${i}||张三李四王五`).join('\r')}\r`;
    const bytes = encodeText(text, 'gb18030');
    const b = await decodeHl7Yielding(bytes, 'utf-8', 1001);
    expect(b).toEqual(decodeHl7(bytes, 'utf-8'));
    expect(b.text).toBe(text);
  });

  it('decodeHl7Yielding marks invalid bytes where decodeHl7 does', async () => {
    const text = `MSH|^~\\&|LIS|H1|EHR|GD|20260101120000||ORU^R01|C1|P|2.5|||||CHN|UNICODE UTF-8\r${pad(8000)}\rPID|1||P1||`;
    const bytes = Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from([0xe5, 0x28, 0xa1]), Buffer.from('\r', 'latin1')]);
    const a = decodeHl7(bytes, 'utf-8');
    const b = await decodeHl7Yielding(bytes, 'utf-8');
    expect(a.invalid).toBeDefined();
    expect(b).toEqual(a);
  });
});

describe('contentDigestYielding', () => {
  it('gives the digest contentDigest gives, surrogate pairs and CRLF included, with turns of the event loop', async () => {
    const { contentDigest, contentDigestYielding } = await import('../../core/store/identity.js');
    // 𠀀 (U+20000) is a surrogate pair; the NTE lengths put pairs across slice boundaries.
    const body = Array.from({ length: 30_000 }, (_, i) => `NTE|${i}||张三𠀀${'y'.repeat(i % 7)}`).join('\r\n');
    const text = `${head}\r\n${body}\r\n\r\n`;
    const { value, turns } = await turnsDuring(() => contentDigestYielding(text));
    expect(value).toBe(contentDigest(text));
    expect(turns).toBeGreaterThanOrEqual(2);
    // A surrogate pair exactly on the first slice boundary (the rest starts with the CR after MSH, then "NTE|").
    const edge = `${head}\rNTE|${'a'.repeat(256 * 1024 - 6)}𠀀b\r${'NTE|c\r'.repeat(10)}`;
    expect(edge.charCodeAt(head.length + 256 * 1024 - 1)).toBe(0xd840);
    expect(await contentDigestYielding(edge)).toBe(contentDigest(edge));
    expect(await contentDigestYielding('MSH|^~\\&|A|B|C|D|1||ADT^A04|X|P|2.5\r')).toBe(contentDigest('MSH|^~\\&|A|B|C|D|1||ADT^A04|X|P|2.5\r'));
  });
});
