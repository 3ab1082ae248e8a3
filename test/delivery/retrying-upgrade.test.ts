/**
 * Upgrading a site across store schema v9 (issue 14: the delivery state
 * 'failed' is now 'retrying'). A registration is accepted over MLLP while the
 * provincial platform answers 503, so its delivery waits to retry; the engine
 * stops, and its store is turned back into what the previous hisbridge wrote
 * (schema v8, state 'failed'). A new `hisbridge start` on that data dir
 * migrates the store and the delivery is retried and delivered to the gd-ehr
 * simulator, once.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../core/store/schema.js';
import { parseHl7 } from '../../core/hl7/index.js';
import { MllpClient } from '../../core/mllp/client.js';
import { DB_FILE } from '../../core/store/sqlite.js';
import { idNumber } from '../helpers/ids.js';
import { authorizeRoute, GD_EHR_ENV, gdEhrSite, type GdEhrSite } from '../helpers/gd-ehr-site.js';
import { spawnEngine, type EngineProcess } from '../helpers/proc.js';
import { downgradeToV8 } from '../helpers/store.js';

/** The schema version a store reaches today (migrations are appended; never a hard-coded number). */

const ID = idNumber(914);

const MSG = [
  'MSH|^~\\&|HIS|H1|GDPLAT|GD|20250312080000||ADT^A04^ADT_A01|UPGRADE0001|P|2.5||||||UNICODE UTF-8',
  `PID|1||P914^^^HOSP^PI~${ID}^^^CHN^NI||测试^患者`,
  'PV1|1|O',
  'ZCN|Y|30',
  '',
].join('\r');

const ROUTE = authorizeRoute('upgrade-authorize', '{ max: 100, initial: 50ms, maxDelay: 200ms }');

interface Row { state: string; attempts: number; last_error_code: string | null }

/** The one delivery and the schema version, read through a connection of our own (WAL lets it read while an engine writes). */
function look(dataDir: string): { version: number; row: Row | undefined } {
  const db = new Database(path.join(dataDir, DB_FILE), { readonly: true, fileMustExist: true });
  try {
    return {
      version: db.pragma('user_version', { simple: true }) as number,
      row: db.prepare('SELECT state, attempts, last_error_code FROM deliveries').get() as Row | undefined,
    };
  } finally {
    db.close();
  }
}

async function until<T>(what: string, get: () => T, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("upgrade to store schema v9 with a delivery in state 'failed'", () => {
  let site: GdEhrSite;
  let engine: EngineProcess | undefined;
  const env = GD_EHR_ENV;

  beforeAll(async () => {
    site = await gdEhrSite({ prefix: 'hisbridge-upgrade-', routes: { 'upgrade.yaml': ROUTE } });
  });

  afterAll(async () => {
    engine?.child.kill('SIGKILL');
    await site?.close();
  });

  it('migrates the store at start, retries the delivery and authorizes the patient once', async () => {
    const { sim } = site;
    const args = site.args('data');
    const dataDir = path.join(site.dir, 'data');
    // The platform is down and asks for a minute: the delivery stays waiting to retry while the engine stops.
    sim.addFault({ status: 503, retryAfter: '60' });
    engine = await spawnEngine(args, env);
    const client = await MllpClient.connect('127.0.0.1', engine.mllpPort, { timeoutMs: 5000 });
    expect(parseHl7((await client.send(MSG)).toString('utf8')).get('MSA-1')).toBe('AA');
    client.close();
    await until('the delivery to wait for its retry', () => look(dataDir).row, (r) => r?.state === 'retrying');
    engine.child.kill('SIGTERM');
    expect(await engine.exited).toBe(0);
    engine = undefined;
    expect(look(dataDir)).toEqual({ version: SCHEMA_VERSION, row: { state: 'retrying', attempts: 1, last_error_code: 'HTTP_E_STATUS_RETRYABLE' } });
    expect(sim.calls.filter((c) => c.op === 'authorize' && c.returnCode === '1')).toHaveLength(0);

    // What the previous hisbridge left on disk; the minute of Retry-After has passed while it was down.
    expect(downgradeToV8(dataDir)).toBe(1);
    const db = new Database(path.join(dataDir, DB_FILE));
    db.prepare('UPDATE deliveries SET next_attempt_at = ?').run(Date.now());
    db.close();
    expect(look(dataDir)).toMatchObject({ version: 8, row: { state: 'failed' } });

    sim.reset();
    engine = await spawnEngine(args, env);
    const done = await until('the delivery to be done', () => look(dataDir), (v) => v.row?.state === 'done');
    expect(done).toMatchObject({ version: SCHEMA_VERSION, row: { state: 'done', attempts: 2 } });
    const authorized = sim.calls.filter((c) => c.op === 'authorize' && c.returnCode === '1' && c.verified && !c.replayed);
    expect(authorized.map((c) => c.fields?.patientIdcard)).toEqual([ID]);

    engine.child.kill('SIGTERM');
    expect(await engine.exited).toBe(0);
    engine = undefined;
  }, 60_000);
});
