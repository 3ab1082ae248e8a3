/**
 * Code tables, the map step and the hl7 step through the real engine (issue 17):
 * messages over a real MLLP socket, the real store and delivery worker, and a
 * real HTTP server standing in for the results platform.
 *
 * - lookups in a GBK table (charset: gbk), a UTF-8 table with a byte order
 *   mark that wins over a declared gbk, and a plain UTF-8 table;
 * - the map step: each: OBX with a condition, number and date types, nested
 *   objects, handed to the http body as JSON;
 * - missing keys: error dead-letters the delivery with a reason naming table
 *   and key (also from a map step, which runs with the delivery), and a replay
 *   after the table is fixed and reloaded delivers it; keep gives the key; default gives the table's default;
 * - the hl7 step: set (escaped), clear, remove; the delivery sees the
 *   rewritten message, the stored original is unchanged and the console page
 *   shows the rewritten message next to it;
 * - a reload with a broken table keeps the old tables; a fixed one replaces them.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { messageDetailPage } from '../../core/ops/console/pages.js';
import { html } from '../../core/ops/console/html.js';
import { translator } from '../../core/ops/console/i18n.js';
import { REWRITTEN_HL7_VAR } from '../../core/routes/rewrite.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';

interface Call {
  path: string;
  body: unknown;
}

async function until<T>(fn: () => T, ok: (v: T) => boolean, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const ackOf = (b: Buffer) => parseHl7(decodeHl7(b, 'utf-8').text);

const LAB_ITEMS = 'hisCode,platformCode,name\nHGB,GD-LAB-0001,血红蛋白\nWBC,GD-LAB-0002,白细胞计数\nGLU,GD-LAB-0101,"葡萄糖, 空腹"\n';
const DEPT = 'hisCode,platformCode,name\n0101,NK01,内科\n0102,WK01,外科\n';

const oru = (cid: string, obx: string[], pv1 = '0101') =>
  [
    `MSH|^~\\&|HIS|H1|HB|HB|20250312093015||ORU^R01^ORU_R01|${cid}|P|2.5`,
    'PID|1||PT0001^^^H^PI||ZHANG^SAN',
    `PV1|1|O|${pv1}^^^H1`,
    'OBR|1|ORD01|RPT01|CBC^Blood count|||20250312080000|||||||||||||||20250312091500',
    ...obx,
    'ZCN|Y',
  ].join('\r') + '\r';

const ROUTES = (base: string) => `routes:
  - name: lab-map
    match: { events: [ORU^R01], sender: { application: HIS } }
    when: []
    steps:
      - plugin: map
        as: report
        config:
          fields:
            reportNo: "\${OBR-3.1}"
            department: "\${PV1-3.1|lookup:dept}"
            departmentName: "\${PV1-3.1|lookup:dept.name}"
            reportTime: { path: OBR-22, type: date }
            reportDay: { path: OBR-22, type: date, format: YYYY/MM/DD }
            meta: { fields: { version: 1, source: "\${MSH-3}" } }
            results:
              each: OBX
              when: { path: OBX-11, equals: F }
              fields:
                itemCode: "\${OBX-3.1|lookup:lab-items.platformCode}"
                itemName: "\${OBX-3.1|lookup:lab-items.name}"
                value: { path: OBX-5, type: number, when: { path: OBX-2, equals: NM } }
                text: { path: OBX-5, when: { path: OBX-2, notEquals: NM } }
                unit: "\${OBX-6.1|lookup:units}"
                flag: { path: OBX-8, default: N }
      - name: post
        plugin: http
        config: { url: "${base}/results", body: "\${vars.report}" }
  - name: adt-forward
    match: { events: [ADT^A08] }
    steps:
      - plugin: hl7
        config:
          set:
            MSH-5: LIS
            MSH-6: "LAB|2"
            PV1-3.1: "\${PV1-3.1|lookup:dept}"
            PID-3[2].1: "X^Y&Z~W\\\\V"
          clear: [PID-5]
          remove: [ZCN]
      - name: forward
        plugin: http
        config: { url: "${base}/forward", body: { hl7: "\${msg.controlId}", receiver: "\${MSH-5}", dept: "\${PV1-3.1}", pid2: "\${PID-3[2].1}", name: "\${PID-5}", zcn: "\${ZCN-1}" } }
  - name: two-calls
    match: { events: [ORU^R30] }
    steps:
      - plugin: map
        as: v
        config: { fields: { item: "\${OBX-3.1|lookup:lab-items.platformCode}" } }
      - set: { code: "\${vars.v.item}" }
      - name: first
        plugin: http
        config: { url: "${base}/first", body: "\${vars.v}" }
      - name: second
        plugin: http
        config: { url: "${base}/second", body: { v: "\${vars.v}", code: "\${vars.code}" } }
  - name: order-codes
    match: { events: [ORM^O01] }
    delivery: { retry: { max: 3, initial: 50ms } }
    steps:
      - name: order
        plugin: http
        config: { url: "${base}/order", body: { item: "\${OBR-4.1|lookup:lab-items.platformCode}" } }
`.replace('    when: []\n', '');

describe('code tables, map and hl7 steps through the engine', () => {
  let server: http.Server;
  let base: string;
  const calls: Call[] = [];
  let t: TestEngine;
  let client: MllpClient;
  let root: string;
  let tablesDir: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString('utf8')));
      req.on('end', () => {
        calls.push({ path: req.url ?? '', body: text ? (JSON.parse(text) as unknown) : undefined });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    root = mkdtempSync(path.join(tmpdir(), 'hisbridge-tables-'));
    const routesDir = path.join(root, 'routes');
    tablesDir = path.join(root, 'tables');
    mkdirSync(routesDir);
    mkdirSync(tablesDir);
    writeFileSync(path.join(routesDir, 'lab.yaml'), ROUTES(base));
    // GBK, declared.
    writeFileSync(path.join(tablesDir, 'lab-items.csv'), iconv.encode(LAB_ITEMS, 'gbk'));
    writeFileSync(path.join(tablesDir, 'lab-items.yaml'), 'charset: gbk\n');
    // UTF-8 with a byte order mark: the mark wins over the declared gbk.
    writeFileSync(path.join(tablesDir, 'dept.csv'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(DEPT, 'utf8')]));
    writeFileSync(path.join(tablesDir, 'dept.yaml'), 'charset: gbk\nmissing: default\ndefault: "9999"\n');
    // Plain UTF-8, keep.
    writeFileSync(path.join(tablesDir, 'units.csv'), 'local,platform\ng/L,克/升\n');
    writeFileSync(path.join(tablesDir, 'units.yaml'), 'missing: keep\n');
    t = await startEngine({ routesDir });
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 15_000 });
  });

  afterAll(async () => {
    client?.close();
    await t?.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(root, { recursive: true, force: true });
  });

  const messageOf = (cid: string) => {
    const [m] = t.engine.store.searchMessages({ controlId: cid, limit: 5 });
    return t.engine.store.getMessage(m!.id)!;
  };
  const callsTo = (p: string) => calls.filter((c) => c.path === p);

  it('maps a lab report through GBK, BOM and UTF-8 tables into a typed JSON result list', async () => {
    const ack = ackOf(await client.send(oru('TBL0001', [
      'OBX|1|NM|HGB^Hemoglobin||135|g/L|130-175|N|||F',
      'OBX|2|NM|WBC^WBC||6.5|10^9/L|3.5-9.5||||F',
      'OBX|3|ST|GLU^Glucose||see note|mmol/L|||||F',
      'OBX|4|NM|HGB^Hemoglobin||999|g/L|||||P',
    ])));
    expect(ack.get('MSA-1')).toBe('AA');
    await until(() => callsTo('/results'), (c) => c.length === 1, 'the results call');
    expect(callsTo('/results')[0]!.body).toEqual({
      reportNo: 'RPT01',
      department: 'NK01',
      departmentName: '内科',
      reportTime: '2025-03-12 09:15:00',
      reportDay: '2025/03/12',
      meta: { version: 1, source: 'HIS' },
      results: [
        { itemCode: 'GD-LAB-0001', itemName: '血红蛋白', value: 135, unit: '克/升', flag: 'N' },
        // OBX-6.1 is "10" (the ^ splits it); units keeps a unit it does not know.
        { itemCode: 'GD-LAB-0002', itemName: '白细胞计数', value: 6.5, unit: '10', flag: 'N' },
        { itemCode: 'GD-LAB-0101', itemName: '葡萄糖, 空腹', text: 'see note', unit: 'mmol/L', flag: 'N' },
      ],
    });
  });

  it('a department missing from a default table gives its default', async () => {
    await client.send(oru('TBL0002', ['OBX|1|NM|HGB||140|g/L|||||F'], '0999'));
    const c = await until(() => callsTo('/results'), (x) => x.length === 2, 'the second results call');
    expect(c[1]!.body).toMatchObject({ department: '9999', departmentName: '9999' });
  });

  it('a lab item missing from an error table dead-letters the delivery with the reason; fixed table, reload and replay deliver it', async () => {
    const before = callsTo('/results').length;
    const ack = ackOf(await client.send(oru('TBL0003', ['OBX|1|NM|XYZ9||1|g/L|||||F'])));
    // The map step runs with the delivery (a transform step), after the message is safely stored.
    expect(ack.get('MSA-1')).toBe('AA');
    const d = await until(() => messageOf('TBL0003').deliveries[0], (x) => x?.state === 'dead', 'the delivery to be dead');
    expect(d!.attempts).toBe(1);
    expect(d!.lastErrorCode).toBe('ROUTE_E_LOOKUP_MISSING');
    expect(d!.lastError).toBe('table lab-items has no key "XYZ9"');
    expect(callsTo('/results').length).toBe(before);

    // The site adds the code, reloads, and replays the dead letter: the map step runs again with the new table.
    writeFileSync(path.join(tablesDir, 'lab-items.csv'), iconv.encode(LAB_ITEMS + 'XYZ9,GD-LAB-0999,新项目\n', 'gbk'));
    expect((await t.engine.reload()).ok).toBe(true);
    expect(t.engine.store.requeue({ ids: [d!.id] })).toBe(1);
    await until(() => messageOf('TBL0003').deliveries[0]!.state, (x) => x === 'done', 'the replayed delivery to be done');
    const c = callsTo('/results');
    expect(c.length).toBe(before + 1);
    expect(c.at(-1)!.body).toMatchObject({ reportNo: 'RPT01', results: [{ itemCode: 'GD-LAB-0999', itemName: '新项目', value: 1 }] });
  });

  it('a missing key in an outbound step dead-letters its delivery with a reason naming table and key', async () => {
    const order = (cid: string, item: string) => `MSH|^~\\&|HIS|H1|HB|HB|20250312093015||ORM^O01|${cid}|P|2.5\rPID|1||PT0001^^^H^PI\rORC|NW|ORD9\rOBR|1|ORD9||${item}^x\r`;
    expect(ackOf(await client.send(order('TBL0101', 'NOPE1'))).get('MSA-1')).toBe('AA');
    const d = await until(() => messageOf('TBL0101').deliveries[0], (x) => x?.state === 'dead', 'the delivery to be dead');
    expect(d!.attempts).toBe(1);
    expect(d!.lastErrorCode).toBe('ROUTE_E_LOOKUP_MISSING');
    expect(d!.lastError).toBe('table lab-items has no key "NOPE1"');
    expect(t.engine.store.listDead().map((x) => x.id)).toContain(d!.id);
    expect(callsTo('/order')).toEqual([]);
    await client.send(order('TBL0102', 'WBC'));
    const c = await until(() => callsTo('/order'), (x) => x.length === 1, 'the order call');
    expect(c[0]!.body).toEqual({ item: 'GD-LAB-0002' });
  });

  it('every delivery after a map step has its result: the map and set steps run again before the second call', async () => {
    const m = `MSH|^~\\&|HIS|H1|HB|HB|20250312093015||ORU^R30|TBL0201|P|2.5\rPID|1||PT0001^^^H^PI\rOBX|1|NM|WBC||1|g/L|||||F\r`;
    expect(ackOf(await client.send(m)).get('MSA-1')).toBe('AA');
    await until(() => callsTo('/second'), (x) => x.length === 1, 'the second call');
    expect(callsTo('/first').map((c) => c.body)).toEqual([{ item: 'GD-LAB-0002' }]);
    expect(callsTo('/second').map((c) => c.body)).toEqual([{ v: { item: 'GD-LAB-0002' }, code: 'GD-LAB-0002' }]);
  });

  it('rewrites the message for the later steps (escaped, cleared, removed) while the stored original stays as received', async () => {
    const sent = 'MSH|^~\\&|HIS|H1|HB|HB|20250312093015||ADT^A08|TBL0004|P|2.5\rPID|1||PT0001^^^H^PI||ZHANG^SAN\rPV1|1|I|0102^^^H1\rZCN|Y\r';
    expect(ackOf(await client.send(sent)).get('MSA-1')).toBe('AA');
    const c = await until(() => callsTo('/forward'), (x) => x.length === 1, 'the forward call');
    expect(c[0]!.body).toEqual({ hl7: 'TBL0004', receiver: 'LIS', dept: 'WK01', pid2: 'X^Y&Z~W\\V', name: '', zcn: '' });
    const m = messageOf('TBL0004');
    await until(() => messageOf('TBL0004').deliveries[0]!.state, (s) => s === 'done', 'the delivery to be done');
    // The stored body is the message as received.
    expect(m.raw!.toString('utf8')).toBe(sent);
    const rewritten = m.deliveries[0]!.vars[REWRITTEN_HL7_VAR] as string;
    expect(rewritten.split('\r')).toEqual([
      'MSH|^~\\&|HIS|H1|LIS|LAB\\F\\2|20250312093015||ADT^A08|TBL0004|P|2.5',
      'PID|1||PT0001^^^H^PI~X\\S\\Y\\T\\Z\\R\\W\\E\\V||',
      'PV1|1|I|WK01^^^H1',
      '',
    ]);
    // The console's message page shows the rewritten message next to the original.
    const page = String(messageDetailPage(translator('en'), m, html`<div>original</div>`));
    expect(page).toContain('Rewritten by adt-forward');
    expect(page).toContain('LAB\\F\\2');
  });

  it('a reload with a broken table keeps the old tables; a fixed table replaces them', async () => {
    const file = path.join(tablesDir, 'dept.csv');
    writeFileSync(file, 'hisCode,platformCode,name\n0101,NK02,内科\n0101,NK03,内科\n');
    const bad = await t.engine.reload();
    expect(bad.ok).toBe(false);
    expect(bad.ok === false && bad.issues.join('\n')).toContain(`${file}:3:1: table dept: key "0101" appears twice`);
    // Counted from the calls so far (the replay in the test above made one more).
    let n = callsTo('/results').length;
    await client.send(oru('TBL0005', ['OBX|1|NM|HGB||140|g/L|||||F']));
    let c = await until(() => callsTo('/results'), (x) => x.length === n + 1, 'the call after the refused reload');
    expect(c[n]!.body).toMatchObject({ department: 'NK01' });

    // A byte order mark, as before: without one the declared gbk would apply.
    writeFileSync(file, '\ufeffhisCode,platformCode,name\n0101,NK02,内科一\n');
    expect((await t.engine.reload()).ok).toBe(true);
    n = c.length;
    await client.send(oru('TBL0006', ['OBX|1|NM|HGB||140|g/L|||||F']));
    c = await until(() => callsTo('/results'), (x) => x.length === n + 1, 'the call after the good reload');
    expect(c[n]!.body).toMatchObject({ department: 'NK02', departmentName: '内科一' });
  });
});
