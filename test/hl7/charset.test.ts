import { describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { decodeHl7, encodeText, normalizeCharset, parseHl7, readMsh18 } from '../../core/hl7/index.js';
import { isHisbridgeError } from '../../core/errors.js';

function mshWith18(msh18: string, name: string, extra = ''): string {
  return (
    `MSH|^~\\&|HIS|H001|HISBRIDGE|GD|20250312093000||ADT^A04^ADT_A01|C0001|P|2.5|||AL|NE||${msh18}\r` +
    `PID|1||P001^^^HOSP^PI||${name}||19900315|M${extra}\r`
  );
}

describe('readMsh18', () => {
  it('reads MSH-18 from bytes, stopping at the first segment', () => {
    expect(readMsh18(Buffer.from(mshWith18('GB 18030-2000', '张^三丰')))).toBe('GB 18030-2000');
    expect(readMsh18(Buffer.from(mshWith18('UNICODE UTF-8', '张^三丰')))).toBe('UNICODE UTF-8');
  });

  it('returns undefined when MSH-18 is empty, absent, or the frame is not HL7', () => {
    expect(readMsh18(Buffer.from(mshWith18('', 'A^B')))).toBeUndefined();
    expect(readMsh18(Buffer.from('MSH|^~\\&|HIS|H|R|F|2025||ADT^A04|1|P|2.5\rPID|1|||||||||||||||||GBK\r'))).toBeUndefined();
    expect(readMsh18(Buffer.from('PID|1\r'))).toBeUndefined();
    expect(readMsh18(Buffer.alloc(0))).toBeUndefined();
  });

  it('uses the separator declared after MSH and takes the first repetition', () => {
    const text = 'MSH#:!?$#HIS#H#R#F#2025##ADT:A04#1#P#2.5######GBK!UNICODE UTF-8\r';
    expect(readMsh18(Buffer.from(text))).toBe('GBK');
  });

  it('is not fooled by a GBK facility name whose trail byte is the field separator', () => {
    // 億 is 83 7C in GBK: 7C is "|". Counted naively, MSH-18 would shift by one field.
    const bytes = iconv.encode('MSH|^~\\&|HIS|億區醫院|R|F|2025||ADT^A04|1|P|2.5||||||GBK\r', 'gbk');
    expect(bytes.includes(Buffer.from([0x83, 0x7c]))).toBe(true);
    expect(readMsh18(bytes)).toBe('GBK');
  });

  it('tolerates a UTF-8 byte order mark', () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(mshWith18('UNICODE UTF-8', '李四'))]);
    expect(readMsh18(bytes)).toBe('UNICODE UTF-8');
    const { text, charset } = decodeHl7(bytes, 'gbk');
    expect(charset).toBe('utf-8');
    expect(parseHl7(text).get('PID-5')).toBe('李四');
  });
});

describe('normalizeCharset', () => {
  it.each([
    ['GB 18030-2000', 'gb18030'],
    ['gb18030', 'gb18030'],
    ['GBK', 'gb18030'],
    ['gbk', 'gb18030'],
    ['GB2312', 'gb18030'],
    ['gb 2312', 'gb18030'],
    ['UNICODE UTF-8', 'utf-8'],
    ['unicode utf-8', 'utf-8'],
    ['UNICODE', 'utf-8'],
    ['UTF-8', 'utf-8'],
    ['utf8', 'utf-8'],
    ['ISO IR192', 'utf-8'],
    ['ASCII', 'ascii'],
    ['ISO IR6', 'ascii'],
    ['8859/1', 'latin1'],
    ['ISO IR100', 'latin1'],
    ['latin1', 'latin1'],
  ])('%s -> %s', (name, want) => {
    expect(normalizeCharset(name, 'utf-8')).toBe(want);
  });

  it('falls back to the listener default when the name is empty or absent', () => {
    expect(normalizeCharset(undefined, 'GBK')).toBe('gb18030');
    expect(normalizeCharset('  ', 'utf-8')).toBe('utf-8');
  });

  it('throws HL7_E_CHARSET for names it cannot decode', () => {
    for (const bad of ['CNS 11643-1992', 'KS X 1001', 'SHIFT-JIS', 'EBCDIC']) {
      try {
        normalizeCharset(bad, 'utf-8');
        expect.unreachable(bad);
      } catch (e) {
        expect(isHisbridgeError(e) && e.code).toBe('HL7_E_CHARSET');
        expect((e as Error).message).toContain(bad);
      }
    }
    expect(() => normalizeCharset(undefined, 'nonsense')).toThrow(/unsupported character set "nonsense"/);
  });
});

