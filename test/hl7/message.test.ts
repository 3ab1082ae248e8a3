import { describe, expect, it } from 'vitest';
import { compilePath, parseHl7 } from '../../core/hl7/index.js';
import { isHisbridgeError } from '../../core/errors.js';

const ADT = [
  'MSH|^~\\&|HIS^1.2.3^ISO|H4413020001|HISBRIDGE|GDPLAT|20250312093000||ADT^A04^ADT_A01|HIS0001|P|2.5|||AL|NE||GB 18030-2000',
  'EVN|A04|20250312093000',
  'PID|1||P001^^^HOSP^PI~440106199003152314^^^CHN^NI~E123^^^CHN^PPN||张^三丰||19900315|M|||广州市\\F\\越秀区^^^^510000||13800001234',
  'PV1|1|O|内科^^^H4413020001||||D001^李^医生|||||||||||V001',
  'OBX|1|NM|WBC^白细胞^LN||6.5|10*9/L',
  'OBX|2|FT|IMP^印象||第一行\\.br\\第二行 A\\T\\B',
  'OBX|3|ED|PDF^报告||^application^pdf^Base64^JVBERi0=',
  'ZCN|Y|30',
].join('\r') + '\r';

function parseCode(text: string): string | undefined {
  try {
    parseHl7(text);
    return undefined;
  } catch (e) {
    return isHisbridgeError(e) ? `${e.code}: ${e.message}` : String(e);
  }
}

