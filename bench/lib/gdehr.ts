/**
 * The provincial side for the delivery scenarios: the gd-ehr simulator in
 * its own process, the engine configured against it (secrets through
 * ${env:}, as a real site config must), and the simulator's control API.
 */
import path from 'node:path';
import { startChild, type ChildHandle } from './child.js';
import { DIST, startEngine, type EngineHandle } from './engine.js';

export interface SimCall {
  op: string;
  at: number;
  verified: boolean;
  returnCode?: string;
  fields?: { patientIdcard?: string | null };
}

export interface GdEhrRig {
  simUrl: string;
  sim: ChildHandle;
  engine: EngineHandle;
  /** The gdEhr section the engine runs with (demo credentials of the simulator). */
  section: Record<string, unknown>;
  calls(): Promise<SimCall[]>;
  reset(): Promise<void>;
  /** Adds a fault rule (e.g. `{ status: 503 }`) until the next reset. */
  fault(rule: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

/** An on-receive route sending every ADT^A04 with consent (ZCN-1 = Y) to gd-ehr-authorize. */
export function authRoute(retry = '{ max: 5, initial: 200ms, maxDelay: 1s }'): string {
  return [
    'name: bench-gd-ehr-authorize',
    'sources: [mllp]',
    'match:',
    '  events: ["ADT^A04"]',
    'ack: on-receive',
    'steps:',
    '  - plugin: gd-ehr-authorize',
    '    config: { status: "1", consent: { value: "${ZCN-1}", accept: [Y] } }',
    'delivery:',
    `  retry: ${retry}`,
  ].join('\n') + '\n';
}

const post = async (url: string, body?: unknown) => {
  const res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(5000), ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`simulator control ${new URL(url).pathname} answered ${res.status}`);
};

export async function startGdEhrRig(opts: { route?: string; nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<GdEhrRig> {
  const sim = await startChild(path.join(DIST, 'bench', 'lib', 'gdehr-sim.js'), [], { ready: /^PORT (\d+)$/, timeoutMs: 15_000 });
  try {
    const simUrl = `http://127.0.0.1:${sim.ready[1]}`;
    // Loaded here, not at the top, so a broken plugin build fails the scenario only.
    const gd = await import('../../plugins/gd-ehr/index.js');
    const section = gd.gdEhrDefaults({ simulatorUrl: simUrl }) as Record<string, unknown>;
    const yaml = ['gdEhr:', ...Object.entries(section).filter(([k]) => k !== 'cardTypes').map(([k, v]) =>
      k === 'paasToken' ? '  paasToken: ${env:HB_BENCH_PAASTOKEN}' : k === 'sm4Key' ? '  sm4Key: ${env:HB_BENCH_SM4KEY}' : `  ${k}: ${JSON.stringify(v)}`)].join('\n');
    const engine = await startEngine({
      routes: { 'bench-authorize.yaml': opts.route ?? authRoute() },
      extraConfig: yaml,
      env: { ...opts.env, HB_BENCH_PAASTOKEN: String(section.paasToken), HB_BENCH_SM4KEY: String(section.sm4Key) },
      ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}),
    });
    return {
      simUrl,
      sim,
      engine,
      section,
      calls: async () => ((await (await fetch(`${simUrl}/__sim/calls`, { signal: AbortSignal.timeout(20_000) })).json()) as { calls: SimCall[] }).calls,
      reset: () => post(`${simUrl}/__sim/reset`),
      fault: (rule) => post(`${simUrl}/__sim/faults`, rule),
      close: async () => {
        await Promise.allSettled([engine.stop(), sim.stop()]);
      },
    };
  } catch (e) {
    await sim.stop();
    throw e;
  }
}
