/**
 * A check found by a precise query survives a restart and can still be
 * decided (issue 12). The ID number sent with the check is kept in memory
 * only, never in the store: after a restart the decision names the patient
 * again with `idNumber` (or the platform knows the patient from its upload).
 * The simulator runs on its own so its state outlives both engines.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../core/engine/engine.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { createLogger } from '../../core/log.js';
import type { RunningSimulator } from '../../core/sdk.js';
import { builtinRegistry } from '../../plugins/index.js';

const reg = builtinRegistry();
const ext = reg.extensions.find((e) => e.key === 'recognition')!;
const log = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const ID = '440106199003152314'; // synthetic (samples/)

describe('precise check → restart → decision', () => {
  let dir: string;
  let sim: RunningSimulator;
  let engine: Engine | undefined;

  async function start(): Promise<Engine> {
    const config = loadSiteConfig(undefined, reg.extensions, { mllpPort: 0, httpPort: 0, dataDir: path.join(dir, 'store'), routesDir: path.join(dir, 'routes'), simulators: false });
    config.sections.recognition = ext.defaults({ simulatorUrl: sim.url });
    const e = await Engine.create({ config, registry: reg, log, simulatorPorts: 'random' });
    await e.start();
    return e;
  }
  const post = async (e: Engine, p: string, body: unknown) => {
    const r = await fetch(`${e.httpServer!.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-precise-restart-'));
    mkdirSync(path.join(dir, 'routes'));
    sim = await ext.simulator!.start({ host: '127.0.0.1', port: 0, site: ext.defaults({ simulatorUrl: 'http://127.0.0.1' }), log });
  });
  afterAll(async () => {
    await engine?.stop(2000);
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the pending check, not the ID number; the decision after the restart is recorded once the patient is named', async () => {
    engine = await start();
    const check = await post(engine, '/api/recognition/check', { orderNo: 'ORD-R-1', patientId: 'P000100001', idNumber: ID, staffNo: 'D0012', mode: 'precise', items: [{ itemCode: 'LAB0001' }] });
    expect(check.body.mustDecide).toBe(true);
    await engine.stop(2000);
    engine = undefined;

    // Nothing in the store files carries the plain ID number.
    const storeDir = path.join(dir, 'store');
    for (const f of readdirSync(storeDir)) expect(readFileSync(path.join(storeDir, f)).includes(Buffer.from(ID)), f).toBe(false);

    engine = await start();
    const unnamed = await post(engine, '/api/recognition/decision', { orderNo: 'ORD-R-1', itemCode: 'LAB0001', decision: 'recognize', staffNo: 'D0012' });
    expect([unnamed.status, unnamed.body.code]).toEqual([404, 'RECOG_E_UNKNOWN_PATIENT']);
    const named = await post(engine, '/api/recognition/decision', { orderNo: 'ORD-R-1', itemCode: 'LAB0001', decision: 'recognize', staffNo: 'D0012', idNumber: ID });
    expect(named.status).toBe(200);
    const st = (await (await fetch(`${sim.url}/__sim/state`)).json()) as { decisions: Record<string, unknown>[]; checks: { checkId: string }[] };
    expect(st.decisions).toHaveLength(1);
    expect(st.decisions[0]).toMatchObject({ orderNo: 'ORD-R-1', itemCode: 'LAB0001', decision: 'recognize', checkId: st.checks[0]!.checkId });
  });
});
