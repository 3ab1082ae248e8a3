/**
 * Issue 11: a resend that only adds or drops the separators ending a segment
 * (`PID|1||123|||` against `PID|1||123`, `123^^`) is the same content, so the
 * same message: a duplicate, not ENGINE_W_CONTROL_ID_REUSED. Units of the
 * content digest, then through a real MLLP socket against a real engine
 * with the shipped routes and the provincial simulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import path from 'node:path';
import { canonicalContent, contentDigest, contentDigestYielding } from '../../core/store/identity.js';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { idNumber } from '../helpers/ids.js';


function registration(controlId: string, patient: number, trailing: boolean): string {
  const t = trailing ? '|||' : '';
  return [
    `MSH|^~\\&|HIS|H1|HISBRIDGE|GDPLAT|20250312093015||ADT^A04^ADT_A01|${controlId}|P|2.5|||||CHN|UNICODE UTF-8${t}`,
    `EVN|A04|20250312093015${t}`,
    `PID|1||PT${patient}^^^HOSP^PI~${idNumber(patient)}^^^CHN^NI||测试^患者${patient}||19900101|M${t}`,
    `PV1|1|O${trailing ? '^^&' : ''}`,
    `ZCN|Y|30${t}`,
    '',
  ].join('\r');
}

describe('content digest: separators that end a segment', () => {
  const a = registration('T1', 1, false);
  const b = registration('T1', 1, true);

  it('are left out of the content, with nothing else', () => {
    expect(contentDigest(b)).toBe(contentDigest(a));
    expect(canonicalContent('MSH|^~\\&|A|B|||20250101||ADT^A04|C|P|2.5|||\rPID|1||123^^|||\rPV1|1|O~|\r')).toBe('MSH|^~\\&|A|B|||||ADT^A04|C|P|2.5\rPID|1||123\rPV1|1|O~');
    // Inside a segment, empty pieces and repetitions still count; so does any other change.
    expect(contentDigest(a.replace('19900101|M', '19900101||M'))).not.toBe(contentDigest(a));
    expect(contentDigest(a.replace('PV1|1|O', 'PV1|1|O~'))).not.toBe(contentDigest(a));
    expect(contentDigest(a.replace('ZCN|Y|30', 'ZCN|Y|31'))).not.toBe(contentDigest(a));
    // MSH-2 is never trimmed, even when nothing follows it.
    expect(canonicalContent('MSH|^~\\&')).toBe('MSH|^~\\&');
  });

  it('the sliced digest of a big message equals the one-go digest, trailing separators or not', async () => {
    const seg = 'OBX|1|NM|WBC^白细胞^HOSP_LAB||6.5|10*9/L|3.5-9.5|N|||F';
    const plain = `MSH|^~\\&|LIS|H1|R|F|20250101||ORU^R01|C9|P|2.5\r${`${seg}\r`.repeat(20_000)}`;
    const padded = plain.replace(/\r/g, '|^|\r');
    expect(await contentDigestYielding(padded)).toBe(contentDigest(plain));
    expect(await contentDigestYielding(plain)).toBe(contentDigest(plain));
  });

  it('a segment of a million separators is read once (no quadratic backtracking)', () => {
    const hostile = `MSH|^~\\&|A|B|||x||ADT^A04|C|P|2.5\rPID|${'|^&'.repeat(1_000_000)}X\rPV1|${'^&|'.repeat(1_000_000)}\r`;
    const t = performance.now();
    expect(canonicalContent(hostile).endsWith('X\rPV1')).toBe(true);
    // Quadratic would take hours; linear takes well under a second, even on a busy machine.
    expect(performance.now() - t).toBeLessThan(10_000);
  });
});

describe('a resend with trimmed separators over MLLP', () => {
  let t: TestEngine;
  let client: MllpClient;
  beforeAll(async () => {
    t = await startEngine();
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 10_000 });
  });
  afterAll(async () => {
    client?.close();
    await t?.stop();
  });

  it('is a duplicate: the first answer again, no second dispatch, no ENGINE_W_CONTROL_ID_REUSED', async () => {
    const ack = (b: Buffer) => parseHl7(decodeHl7(b, 'utf-8').text);
    const first = ack(await client.send(registration('TRIM0001', 7, true)));
    expect(first.get('MSA-1')).toBe('AA');
    const calls = async () =>
      ((await (await fetch(`${t.engine.simulators.gdEhr!.url}/__sim/calls`)).json()) as { calls: { op: string; fields?: Record<string, unknown> }[] }).calls.filter((c) => c.op === 'authorize' && c.fields?.patientIdcard === idNumber(7));
    const end = Date.now() + 10_000;
    while ((await calls()).length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(await calls()).toHaveLength(1);

    const second = ack(await client.send(registration('TRIM0001', 7, false)));
    expect(second.get('MSA-1')).toBe('AA');
    expect(second.get('MSA-3')).toMatch(/duplicate/);
    await new Promise((r) => setTimeout(r, 400));
    expect(await calls()).toHaveLength(1);
    const db = new Database(path.join(t.dataDir, 'store', 'hisbridge.db'), { readonly: true });
    try {
      expect(db.prepare('SELECT COUNT(*) AS n FROM messages WHERE control_id = ?').get('TRIM0001')).toEqual({ n: 1 });
    } finally {
      db.close();
    }
    expect(t.logs.filter((l) => l.includes('ENGINE_W_CONTROL_ID_REUSED'))).toEqual([]);
  });
});
