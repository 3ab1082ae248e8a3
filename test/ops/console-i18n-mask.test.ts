/**
 * Units of issue 18: the dictionaries are complete in both languages, the
 * list of masked fields masks identifiers and leaves codes alone, the HL7
 * tree names fields for the message's own version and names the site
 * segments from the plugins that define them, and the console's times are
 * Asia/Shanghai whatever the server's zone.
 */
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { decodeHl7 } from '../../core/hl7/index.js';
import { renderHl7 } from '../../core/cli/cmd-messages.js';
import { createLogger } from '../../core/log.js';
import { KEY_PATTERNS, LOG_KEYS, MASKED_FIELDS, maskedField, maskedKey } from '../../core/mask-fields.js';
import { dictionaryVersion, siteSegments } from '../../core/ops/console/hl7-dict.js';
import { hl7Tree, renderTree, type TreeSegment } from '../../core/ops/console/hl7-tree.js';
import { shanghaiInput, time } from '../../core/ops/console/html.js';
import { DICTIONARIES, LANGS, translator } from '../../core/ops/console/i18n.js';
import { jsonForView } from '../../core/ops/console/json-view.js';
import { builtinRegistry } from '../../plugins/index.js';

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('console dictionaries', () => {
  it('have every key in both languages, non-empty, with the same placeholders', () => {
    const zh = DICTIONARIES['zh-CN'];
    const en = DICTIONARIES.en;
    expect(Object.keys(en).sort()).toEqual(Object.keys(zh).sort());
    expect(Object.keys(zh).length).toBeGreaterThan(100);
    for (const k of Object.keys(zh) as (keyof typeof zh)[]) {
      expect(zh[k].trim(), k).not.toBe('');
      expect(en[k].trim(), k).not.toBe('');
      expect(placeholders(en[k]), k).toEqual(placeholders(zh[k]));
    }
    expect(LANGS).toEqual(['zh-CN', 'en']);
  });

  it('use the platform documents\' wording for domain terms and Chinese for the zh-CN labels', () => {
    const zh = DICTIONARIES['zh-CN'];
    expect(zh['nav.dead']).toBe('死信');
    expect(zh['title.dead']).toContain('失败队列');
    // Every zh-CN text that is a label (not a code such as ACK or a placeholder alone) has Chinese in it.
    const latinOnly = Object.entries(zh).filter(([, v]) => !/[\u4e00-\u9fff]/.test(v));
    expect(latinOnly.map(([k]) => k).sort()).toEqual(['app.lang.other', 'col.ack', 'msg.ackOf', 'ops.colon', 'ops.kafka']);
    // The health panel, route actions, search and replay labels (issue 18) are in the same dictionaries.
    for (const k of ['ops.health', 'ops.store', 'ops.eventLoop', 'ops.inactiveRoutes', 'ops.pause', 'ops.resume', 'ops.resetStats', 'ops.search', 'ops.replayTitle', 'ops.err.searchWindow', 'nav.search'] as const) {
      expect(/[\u4e00-\u9fff]/.test(zh[k]), k).toBe(true);
      expect(DICTIONARIES.en[k], k).not.toBe(zh[k]);
    }
  });

  it('fill placeholders', () => {
    expect(translator('zh-CN')('dead.requeued', { n: 3 })).toBe('已重新排队 3 条');
    expect(translator('en')('dead.requeued', { n: 3 })).toBe('requeued 3');
    expect(translator('en').lang).toBe('en');
  });
});

