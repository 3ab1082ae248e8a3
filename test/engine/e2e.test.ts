/**
 * End to end over real sockets: MLLP in, provincial simulator over HTTP out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { sm4DecryptHex } from '../../core/crypto/index.js';
import { useEngine, withEngine, type TestEngine } from '../helpers/engine.js';

const sample = (name: string) => readFileSync(path.resolve('samples', name));
const DEMO_KEY = '0123456789abcdeffedcba9876543210';

interface SimCall { op: string; verified: boolean; fields?: Record<string, unknown> }

async function simCalls(t: TestEngine): Promise<SimCall[]> {
  const res = await fetch(`${t.engine.simulators.gdEhr!.url}/__sim/calls`);
  return ((await res.json()) as { calls: SimCall[] }).calls;
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function ack(bytes: Buffer) {
  const { text } = decodeHl7(bytes, 'gb18030');
  return parseHl7(text);
}

describe('engine end to end', () => {
  const t = useEngine();
  let client: MllpClient;
  beforeAll(async () => {
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 10_000 });
  });
  afterAll(async () => {
    client?.close();
  });

  it('a consented registration (GBK) is ACKed AA and produces one verified authorization with the right ID number and name', async () => {
    const raw = sample('01-adt-a04-registration-consent.hl7');
    const a = ack(await client.send(raw));
    expect(a.get('MSA-1')).toBe('AA');
    expect(a.get('MSA-2')).toBe('HIS202503120001');
    expect(a.get('MSH-5')).toBe(parseHl7(decodeHl7(raw, 'gb18030').text).get('MSH-3'));
    const calls = await until(() => simCalls(t), (c) => c.some((x) => x.op === 'authorize'));
    const auth = calls.filter((c) => c.op === 'authorize');
    expect(auth).toHaveLength(1);
    expect(auth[0]!.verified).toBe(true);
    const msg = parseHl7(decodeHl7(raw, 'gb18030').text);
    expect(auth[0]!.fields!.patientIdcard).toBe(msg.get('PID-3[5=NI].1'));
    expect(auth[0]!.fields!.patientName).toBe(msg.get('PID-5.1') + msg.get('PID-5.2'));
    expect(auth[0]!.fields!.status).toBe('1');
    // The viewer route answered in the same ACK with a URL that decrypts to the patient's fields.
    const url = new URL(a.get('ZVU-1'));
    const param = sm4DecryptHex(DEMO_KEY, url.searchParams.get('param')!);
    expect(param).toContain(`patientName=${msg.get('PID-5.1')}${msg.get('PID-5.2')}`);
    expect(param).toContain(`idcard=${msg.get('PID-3[5=NI].1')}`);
  });

  it('a registration without consent is ACKed AA and calls nothing', async () => {
    const before = (await simCalls(t)).filter((c) => c.op === 'authorize').length;
    const a = ack(await client.send(sample('02-adt-a04-registration-no-consent.hl7')));
    expect(a.get('MSA-1')).toBe('AA');
    await new Promise((r) => setTimeout(r, 500));
    expect((await simCalls(t)).filter((c) => c.op === 'authorize').length).toBe(before);
  });

  it('a duplicate MSH-10 is re-ACKed with the same code and reply segments, and not dispatched twice', async () => {
    const before = (await simCalls(t)).filter((c) => c.op === 'authorize').length;
    const a = ack(await client.send(sample('01-adt-a04-registration-consent.hl7')));
    expect(a.get('MSA-1')).toBe('AA');
    expect(a.get('MSA-2')).toBe('HIS202503120001');
    // The viewer URL of the original on-complete reply comes back: a HIS that lost the first ACK still gets it.
    expect(a.get('ZVU-1')).toMatch(/getPrivilege\?param=[0-9a-f]+&appId=/);
    await new Promise((r) => setTimeout(r, 500));
    expect((await simCalls(t)).filter((c) => c.op === 'authorize').length).toBe(before);
  });

  it('enhanced mode (MSH-15/16 set) gets a commit ACK CA', async () => {
    const a = ack(await client.send(sample('03-adt-a01-admission-consent.hl7')));
    expect(a.get('MSA-1')).toBe('CA');
  });

  it('malformed HL7 gets AE with an ERR reason and the connection keeps working', async () => {
    const a = ack(await client.send(Buffer.from('MSH|^~\\&|HIS|H|HB|HB|20250101||ADT^A04||P|2.5\rPID|1\r')));
    expect(a.get('MSA-1')).toBe('AE');
    expect(a.get('ERR-8') || a.get('MSA-3')).toMatch(/MSH-10/);
    const b = ack(await client.send(sample('06-adt-a28-add-person-no-msh18.hl7')));
    expect(['AA', 'CA']).toContain(b.get('MSA-1'));
  });

  it('an event no route accepts is ACKed AA by default (accepted and ignored)', async () => {
    const a = ack(await client.send(Buffer.from('MSH|^~\\&|HIS|H|HB|HB|20250101||ZZZ^Z99|NOROUTE1|P|2.5\rPID|1\r')));
    expect(a.get('MSA-1')).toBe('AA');
  });

  it('health endpoints answer', async () => {
    expect((await fetch(`${t.httpUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.httpUrl}/readyz`)).status).toBe(200);
  });

  it('logs never carry the patient name or ID number', async () => {
    const msg = parseHl7(decodeHl7(sample('01-adt-a04-registration-consent.hl7'), 'gb18030').text);
    const all = t.logs.join('\n');
    expect(all).not.toContain(msg.get('PID-3[5=NI].1'));
    expect(all).not.toContain(msg.get('PID-5.1') + msg.get('PID-5.2'));
  });
});

describe('engine options', () => {
  it('answers AR with ERR 200 for an unrouted event when the listener says noRoute: AR', async () => {
    await withEngine({ siteYaml: 'listeners:\n  - { name: mllp, noRoute: AR }\n' }, async (t) => {
      const c = await MllpClient.connect('127.0.0.1', t.port);
      const a = ack(await c.send(Buffer.from('MSH|^~\\&|HIS|H|HB|HB|20250101||ZZZ^Z99|NR2|P|2.5\rPID|1\r')));
      c.close();
      expect(a.get('MSA-1')).toBe('AR');
      expect(a.get('ERR-3.1')).toBe('200');
    });
  });

  it('reload keeps the running routes when the new set is invalid, and takes a valid one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-routes-'));
    const route = (name: string) => `name: ${name}\nmatch: { events: [ADT^A04] }\nack: on-complete\nsteps:\n  - reply: { text: "${name}" }\n`;
    writeFileSync(path.join(dir, 'r.yaml'), route('first'));
    await withEngine({ routesDir: dir }, async (t) => {
      expect(t.engine.routes.routes.map((r) => r.name)).toEqual(['first']);
      writeFileSync(path.join(dir, 'r.yaml'), route('second').replace('steps:', 'stepz:'));
      const bad = await t.engine.reload();
      expect(bad.ok).toBe(false);
      expect(t.engine.routes.routes.map((r) => r.name)).toEqual(['first']);
      const c = await MllpClient.connect('127.0.0.1', t.port);
      expect(ack(await c.send(sample('02-adt-a04-registration-no-consent.hl7'))).get('MSA-3')).toBe('first');
      writeFileSync(path.join(dir, 'r.yaml'), route('second'));
      expect((await t.engine.reload()).ok).toBe(true);
      expect(ack(await c.send(sample('01-adt-a04-registration-consent.hl7'))).get('MSA-3')).toBe('second');
      c.close();
    });
  });
});
