/**
 * The non-engine servers of a run, each in its own child process on
 * 127.0.0.1 and a random port: the two baseline MLLP servers and the no-op
 * HTTP sink the engine delivers to.
 */
import path from 'node:path';
import { startChild, type ChildHandle } from './child.js';
import { DIST } from './engine.js';
import type { Target } from './load.js';

export type BaselineKind = 'raw-echo' | 'echo+node-hl7-client';

export interface BaselineServer {
  kind: BaselineKind;
  target: Target;
  child: ChildHandle;
}

export async function startBaseline(kind: BaselineKind): Promise<BaselineServer> {
  const script = path.join(DIST, 'bench', 'baselines', 'mllp-echo.js');
  const child = await startChild(script, kind === 'raw-echo' ? [] : ['--parse'], { ready: /^PORT (\d+)$/, timeoutMs: 15_000 });
  return { kind, target: { host: '127.0.0.1', port: Number(child.ready[1]) }, child };
}

export interface Sink {
  url: string;
  child: ChildHandle;
  /** Deliveries answered 200 so far. */
  count(): Promise<number>;
  /** Answer `status` to every delivery (0 = healthy again). */
  fault(status: number): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const child = await startChild(path.join(DIST, 'bench', 'lib', 'sink-server.js'), [], { ready: /^PORT (\d+)$/, timeoutMs: 15_000 });
  const url = `http://127.0.0.1:${child.ready[1]}`;
  return {
    url,
    child,
    count: async () => ((await (await fetch(`${url}/__count`, { signal: AbortSignal.timeout(5000) })).json()) as { count: number }).count,
    fault: async (status) => {
      await (await fetch(`${url}/__fault?status=${status}`, { method: 'POST', signal: AbortSignal.timeout(5000) })).arrayBuffer();
    },
  };
}