describe('the list of masked fields', () => {
  it('names each field once, with components inside the field', () => {
    const seen = new Set<string>();
    for (const f of MASKED_FIELDS) {
      const k = `${f.segment}-${f.field}`;
      expect(seen.has(k), k).toBe(false);
      seen.add(k);
      expect(f.what.length).toBeGreaterThan(3);
      for (const c of f.components ?? []) expect(c).toBeGreaterThan(0);
    }
  });

  it('masks identifiers, names, phones, addresses and birth dates; never sex, marital status, nationality or identifier codes', () => {
    for (const k of ['PID-3', 'PID-5', 'PID-7', 'PID-11', 'PID-13', 'PID-19', 'NK1-2', 'MRG-1']) {
      const [seg, n] = k.split('-');
      expect(maskedField(seg!, Number(n)), k).toBeDefined();
    }
    for (const k of ['PID-1', 'PID-8', 'PID-10', 'PID-15', 'PID-16', 'PID-17', 'PID-22', 'PID-24', 'PID-26', 'PID-28', 'MSH-4', 'ZCN-1']) {
      const [seg, n] = k.split('-');
      expect(maskedField(seg!, Number(n)), k).toBeUndefined();
    }
    // CX: the ID number is masked, the assigning authority (.4) and the identifier type (.5) are not.
    expect(maskedField('PID', 3)!.components).toEqual([1, 2]);
    // XAD: the country (.6) and address type (.7) are codes.
    expect(maskedField('PID', 11)!.components).not.toContain(6);
    expect(maskedField('PID', 11)!.components).not.toContain(7);
    // XTN: the use code (.2) and equipment type (.3) are codes.
    expect(maskedField('PID', 13)!.components).not.toContain(2);
  });

  it('is the one the log redacts: every log key is a masked key, and a logged one is redacted', () => {
    for (const k of LOG_KEYS) expect(maskedKey(k), k).toBeDefined();
    expect(KEY_PATTERNS.map((p) => p.kind).sort()).toEqual(['address', 'birthDate', 'id', 'idNumber', 'name', 'phone']);
    const lines: string[] = [];
    const log = createLogger({ destination: new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }) as never });
    log.info({ birthDate: '19900315', patientAddress: '天河路1号', mobile: 'x', route: 'r' }, 'hello');
    const line = lines.join('');
    expect(line).not.toContain('19900315');
    expect(line).not.toContain('天河路');
    expect(line).toContain('"route":"r"');
  });

  it('is the one the JSON view masks by: a birth date under a masked key, codes of a person kept', () => {
    const v = jsonForView({ patient: { birthDate: '1990-03-15', sex: 'M', maritalStatus: '20', country: 'CHN', name: '张三丰' } }).value as { patient: Record<string, string> };
    expect(v.patient.birthDate).not.toBe('1990-03-15');
    expect(v.patient.name).toBe('张**');
    expect(v.patient.sex).toBe('M');
    expect(v.patient.maritalStatus).toBe('20');
    expect(v.patient.country).toBe('CHN');
  });
});

const field = (tree: TreeSegment[], seg: string, n: number) => tree.find((s) => s.name === seg)!.fields.find((f) => f.index === n)!;

describe('the HL7 tree', () => {
  const sample01 = decodeHl7(readFileSync('samples/01-adt-a04-registration-consent.hl7'), 'gb18030', 'gb18030').text;
  const site = siteSegments(builtinRegistry().plugins);

  it('masks the person and leaves the codes: HOSP, PI, CHN, NI, marital status and sex as they are', () => {
    const tree = hl7Tree(sample01, false, site);
    const pid3 = field(tree, 'PID', 3);
    expect(pid3.value).toBe('P0******01^^^HOSP^PI~440106********2314^^^CHN^NI');
    expect(pid3.masked).toBe(true);
    expect(field(tree, 'PID', 5).value).toBe('*^**');
    expect(field(tree, 'PID', 7).value).toBe('1990****');
    expect(field(tree, 'PID', 8).value).toBe('M');
    expect(field(tree, 'PID', 16)).toMatchObject({ value: '20^已婚^GB/T2261.2', masked: false });
    const pid11 = field(tree, 'PID', 11);
    expect(pid11.value).toMatch(/^\*\*\*\^\^\*\*\*\^广东省\^\*\*\*\^CHN\^H$/);
    expect(field(tree, 'PID', 13).value).toBe('138****0001^PRN^CP');
    expect(JSON.stringify(tree)).not.toContain('440106199003152314');
    expect(JSON.stringify(tree)).not.toContain('张');
    // Revealed: the plain values.
    expect(field(hl7Tree(sample01, true, site), 'PID', 3).value).toContain('440106199003152314');
  });

  it('names fields and components for the message\'s MSH-12 version, and site segments from their plugins', () => {
    const tree = hl7Tree(sample01, false, site);
    expect(tree.find((s) => s.name === 'PID')!.description).toBe('Patient Identification');
    expect(field(tree, 'PID', 5)).toMatchObject({ name: 'Patient Name', datatype: 'XPN' });
    const pid3 = field(tree, 'PID', 3);
    expect(pid3.components!.map((c) => `${c.path} ${c.name}=${c.value}`)).toEqual([
      'PID-3[1].1 ID Number=P0******01', 'PID-3[1].4 Assigning Authority=HOSP', 'PID-3[1].5 Identifier Type Code=PI',
      'PID-3[2].1 ID Number=440106********2314', 'PID-3[2].4 Assigning Authority=CHN', 'PID-3[2].5 Identifier Type Code=NI',
    ]);
    expect(tree.find((s) => s.name === 'ZCN')!.description).toContain('Consent');
    expect(field(tree, 'ZCN', 1)).toMatchObject({ name: 'Consent given (Y/N)', value: 'Y', masked: false });
    const html = renderTree(tree).value;
    expect(html).toContain('<span class="fld">PID-5</span> <span class="fname">Patient Name (XPN)</span>');
    expect(html).toContain('<details><summary>');
    // A v2.4 message is named from the 2.4 tables (PID-5.1 is "Family Name" there too, PID-13 is "Phone Number - Home").
    const v24 = hl7Tree('MSH|^~\\&|A|B|C|D|20250101||ADT^A04|C1|P|2.4\rPID|1||X1||李^四\r');
    expect(field(v24, 'PID', 5).name).toBe('Patient Name');
    expect(field(v24, 'MSH', 12)).toMatchObject({ name: 'Version ID', value: '2.4' });
  });

  it('picks the dictionary version the message names, or the nearest older one', () => {
    expect(dictionaryVersion('2.5')).toBe('2.5');
    expect(dictionaryVersion('2.3.1')).toBe('2.3.1');
    expect(dictionaryVersion('2.8')).toBe('2.7.1');
    expect(dictionaryVersion('2.5.2')).toBe('2.5.1');
    expect(dictionaryVersion('')).toBe('2.5');
    expect(dictionaryVersion('garbage')).toBe('2.5');
  });

  it('names the ZCN, ZVU and ZRC segments from the plugins that define them', () => {
    expect([...site.keys()].sort()).toEqual(['ZCN', 'ZRC', 'ZVU']);
    const zrc = hl7Tree('MSH|^~\\&|A|B|C|D|20250101||ACK|C1|P|2.5\rMSA|AA|C1\rZRC|L001|血常规|Y\r', false, site);
    expect(field(zrc, 'ZRC', 3).name).toBe('Recognizable (Y/N)');
    expect(zrc.find((s) => s.name === 'ZRC')!.description).toContain('互认');
  });
});

