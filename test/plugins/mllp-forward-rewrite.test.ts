/**
 * Issue 17 acceptance: a GB 18030 lab ORU with Chinese names comes in over a
 * real MLLP socket; the route's `hl7` step sets MSH-5/MSH-6 and maps every
 * OBX-3 item code (and its name) through a GBK code table
 * (tables/lab-items.csv + lab-items.yaml `charset: gbk`); the `mllp` step
 * forwards the rewritten message to the MLLP receiver simulator.
 *
 * The second hl7 step uses `each: OBX`: its paths address the current OBX,
 * so every result of any length of report is mapped.
 *
 * Checked: what the receiver got (rewritten MSH-5/6, platform item codes,
 * Chinese text intact, GB 18030 bytes), the stored original byte for byte,
 * the console message page over HTTP (rewritten next to the original), and a
 * code missing from the `missing: error` table dead-lettered with a reason
 * naming the table and the key.
 *
 * `hisbridge validate` catching a missing table column (also an hl7 `set`
 * value) is covered by test/cli/tables-validate.test.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { MllpClient } from '../../core/mllp/client.js';
import { silentLogger } from '../../core/log.js';
import { parseHl7 } from '../../core/hl7/index.js';
import { startMllpReceiver, type MllpReceiver } from '../../plugins/mllp/index.js';
import { useEngine } from '../helpers/engine.js';

const ORU = readFileSync('samples/15-oru-r01-lab-report-final.hl7');
const ORU_TEXT = iconv.decode(ORU, 'gb18030');

/** HIS item code -> platform item code and platform item name, in the order of the sample's OBX segments. */
const ITEMS: [string, string, string][] = [
  ['WBC', 'GD-LAB-0001', '白细胞计数（互认）'],
  ['NEUT%', 'GD-LAB-0002', '中性粒细胞百分比（互认）'],
  ['LYMPH%', 'GD-LAB-0003', '淋巴细胞百分比（互认）'],
  ['MONO%', 'GD-LAB-0004', '单核细胞百分比（互认）'],
  ['EO%', 'GD-LAB-0005', '嗜酸性粒细胞百分比（互认）'],
  ['BASO%', 'GD-LAB-0006', '嗜碱性粒细胞百分比（互认）'],
  ['NEUT#', 'GD-LAB-0007', '中性粒细胞绝对值（互认）'],
  ['LYMPH#', 'GD-LAB-0008', '淋巴细胞绝对值（互认）'],
  ['RBC', 'GD-LAB-0009', '红细胞计数（互认）'],
  ['HGB', 'GD-LAB-0010', '血红蛋白（互认）'],
  ['HCT', 'GD-LAB-0011', '红细胞压积（互认）'],
  ['MCV', 'GD-LAB-0012', '平均红细胞体积（互认）'],
  ['MCH', 'GD-LAB-0013', '平均红细胞血红蛋白含量（互认）'],
  ['MCHC', 'GD-LAB-0014', '平均红细胞血红蛋白浓度（互认）'],
  ['PLT', 'GD-LAB-0015', '血小板计数（互认）'],
  ['PDF', 'GD-DOC-0001', '检验报告（互认）'],
];

const TABLE_CSV = 'hisCode,platformCode,name,system\n' + ITEMS.map((r) => [...r, 'GDLAB'].join(',')).join('\n') + '\n';

/**
 * Two routes forwarding the same way. `fwd-lab` (MSH-3 LIS): the hl7 step
 * alone; it is a transform step, so in this on-receive route it runs with
 * the delivery, after the AA. `fwd-lab-dl` (MSH-3 LIS2): a map step first
 * that looks every OBX-3.1 up (`each: OBX`), then the same hl7 step; both
 * run with the delivery, and a missing code dead-letters the delivery after AA.
 */
function routes(port: number): string {
  const hl7 = `  - plugin: hl7
    config:
      set:
        MSH-5: GDLIS
        MSH-6: "H4400000001"
  - plugin: hl7
    config:
      each: OBX
      set:
        OBX-3.1: "\${OBX-3.1|lookup:lab-items.platformCode}"
        OBX-3.2: "\${OBX-3.1|lookup:lab-items.name}"
        OBX-3.3: "\${OBX-3.1|lookup:lab-items.system}"
  - plugin: mllp
    config: { host: 127.0.0.1, port: ${port}, timeout: 2s, pool: 1 }
delivery:
  retry: { max: 2, initial: 30ms, maxDelay: 100ms }`;
  return `routes:
- name: fwd-lab
  match:
    events: [ORU^R01]
    sender: { application: LIS }
  ack: on-receive
  steps:
${hl7.replace(/^/gm, '  ')}
- name: fwd-lab-dl
  match:
    events: [ORU^R01]
    sender: { application: LIS2 }
  ack: on-receive
  steps:
    - plugin: map
      as: codes
      config:
        fields:
          items:
            each: OBX
            fields:
              code: "\${OBX-3.1|lookup:lab-items.platformCode}"
${hl7.replace(/^/gm, '  ')}
`;
}

