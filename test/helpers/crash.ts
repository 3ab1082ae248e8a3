/**
 * The crash harness the kill -9 tests share: a gd-ehr simulator in the test
 * process, a temp directory with one route file and a hisbridge.yaml whose
 * gdEhr section points at that simulator (secrets through ${env:...}),
 * `hisbridge start` processes spawned on it (test/helpers/proc.ts), and
 * every one of them killed, the simulator closed and the directory removed
 * after the block. `authorizationEffects` counts what the simulator acted on.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { silentLogger } from '../../core/log.js';
import { startGdEhrSimulator, type GdEhrSimulator, type SimCall } from '../../plugins/gd-ehr/simulator.js';
import { DEMO_SITE } from '../../plugins/gd-ehr/site.js';
import { spawnEngine, type EngineProcess } from './proc.js';

/** Authorizations the simulator acted on (a repeated idempotency key answered from the first result is not one), per ID number. */
export function authorizationEffects(calls: readonly SimCall[]): Map<string, number> {
  const byPatient = new Map<string, number>();
  for (const c of calls) {
    if (c.op !== 'authorize' || c.returnCode !== '1' || !c.verified || c.replayed) continue;
    const id = String(c.fields?.patientIdcard);
    byPatient.set(id, (byPatient.get(id) ?? 0) + 1);
  }
  return byPatient;
}

export interface CrashRigOptions {
  /** The route file's YAML. */
  route: string;
  /** hisbridge.yaml lines before the gdEhr section (listeners, http, store, log ...). */
  siteLines: string[];
  /** Extra environment of the engine processes. */
  env?: NodeJS.ProcessEnv;
}

export interface CrashRig {
  readonly sim: GdEhrSimulator;
  readonly dir: string;
  /** The engine's data directory (`<dir>/data`). */
  readonly dataDir: string;
  /** `start` arguments: --config, --routes and --data-dir of the rig. */
  readonly args: string[];
  /** Starts `hisbridge start` on the rig and waits for its ready line; killed after the block if still running. */
  spawn(): Promise<EngineProcess>;
}

/** The harness of one describe block (see the file comment). */
export function useCrashRig(opts: CrashRigOptions): CrashRig {
  let sim: GdEhrSimulator | undefined;
  let dir: string | undefined;
  const children: EngineProcess[] = [];
  const env = { T_PAAS: DEMO_SITE.paasToken, T_SM4: DEMO_SITE.sm4Key, ...opts.env };
  beforeAll(async () => {
    if (!existsSync(path.resolve('dist/core/cli/main.js'))) throw new Error('dist/ is not built (the global setup runs tsc)');
    sim = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site: {}, log: silentLogger() });
    dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-crash-'));
    mkdirSync(path.join(dir, 'routes'));
    writeFileSync(path.join(dir, 'routes', 'crash.yaml'), opts.route);
    writeFileSync(
      path.join(dir, 'hisbridge.yaml'),
      [
        ...opts.siteLines,
        'gdEhr:',
        `  authUrl: ${sim.url}/ebus/jiankangdangan/gdehr/dhccApi/codeAuthRec/save`,
        `  viewerUrl: ${sim.url}/gdehr/privilege/getPrivilege`,
        `  orgCode: ${DEMO_SITE.orgCode}`,
        `  orgName: ${DEMO_SITE.orgName}`,
        `  callSysCode: ${DEMO_SITE.callSysCode}`,
        `  appId: ${DEMO_SITE.appId}`,
        `  paasId: ${DEMO_SITE.paasId}`,
        '  paasToken: ${env:T_PAAS}',
        '  sm4Key: ${env:T_SM4}',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    for (const c of children) c.child.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    await sim?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('useCrashRig: the rig is not set up here (use it inside the tests of the describe block that called useCrashRig)');
    return v;
  };
  return {
    get sim() {
      return need(sim);
    },
    get dir() {
      return need(dir);
    },
    get dataDir() {
      return path.join(need(dir), 'data');
    },
    get args() {
      const d = need(dir);
      return ['--config', path.join(d, 'hisbridge.yaml'), '--routes', path.join(d, 'routes'), '--data-dir', path.join(d, 'data')];
    },
    async spawn() {
      const p = await spawnEngine(this.args, env, 30_000);
      children.push(p);
      return p;
    },
  };
}
