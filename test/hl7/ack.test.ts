import { describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { ackMode, buildAck, decodeHl7, encodeText, hl7Timestamp, parseHl7, readAckHeader } from '../../core/hl7/index.js';

const REQ =
  'MSH|^~\\&|HIS^1.2.3^ISO|H4413020001|HISBRIDGE|GDPLAT|20250312093000||ADT^A04^ADT_A01|HIS0001|P|2.5||||||GBK\r' +
  'PID|1||P001^^^HOSP^PI||张^三丰\r';
const NOW = new Date(2025, 2, 12, 9, 30, 5);

function fieldsOf(ack: string, seg: string): string[] {
  const line = ack.split('\r').find((l) => l.startsWith(seg));
  if (!line) throw new Error(`no ${seg}`);
  return line.split(line[3]!);
}

describe('ackMode', () => {
  it('original mode when MSH-15 and MSH-16 are empty', () => {
    expect(ackMode(parseHl7(REQ))).toEqual({ enhanced: false, acceptAck: 'AL', appAck: 'AL' });
  });
  it('enhanced mode when either is set', () => {
    const m = parseHl7(REQ.replace('|P|2.5||||||GBK', '|P|2.5|||AL|NE||GBK'));
    expect(ackMode(m)).toEqual({ enhanced: true, acceptAck: 'AL', appAck: 'NE' });
    const m2 = parseHl7(REQ.replace('|P|2.5||||||GBK', '|P|2.5||||ER||GBK'));
    expect(ackMode(m2)).toEqual({ enhanced: true, acceptAck: 'AL', appAck: 'ER' });
  });
});

describe('buildAck', () => {
  it('swaps sender and receiver, echoes MSH-10 in MSA-2, copies MSH-11/12/18', () => {
    const ack = buildAck(parseHl7(REQ), { code: 'AA', controlId: 'ACK0001', now: NOW });
    const segs = ack.split('\r');
    expect(segs).toHaveLength(3);
    expect(segs[2]).toBe('');
    const msh = fieldsOf(ack, 'MSH');
    expect(msh[1]).toBe('^~\\&');
    expect(msh[2]).toBe('HISBRIDGE');
    expect(msh[3]).toBe('GDPLAT');
    expect(msh[4]).toBe('HIS^1.2.3^ISO');
    expect(msh[5]).toBe('H4413020001');
    expect(msh[6]).toBe(hl7Timestamp(NOW));
    expect(msh[6]).toMatch(/^20250312093005[+-]\d{4}$/);
    expect(msh[8]).toBe('ACK^A04^ACK');
    expect(msh[9]).toBe('ACK0001');
    expect(msh[10]).toBe('P');
    expect(msh[11]).toBe('2.5');
    expect(msh[17]).toBe('GBK');
    expect(fieldsOf(ack, 'MSA')).toEqual(['MSA', 'AA', 'HIS0001']);
    const parsed = parseHl7(ack);
    expect(parsed.type).toBe('ACK^A04');
    expect(parsed.get('MSA-2')).toBe('HIS0001');
  });

  it('carries text and a v2.5 ERR segment with escaped values', () => {
    const ack = buildAck(parseHl7(REQ), {
      code: 'AE',
      controlId: 'A2',
      text: 'MSH-10 missing | bad',
      error: { hl7Code: '101', text: 'required field missing: MSH-10', location: 'MSH^1^10' },
      now: NOW,
    });
    const m = parseHl7(ack);
    expect(m.get('MSA-1')).toBe('AE');
    expect(m.get('MSA-3')).toBe('MSH-10 missing | bad');
    expect(m.get('ERR-1')).toBe('');
    expect(m.get('ERR-2.1')).toBe('MSH');
    expect(m.get('ERR-2.3')).toBe('10');
    expect(m.get('ERR-3.1')).toBe('101');
    expect(m.get('ERR-3.2')).toBe('required field missing: MSH-10');
    expect(m.get('ERR-3.3')).toBe('HL70357');
    expect(m.get('ERR-4')).toBe('E');
    expect(m.get('ERR-8')).toBe('required field missing: MSH-10');
  });

  it('uses commit codes in enhanced mode and appends reply segments', () => {
    const req = parseHl7(REQ.replace('|P|2.5||||||GBK', '|T|2.4|||AL|NE||GBK'));
    const ack = buildAck(req, {
      code: 'CA',
      controlId: 'A3',
      error: { hl7Code: '207', text: 'w', severity: 'W' },
      segments: [['ZVU', 'https://v/?p=a&b', '张三丰|x'], ['ZRC', 'Y']],
      now: NOW,
    });
    const m = parseHl7(ack);
    expect(m.get('MSA-1')).toBe('CA');
    expect(m.get('ERR-4')).toBe('W');
    expect(m.get('MSH-11')).toBe('T');
    expect(m.get('MSH-12')).toBe('2.4');
    expect(m.get('MSH-15')).toBe('');
    expect(m.get('ZVU-1')).toBe('https://v/?p=a&b');
    expect(m.get('ZVU-2')).toBe('张三丰|x');
    expect(m.get('ZRC-1')).toBe('Y');
    expect(m.segments().map((s) => s.name)).toEqual(['MSH', 'MSA', 'ERR', 'ZVU', 'ZRC']);
  });

  it('answers in the request delimiters', () => {
    const req = parseHl7('MSH#:!?$#HIS#H1#R#F#2025##ADT:A31#C9#P#2.4\rPID#1\r');
    const ack = buildAck(req, { code: 'AR', controlId: 'X#1', text: 'a:b', error: { hl7Code: '200', text: 't', location: 'MSH^1^9' }, now: NOW });
    expect(ack.startsWith('MSH#:!?$#R#F#HIS#H1#')).toBe(true);
    expect(ack).toContain('#ACK:A31:ACK#X?F?1#P#2.4\r');
    expect(ack).toContain('\rMSA#AR#C9#a?S?b\r');
    expect(ack).toContain('\rERR##MSH:1:9#200:t:HL70357#E####t\r');
    expect(parseHl7(ack).get('MSA-3')).toBe('a:b');
  });

  it('goes back byte-exactly in the sender charset with Chinese text', () => {
    const bytes = iconv.encode(REQ, 'gbk');
    const { text, charset } = decodeHl7(bytes, 'utf-8');
    const ack = buildAck(parseHl7(text), { code: 'AA', controlId: 'A4', text: '已接收 區億', now: NOW });
    const wire = encodeText(ack, charset);
    expect(wire.equals(iconv.encode(ack, 'gbk'))).toBe(true);
    const back = decodeHl7(wire, 'utf-8');
    expect(back.charset).toBe('gb18030');
    expect(parseHl7(back.text).get('MSA-3')).toBe('已接收 區億');
  });
});

describe('readAckHeader', () => {
  it('extracts the header from text that does not parse', () => {
    const bad = 'MSH|^~\\&|LIS|H1|HB|GD|2025||ORU^R01|LIS77|P|2.5\rPID|1\r张三 garbage line\r';
    expect(() => parseHl7(bad)).toThrow(/segment 3/);
    const h = readAckHeader(bad)!;
    expect(h).toMatchObject({ fieldSep: '|', encodingChars: '^~\\&', sendingApp: 'LIS', sendingFacility: 'H1', controlId: 'LIS77', triggerEvent: 'R01', version: '2.5' });
    const ack = parseHl7(buildAck(h, { code: 'AE', controlId: 'N1', text: 'bad segment', error: { hl7Code: '100', text: 'bad segment' }, now: NOW }));
    expect(ack.get('MSA-2')).toBe('LIS77');
    expect(ack.get('MSH-5')).toBe('LIS');
    expect(ack.get('MSH-9')).toBe('ACK^R01^ACK');
  });

  it('handles an empty MSH-10, bad encoding characters and a cut-off header', () => {
    expect(readAckHeader('MSH|^~\\&|A|B|C|D|2025||ADT^A04||P|2.5\r')!.controlId).toBe('');
    const odd = readAckHeader('MSH|^^|A|B|C|D|2025||ADT^A04|C5|P|2.5\r')!;
    expect(odd).toMatchObject({ fieldSep: '|', encodingChars: '^~\\&', controlId: 'C5' });
    const cut = readAckHeader('MSH|^~\\&|A|B|C|D|2025||ADT^A04|C123');
    expect(cut!.controlId).toBe('');
    expect(readAckHeader('MSH|^~\\&|A|B|C|D|2025||ADT^A04|C123|P')!.controlId).toBe('C123');
  });

  it('returns undefined for text that is not an HL7 header', () => {
    expect(readAckHeader('')).toBeUndefined();
    expect(readAckHeader('GET / HTTP/1.1\r\n')).toBeUndefined();
    expect(readAckHeader('MSHA|x')).toBeUndefined();
    expect(readAckHeader('MSH')).toBeUndefined();
  });

  it('caps echoed values and strips line breaks', () => {
    const h = readAckHeader(`MSH|^~\\&|A|B|C|D|2025||ADT^A04|${'9'.repeat(5000)}|P|2.5\r`)!;
    expect(h.controlId!.length).toBe(199);
    const ack = buildAck({ fieldSep: '|', encodingChars: '^~\\&', controlId: 'a\nb' }, { code: 'AR', controlId: 'z', now: NOW });
    expect(ack.split('\r')).toHaveLength(3);
    expect(parseHl7(ack).get('MSA-2')).toBe('ab');
  });
});
