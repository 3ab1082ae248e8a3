/**
 * Recognition platform end to end from MLLP (issue 4 acceptance): a signed
 * lab report ends up at the simulator with its data and PDF; its
 * cancellation revokes it; an ORM gets ZRC segments in its ACK.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';

const sample = (name: string) => readFileSync(path.resolve('samples', name));
const parsed = (name: string) => parseHl7(decodeHl7(sample(name), 'gb18030').text);

interface Report { type: string; reportId: string; status: string; pdf?: string; data: Record<string, unknown> }

async function reports(t: TestEngine): Promise<Record<string, Report>> {
  const res = await fetch(`${t.engine.simulators.recognition!.url}/__sim/state`);
  return ((await res.json()) as { reports: Record<string, Report> }).reports;
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('recognition platform end to end over MLLP', () => {
  let t: TestEngine;
  let client: MllpClient;
  beforeAll(async () => {
    t = await startEngine();
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 15_000 });
  });
  afterAll(async () => {
    client?.close();
    await t?.stop();
  });

  it('uploads a signed lab report with its data and PDF, then revokes it on cancellation', async () => {
    const signed = parsed('15-oru-r01-lab-report-final.hl7');
    const a = parseHl7(decodeHl7(await client.send(sample('15-oru-r01-lab-report-final.hl7')), 'gb18030').text);
    expect(a.get('MSA-1')).toBe('AA');
    const pdfObx = signed.segments('OBX').find((s) => s.get(2) === 'ED')!;
    const pdfBase64 = pdfObx.get(5, 1, 5);
    const uploaded = await until(() => reports(t), (r) => Object.values(r).some((x) => x.type === "lab" && x.pdf));
    const [key, lab] = Object.entries(uploaded).find(([, x]) => x.type === 'lab')!;
    expect(lab.status).toBe('active');
    expect(Buffer.from(lab.pdf!, 'base64').equals(Buffer.from(pdfBase64, 'base64'))).toBe(true);
    expect(JSON.stringify(lab.data)).toContain(signed.get('OBX[1]-3.1'));

    const c = parseHl7(decodeHl7(await client.send(sample('17-oru-r01-lab-report-cancelled.hl7')), 'gb18030').text);
    expect(c.get('MSA-1')).toBe('AA');
    const after = await until(() => reports(t), (r) => r[key]?.status === 'revoked');
    expect(after[key]!.status).toBe('revoked');
  });

  it('answers a new order with one ZRC segment per item in the ACK', async () => {
    const a = parseHl7(decodeHl7(await client.send(sample('12-orm-o01-new-order-lab-exam.hl7')), 'gb18030').text);
    expect(a.get('MSA-1')).toBe('AA');
    const zrc = a.segments('ZRC');
    expect(zrc.length).toBe(parsed('12-orm-o01-new-order-lab-exam.hl7').segments('OBR').length);
    expect(zrc.map((s) => s.get(3)).sort()).toEqual(['N', 'Y']);
  });

  it('withholds a tuberculosis report before it leaves the hospital', async () => {
    const before = Object.keys(await reports(t)).length;
    const a = parseHl7(decodeHl7(await client.send(sample('22-oru-r01-lab-sensitive-tuberculosis.hl7')), 'gb18030').text);
    expect(a.get('MSA-1')).toBe('AA');
    await new Promise((r) => setTimeout(r, 1000));
    expect(Object.keys(await reports(t)).length).toBe(before);
    const audit = t.engine.store.queryAudit({});
    expect(audit.some((r) => r.plugin === 'sensitive-guard')).toBe(true);
  });
});
