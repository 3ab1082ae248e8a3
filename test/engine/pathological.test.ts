/**
 * Issue 11, observed item 6: 40,000 repetitions in PID-3 blocked the event
 * loop for about 14 s with the shipped recognition routes (100,000: 105 s),
 * stalling every other sender's ACK. Here the real engine with the shipped
 * routes and the built-in simulators gets the pathological messages on one
 * MLLP connection while a second connection keeps sending normal
 * registrations; the normal traffic must keep being ACKed, and the big
 * messages must be ACKed, routed and delivered. The bounds are generous
 * (seconds, where the bug took minutes): this is not a timing gate.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { manyObxSegments, manyPid3Repetitions, syntheticIdNumber } from '../../bench/lib/pathological.js';
import { useEngine } from '../helpers/engine.js';

const ackOf = (bytes: Buffer) => parseHl7(decodeHl7(bytes, 'utf-8').text);

async function until<T>(fn: () => T | Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  return (await res.json()) as T;
}

describe('pathological messages beside normal traffic (issue 11)', () => {
  const t = useEngine();
  let normal: MllpClient;
  let big: MllpClient;
  beforeAll(async () => {
    normal = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 60_000 });
    big = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 120_000 });
  });
  afterAll(async () => {
    normal?.close();
    big?.close();
  });

  it('keeps ACKing normal traffic while 100,000 repetitions and 100,000 OBX are processed; the big ones are ACKed, routed and delivered', async () => {
    const bigOnes = [
      { name: '100,000 PID-3 repetitions, ADT^A04', controlId: 'BIGREPADT', patientId: 'PBIG0001', text: manyPid3Repetitions(100_000, 'ADT^A04', { controlId: 'BIGREPADT', patientId: 'PBIG0001' }) },
      { name: '100,000 PID-3 repetitions, ORU^R01', controlId: 'BIGREPORU', patientId: 'PBIG0002', text: manyPid3Repetitions(100_000, 'ORU^R01', { controlId: 'BIGREPORU', patientId: 'PBIG0002' }) },
      { name: '100,000 OBX, ORU^R01', controlId: 'BIGOBX', patientId: 'PBIG0003', text: manyObxSegments(100_000, { controlId: 'BIGOBX', patientId: 'PBIG0003' }) },
    ];
    expect(Buffer.byteLength(bigOnes[0]!.text)).toBeGreaterThan(1_400_000);

    // Normal traffic: one small registration after the other, as a HIS sends them.
    const normalAcks: { at: number; code: string }[] = [];
    let stop = false;
    const traffic = (async () => {
      for (let i = 0; !stop; i++) {
        const a = ackOf(await normal.send(Buffer.from(manyPid3Repetitions(1, 'ADT^A04', { controlId: `NORMAL${i}`, patientId: `PN${i}` }), 'utf8')));
        normalAcks.push({ at: Date.now(), code: a.get('MSA-1') });
      }
    })();
    await until(() => normalAcks.length, (n) => n >= 3, 30_000);

    const windows: { name: string; from: number; to: number; ack: ReturnType<typeof ackOf> }[] = [];
    for (const b of bigOnes) {
      const from = Date.now();
      const ack = ackOf(await big.send(Buffer.from(b.text, 'utf8')));
      windows.push({ name: b.name, from, to: Date.now(), ack });
    }
    // A little more normal traffic after the last big ACK, then stop.
    const after = normalAcks.length;
    await until(() => normalAcks.length, (n) => n >= after + 2, 30_000);
    stop = true;
    await traffic;

    for (const w of windows) {
      expect(w.ack.get('MSA-1'), w.name).toBe('AA');
    }
    // The on-complete provincial viewer route answered in the ACK of the registration.
    expect(windows[0]!.ack.get('ZVU-1')).toMatch(/getPrivilege\?param=[0-9a-f]+&appId=/);
    expect(normalAcks.every((a) => a.code === 'AA')).toBe(true);

    // While the big ones were in the engine, normal ACKs kept coming: no gap of seconds (the bug: 14 s to 105 s).
    const first = windows[0]!.from;
    const last = windows.at(-1)!.to;
    const during = normalAcks.filter((a) => a.at >= first && a.at <= last);
    expect(during.length).toBeGreaterThanOrEqual(3);
    const times = [first, ...normalAcks.map((a) => a.at).filter((at) => at > first && at < last + 10_000)];
    let longestGap = 0;
    for (let i = 1; i < times.length; i++) longestGap = Math.max(longestGap, times[i]! - times[i - 1]!);
    expect(longestGap).toBeLessThan(5_000);

    // Delivered: everything settles, then the remotes show the effects.
    const pending = await until(() => t.engine.store.pendingCount(), (n) => n === 0, 90_000);
    expect(pending).toBe(0);

    const gd = await getJson<{ calls: { op: string; fields?: Record<string, unknown> }[] }>(`${t.engine.simulators.gdEhr!.url}/__sim/calls`);
    const bigAuth = gd.calls.filter((c) => c.op === 'authorize' && c.fields?.patientIdcard === syntheticIdNumber(100_000));
    expect(bigAuth, JSON.stringify(gd.calls.filter((c) => c.op === 'authorize').slice(-2))).toHaveLength(1);
    const rec = await getJson<{ patients: Record<string, Record<string, unknown>> }>(`${t.engine.simulators.recognition!.url}/__sim/state`);
    expect(rec.patients.PBIG0001).toMatchObject({ patientId: 'PBIG0001', idNumber: syntheticIdNumber(100_000), idType: '01' });
    const reports = (await getJson<{ reports: { type: string; patientId?: string; status: string; resultCount?: number; distinctCodes?: number }[] }>(`${t.engine.simulators.recognition!.url}/__sim/reports`)).reports;
    expect(reports.some((r) => r.type === 'lab' && r.patientId === 'PBIG0002')).toBe(true);

    // The 100,000-OBX lab report is delivered whole, in one upload (the platform has no paging): the
    // simulator holds one active lab report for the patient with all 100,000 results, each code once.
    const [summary] = t.engine.store.searchMessages({ controlId: 'BIGOBX', limit: 10 });
    const detail = t.engine.store.getMessage(summary!.id)!;
    const upload = detail.deliveries.find((d) => d.route === 'recognition-lab' && d.plugin === 'recognition-upload')!;
    expect(upload.state, upload.lastErrorCode ?? '').toBe('done');
    const obxReport = reports.filter((r) => r.patientId === 'PBIG0003');
    expect(obxReport).toEqual([expect.objectContaining({ type: 'lab', status: 'active', resultCount: 100_000, distinctCodes: 100_000 })]);
    const calls = await getJson<{ calls: { op: string; result: string; body: { patient?: { patientId?: string } } }[] }>(`${t.engine.simulators.recognition!.url}/__sim/calls`);
    expect(calls.calls.filter((c) => c.op === 'labReport' && c.body.patient?.patientId === 'PBIG0003').map((c) => c.result)).toEqual(['ok']);
  }, 240_000);

  it('exports the event-loop delay: a 150 ms stall shows in /metrics', async () => {
    await fetch(`${t.httpUrl}/metrics`).then((r) => r.text());
    // The scrape restarts the window; its first sample comes one period (10 ms) later, so stall after that.
    await new Promise((r) => setTimeout(r, 40));
    const end = Date.now() + 150;
    while (Date.now() < end) {
      // Stall the loop on purpose (the engine runs in this process).
    }
    await new Promise((r) => setTimeout(r, 30));
    const text = await fetch(`${t.httpUrl}/metrics`).then((r) => r.text());
    const value = (q: string) => Number(new RegExp(`^hisbridge_event_loop_delay_seconds\\{quantile="${q.replace('.', '\\.')}"\\} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('1')).toBeGreaterThanOrEqual(0.1);
    expect(value('0.99')).toBeGreaterThanOrEqual(0);
    expect(value('0.5')).toBeLessThan(value('1'));
    expect(Number(/^hisbridge_event_loop_delay_max_seconds (\S+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(0.1);
  });
});
