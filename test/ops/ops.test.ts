/**
 * Operations through a real engine: every sample over MLLP, the simulators'
 * own call records compared with the audit trail and the call statistics,
 * a dead letter replayed through the console API, /metrics parsed after it,
 * PHI scans of the store, the logs and the metric labels.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { OpsQueries, type StatsReport } from '../../core/ops/queries.js';
import { DB_FILE } from '../../core/store/sqlite.js';
import type { TestEngine } from '../helpers/engine.js';
import { run as runAudit } from '../../core/cli/cmd-audit.js';
import { run as runStats } from '../../core/cli/cmd-stats.js';
import {
  CONSOLE_TOKEN, metricValue, parseMetrics, sample, sampleFiles, samplePhi, startOpsEngine, until, withControlId,
} from './fixtures.js';

interface GdCall { op: string }
interface RecogCall { op: string; result: string }

const auth = { authorization: `Bearer ${CONSOLE_TOKEN}` };

async function json<T>(url: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const r = await fetch(url, init);
  return { status: r.status, body: (await r.json()) as T };
}

/** Runs a CLI command in-process and captures what it writes to stdout. */
async function cli(run: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((c: string | Uint8Array) => (chunks.push(String(c)), true)) as typeof process.stdout.write;
  try {
    const code = await run(argv);
    return { code, out: chunks.join('') };
  } finally {
    process.stdout.write = write;
  }
}