describe('Chinese names survive decode and encode byte-exactly', () => {
  const names = ['张^三丰', '欧阳^娜娜', '區^億華', '億區'];

  it.each(names)('GBK bytes declared by MSH-18 GBK: %s', (name) => {
    const original = mshWith18('GBK', name);
    const bytes = iconv.encode(original, 'gbk');
    const { text, charset } = decodeHl7(bytes, 'utf-8');
    expect(charset).toBe('gb18030');
    const msg = parseHl7(text);
    const [family, given] = name.split('^');
    expect(msg.get('PID-5.1')).toBe(family);
    expect(msg.get('PID-5.2')).toBe(given ?? '');
    expect(msg.get('PID-7')).toBe('19900315');
    expect(encodeText(msg.encode(), charset).equals(bytes)).toBe(true);
  });

  it('GBK bytes with MSH-18 empty use the listener default', () => {
    const bytes = iconv.encode(mshWith18('', '區^億華'), 'gbk');
    const { text, charset } = decodeHl7(bytes, 'GB 18030-2000');
    expect(charset).toBe('gb18030');
    expect(parseHl7(text).get('PID-5.2')).toBe('億華');
    expect(encodeText(text, charset).equals(bytes)).toBe(true);
  });

  it('MSH-18 wins over the default', () => {
    const bytes = Buffer.from(mshWith18('UNICODE UTF-8', '欧阳^娜娜'));
    const { text, charset } = decodeHl7(bytes, 'GBK');
    expect(charset).toBe('utf-8');
    expect(parseHl7(text).get('PID-5.1')).toBe('欧阳');
  });

  it.each(names)('UTF-8 round trip: %s', (name) => {
    const bytes = Buffer.from(mshWith18('UNICODE UTF-8', name), 'utf8');
    const { text, charset } = decodeHl7(bytes, 'gbk');
    const msg = parseHl7(text);
    expect(msg.get('PID-5.1')).toBe(name.split('^')[0]);
    expect(encodeText(msg.encode(), charset).equals(bytes)).toBe(true);
  });

  it('GB18030 four-byte characters round trip', () => {
    const name = '𠀀^䶮';
    const bytes = iconv.encode(mshWith18('GB 18030-2000', name), 'gb18030');
    const { text } = decodeHl7(bytes, 'utf-8');
    expect(parseHl7(text).get('PID-5.1')).toBe('𠀀');
    expect(encodeText(text, 'GB 18030-2000').equals(bytes)).toBe(true);
  });

  it('latin1 decodes every byte as ISO 8859-1', () => {
    const bytes = Buffer.from(mshWith18('8859/1', 'MÜLLER^José'), 'latin1');
    const { text, charset } = decodeHl7(bytes, 'utf-8');
    expect(charset).toBe('latin1');
    expect(parseHl7(text).get('PID-5.2')).toBe('José');
    expect(encodeText(text, charset).equals(bytes)).toBe(true);
  });

  it('an unknown MSH-18 is refused rather than guessed', () => {
    expect(() => decodeHl7(Buffer.from(mshWith18('KLINGON', 'A')), 'utf-8')).toThrow(/KLINGON/);
  });
});