describe('parseHl7: header getters', () => {
  const m = parseHl7(ADT);
  it('reads MSH fields', () => {
    expect(m.controlId).toBe('HIS0001');
    expect(m.type).toBe('ADT^A04');
    expect(m.messageCode).toBe('ADT');
    expect(m.triggerEvent).toBe('A04');
    expect(m.structure).toBe('ADT_A01');
    expect(m.sendingApp).toBe('HIS');
    expect(m.sendingFacility).toBe('H4413020001');
    expect(m.receivingApp).toBe('HISBRIDGE');
    expect(m.receivingFacility).toBe('GDPLAT');
    expect(m.processingId).toBe('P');
    expect(m.version).toBe('2.5');
    expect(m.acceptAckType).toBe('AL');
    expect(m.appAckType).toBe('NE');
    expect(m.charsetField).toBe('GB 18030-2000');
    expect(m.segmentCount).toBe(8);
    expect(m.delimiters).toEqual({ field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' });
  });

  it('MSH-1 and MSH-2 are the delimiters, MSH-3 is the first field after them', () => {
    expect(m.get('MSH-1')).toBe('|');
    expect(m.get('MSH-2')).toBe('^~\\&');
    expect(m.get('MSH-3')).toBe('HIS^1.2.3^ISO');
    expect(m.get('MSH-3.2')).toBe('1.2.3');
    expect(m.get('MSH-9.2')).toBe('A04');
  });

  it('type has no trigger part when MSH-9.2 is empty', () => {
    expect(parseHl7('MSH|^~\\&|A|B|C|D|2025||ACK|1|P|2.5\r').type).toBe('ACK');
  });
});

describe('get / getAll / has', () => {
  const m = parseHl7(ADT);
  it('reads components, repetitions and selectors', () => {
    expect(m.get('PID-5.1')).toBe('张');
    expect(m.get('PID-5.2')).toBe('三丰');
    expect(m.get('PID-3.1')).toBe('P001');
    expect(m.get('PID-3[2].1')).toBe('440106199003152314');
    expect(m.get('PID-3[3].5')).toBe('PPN');
    expect(m.get('PID-3[5=NI].1')).toBe('440106199003152314');
    expect(m.get('PID-3[5=SFZ|ID|PPN].1')).toBe('E123');
    expect(m.get('PID-3[5=DL].1')).toBe('');
    expect(m.get('PV1-7.2')).toBe('李');
    expect(m.get('ZCN-1')).toBe('Y');
  });

  it('unescapes leaves and returns structured values as sent', () => {
    expect(m.get('PID-11.1')).toBe('广州市|越秀区');
    expect(m.get('PID-11')).toBe('广州市\\F\\越秀区^^^^510000');
    expect(m.get('PID-5')).toBe('张^三丰');
    expect(m.get('OBX[2]-5')).toBe('第一行\n第二行 A&B');
    expect(m.get('OBX[3]-5.5')).toBe('JVBERi0=');
    expect(m.getRaw('OBX[2]-5')).toBe('第一行\\.br\\第二行 A\\T\\B');
  });

  it('a component of a value without components is the value itself', () => {
    expect(m.get('PID-8.1')).toBe('M');
    expect(m.get('PID-8.2')).toBe('');
    expect(m.get('PID-8.1.1')).toBe('M');
  });

  it('absent things are the empty string', () => {
    expect(m.get('PID-99')).toBe('');
    expect(m.get('PID-3[9].1')).toBe('');
    expect(m.get('OBX[9]-5')).toBe('');
    expect(m.get('NK1-2')).toBe('');
    expect(m.has('NK1-2')).toBe(false);
    expect(m.has('ZCN-1')).toBe(true);
    expect(m.has('PID-4')).toBe(false);
  });

  it('accepts compiled paths', () => {
    expect(m.get(compilePath('PID-5.1'))).toBe('张');
  });

  it('getAll covers every occurrence and repetition', () => {
    expect(m.getAll('OBX-3.1')).toEqual(['WBC', 'IMP', 'PDF']);
    expect(m.getAll('OBX-5')).toEqual(['6.5', '第一行\n第二行 A&B', '^application^pdf^Base64^JVBERi0=']);
    expect(m.getAll('PID-3.5')).toEqual(['PI', 'NI', 'PPN']);
    expect(m.getAll('PID-3[5=NI|PPN].1')).toEqual(['440106199003152314', 'E123']);
    expect(m.getAll('PID-3[2].1')).toEqual(['440106199003152314']);
    expect(m.getAll('OBX[2]-1')).toEqual(['2']);
    expect(m.getAll('OBX-4')).toEqual(['', '', '']);
    expect(m.getAll('NK1-2')).toEqual([]);
  });

  it('segments() exposes each segment lazily', () => {
    const obx = m.segments('OBX');
    expect(obx.map((s) => [s.name, s.index])).toEqual([['OBX', 4], ['OBX', 5], ['OBX', 6]]);
    expect(obx[1]!.get(5)).toBe('第一行\n第二行 A&B');
    expect(obx[0]!.get(3, 1, 2)).toBe('白细胞');
    expect(obx[0]!.fieldCount).toBe(6);
    const pid = m.segments('PID')[0]!;
    expect(pid.repetitions(3)).toBe(3);
    expect(pid.repetitions(4)).toBe(0);
    expect(pid.get(3, 2, 5)).toBe('NI');
    expect(m.segments().map((s) => s.name)).toEqual(['MSH', 'EVN', 'PID', 'PV1', 'OBX', 'OBX', 'OBX', 'ZCN']);
    const msh = m.segments('MSH')[0]!;
    expect(msh.get(1)).toBe('|');
    expect(msh.get(10)).toBe('HIS0001');
    expect(msh.fieldCount).toBe(18);
  });
});

describe('segment terminators', () => {
  const segs = ADT.split('\r').filter(Boolean);
  it.each([
    ['\\r', '\r'],
    ['\\n', '\n'],
    ['\\r\\n', '\r\n'],
  ])('accepts %s and encodes with \\r', (_, term) => {
    const text = segs.join(term) + term;
    const m = parseHl7(text);
    expect(m.segmentCount).toBe(8);
    expect(m.get('ZCN-2')).toBe('30');
    expect(m.get('OBX[3]-3.2')).toBe('报告');
    expect(m.encode()).toBe(ADT);
  });

  it('ignores blank lines, trailing whitespace lines and a missing final terminator', () => {
    const text = '\r\n' + segs.slice(0, 3).join('\r\n\r\n') + '\n  \n\t';
    const m = parseHl7(text);
    expect(m.segmentCount).toBe(3);
    expect(m.encode()).toBe(segs.slice(0, 3).join('\r') + '\r');
  });

  it('encodes an unmodified message byte-exactly', () => {
    expect(parseHl7(ADT).encode()).toBe(ADT);
  });
});

describe('custom delimiters', () => {
  const text = 'MSH#:!?$#HIS#H1#R#F#2025##ADT:A31#C9#P#2.4\rPID#1##P9:::HOSP:PI!4401:::CHN:NI##区?S?:億?F?##19800101\rOBX#1#TX#T1##a?E?b?.br?c$d\r';
  const m = parseHl7(text);
  it('reads MSH-1/MSH-2 and uses them everywhere', () => {
    expect(m.delimiters).toEqual({ field: '#', component: ':', repetition: '!', escape: '?', subcomponent: '$' });
    expect(m.type).toBe('ADT^A31');
    expect(m.get('MSH-2')).toBe(':!?$');
    expect(m.get('PID-3[5=NI].1')).toBe('4401');
    expect(m.get('PID-5.1')).toBe('区:');
    expect(m.get('PID-5.2')).toBe('億#');
    expect(m.get('OBX-5.1.1')).toBe('a?b\nc');
    expect(m.get('OBX-5.1.2')).toBe('d');
    expect(m.encode()).toBe(text);
  });

  it('accepts a v2.7 truncation character', () => {
    const t = parseHl7('MSH|^~\\&#|A|B|C|D|2025||ADT^A04|1|P|2.7\rPID|1||||x\\P\\y\r');
    expect(t.delimiters.truncation).toBe('#');
    expect(t.get('PID-5')).toBe('x#y');
  });
});

describe('mutation', () => {
  it('set escapes values and creates what is missing', () => {
    const m = parseHl7(ADT);
    m.set('PID-5.1', '欧阳|^');
    m.set('PID-13[2].1', '13900000000');
    m.set('PID-3[5=DL].1', 'DL42');
    m.set('PID-3[5=NI].1', '440104198507223422');
    m.set('ZCN-2', '7');
    m.set('ZVU-1.2.3', 'sub');
    m.set('OBX[5]-1', '5');
    expect(m.get('PID-5.1')).toBe('欧阳|^');
    expect(m.getRaw('PID-5')).toBe('欧阳\\F\\\\S\\^三丰');
    expect(m.get('PID-13[2].1')).toBe('13900000000');
    expect(m.getAll('PID-3.5')).toEqual(['PI', 'NI', 'PPN', 'DL']);
    expect(m.get('PID-3[5=DL].1')).toBe('DL42');
    expect(m.get('PID-3[5=NI].1')).toBe('440104198507223422');
    expect(m.get('ZCN-2')).toBe('7');
    expect(m.get('ZVU-1.2.3')).toBe('sub');
    expect(m.getAll('OBX-1')).toEqual(['1', '2', '3', '', '5']);
    const re = parseHl7(m.encode());
    expect(re.get('PID-5.1')).toBe('欧阳|^');
    expect(re.get('ZVU-1')).toBe('^&&sub');
    expect(re.segmentCount).toBe(11);
  });

  it('set on MSH header fields changes the getters', () => {
    const m = parseHl7(ADT);
    m.set('MSH-10', 'NEW1');
    expect(m.controlId).toBe('NEW1');
    expect(m.encode().startsWith('MSH|^~\\&|HIS^1.2.3^ISO|H4413020001|HISBRIDGE|GDPLAT|20250312093000||ADT^A04^ADT_A01|NEW1|')).toBe(true);
    expect(() => m.set('MSH-2', 'x')).toThrow(/cannot be set/);
  });

  it('addSegment appends escaped fields and components', () => {
    const m = parseHl7(ADT);
    m.addSegment(['ZVU', 'https://x/?a=1&b=2', ['张三', 'line\nbreak'], '']);
    m.addSegment(['ZRC']);
    expect(m.encode().endsWith('ZVU|https://x/?a=1\\T\\b=2|张三^line\\.br\\break|\rZRC\r')).toBe(true);
    expect(m.get('ZVU-1')).toBe('https://x/?a=1&b=2');
    expect(m.get('ZVU-2.2')).toBe('line\nbreak');
    expect(m.segments('ZVU')[0]!.index).toBe(8);
    expect(() => m.addSegment(['zz', 'x'])).toThrow(/HL7 parse error/);
    expect(() => m.addSegment(['MSH', 'x'])).toThrow(/HL7 parse error/);
  });
});

describe('parse errors', () => {
  const msh = (f9: string, f10: string, f12: string) => `MSH|^~\\&|A|B|C|D|2025||${f9}|${f10}|P|${f12}\r`;
  it.each([
    ['', 'HL7_E_NO_MSH'],
    ['PID|1\rMSH|^~\\&\r', 'HL7_E_NO_MSH'],
    ['garbage bytes', 'HL7_E_NO_MSH'],
    ['MSH', 'HL7_E_PARSE: HL7 parse error: MSH-1 (field separator) is missing'],
    ['MSHA^~\\&|x\r', 'HL7_E_PARSE: HL7 parse error: MSH-1 (field separator) is missing or not a punctuation character'],
    ['MSH||A|B\r', 'HL7_E_PARSE: HL7 parse error: MSH-2 (encoding characters) must be 3 to 5 characters, got 0'],
    ['MSH|^~|A|B\r', 'HL7_E_PARSE: HL7 parse error: MSH-2 (encoding characters) must be 3 to 5 characters, got 2'],
    ['MSH|^^\\&|A|B\r', 'HL7_E_PARSE: HL7 parse error: MSH-2 (encoding characters) repeats "^"'],
    [msh('', 'C1', '2.5'), 'HL7_E_PARSE: HL7 parse error: MSH-9 (message type) is empty'],
    [msh('^A04', 'C1', '2.5'), 'HL7_E_PARSE: HL7 parse error: MSH-9 (message type) is empty'],
    [msh('ADT^A04', '', '2.5'), 'HL7_E_PARSE: HL7 parse error: MSH-10 (message control id) is empty'],
    [msh('ADT^A04', 'C1', ''), 'HL7_E_PARSE: HL7 parse error: MSH-12 (version id) is empty'],
    ['MSH|^~\\&|A|B|C|D|2025||ADT^A04|C1|P', 'HL7_E_PARSE: HL7 parse error: MSH-12 (version id) is empty'],
    [msh('ADT^A04', 'C1', '2.5') + 'PID|1\rpv1|1\r', 'HL7_E_PARSE: HL7 parse error: segment 3 has an invalid name'],
    [msh('ADT^A04', 'C1', '2.5') + 'EVN|1\rPID|1\r张三|x\r', 'HL7_E_PARSE: HL7 parse error: segment 4 has an invalid name'],
    [msh('ADT^A04', 'C1', '2.5') + 'PIDX|1\r', 'HL7_E_PARSE: HL7 parse error: segment 2 has an invalid name'],
    [msh('ADT^A04', 'C1', '2.5') + '1ID|1\r', 'HL7_E_PARSE: HL7 parse error: segment 2 has an invalid name'],
  ])('%j -> %s', (text, want) => {
    const got = parseCode(text);
    expect(got).toBeDefined();
    expect(got!.startsWith(want)).toBe(true);
  });

  it('error details never carry message content', () => {
    const got = parseCode(msh('ADT^A04', 'C1', '2.5') + 'PID|1||440106199003152314\r张三丰 440106199003152314\r');
    expect(got).toMatch(/segment 3 has an invalid name/);
    expect(got).not.toMatch(/张|4401/);
  });

  it('a segment with only a name is valid', () => {
    expect(parseHl7(msh('ADT^A04', 'C1', '2.5') + 'ZZZ\r').segments('ZZZ')[0]!.fieldCount).toBe(0);
  });
});