describe('operations on a running engine', () => {
  let t: TestEngine;
  let client: MllpClient;
  let gdUrl: string;
  let recogUrl: string;
  const storeDir = () => path.join(t.dataDir, 'store');

  beforeAll(async () => {
    t = await startOpsEngine();
    gdUrl = t.engine.simulators.gdEhr!.url;
    recogUrl = t.engine.simulators.recognition!.url;
    client = await MllpClient.connect('127.0.0.1', t.port, { timeoutMs: 15_000 });
    for (const f of sampleFiles()) await client.send(sample(f));
    // A workstation request (viewer URL) is audited too.
    const one = parseHl7(decodeHl7(sample('01-adt-a04-registration-consent.hl7'), 'gb18030').text);
    const q = new URLSearchParams({ staffNo: 'D001', staffName: 'Doc', cardType: '01', idcard: one.get('PID-3[5=NI].1'), patientName: 'X', patientId: one.get('PID-3[5=PI].1'), format: 'json' });
    expect((await fetch(`${t.httpUrl}/api/gd-ehr/viewer-url?${q}`)).status).toBe(200);
    await until(() => t.engine.store.pendingCount(), (n) => n === 0, 30_000);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await t?.stop();
  });

  it('writes an audit row for every call the simulators saw, and the statistics equal their counts', async () => {
    const gd = (await json<{ calls: GdCall[] }>(`${gdUrl}/__sim/calls`)).body.calls;
    const recog = (await json<{ calls: RecogCall[] }>(`${recogUrl}/__sim/calls`)).body.calls;
    expect(gd.filter((c) => c.op === 'authorize').length).toBeGreaterThan(0);
    expect(recog.length).toBeGreaterThan(0);

    const { status, body } = await json<StatsReport>(`${t.httpUrl}/api/stats?by=operation`, { headers: auth });
    expect(status).toBe(200);
    const calls = (suffix: string, prefix: string) => body.groups.filter((g) => g.key.startsWith(prefix) && g.key.endsWith(`/${suffix}`)).reduce((s, g) => s + g.total, 0);
    expect(calls('authorize', 'gd-ehr-authorize/')).toBe(gd.filter((c) => c.op === 'authorize').length);
    for (const op of new Set(recog.map((c) => c.op))) {
      expect({ op, audited: calls(op, 'recognition') }).toEqual({ op, audited: recog.filter((c) => c.op === op).length });
    }
    // Every kind of call has rows: outbound deliveries, the inline viewer URL route, the workstation API, token requests.
    const ops = new Set(body.groups.map((g) => g.key));
    expect(ops).toContain('gd-ehr-authorize/authorize');
    expect(ops).toContain('gd-ehr/viewer-url');
    expect(ops).toContain('recognition/token');
    const q = OpsQueries.open(storeDir());
    try {
      const rows = [...q.auditRows({ plugin: 'gd-ehr', operation: 'viewer-url' })];
      expect(rows.some((r) => r.staffNo === 'D001' && r.patientHash && r.patientMasked?.includes('*'))).toBe(true);
      // Totals per day add up to the grand total.
      expect(body.days.reduce((s, d) => s + d.total, 0)).toBe(body.totals.total);
      expect(body.totals.total).toBe(body.totals.ok + body.totals.failed);
    } finally {
      q.close();
    }
  });

  it('groups statistics by institution and refuses /api/stats without credentials', async () => {
    const byOrg = (await json<StatsReport>(`${t.httpUrl}/api/stats?by=org`, { headers: auth })).body;
    const byOp = (await json<StatsReport>(`${t.httpUrl}/api/stats?by=operation`, { headers: auth })).body;
    expect(byOrg.totals).toEqual(byOp.totals);
    expect(byOrg.groups.some((g) => g.key !== '(none)' && g.total > 0)).toBe(true);
    expect((await fetch(`${t.httpUrl}/api/stats`)).status).toBe(401);
    expect((await fetch(`${t.httpUrl}/api/stats`, { headers: { authorization: 'Bearer wrong-token-0000000000' } })).status).toBe(401);
    expect((await fetch(`${t.httpUrl}/api/stats?by=patient`, { headers: auth })).status).toBe(400);
  });

  it('dead-letters a refused authorization, replays it through the console API, and /metrics shows the whole story', async () => {
    expect((await fetch(`${gdUrl}/__sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ returnCode0: true, count: 1 }) })).status).toBe(200);
    const ack = parseHl7(decodeHl7(await client.send(withControlId('01-adt-a04-registration-consent.hl7', 'OPSDEAD0001')), 'gb18030').text);
    expect(ack.get('MSA-1')).toBe('AA');
    const dead = await until(() => t.engine.store.listDead(), (d) => d.some((x) => x.controlId === 'OPSDEAD0001'));
    const d = dead.find((x) => x.controlId === 'OPSDEAD0001')!;
    expect(d.lastErrorCode).toBe('GDEHR_E_BUSINESS');
    const before = parseMetrics(await (await fetch(`${t.httpUrl}/metrics`)).text());
    expect(metricValue(before, 'hisbridge_deliveries_current', { state: 'dead' })).toBe(1);

    // Without the token (and without a session) the replay is refused.
    expect((await fetch(`${t.httpUrl}/console/dead/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: d.id }) })).status).toBe(401);
    const r = await json<{ requeued: number; redirect: string }>(`${t.httpUrl}/console/dead/replay`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ id: String(d.id) }) });
    expect(r.status).toBe(200);
    expect(r.body.requeued).toBe(1);
    expect(r.body.redirect).toBe(`/console/messages/${d.messageId}`);
    const m = await until(() => t.engine.store.getMessage(d.messageId)!, (x) => x.status === 'done');
    expect(m.deliveries[0]!.state).toBe('done');
    // Replaying it again is refused: it is no longer dead.
    expect((await fetch(`${t.httpUrl}/console/dead/replay`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ id: String(d.id) }) })).status).toBe(409);

    const res = await fetch(`${t.httpUrl}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    const s = parseMetrics(text);
    const files = sampleFiles().length;
    expect(metricValue(s, 'hisbridge_messages_received_total', { listener: 'mllp' })).toBe(files + 1);
    expect(metricValue(s, 'hisbridge_messages_acked_total', { listener: 'mllp' })).toBe(files + 1);
    expect(metricValue(s, 'hisbridge_route_matches_total', { route: 'gd-ehr-authorize' })).toBeGreaterThanOrEqual(5);
    expect(metricValue(s, 'hisbridge_dead_letters_total', { route: 'gd-ehr-authorize', plugin: 'gd-ehr-authorize', code: 'GDEHR_E_BUSINESS' })).toBe(1);
    expect(metricValue(s, 'hisbridge_dead_letter_replays_total', { via: 'console' })).toBe(1);
    expect(metricValue(s, 'hisbridge_deliveries_total', { route: 'gd-ehr-authorize', outcome: 'dead' })).toBe(1);
    const gdCalls = (await json<{ calls: GdCall[] }>(`${gdUrl}/__sim/calls`)).body.calls.filter((c) => c.op === 'authorize').length;
    // Every authorize call the simulator saw is one settled attempt (done or dead).
    expect(metricValue(s, 'hisbridge_deliveries_total', { plugin: 'gd-ehr-authorize', outcome: 'done' }) + metricValue(s, 'hisbridge_deliveries_total', { plugin: 'gd-ehr-authorize', outcome: 'dead' })).toBe(gdCalls);
    // Latency is observed for every settled attempt, including the ones skipped without a call (no consent).
    expect(metricValue(s, 'hisbridge_delivery_latency_seconds_count', { plugin: 'gd-ehr-authorize' })).toBe(gdCalls + metricValue(s, 'hisbridge_deliveries_total', { plugin: 'gd-ehr-authorize', outcome: 'skipped' }));
    expect(s.some((x) => x.name === 'hisbridge_delivery_latency_seconds_bucket' && x.labels.le === '+Inf')).toBe(true);
    expect(metricValue(s, 'hisbridge_queue_depth')).toBe(0);
    expect(metricValue(s, 'hisbridge_deliveries_current', { state: 'dead' })).toBe(0);
    expect(metricValue(s, 'hisbridge_deliveries_current', { state: 'open' })).toBe(0);
    expect(metricValue(s, 'hisbridge_mllp_connections', { listener: 'mllp' })).toBe(1);
    expect(s.some((x) => x.name === 'hisbridge_process_resident_memory_bytes' || x.name === 'hisbridge_process_cpu_user_seconds_total')).toBe(true);

    // No label value carries an ID number or a name.
    const { idNumbers, names } = samplePhi();
    const labelText = s.map((x) => Object.values(x.labels).join(' ')).join('\n');
    for (const v of [...idNumbers, ...names]) expect(labelText).not.toContain(v);

    // The replay is an audited operator action.
    const q = OpsQueries.open(storeDir());
    try {
      expect([...q.auditRows({ plugin: 'console', operation: 'dlq-replay' })].map((a) => [a.staffNo, a.result])).toEqual([['token', 'ok'], ['token', 'skipped']]);
    } finally {
      q.close();
    }
  });

  it('health and readiness report the store, listeners and remote reachability', async () => {
    await t.engine.ops.remotes.refresh();
    const h = (await json<Record<string, any>>(`${t.httpUrl}/readyz`)).body; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(h.store).toEqual({ ok: true });
    expect(h.listeners[0].name).toBe('mllp');
    expect(h.remotes.gdEhr.reachable).toBe(true);
    expect(h.remotes.recognition.reachable).toBe(true);
    expect(h.remotes.gdEhr.target).toMatch(/^127\.0\.0\.1:\d+$/);
    // A failing critical check fails readiness; an informational remote does not.
    let ok = true;
    t.engine.ops.registerCheck({ name: 'test-source', critical: true, run: () => ({ ok }) });
    expect((await fetch(`${t.httpUrl}/readyz`)).status).toBe(200);
    ok = false;
    expect((await fetch(`${t.httpUrl}/readyz`)).status).toBe(503);
    ok = true;
  });

  it('exports the audit trail as CSV and JSONL, filtered by institution, staff and patient (by keyed hash)', async () => {
    const one = parseHl7(decodeHl7(sample('01-adt-a04-registration-consent.hl7'), 'gb18030').text);
    const pid = one.get('PID-3[5=PI].1');
    const all = await cli(runAudit, ['--data-dir', storeDir(), '--format', 'jsonl']);
    expect(all.code).toBe(0);
    const rows = all.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.length).toBeGreaterThan(10);
    const byPatient = (await cli(runAudit, ['--data-dir', storeDir(), '--format', 'jsonl', '--patient', pid])).out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(byPatient.length).toBeGreaterThan(0);
    expect(new Set(byPatient.map((r) => r.patientHash)).size).toBe(1);
    expect(byPatient.every((r) => r.patientMasked !== pid)).toBe(true);
    const staff = (await cli(runAudit, ['--data-dir', storeDir(), '--format', 'jsonl', '--staff', 'D001'])).out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(staff.map((r) => r.operation)).toEqual(['viewer-url']);
    const csv = await cli(runAudit, ['--data-dir', storeDir(), '--org', String(rows.find((r) => r.orgCode)!.orgCode)]);
    const lines = csv.out.trim().split('\r\n');
    expect(lines[0]).toBe('id,time,route,plugin,operation,orgCode,staffNo,patientMasked,patientHash,result,latencyMs,messageId,detail,client,address');
    expect(lines.length).toBeGreaterThan(2);
    // The export is itself audited, with the patient hashed.
    const after = (await cli(runAudit, ['--data-dir', storeDir(), '--format', 'jsonl', '--operation', 'audit-export'])).out.trim().split('\n');
    expect(after.length).toBe(4);
    expect(after.some((l) => l.includes('by patient') && !l.includes(pid))).toBe(true);
    const st = await cli(runStats, ['--data-dir', storeDir(), '--by', 'operation', '--json']);
    expect((JSON.parse(st.out) as StatsReport).groups.some((g) => g.key === 'gd-ehr-authorize/authorize')).toBe(true);
  });

  it('keeps plain ID numbers and names out of the audit table, the rest of the store metadata and the logs', () => {
    const { idNumbers, names } = samplePhi();
    expect(idNumbers.length).toBeGreaterThan(5);
    const db = new Database(path.join(storeDir(), DB_FILE), { readonly: true });
    const dump: string[] = [];
    try {
      for (const { name } of db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]) {
        // Message bodies (message_bodies, body_parts) are the one place the plain message lives (for delivery and replay) until retention removes them.
        const cols = (db.prepare(`PRAGMA table_info(${name})`).all() as { name: string }[]).map((c) => c.name).filter((c) => !((name === 'message_bodies' || name === 'body_parts') && c === 'raw'));
        for (const r of db.prepare(`SELECT ${cols.join(', ')} FROM ${name}`).raw().all() as unknown[][]) dump.push(r.map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v))).join('|'));
      }
    } finally {
      db.close();
    }
    const text = dump.join('\n');
    expect(text).toContain('viewer-url');
    for (const id of idNumbers) expect(text).not.toContain(id);
    const logs = t.logs.join('\n');
    expect(logs).toContain('delivery settled');
    for (const v of [...idNumbers, ...names]) expect(logs).not.toContain(v);
  });
});
