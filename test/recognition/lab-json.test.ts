/**
 * Issue 11, the 100,000-OBX lab report delivered in under a second: its
 * results are written as JSON bytes straight from the OBX text
 * (labPayloadAndPdfYielding), spliced into the request body by the client,
 * and read back by the simulator from the body's bytes. Each fast path must
 * give exactly what the object path gives: the same JSON text, the same
 * request body and Idempotency-Key on the wire (a real HTTP server), and the
 * same values at the simulator, which still validates every result.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHl7, type Hl7Message } from '../../core/hl7/index.js';
import { createHttpClient } from '../../core/http/client.js';
import { parseJsonBytesYielding } from '../../core/cooperative.js';
import { findPdf, labPayload, labPayloadAndPdfYielding } from '../../plugins/recognition-upload/payload.js';
import { DEFAULT_CARD_TYPES } from '../../plugins/recognition/hl7-patient.js';
import { callKey, createRecognitionClient } from '../../plugins/recognition/client.js';
import { createTokenClient } from '../../plugins/recognition/token.js';
import { readRecognitionSite, recognitionDefaults, renameKeys } from '../../plugins/recognition/site.js';
import { startRecognitionSimulator } from '../../plugins/recognition/simulator.js';
import { compileSensitiveList, DEFAULT_SENSITIVE_CODES, DEFAULT_SENSITIVE_COMBINATIONS } from '../../plugins/recognition/sensitive.js';
import { manyObxSegments } from '../../bench/lib/pathological.js';
import { sampleText } from './harness.js';

const opts = { cardTypes: DEFAULT_CARD_TYPES, findings: /FIND/i, impression: /IMP/i, mask: false };
const org = { orgCode: 'H4413020001', orgName: '测试医院' };

/** OBX the fast path must hand to the object path or read exactly as it does. */
const ODD_OBX = [
  'OBX|1|CE|X1^名字^L||A^甲乙^L|u^v|1-2|H|||F|||20250101',
  'OBX|2|CWE|X2^n||^only2||||||F',
  'OBX|3|ST|X3^q"uote||v\\T\\x|',
  'OBX|4|NM|X4||1~2|g/L~mg',
  'OBX|x|ST|X5&s^nm&x||a&b^c',
  'OBX|0|ST|^nocode||v',
  'OBX|7|ED|PDF^r||^application^pdf^Base64^JVBERi0xLjQK',
  'OBX|1e3|TX|X6|||||||||||',
  'OBX| 8 |ST|X7',
  'OBX|9|CE|X8||A',
  'OBX|Infinity|ST|X9||tab\there',
  'OBX|10|ST|X10||😀 astral',
  'OBX|11|ST|X11||\\X0D\\ hex escape',
  'OBX|12',
  'OBX|13|NM|X13||5|||||||||||extra|fields',
];

function oddReport(): Hl7Message {
  return parseHl7(`${manyObxSegments(3, { controlId: 'ODD1' })}${ODD_OBX.join('\r')}\r`);
}

function reports(): [string, Hl7Message][] {
  return [
    ['sample 15 (lab report)', parseHl7(sampleText('15'))],
    ['sample 16 (corrected)', parseHl7(sampleText('16'))],
    ['sample 22 (sensitive)', parseHl7(sampleText('22'))],
    ['odd OBX', oddReport()],
    ['100,000 OBX', parseHl7(`${manyObxSegments(100_000)}OBX|100001|ED|PDF^Report^L||^application^pdf^Base64^JVBERi0xLjQKJcfs||||||F\r`)],
  ];
}

describe('lab results written as JSON bytes', () => {
  it('are the text JSON.stringify makes of labPayload, with the same PDF, for normal, odd and 100,000-OBX reports', async () => {
    for (const [name, msg] of reports()) {
      const fast = await labPayloadAndPdfYielding(msg, org, 'R1', 'F', opts, { code: undefined });
      expect(JSON.stringify(fast.payload), name).toBe(JSON.stringify(labPayload(msg, org, 'R1', 'F', opts)));
      expect(fast.pdf, name).toEqual(findPdf(msg));
    }
  });

  it('keep the result limit: one past maxResults fails before anything is sent', async () => {
    const msg = parseHl7(manyObxSegments(50));
    expect(JSON.stringify((await labPayloadAndPdfYielding(msg, org, 'R1', 'F', { ...opts, maxResults: 50 }, undefined)).payload)).toBe(JSON.stringify(labPayload(msg, org, 'R1', 'F', { ...opts, maxResults: 50 })));
    await expect(labPayloadAndPdfYielding(msg, org, 'R1', 'F', { ...opts, maxResults: 49 }, undefined)).rejects.toMatchObject({ code: 'RECOG_E_TOO_MANY_RESULTS' });
  });
});

