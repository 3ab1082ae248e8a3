/**
 * Scenario 8, console message list with 1,000,000 stored messages: the store
 * is filled by a direct SQLite bulk insert (the ingest path is measured by
 * scenarios 1-3, not here), then a real engine opens it and the console's
 * message list (`GET /console/messages`, server-rendered page of 50) is
 * requested over HTTP with the bearer token: newest page, a deep keyset page,
 * and searches by status, control id, patient and time window; and the
 * content search (`GET /console/search`, issue 18) by PID-5.1 over 1 h and
 * 80 min windows, plus the refusal of a window past the scan cap.
 */
import Database from 'better-sqlite3';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { entry, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { percentile, round } from '../lib/stats.js';

const BASE = { name: 'console-message-list', scenario: 9, title: 'Console message list (page of 50) with 1,000,000 stored messages', unit: 'ms', target: 'p95 < 200 ms for every query' };
const TOKEN = 'bench-console-token-0123456789';
const DAY = 86_400_000;

/** Fills `dir`'s store with `n` messages spread over 30 days; one in 1000 dead, one in 100 queued. */
function fill(dir: string, n: number, now: number): void {
  const db = new Database(path.join(dir, 'hisbridge.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const raw = Buffer.from('MSH|^~\\&|HIS|H4413020001|HISBRIDGE|HB|20250312||ADT^A04|C|P|2.5\rPID|1||P0000001^^^^PI||X^Y\r');
  const msg = db.prepare(`INSERT INTO messages (id, received_at, source, sending_app, sending_facility, type, control_id, patient_id, charset, raw_bytes, ack_code, status)
    VALUES (?, ?, 'mllp', 'HIS', 'H4413020001', 'ADT^A04', ?, ?, 'utf-8', ?, 'AA', ?)`);
  const body = db.prepare('INSERT INTO message_bodies (message_id, raw) VALUES (?, ?)');
  const del = db.prepare(`INSERT INTO deliveries (message_id, route, step, plugin, ordering_key, state, head, attempts, max_attempts, retry_initial_ms, retry_max_delay_ms, next_attempt_at, vars, created_at, updated_at)
    VALUES (?, 'gd-ehr-authorize', 0, 'gd-ehr-authorize', ?, 'dead', 0, 1, 10, 1000, 300000, ?, '{}', ?, ?)`);
  const step = (30 * DAY) / n;
  const batch = 50_000;
  for (let start = 1; start <= n; start += batch) {
    db.transaction(() => {
      for (let id = start; id < Math.min(n + 1, start + batch); id++) {
        const at = Math.round(now - 30 * DAY + id * step);
        const status = id % 1000 === 0 ? 'dead' : 'done';
        msg.run(id, at, `C${id}`, `P${id % 200_000}`, raw.length, status);
        body.run(id, raw);
        if (status === 'dead') del.run(id, `k${id}`, at, at, at);
      }
    })();
  }
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

/** What a page must answer: status and a marker in its body (the message list by default). */
interface Expect { status: number; marker: string }
const LIST: Expect = { status: 200, marker: 'id="messages"' };

async function timeGets(url: string, requests: number, want: Expect = LIST): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < requests; i++) {
    const t0 = performance.now();
    const res = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = await res.text();
    if (res.status !== want.status || !body.includes(want.marker)) throw new Error(`GET ${new URL(url).pathname}${new URL(url).search} answered ${res.status} without ${want.marker}`);
    ms.push(performance.now() - t0);
  }
  return ms;
}

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  let mods;
  try {
    mods = {
      engine: await import('../../core/engine/engine.js'),
      site: await import('../../core/config/site.js'),
      store: await import('../../core/store/sqlite.js'),
      plugins: await import('../../plugins/index.js'),
      log: await import('../../core/log.js'),
    };
  } catch (e) {
    return [unavailable(BASE, 'not-available', `engine or console not available: ${reason(e)}`)];
  }
  const n = ctx.quick ? 100_000 : 1_000_000;
  const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-bench-console-'));
  const routes = path.join(dir, 'routes');
  mkdirSync(routes);
  const now = Date.now();
  try {
    mods.store.Store.open(dir, { synchronous: 'NORMAL' }).close();
    const t0 = performance.now();
    fill(dir, n, now);
    ctx.say(`  filled ${n.toLocaleString('en')} messages in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const reg = mods.plugins.builtinRegistry();
    const config = mods.site.loadSiteConfig(undefined, reg.extensions, { dataDir: dir, routesDir: routes, mllpPort: 0, httpPort: 0, simulators: false });
    config.console = { enabled: true, users: [], token: TOKEN, sessionTtlMs: 3_600_000 };
    const engine = await mods.engine.Engine.create({ config, registry: reg, log: mods.log.silentLogger(), routes: [routes], workers: false });
    await engine.start({ mllp: false });
    try {
      const base = `${engine.httpServer!.url}/console/messages`;
      const search = `${engine.httpServer!.url}/console/search`;
      const HITS: Expect = { status: 200, marker: 'id="scanned"' };
      const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16);
      const queries: Record<string, string | [string, Expect]> = {
        newest: base,
        'deep-page': `${base}?before=${Math.floor(n / 2)}`,
        'status-dead': `${base}?status=dead`,
        'control-id': `${base}?controlId=C${Math.floor(n / 3)}`,
        patient: `${base}?patient=P12345`,
        'last-hour': `${base}?since=${iso(now - 3_600_000)}`,
        'one-day-old': `${base}?since=${iso(now - 8 * DAY)}&until=${iso(now - 7 * DAY)}`,
        // Issue 18: content search (GET /console/search), bounded to 2,000 scanned messages. At 1,000,000 messages
        // over 30 days an hour holds ~1,400 and 80 minutes ~1,850 (near the cap). "Y" is in every body but never
        // PID-5.1, so every body in the window is parsed (the worst case); "ZHANG" is in none, so the byte check
        // skips every parse; "X" is every PID-5.1 (stops at the first 50 hits).
        'content-1h-parse-all': [`${search}?path=PID-5.1&value=Y&since=${iso(now - 3_600_000)}`, HITS],
        'content-80m-parse-all': [`${search}?path=PID-5.1&op=contains&value=Y&since=${iso(now - 80 * 60_000)}`, HITS],
        'content-1h-equals-hit': [`${search}?path=PID-5.1&value=X&since=${iso(now - 3_600_000)}`, HITS],
        'content-80m-absent': [`${search}?path=PID-5.1&value=ZHANG&since=${iso(now - 80 * 60_000)}`, HITS],
        'content-window-too-wide': [`${search}?path=PID-5.1&value=X&since=${iso(now - DAY)}`, { status: 400, marker: 'OPS_E_SEARCH_WINDOW' }],
      };
      const requests = ctx.quick ? 20 : 100;
      const details: Record<string, unknown> = { messages: n, requests };
      const all: number[] = [];
      let worstP95 = 0;
      for (const [name, q] of Object.entries(queries)) {
        const [url, want] = typeof q === 'string' ? [q, LIST] : q;
        await timeGets(url, 3, want);
        const ms = (await timeGets(url, requests, want)).sort((a, b) => a - b);
        const p95 = percentile(ms, 95);
        worstP95 = Math.max(worstP95, p95);
        details[name] = { p50: round(percentile(ms, 50)), p95: round(p95), max: round(ms[ms.length - 1]!) };
        all.push(...ms);
        ctx.say(`  ${name}: p50 ${round(percentile(ms, 50))} ms, p95 ${round(p95)} ms`);
      }
      all.sort((a, b) => a - b);
      return [entry(
        { ...BASE, better: 'lower', met: worstP95 < 200, details, note: `median over all queries; worst p95 ${round(worstP95)} ms${ctx.quick ? ` (quick mode: ${n.toLocaleString('en')} messages)` : ''}` },
        { hisbridge: [percentile(all, 50)] },
      )];
    } finally {
      await engine.stop(1000);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
