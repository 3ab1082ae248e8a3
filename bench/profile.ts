/**
 * `node dist/bench/profile.js [N] [--top K] [--keep] [--route gd-ehr|sink|log]`:
 * runs the end-to-end scenario of the bench (row 1: consented ADT^A04 over 8
 * MLLP connections, FULL, one gd-ehr authorization each to the simulator in
 * another process; `--route sink`: rows 3 and 4's route, one http step to a
 * no-op sink in another process; `--route log`: row 2's log-only route) with
 * `--cpu-prof` on the engine child, and prints the top K components of the
 * engine's main thread by self time, in µs per message, over the measured
 * window only (first send to the last delivery done, or to the last ACK for
 * the log-only route; warm-up and start-up are left out). A component is a source file of the
 * engine (dist path), an npm package, a Node internal module, or one of V8's
 * pseudo-nodes (garbage collector, program). Idle time is not counted.
 * Worker threads (the WAL checkpointer) are not in the profile.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpuMeter } from './lib/cpu.js';
import { DIST, ingressRoute, startEngine } from './lib/engine.js';
import { authRoute, startGdEhrRig } from './lib/gdehr.js';
import { closedLoop } from './lib/load.js';
import { MessageFactory } from './lib/messages.js';
import { startSink } from './lib/servers.js';
import { runTag } from './scenarios/mllp-setup.js';
import { LOG_ROUTE } from './scenarios/targets.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Component {
  name: string;
  selfUs: number;
  /** Functions of the component by self time, largest first. */
  functions: { name: string; selfUs: number }[];
}

/** The component a profile node's code belongs to. */
export function componentOf(url: string, functionName: string, dist: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName || 'anonymous'}`;
  let u = url.startsWith('file://') ? decodeURIComponent(url.slice(7)) : url;
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + 14).split('/');
    return `npm ${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (u.startsWith('node:')) return `node ${u.slice(5).replace(/^internal\//, '')}`;
  if (u.startsWith(dist + '/')) u = u.slice(dist.length + 1);
  return u;
}

/**
 * Self time per component over samples whose timestamp lies in [fromUs, toUs]
 * (the profile's clock is the monotonic clock of process.hrtime); all
 * samples when the window is omitted. Idle samples are left out.
 */