describe('the recognition client sends a JSON-bytes payload as the object path would', () => {
  const seen: { path: string; body: Buffer; key: string | undefined }[] = [];
  let server: http.Server;
  let base = '';
  const client = createHttpClient({ defaultTimeoutMs: 60_000 });
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const path = (req.url ?? '/').split('?')[0]!;
        seen.push({ path, body: Buffer.concat(parts), key: req.headers['idempotency-key'] as string | undefined });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(path.includes('token') ? { code: '0', data: { token: 't-1', expiresIn: 3600 } } : { code: '0', data: {} }));
      });
    });
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it('the same body bytes and Idempotency-Key, with no renames, renames outside the results and renames of result keys', async () => {
    for (const fields of [{}, { patientId: 'brid', orgCode: 'jgdm' }, { code: 'xmdm', value: 'jg', results: 'jgList' }]) {
      const site = readRecognitionSite({ ...recognitionDefaults({ simulatorUrl: base }), fields });
      const rc = createRecognitionClient({ http: client, site, token: createTokenClient(client, site), audit: () => undefined, plugin: 'test' });
      for (const [name, msg] of reports()) {
        const fast = await labPayloadAndPdfYielding(msg, org, 'R1', 'F', opts, undefined);
        seen.length = 0;
        await rc.call('labReport', fast.payload, { idempotencyKey: 'step-key-1' });
        const sent = seen.find((s) => s.path === site.paths.labReport)!;
        const renamed = renameKeys(labPayload(msg, org, 'R1', 'F', opts), site.fields);
        const label = `${name} with fields ${JSON.stringify(fields)}`;
        expect(sent.body.toString('utf8') === JSON.stringify(renamed), label).toBe(true);
        expect(sent.key, label).toBe(callKey('step-key-1', 'labReport', renamed));
      }
    }
  });
});

describe('the recognition simulator reads the 100,000-result upload from its bytes', () => {
  it('validates and stores every result, with the values labPayload gives (Chinese text decoded)', async () => {
    const sim = await startRecognitionSimulator({});
    try {
      const site = readRecognitionSite(recognitionDefaults({ simulatorUrl: sim.url }));
      const client = createHttpClient({ defaultTimeoutMs: 60_000 });
      const rc = createRecognitionClient({ http: client, site, token: createTokenClient(client, site), audit: () => undefined, plugin: 'test' });
      const text = `${manyObxSegments(100_000, { patientId: 'PBIG1' })}OBX|100001|CE|CX^名称^L||A^阳性^L||||||F\r`;
      const msg = parseHl7(text);
      const fast = await labPayloadAndPdfYielding(msg, site.orgCode ? { orgCode: site.orgCode } : {}, 'RBIG1', 'F', opts, undefined);
      await rc.call('labReport', fast.payload, { idempotencyKey: 'k-big' });
      const call = sim.calls.find((c) => c.op === 'labReport')!;
      expect(call.result).toBe('ok');
      expect(call.body).toEqual(JSON.parse(JSON.stringify(labPayload(msg, site.orgCode ? { orgCode: site.orgCode } : {}, 'RBIG1', 'F', opts))));
      expect((call.body.results as Record<string, unknown>[]).at(-1)).toMatchObject({ code: 'CX', name: '名称', value: '阳性' });
      const { reports: stored } = (await (await fetch(`${sim.url}/__sim/reports`)).json()) as { reports: Record<string, unknown>[] };
      expect(stored).toEqual([expect.objectContaining({ reportId: 'RBIG1', resultCount: 100_001 })]);
    } finally {
      await sim.close();
    }
  });
});