const TOKEN = 'fwd-test-token-0123456789abcdef';
const SITE = [
  'simulators: false',
  'listeners: [{ name: mllp, port: 0, charset: gb18030 }]',
  'http: { port: 0 }',
  'console:',
  '  token: ${env:HB_FWD_CONSOLE_TOKEN}',
].join('\n');

/** The sample with its own control id and, optionally, one OBX-3.1 code replaced; GB 18030 bytes. */
function oru(controlId: string, replaceCode?: [string, string], app = 'LIS'): Buffer {
  let text = ORU_TEXT.replace('LIS202503120015', controlId).replace('MSH|^~\\&|LIS|', `MSH|^~\\&|${app}|`);
  if (replaceCode) text = text.replace(`|${replaceCode[0]}^`, `|${replaceCode[1]}^`);
  return iconv.encode(text, 'gb18030');
}

type Delivery = { id: number; state: string; attempts: number; lastErrorCode?: string; lastError?: string };

async function settled(read: () => Delivery | undefined, ms = 15_000): Promise<Delivery> {
  const by = Date.now() + ms;
  for (;;) {
    const d = read();
    if (d && (d.state === 'done' || d.state === 'dead')) return d;
    if (Date.now() > by) throw new Error(`delivery not settled: ${JSON.stringify(d)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function send(port: number, frame: Buffer): Promise<string> {
  const c = await MllpClient.connect('127.0.0.1', port);
  try {
    return iconv.decode(await c.send(frame), 'gb18030');
  } finally {
    await c.close();
  }
}

describe('lab ORU rewritten by the hl7 step (GBK code table) and forwarded over MLLP', () => {
  let rx: MllpReceiver;
  let root: string;
  let routesDir: string;
  beforeAll(async () => {
    rx = await startMllpReceiver({ host: '127.0.0.1', port: 0, site: {}, log: silentLogger() });
    root = mkdtempSync(path.join(tmpdir(), 'hisbridge-fwd-'));
    routesDir = path.join(root, 'routes');
    const tablesDir = path.join(root, 'tables');
    mkdirSync(routesDir);
    mkdirSync(tablesDir);
    writeFileSync(path.join(routesDir, 'fwd-lab.yaml'), routes(rx.port));
    writeFileSync(path.join(tablesDir, 'lab-items.csv'), iconv.encode(TABLE_CSV, 'gbk'));
    writeFileSync(path.join(tablesDir, 'lab-items.yaml'), 'charset: gbk\nmissing: error\n');
  });
  afterAll(async () => {
    await rx?.close();
    rmSync(root, { recursive: true, force: true });
  });
  const t = useEngine(() => ({ routesDir, siteYaml: SITE, env: { HB_FWD_CONSOLE_TOKEN: TOKEN } }));

  const messageOf = (controlId: string) => {
    const hit = t.engine.store.searchMessages({ controlId, limit: 1 })[0];
    return hit ? t.engine.store.getMessage(hit.id) : undefined;
  };

  it('the table file really is GBK (not UTF-8) bytes', () => {
    const bytes = readFileSync(path.join(root, 'tables', 'lab-items.csv'));
    expect(bytes.equals(Buffer.from(TABLE_CSV, 'utf8'))).toBe(false);
    expect(iconv.decode(bytes, 'gbk')).toBe(TABLE_CSV);
  });

  it('the receiver gets MSH-5/6 rewritten, every OBX-3 mapped to the platform code and name, Chinese text intact', async () => {
    const frame = oru('FWDRW-1');
    const before = rx.received.length;
    const ack = await send(t.port, frame);
    expect(ack).toMatch(/MSA\|AA\|FWDRW-1/);
    const d = await settled(() => messageOf('FWDRW-1')?.deliveries[0]);
    expect(d).toMatchObject({ state: 'done', attempts: 1 });

    const got = rx.received.slice(before);
    expect(got).toHaveLength(1);
    const out = got[0]!;
    expect(out.controlId).toBe('FWDRW-1');
    // Sent in the message's own charset (MSH-18 GB 18030).
    expect(iconv.decode(out.bytes, 'gb18030')).toBe(out.text);
    expect(out.bytes.includes(iconv.encode('张^三丰', 'gb18030'))).toBe(true);

    const msg = parseHl7(out.text);
    expect(msg.get('MSH-3')).toBe('LIS');
    expect(msg.get('MSH-4')).toBe('H4413020001');
    expect(msg.get('MSH-5')).toBe('GDLIS');
    expect(msg.get('MSH-6')).toBe('H4400000001');
    expect(msg.get('MSH-10')).toBe('FWDRW-1');
    ITEMS.forEach(([, code, name], i) => {
      expect(msg.get(`OBX[${i + 1}]-3.1`)).toBe(code);
      expect(msg.get(`OBX[${i + 1}]-3.2`)).toBe(name);
      expect(msg.get(`OBX[${i + 1}]-3.3`)).toBe('GDLAB');
    });
    // Everything else as the HIS sent it: Chinese names and results, the same segments.
    expect(msg.get('PID-5.1')).toBe('张');
    expect(msg.get('PID-5.2')).toBe('三丰');
    expect(msg.get('PV1-3.4')).toBe('内科门诊');
    expect(msg.get('OBR-4.2')).toBe('血常规');
    expect(msg.get('OBX[10]-5')).toBe('128');
    expect(msg.get('OBX[1]-16.2')).toBe('赵');
    const segs = (s: string) => s.split('\r').filter(Boolean).map((l) => l.slice(0, 3));
    expect(segs(out.text)).toEqual(segs(ORU_TEXT));
    // Only the set fields changed: the other lines are the original ones.
    const origLines = ORU_TEXT.split('\r').filter(Boolean);
    const outLines = out.text.split('\r').filter(Boolean);
    outLines.forEach((line, i) => {
      if (line.startsWith('MSH') || line.startsWith('OBX')) return;
      expect(line).toBe(origLines[i]!.replace('LIS202503120015', 'FWDRW-1'));
    });
  });

  it('a shorter report (15 results): each: OBX maps the 15 and adds no OBX', async () => {
    const before = rx.received.length;
    const text = iconv.decode(oru('FWDRW-15'), 'gb18030').split('\r').filter((l) => !l.startsWith('OBX|16|')).join('\r');
    expect(await send(t.port, iconv.encode(text, 'gb18030'))).toMatch(/MSA\|AA\|FWDRW-15/);
    expect(await settled(() => messageOf('FWDRW-15')?.deliveries[0])).toMatchObject({ state: 'done' });
    const got = rx.received.slice(before);
    expect(got).toHaveLength(1);
    const obx = got[0]!.text.split('\r').filter((l) => l.startsWith('OBX'));
    expect(obx).toHaveLength(15);
    expect(parseHl7(got[0]!.text).get('OBX[15]-3.1')).toBe('GD-LAB-0015');
  });

  it('the stored original is unchanged: the same bytes, the HIS codes and receiver', async () => {
    const m = messageOf('FWDRW-1')!;
    expect(m.raw!.equals(oru('FWDRW-1'))).toBe(true);
    const stored = parseHl7(iconv.decode(m.raw!, 'gb18030'));
    expect(stored.get('MSH-5')).toBe('HISBRIDGE');
    expect(stored.get('OBX[1]-3.1')).toBe('WBC');
    expect(stored.get('OBX[1]-3.2')).toBe('白细胞计数');
  });

  it('the console message page over HTTP shows the rewritten message next to the original', async () => {
    const m = messageOf('FWDRW-1')!;
    const res = await fetch(`${t.httpUrl}/console/messages/${m.id}?lang=en`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    const page = await res.text();
    const at = page.indexOf('Rewritten by fwd-lab');
    expect(at).toBeGreaterThan(0);
    const original = page.slice(0, at);
    const rewritten = page.slice(at);
    expect(original).toContain('HISBRIDGE');
    expect(original).toContain('WBC');
    expect(original).not.toContain('GD-LAB-0001');
    expect(rewritten).toContain('GDLIS');
    expect(rewritten).toContain('GD-LAB-0001');
    expect(rewritten).toContain('血红蛋白（互认）');
    // Masked on the page as in the original tree: the ID number is not shown.
    expect(page).not.toContain('440106199003152314');
  });

  it('an item code missing from the table in the hl7 step: AA to the HIS, the delivery dead-lettered naming table and key; fixed table, reload and replay forward it', async () => {
    const before = rx.received.length;
    const ack = await send(t.port, oru('FWDRW-MISS', ['HGB', 'HGB2']));
    // The hl7 step is a transform step: it runs with the delivery, after the message is stored and acknowledged.
    expect(ack).toMatch(/MSA\|AA\|FWDRW-MISS/);
    const d = await settled(() => messageOf('FWDRW-MISS')?.deliveries[0]);
    expect(d).toMatchObject({ state: 'dead', attempts: 1, lastErrorCode: 'ROUTE_E_LOOKUP_MISSING' });
    expect(d.lastError).toContain('table lab-items has no key "HGB2"');
    await new Promise((r) => setTimeout(r, 200));
    expect(rx.received.slice(before)).toHaveLength(0);

    // The site adds the code to the GBK table, reloads and replays the dead letter: the hl7 step rewrites again.
    const tablesDir = path.join(root, 'tables');
    writeFileSync(path.join(tablesDir, 'lab-items.csv'), iconv.encode(TABLE_CSV + 'HGB2,GD-LAB-0099,血红蛋白二（互认）,GDLAB\n', 'gbk'));
    try {
      expect((await t.engine.reload()).ok).toBe(true);
      expect(t.engine.store.requeue({ ids: [d.id] })).toBe(1);
      const again = await settled(() => messageOf('FWDRW-MISS')?.deliveries[0]);
      expect(again.state).toBe('done');
      const got = rx.received.slice(before);
      expect(got).toHaveLength(1);
      const msg = parseHl7(got[0]!.text);
      expect(msg.get('MSH-5')).toBe('GDLIS');
      expect(msg.get('OBX[10]-3.1')).toBe('GD-LAB-0099');
      expect(msg.get('OBX[10]-3.2')).toBe('血红蛋白二（互认）');
      expect(msg.get('OBX[1]-3.1')).toBe('GD-LAB-0001');
    } finally {
      writeFileSync(path.join(tablesDir, 'lab-items.csv'), iconv.encode(TABLE_CSV, 'gbk'));
      await t.engine.reload();
    }
  });

  it('with a map step first (a transform step, run with the delivery) the same rewrite and forward work', async () => {
    const before = rx.received.length;
    expect(await send(t.port, oru('FWDRW-DL-OK', undefined, 'LIS2'))).toMatch(/MSA\|AA\|FWDRW-DL-OK/);
    const d = await settled(() => messageOf('FWDRW-DL-OK')?.deliveries[0]);
    expect(d).toMatchObject({ state: 'done', attempts: 1 });
    const got = rx.received.slice(before);
    expect(got).toHaveLength(1);
    const msg = parseHl7(got[0]!.text);
    expect(msg.get('MSH-3')).toBe('LIS2');
    expect(msg.get('MSH-5')).toBe('GDLIS');
    expect(msg.get('MSH-6')).toBe('H4400000001');
    ITEMS.forEach(([, code, name], i) => {
      expect(msg.get(`OBX[${i + 1}]-3.1`)).toBe(code);
      expect(msg.get(`OBX[${i + 1}]-3.2`)).toBe(name);
    });
    expect(msg.get('PID-5.2')).toBe('三丰');
    const m = messageOf('FWDRW-DL-OK')!;
    const page = await (await fetch(`${t.httpUrl}/console/messages/${m.id}?lang=en`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    expect(page).toContain('Rewritten by fwd-lab-dl');
  });

  it('with a map step first, a missing item code dead-letters the delivery after AA with a reason naming table and key; nothing is forwarded', async () => {
    const before = rx.received.length;
    expect(await send(t.port, oru('FWDRW-DL-MISS', ['HGB', 'HGB2'], 'LIS2'))).toMatch(/MSA\|AA\|FWDRW-DL-MISS/);
    const d = await settled(() => messageOf('FWDRW-DL-MISS')?.deliveries[0]);
    expect(d).toMatchObject({ state: 'dead', attempts: 1 });
    expect(d.lastError).toContain('table lab-items has no key "HGB2"');
    expect(rx.received.slice(before)).toHaveLength(0);
    // The stored original still carries the HIS code.
    expect(messageOf('FWDRW-DL-MISS')!.raw!.equals(oru('FWDRW-DL-MISS', ['HGB', 'HGB2'], 'LIS2'))).toBe(true);
  });

  it('logs no patient name or ID number', () => {
    const all = t.logs.join('\n');
    expect(all).not.toContain('440106199003152314');
    expect(all).not.toContain('三丰');
  });
});