export function components(p: CpuProfile, dist: string, window?: { fromUs: number; toUs: number }): { list: Component[]; samplesInWindow: number } {
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const self = new Map<number, number>();
  let t = p.startTime;
  let inWindow = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    // A sample's time is the interval up to the next sample.
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    inWindow++;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
  }
  const comps = new Map<string, Component>();
  const fns = new Map<string, Map<string, number>>();
  for (const [id, us] of self) {
    const cf = byId.get(id)?.callFrame;
    if (!cf || cf.functionName === '(idle)') continue;
    const name = componentOf(cf.url, cf.functionName, dist);
    const c = comps.get(name) ?? { name, selfUs: 0, functions: [] };
    c.selfUs += us;
    comps.set(name, c);
    const f = fns.get(name) ?? new Map<string, number>();
    const fname = `${cf.functionName || '(anonymous)'}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
    f.set(fname, (f.get(fname) ?? 0) + us);
    fns.set(name, f);
  }
  const list = [...comps.values()].sort((a, b) => b.selfUs - a.selfUs);
  for (const c of list) c.functions = [...(fns.get(c.name) ?? new Map<string, number>())].map(([name, selfUs]) => ({ name, selfUs })).sort((a, b) => b.selfUs - a.selfUs);
  return { list, samplesInWindow: inWindow };
}

/** The top `top` components in µs per `unit` (of `n`), largest first, and the rest summed (profile.js, profile-kafka.js). */
export function topLines(list: Component[], n: number, top: number, unit: string): string[] {
  const total = list.reduce((s, c) => s + c.selfUs, 0);
  return [
    `top ${top} components by self time (µs per ${unit}; main thread):`,
    ...list.slice(0, top).map((c, i) => `${String(i + 1).padStart(2)}. ${(c.selfUs / n).toFixed(1).padStart(7)} µs  ${(100 * c.selfUs / total).toFixed(1).padStart(5)}%  ${c.name}  [${c.functions.slice(0, 3).map((f) => `${f.name} ${(f.selfUs / n).toFixed(1)}`).join(', ')}]`),
    `    ${(list.slice(top).reduce((s, c) => s + c.selfUs, 0) / n).toFixed(1).padStart(7)} µs  the other ${Math.max(0, list.length - top)} components`,
  ];
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' }, keep: { type: 'boolean' }, route: { type: 'string' } } });
  const n = Number(positionals[0] ?? 3000);
  const top = Number(values.top ?? 8);
  const route = values.route ?? 'gd-ehr';
  if (route !== 'gd-ehr' && route !== 'sink' && route !== 'log') throw new Error(`--route ${route}: expected gd-ehr, sink or log`);
  const profDir = mkdtempSync(path.join(tmpdir(), 'hb-profile-'));
  const nodeArgs = ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '200'];
  const rig = route === 'gd-ehr' ? await startGdEhrRig({ route: authRoute(), nodeArgs }) : undefined;
  const sink = route === 'sink' ? await startSink() : undefined;
  const engine = rig ? rig.engine : await startEngine({ routes: { 'route.yaml': sink ? ingressRoute(sink.url) : LOG_ROUTE }, nodeArgs });
  let window: { fromUs: number; toUs: number };
  let cpuUsPerMsg: number;
  let ackPerSec: number;
  try {
    // Until k deliveries were done since the last reset (none for the log-only route: its ACKs are the end).
    const waitAll = async (k: number) => {
      const end = Date.now() + 180_000;
      while (Date.now() < end) {
        if (rig) {
          if ((await rig.calls()).filter((c) => c.op === 'authorize' && c.verified && c.returnCode === '1').length >= k) return;
        } else if (!sink || (await sink.count()) - sinkBase >= k) {
          if ((await engine.pending()) === 0) return;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`fewer than ${k} deliveries were done within 180 s`);
    };
    let sinkBase = 0;
    await closedLoop(engine.mllp, { connections: 8, messages: 500, factory: new MessageFactory('adt', runTag()), maxMs: 60_000 });
    await waitAll(500);
    await engine.waitPending((p) => p === 0, 30_000);
    await rig?.reset();
    sinkBase = sink ? await sink.count() : 0;
    process.stderr.write(`profile: ${n} registrations over 8 connections, route ${route}\n`);
    const meter = cpuMeter(engine.child.pid);
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    const r = await closedLoop(engine.mllp, { connections: 8, messages: n, factory: new MessageFactory('adt', runTag()), maxMs: 120_000 });
    await waitAll(n);
    window = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) };
    cpuUsPerMsg = meter.stop(n);
    ackPerSec = r.msgPerSec;
  } finally {
    await (rig ? rig.close() : Promise.allSettled([engine.stop(), sink?.child.stop()]));
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`the engine wrote no profile into ${profDir}`);
  const profile = JSON.parse(readFileSync(path.join(profDir, file), 'utf8')) as CpuProfile;
  let { list, samplesInWindow } = components(profile, DIST, window);
  let note = '';
  if (samplesInWindow === 0) {
    ({ list } = components(profile, DIST));
    note = ' (no sample fell in the window: the whole profile, start-up included)';
  }
  const total = list.reduce((s, c) => s + c.selfUs, 0);
  const lines = [
    `engine main thread, ${n} messages, ACK ${ackPerSec} msg/s, process CPU ${cpuUsPerMsg.toFixed(0)} µs/msg (all threads, /proc), profiled busy time ${(total / n).toFixed(0)} µs/msg${note}`,
    ...topLines(list, n, top, 'message'),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  if (values.keep) process.stderr.write(`profile kept: ${path.join(profDir, file)}\n`);
  else rmSync(profDir, { recursive: true, force: true });
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  main().then(() => process.exit(0), (e) => {
    process.stderr.write(`profile: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