describe('console times', () => {
  it('are shown in Asia/Shanghai time whatever the server zone', () => {
    expect(time(Date.UTC(2025, 2, 12, 1, 30, 15))).toBe('2025-03-12 09:30:15');
    expect(time(Date.UTC(2025, 11, 31, 16, 0, 0))).toBe('2026-01-01 00:00:00');
  });

  it('typed in a form are read as Asia/Shanghai time', () => {
    expect(shanghaiInput('2026-01-31T08:00')).toBe('2026-01-31T08:00+08:00');
    expect(shanghaiInput('2026-01-31')).toBe('2026-01-31T00:00+08:00');
    expect(shanghaiInput('24h')).toBe('24h');
    expect(shanghaiInput('2026-01-31T08:00Z')).toBe('2026-01-31T08:00Z');
  });
});

describe('the documentation of the masked fields', () => {
  it('lists every entry of MASKED_FIELDS in docs/operations.md', () => {
    const doc = readFileSync('docs/operations.md', 'utf8');
    const section = doc.slice(doc.indexOf('### What the console and the logs mask'), doc.indexOf('### Narrow screens'));
    for (const f of MASKED_FIELDS) expect(section, `${f.segment}-${f.field}`).toContain(`| ${f.segment}-${f.field} | ${f.what} |`);
  });
});

describe('hisbridge messages show (CLI) masks by the same list', () => {
  it('keeps HOSP, PI, CHN, NI and the marital status, masks the ID numbers, the name and the birth date', () => {
    const text = renderHl7({ raw: readFileSync('samples/01-adt-a04-registration-consent.hl7'), charset: 'gb18030' }, false);
    const pid = text.split('\r').find((l) => l.startsWith('PID|'))!;
    expect(pid).toContain('P0******01^^^HOSP^PI~440106********2314^^^CHN^NI');
    expect(pid).toContain('|19900315|'.replace('0315', '****'));
    expect(pid).toContain('|20^已婚^GB/T2261.2|');
    expect(pid).not.toContain('440106199003152314');
    expect(pid).not.toContain('三丰');
    expect(renderHl7({ raw: readFileSync('samples/01-adt-a04-registration-consent.hl7'), charset: 'gb18030' }, true)).toContain('440106199003152314');
  });
});