describe('parseJsonBytesYielding', () => {
  const cases: string[] = [
    JSON.stringify({ a: '测试', results: Array.from({ length: 5000 }, (_, i) => ({ seq: i, code: `T${i}`, name: i % 7 ? 'x' : '名字', v: i % 11 ? 'y' : 'q"},{"z' })) }),
    JSON.stringify({ items: Array.from({ length: 3000 }, (_, i) => ({ i, sub: [{ a: 1 }, { b: '},{' }] })), next: Array.from({ length: 3000 }, (_, i) => ({ j: i, s: 'é😀' })) }),
    JSON.stringify({ x: Array.from({ length: 4000 }, (_, i) => ({ k: i, esc: 'a\\b\n\u0001 名' })) }, null, 2),
    `\ufeff${JSON.stringify({ bom: Array.from({ length: 6000 }, (_, i) => ({ n: i, s: '测' })) })}`,
  ];
  it('reads what JSON.parse reads from the decoded text: non-ASCII in and out of runs, "},{" in strings, nested runs, whitespace, a byte order mark, renames', async () => {
    for (const t of cases) {
      const bytes = Buffer.from(t, 'utf8');
      expect(bytes.length).toBeGreaterThan(64 * 1024);
      const plain = JSON.parse(t.replace(/^\ufeff/, '')) as unknown;
      expect(await parseJsonBytesYielding(bytes)).toEqual(plain);
      const up = (await parseJsonBytesYielding(bytes, { renameKey: (k) => k.toUpperCase() })) as Record<string, unknown>;
      expect(Object.keys(up)).toEqual(Object.keys(plain as object).map((k) => k.toUpperCase()));
    }
  });

  it('refuses invalid JSON with a SyntaxError, and reads invalid UTF-8 as U+FFFD as Buffer#toString does', async () => {
    const good = Buffer.from(cases[0]!, 'utf8');
    for (const bad of [cases[0]!.replace('"seq":40,', '"seq":40,,'), cases[0]!.slice(0, -2), `${cases[0]!}x`]) {
      await expect(parseJsonBytesYielding(Buffer.from(bad, 'utf8'))).rejects.toThrow(SyntaxError);
    }
    const broken = Buffer.from(good);
    const at = broken.indexOf(Buffer.from('名字', 'utf8'));
    broken[at + 1] = 0x41;
    expect(await parseJsonBytesYielding(broken)).toEqual(JSON.parse(broken.toString('utf8')));
  });
});

describe('sensitive scan with the category pre-check', () => {
  const codes = ['F20', 'F29.9', 'f25.1', ' F31.2 ', 'F32', 'F32.3', 'F06.1', 'F06.3', 'G40.9', 'Z210', 'Z21', 'T12', 'HIVAB', 'HIV-1', 'F2', 'F', 'A15.0', 'F20X9', 'F71'];
  const msg = parseHl7(['MSH|^~\\&|LIS|H1|HB|H2|20250101||ORU^R01|C1|P|2.5', 'PID|1||P1^^^^PI', ...codes.map((c, i) => `OBX|${i + 1}|ST|${c}^n||v`)].join('\r'));
  it.each([
    ['defaults', DEFAULT_SENSITIVE_CODES],
    ['with an exact ICD-like code', [...DEFAULT_SENSITIVE_CODES, 'F20X9']],
    ['with a short prefix (no pre-check)', [...DEFAULT_SENSITIVE_CODES, 'F2*']],
    ['with a non-ICD code (no pre-check)', [...DEFAULT_SENSITIVE_CODES, 'HIVAB', 'HIV*']],
    ['subcategories only', ['F32.3', 'F06.0-F06.2', 'Z21']],
  ])('finds every listed code (%s)', async (_name, list) => {
    const m = compileSensitiveList(list);
    const want = codes.map((c) => c.trim()).filter((c) => m.test(c));
    expect(m.scan(msg)).toEqual(want);
    expect(await m.scanYielding(msg)).toEqual(want);
    const withCombos = compileSensitiveList(list, DEFAULT_SENSITIVE_COMBINATIONS);
    expect(withCombos.scan(msg)).toEqual(expect.arrayContaining([...want, 'F06.1', 'G40.9', 'F71']));
  });
});
