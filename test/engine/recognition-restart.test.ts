/**
 * Pending recognition checks survive a restart (issue 4): a check found by the
 * ORM route (recognition-check) before the engine stopped can be decided on
 * through POST /api/recognition/decision by the next engine on the same data
 * dir. The recognition simulator runs on its own so its checks outlive both
 * engines, as the real platform's would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Engine } from '../../core/engine/engine.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { createLogger } from '../../core/log.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import type { RunningSimulator } from '../../core/sdk.js';
import { builtinRegistry } from '../../plugins/index.js';

const reg = builtinRegistry();
const ext = reg.extensions.find((e) => e.key === 'recognition')!;
const log = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });

interface SimState { decisions: { orderNo: string; itemCode: string; decision: string }[] }

describe('recognition pending checks across a restart', () => {
  let dir: string;
  let sim: RunningSimulator;
  let engine: Engine | undefined;

  /** A fresh engine on the shared data dir, routes and simulator. */
  async function startEngine(): Promise<Engine> {
    const config = loadSiteConfig(undefined, reg.extensions, { mllpPort: 0, httpPort: 0, dataDir: path.join(dir, 'store'), routesDir: path.join(dir, 'routes'), simulators: false });
    // Set after loading: the loader refuses inline secrets, and the demo credentials are the simulator's.
    config.sections.recognition = ext.defaults({ simulatorUrl: sim.url });
    const e = await Engine.create({ config, registry: reg, log, simulatorPorts: 'random' });
    await e.start();
    return e;
  }

  const decide = (e: Engine) =>
    fetch(`${e.httpServer!.url}/api/recognition/decision`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orderNo: 'ORD20250312001', itemCode: 'LAB0001', staffNo: 'D0001', decision: 'recognize' }),
    });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-recog-restart-'));
    const routes = path.join(dir, 'routes');
    mkdirSync(routes);
    copyFileSync(path.resolve('routes/recognition-check.yaml'), path.join(routes, 'recognition-check.yaml'));
    sim = await ext.simulator!.start({ host: '127.0.0.1', port: 0, site: ext.defaults({ simulatorUrl: 'http://127.0.0.1' }), log });
  });

  afterAll(async () => {
    await engine?.stop(2000);
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 200 for a decision on an ORM-made check after the engine restarted', async () => {
    engine = await startEngine();
    const listener = engine.config.listeners[0]!;
    const result = await engine.ingest(readFileSync(path.resolve('samples/12-orm-o01-new-order-lab-exam.hl7')), { name: listener.name, charset: listener.charset, noRoute: listener.noRoute });
    expect(result.code).toBe('AA');
    const ack = parseHl7(decodeHl7(result.ack, 'gb18030').text);
    const lab = ack.segments('ZRC').find((s) => s.get(1) === 'LAB0001')!;
    expect(lab.get(3)).toBe('Y');
    expect(lab.get(8)).toBe('ORD20250312001');
    await engine.stop(2000);

    engine = await startEngine();
    const res = await decide(engine);
    const body = (await res.json()) as { recorded?: boolean; code?: string };
    expect(body.code).toBeUndefined();
    expect(res.status).toBe(200);
    expect(body.recorded).toBe(true);
    const state = (await (await fetch(`${sim.url}/__sim/state`)).json()) as SimState;
    expect(state.decisions.some((d) => d.orderNo === 'ORD20250312001' && d.itemCode === 'LAB0001' && d.decision === 'recognize')).toBe(true);

    // Decided once: the durable pending check is gone too, so a second decision is refused.
    expect((await decide(engine)).status).toBe(409);
  }, 30_000);
});
