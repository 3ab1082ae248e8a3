/**
 * Shared set-up of the MLLP scenarios: the baseline servers, the no-op sink
 * and the engine with the ingress route, started together and always torn
 * down together.
 */
import { engineUnavailable, ingressRoute, startEngine, type EngineHandle } from '../lib/engine.js';
import { closedLoop, type Target } from '../lib/load.js';
import { MessageFactory } from '../lib/messages.js';
import { reason } from '../lib/result.js';
import { startBaseline, startSink, type BaselineKind, type BaselineServer, type Sink } from '../lib/servers.js';

export interface MllpRig {
  baselines: BaselineServer[];
  sink?: Sink;
  engine?: EngineHandle;
  /** The same engine with `store.synchronous: NORMAL` (ACK survives a process crash, not a power cut), for comparison. */
  engineNormal?: EngineHandle;
  /** Why the engine is not part of this run, when it is not. */
  engineNote?: string;
  /** Set while tearing down, so the engine's exit is not reported as a crash. */
  closing?: boolean;
  close(): Promise<void>;
}

export async function startRig(kinds: BaselineKind[], say: (s: string) => void, opts: { normal?: boolean } = {}): Promise<MllpRig> {
  const rig: MllpRig = {
    baselines: [],
    close: async () => {
      rig.closing = true;
      await Promise.allSettled([...rig.baselines.map((b) => b.child.stop()), rig.sink?.child.stop(), rig.engine?.stop(), rig.engineNormal?.stop()]);
    },
  };
  try {
    for (const k of kinds) rig.baselines.push(await startBaseline(k));
    const missing = engineUnavailable();
    if (missing) rig.engineNote = missing;
    else {
      try {
        rig.sink = await startSink();
        const engine = await startEngine({ routes: { 'bench-ingress.yaml': ingressRoute(rig.sink.url) } });
        rig.engine = engine;
        if (opts.normal) rig.engineNormal = await startEngine({ routes: { 'bench-ingress.yaml': ingressRoute(rig.sink.url) }, synchronous: 'NORMAL' });
        void engine.child.exited.then((code) => {
          if (rig.closing) return;
          rig.engineNote = `engine exited unexpectedly (code ${code}); last output: ${lastLines(engine.child.tail())}`;
          say(`  ${rig.engineNote}`);
        });
      } catch (e) {
        rig.engineNote = `engine did not start: ${reason(e)}`;
        say(`  ${rig.engineNote}`);
      }
    }
    // Warm-up (JIT, SQLite pages, keep-alive sockets); not measured.
    const targets: Target[] = [...rig.baselines.map((b) => b.target), ...(rig.engine ? [rig.engine.mllp] : []), ...(rig.engineNormal ? [rig.engineNormal.mllp] : [])];
    for (const t of targets) await closedLoop(t, { connections: 2, messages: 400, factory: new MessageFactory('adt', `W${t.port}${Date.now().toString(36)}`), maxMs: 20_000 });
    if (rig.engine) await rig.engine.waitPending((n) => n === 0, 30_000);
    if (rig.engineNormal) await rig.engineNormal.waitPending((n) => n === 0, 30_000);
  } catch (e) {
    await rig.close();
    throw e;
  }
  return rig;
}

let tagSeq = 0;
/** A run-unique control-id prefix (the engine de-duplicates on MSH-10). */
export function runTag(): string {
  return `${(Date.now() % 1e8).toString(36)}${(tagSeq++).toString(36)}`;
}

/** The last few output lines of a child, shortened, for a note. */
export function lastLines(tail: string, n = 4): string {
  return tail.split('\n').slice(-n).map((l) => l.slice(0, 240)).join(' | ');
}
