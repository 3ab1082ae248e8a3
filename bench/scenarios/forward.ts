/**
 * Scenario 10, MLLP forward (issue 17): ~1 KB ADT^A04 messages go into the
 * engine over MLLP (8 connections), are stored, and are forwarded by the
 * `mllp` plugin (pool of 8 kept-open connections) to the MLLP receiver
 * simulator, which ACKs each with AA. Figure: messages forwarded per second,
 * from the first send to the receiver holding all of them. Baseline in the
 * same run: the same messages sent straight to the same receiver by a direct
 * socket sender on 8 connections (what the receiver can take at most).
 */
import { silentLogger } from '../../core/log.js';
import { startMllpReceiver, type MllpReceiver } from '../../plugins/mllp/simulator.js';
import { engineUnavailable, startEngine, type EngineHandle } from '../lib/engine.js';
import { closedLoop } from '../lib/load.js';
import { MessageFactory } from '../lib/messages.js';
import { entry, reason, unavailable, type Context, type ScenarioResult } from '../lib/result.js';
import { round, spread } from '../lib/stats.js';
import { runTag } from './mllp-setup.js';

const BASE = { name: 'forward-mllp-adt-8conn', scenario: 10, title: 'MLLP forward: MLLP in -> store -> mllp plugin -> MLLP receiver, vs a direct socket sender', unit: 'msg/s', target: 'reported (no target)' };
const DIRECT = 'direct-socket-sender';
const CONNECTIONS = 8;

async function waitReceived(rx: MllpReceiver, n: number, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (rx.received.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return rx.received.length;
}

export async function run(ctx: Context): Promise<ScenarioResult[]> {
  const missing = engineUnavailable();
  if (missing) return [unavailable(BASE, 'not-available', missing)];
  const n = ctx.quick ? 1000 : 3000;
  const values: Record<string, number[]> = { hisbridge: [], [DIRECT]: [] };
  const notes: string[] = [];
  /** The engine's own ACK rate in the forward trials: forwarding cannot be faster than messages come in. */
  const ingress: number[] = [];
  let rx: MllpReceiver | undefined;
  let engine: EngineHandle | undefined;
  try {
    rx = await startMllpReceiver({ host: '127.0.0.1', port: 0, site: {}, log: silentLogger() });
    engine = await startEngine({
      routes: {
        'forward.yaml': [
          'name: forward',
          'match: { events: [ADT^A04] }',
          'ack: on-receive',
          'steps:',
          `  - plugin: mllp`,
          `    config: { host: 127.0.0.1, port: ${rx.port}, timeout: 10s, pool: ${CONNECTIONS} }`,
          'delivery: { retry: { max: 5, initial: 100ms, maxDelay: 1s } }',
        ].join('\n') + '\n',
      },
    });
    ctx.say(`forward: ${n} messages x ${ctx.trials} trials`);
    for (let t = 0; t < ctx.trials; t++) {
      // Baseline: the same messages straight to the receiver.
      rx.received.length = 0;
      const d = await closedLoop({ host: rx.host, port: rx.port }, { connections: CONNECTIONS, messages: n, factory: new MessageFactory('adt', runTag()), maxMs: 60_000 });
      if (d.acked === n && d.rejected === 0) values[DIRECT]!.push(d.msgPerSec);
      else notes.push(`${DIRECT} trial ${t + 1}: ${d.acked}/${n} acked, ${d.rejected} not AA`);

      rx.received.length = 0;
      const t0 = Date.now();
      const r = await closedLoop(engine.mllp, { connections: CONNECTIONS, messages: n, factory: new MessageFactory('adt', runTag()), maxMs: 60_000 });
      ingress.push(r.msgPerSec);
      if (r.acked < n || r.rejected) notes.push(`hisbridge trial ${t + 1}: ${r.acked}/${n} acked by the engine, ${r.rejected} not AA`);
      const got = await waitReceived(rx, n, 90_000);
      const ms = Date.now() - t0;
      if (got < n) notes.push(`hisbridge trial ${t + 1}: only ${got}/${n} forwarded within 90 s`);
      else values.hisbridge!.push(round(n / (ms / 1000), 0));
      await engine.waitPending((p) => p === 0, 30_000);
    }
  } catch (e) {
    notes.push(reason(e));
  } finally {
    await engine?.stop();
    await rx?.close();
  }
  return [entry({
    ...BASE,
    better: 'higher',
    ...(notes.length ? { note: notes.join('; ') } : {}),
    details: { messagesPerTrial: n, engineIngressMsgPerSec: ingress.length ? spread(ingress) : null, connections: CONNECTIONS, pool: CONNECTIONS, hisbridgeTrials: values.hisbridge!.length ? spread(values.hisbridge!) : null },
  }, { hisbridge: values.hisbridge!, baselines: { [DIRECT]: values[DIRECT]! } })];
}
