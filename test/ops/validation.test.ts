/**
 * "Validation that docs already promise" (issue 12): one parser of
 * since/until for the HTTP API, the console and the CLI; unknown status
 * filters and unknown card types answer 400 instead of being ignored or
 * turned into 99. Everything through the real HTTP server and CLI processes.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTimeBound, parseTimeBounds } from '../../core/ops/queries.js';
import { cli } from '../helpers/cli.js';
import type { TestEngine } from '../helpers/engine.js';
import { CONSOLE_TOKEN, startOpsEngine } from './fixtures.js';

const auth = { authorization: `Bearer ${CONSOLE_TOKEN}` };
const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'no error';
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
};

describe('parseTimeBound: the one parser of since/until', () => {
  const now = Date.UTC(2026, 0, 31, 12, 0, 0);

  it('reads dates (local midnight), local and zoned times, and ages', () => {
    expect(parseTimeBound('since', '2026-01-31', now)).toBe(new Date(2026, 0, 31).getTime());
    expect(parseTimeBound('since', '2026-01-31T08:30', now)).toBe(new Date(2026, 0, 31, 8, 30).getTime());
    expect(parseTimeBound('since', '2026-01-31 08:30:15', now)).toBe(new Date(2026, 0, 31, 8, 30, 15).getTime());
    expect(parseTimeBound('since', '2026-01-31T08:00:00Z', now)).toBe(Date.UTC(2026, 0, 31, 8));
    expect(parseTimeBound('since', '2026-01-31T08:00+08:00', now)).toBe(Date.UTC(2026, 0, 31, 0));
    expect(parseTimeBound('since', '2026-01-31T08:00:00.5-0130', now)).toBe(Date.UTC(2026, 0, 31, 9, 30, 0, 500));
    expect(parseTimeBound('since', '24h', now)).toBe(now - 86_400_000);
    expect(parseTimeBound('since', ' 30 m ', now)).toBe(now - 1_800_000);
    expect(parseTimeBound('since', '1.5d', now)).toBe(now - 129_600_000);
    expect(parseTimeBound('since', undefined, now)).toBeUndefined();
    expect(parseTimeBound('since', '', now)).toBeUndefined();
  });

  it('refuses free text, impossible dates, ages before 1970 and out-of-range years with OPS_E_BAD_QUERY naming the parameter', () => {
    for (const bad of ['yesterday', '1', '2026', '2026-02-30', '2026-13-01', '2026-00-10', '2026-01-31T24:00', '2026-01-31T10:61', '1969-12-31',
      '2026-01-31T08:00+15:00', '100000d', '999999999d', '1e9d', '-5h', '24 hours', '2026-01-31T08', '2026/01/31', 'x'.repeat(100)]) {
      expect(codeOf(() => parseTimeBound('until', bad, now)), bad).toMatch(/^OPS_E_BAD_QUERY: until: "/);
    }
    expect(codeOf(() => parseTimeBound('since', '2024-02-29', now))).toBe('no error');
    expect(codeOf(() => parseTimeBound('since', '2026-02-29', now))).toMatch(/not a valid date/);
  });

  it('since must come before until', () => {
    expect(parseTimeBounds({ since: '2026-01-01', until: '2026-01-02' }, now)).toEqual({ since: new Date(2026, 0, 1).getTime(), until: new Date(2026, 0, 2).getTime() });
    expect(codeOf(() => parseTimeBounds({ since: '1h', until: '2h' }, now))).toBe('OPS_E_BAD_QUERY: since must be before until');
  });
});

describe('400s on the real HTTP server and the CLI', () => {
  let t: TestEngine;
  let dataDir: string;
  beforeAll(async () => {
    t = await startOpsEngine();
    dataDir = path.join(t.dataDir, 'store');
  });
  afterAll(() => t?.stop());

  const get = async (p: string) => {
    const res = await fetch(`${t.httpUrl}${p}`, { headers: auth, redirect: 'manual' });
    const text = await res.text();
    return { status: res.status, text, json: (() => { try { return JSON.parse(text) as { code: string; message: string }; } catch { return undefined; } })() };
  };

  it('GET /api/stats: an unreadable since/until is a 400 naming it; a good one is applied', async () => {
    for (const [q, name] of [['since=yesterday', 'since'], ['until=2026-02-30', 'until'], ['since=99999999999999d', 'since'], ['since=100000d', 'since']] as const) {
      const r = await get(`/api/stats?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json!.code).toBe('OPS_E_BAD_QUERY');
      expect(r.json!.message).toMatch(new RegExp(`^${name}: "`));
    }
    const order = await get('/api/stats?since=1h&until=2h');
    expect(order.status).toBe(400);
    expect(order.json!.message).toBe('since must be before until');
    const before = Date.now();
    const ok = await get('/api/stats?since=24h&until=2099-01-01T00:00Z');
    expect(ok.status).toBe(200);
    const report = JSON.parse(ok.text) as { since: number; until: number };
    expect(report.since).toBeGreaterThanOrEqual(before - 86_400_000 - 5000);
    expect(report.since).toBeLessThanOrEqual(Date.now() - 86_400_000);
    expect(report.until).toBe(Date.UTC(2099, 0, 1));
  });

  it('console pages answer 400 with the reason for a bad since/until, status or by', async () => {
    for (const p of ['/console/messages?since=garbage', '/console/messages?until=2026-02-30', '/console/messages?status=bogus', '/console/audit?since=tomorrow',
      '/console/audit?until=13:00', '/console/stats?since=2026-13-01', '/console/stats?by=patient', '/console/messages?since=2h&until=3h',
      '/console/messages?before=abc', '/console/audit?before=-1']) {
      const r = await get(p);
      expect(r.status, p).toBe(400);
      expect(r.text, p).toContain('OPS_E_BAD_QUERY');
    }
    const bad = await get('/console/messages?status=bogus&lang=en');
    expect(bad.text).toContain('status must be one of queued, done, dead, rejected');
    const zh = await get('/console/messages?status=bogus&lang=zh-CN');
    expect(zh.text).toContain('状态必须是以下之一：queued, done, dead, rejected');
    for (const p of ['/console/messages?status=dead&since=7d', '/console/messages?since=&until=', '/console/audit?since=2026-01-01&until=2099-01-01', '/console/stats?by=route&since=24h', '/console/messages?before=5', '/console/audit?before=']) {
      expect((await get(p)).status, p).toBe(200);
    }
  });

  it('the CLI refuses bad --since/--until/--status with a specific message (stats, audit, messages search, replay)', async () => {
    const cases: [string[], RegExp][] = [
      [['stats', '--since', 'yesterday'], /OPS_E_BAD_QUERY: --since: "yesterday" is not a date\/time/],
      [['stats', '--until', '99999999d'], /OPS_E_BAD_QUERY: --until: "99999999d" reaches back before 1970/],
      [['audit', '--since', '2026-02-30'], /OPS_E_BAD_QUERY: --since: "2026-02-30" is not a valid date\/time/],
      [['audit', '--since', '1h', '--until', '2h'], /--since must be before --until/],
      [['messages', 'search', '--until', 'soon'], /OPS_E_BAD_QUERY: --until: "soon"/],
      [['messages', 'search', '--status', 'bogus'], /--status must be one of queued, done, dead, rejected/],
      [['replay', '--stored-since', 'last week'], /--stored-since: "last week"/],
    ];
    for (const [args, re] of cases) {
      const r = await cli([...args, '--data-dir', dataDir]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toMatch(re);
    }
    const ok = await cli(['stats', '--since', '24h', '--until', '2099-01-01', '--json', '--data-dir', dataDir]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect((JSON.parse(ok.stdout) as { until: number }).until).toBe(new Date(2099, 0, 1).getTime());
  });

  it('GET /api/gd-ehr/viewer-url: an unknown cardType is a 400, not a 302 with 99; known codes and identifier types still redirect', async () => {
    const q = (cardType: string) => `/api/gd-ehr/viewer-url?${new URLSearchParams({ patientId: 'P000100001', staffNo: 'D0012', staffName: '李建国', idcard: '440106199003152314', cardType, patientName: '张三丰' })}`;
    for (const bad of ['XYZ', 'passport', '00', '10', 'constructor']) {
      const r = await get(q(bad));
      expect(r.status, bad).toBe(400);
      expect(r.json!.code).toBe('GDEHR_E_BAD_CARD_TYPE');
    }
    for (const good of ['01', '99', 'NI', 'ppn', 'HKB']) expect((await get(q(good))).status, good).toBe(302);
    expect(t.logs.join('\n')).not.toContain('440106199003152314');
  });
});
