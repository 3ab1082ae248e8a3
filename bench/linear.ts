/**
 * `node dist/bench/linear.js [N...] [--engine | --engine-only] [--only=obx] [--sims=child]`: where does a pathological message
 * spend its time? For each N (default 1000 10000 40000 100000) it builds a
 * message with N repetitions in PID-3 and one with N OBX segments
 * (bench/lib/pathological.ts) and times, in this process, every step a
 * message goes through: decode + parse, path reads (selectors included),
 * templates, the console tree, the recognition payloads, the sensitive scan,
 * and (with --engine) the real engine with the shipped routes and the
 * built-in simulators: ACK time, time until every delivery settled, and the
 * longest event-loop stall (perf_hooks.monitorEventLoopDelay). The
 * simulators run in this process unless `--sims=child` puts them in their own
 * (as the stall scenario does), so that the figures are the engine's alone;
 * `--sims-cpu-prof=DIR` then runs that process with `--cpu-prof` into DIR
 * (profile the engine itself with `node --cpu-prof dist/bench/linear.js ...`).
 *
 * Time that grows faster than N (x10 N, far more than x10 time) is a
 * super-linear step. Prints one table; nothing is written to disk.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { decodeHl7, parseHl7, type Hl7Message } from '../core/hl7/index.js';
import { compileTemplate } from '../core/template.js';
import { hl7Tree, renderTree } from '../core/ops/console/hl7-tree.js';
import { DEFAULT_CARD_TYPES, patientRef } from '../plugins/recognition/hl7-patient.js';
import { labPayload, patientPayload } from '../plugins/recognition-upload/payload.js';
import { compileSensitiveList, DEFAULT_SENSITIVE_CODES } from '../plugins/recognition/sensitive.js';
import { manyObxSegments, manyPid3Repetitions } from './lib/pathological.js';
import { startChild, type ChildHandle } from './lib/child.js';
import { siteYaml } from './scenarios/stall.js';
import type { StepInput } from '../core/sdk.js';

type Row = { message: string; n: number; step: string; ms: number };

function time(fn: () => unknown): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

const input = (msg: Hl7Message): StepInput => ({ messageId: 'x', controlId: msg.controlId, type: msg.type, source: 'bench', hl7: msg, vars: {} });

function units(name: string, n: number, text: string, rows: Row[]): void {
  const bytes = Buffer.from(text, 'utf8');
  let msg!: Hl7Message;
  rows.push({ message: name, n, step: 'decode+parse', ms: time(() => { msg = parseHl7(decodeHl7(bytes, 'utf-8').text); }) });
  rows.push({ message: name, n, step: "get('PID-3[5=PI].1')", ms: time(() => msg.get('PID-3[5=PI].1')) });
  rows.push({ message: name, n, step: "get('PID-3[5=NI|ID|SFZ].1')", ms: time(() => msg.get('PID-3[5=NI|ID|SFZ].1')) });
  rows.push({ message: name, n, step: "getAll('PID-3.1')", ms: time(() => msg.getAll('PID-3.1')) });
  rows.push({ message: name, n, step: "getAll('OBX-3.1')", ms: time(() => msg.getAll('OBX-3.1')) });
  rows.push({ message: name, n, step: "50 x get('NTE-3') (absent)", ms: time(() => { for (let i = 0; i < 50; i++) msg.get('NTE-3'); }) });
  const tpl = compileTemplate('recognition:${PID-3[5=PI].1}:${PID-5.1}${PID-5.2}');
  rows.push({ message: name, n, step: 'template render', ms: time(() => tpl.render(input(msg))) });
  rows.push({ message: name, n, step: 'console tree (masked) + html', ms: time(() => renderTree(hl7Tree(text))) });
  rows.push({ message: name, n, step: 'patientRef', ms: time(() => patientRef(msg, DEFAULT_CARD_TYPES)) });
  rows.push({ message: name, n, step: 'patientPayload', ms: time(() => patientPayload(msg, {}, DEFAULT_CARD_TYPES)) });
  // No result limit here: this times building the whole payload.
  const opts = { cardTypes: DEFAULT_CARD_TYPES, findings: /FIND/i, impression: /IMP/i, mask: false, maxResults: Number.MAX_SAFE_INTEGER };
  rows.push({ message: name, n, step: 'labPayload', ms: time(() => labPayload(msg, {}, 'R1', 'F', opts)) });
  const list = compileSensitiveList(DEFAULT_SENSITIVE_CODES);
  rows.push({ message: name, n, step: 'sensitive scan', ms: time(() => list.scan(msg)) });
}

/**
 * Longest event-loop turn, by wall clock and by CPU time: a timer chain
 * (setTimeout 0) notes, between two of its ticks, the wall time and the
 * process CPU time (process.cpuUsage: all threads, so GC helpers and the
 * checkpoint worker count too). On a machine shared with other work the wall
 * figure includes time spent waiting for a CPU; the CPU figure is closer to
 * the work the engine did in that turn.
 */
const profiling = process.execArgv.includes('--cpu-prof');
// performance.now() + timeOrigin is wall-clock ms; the profile's clock is monotonic µs (process.hrtime): the offset between them.
const originUs = (performance.timeOrigin + performance.now()) * 1000 - Number(process.hrtime.bigint() / 1000n);

function turnMeter(): { stop: () => { maxWallMs: number; maxCpuMs: number } } {
  let lastWall = performance.now();
  let lastCpu = process.cpuUsage();
  let maxWallMs = 0;
  let maxCpuMs = 0;
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    const wall = performance.now();
    const cpu = process.cpuUsage();
    maxWallMs = Math.max(maxWallMs, wall - lastWall);
    // With --cpu-prof: turns over 30 ms, in the profile's clock (µs), to look them up in the profile.
    if (profiling && wall - lastWall > 30) process.stderr.write(`LONGTURN ${(wall - lastWall).toFixed(1)} ms ${Math.round((performance.timeOrigin + lastWall) * 1000 - originUs)} ${Math.round((performance.timeOrigin + wall) * 1000 - originUs)}\n`);
    maxCpuMs = Math.max(maxCpuMs, (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000);
    lastWall = wall;
    lastCpu = cpu;
    timer = setTimeout(tick, 0);
  };
  timer = setTimeout(tick, 0);
  return {
    stop: () => {
      clearTimeout(timer);
      return { maxWallMs, maxCpuMs };
    },
  };
}

async function engineRun(cases: { name: string; n: number; text: string }[], rows: Row[], simsApart: boolean, simsProfDir?: string): Promise<void> {
  const { Engine } = await import('../core/engine/engine.js');
  const { loadSiteConfig } = await import('../core/config/site.js');
  const { builtinRegistry } = await import('../plugins/index.js');
  const { createLogger } = await import('../core/log.js');
  const { MllpClient } = await import('../core/mllp/client.js');
  const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-linear-'));
  const reg = builtinRegistry();
  // --sims=child: both simulators in their own process (as in the stall scenario), so the figures are the engine's alone.
  let sims: ChildHandle | undefined;
  let siteFile: string | undefined;
  let env: NodeJS.ProcessEnv = process.env;
  if (simsApart) {
    sims = await startChild(path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'sims.js'), [], {
      ready: /^SITES (.*)$/,
      timeoutMs: 15_000,
      ...(simsProfDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.resolve(simsProfDir)}`] } : {}),
    });
    const site = siteYaml(JSON.parse(sims.ready[1]!) as Record<string, Record<string, unknown>>);
    siteFile = path.join(dir, 'hisbridge.yaml');
    writeFileSync(siteFile, `${site.yaml}\n`);
    env = { ...process.env, ...site.env };
  }
  // With the simulators apart the engine runs none of its own (as the stall scenario's engine, started with --no-simulators).
  const config = loadSiteConfig(siteFile, reg.extensions, { mllpPort: 0, httpPort: 0, dataDir: path.join(dir, 'store'), routesDir: path.resolve('routes'), ...(simsApart ? { simulators: false } : {}) }, env);
  const log = createLogger({ level: 'error', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const engine = await Engine.create({ config, registry: reg, log, simulatorPorts: 'random' });
  await engine.start();
  const client = await MllpClient.connect('127.0.0.1', engine.listeners[0]!.port!, { timeoutMs: 600_000 });
  try {
    for (const c of cases) {
      // Encoded before the clock starts: turning the 4.5 MB text into bytes is the sender's work, not the engine's.
      const bytes = Buffer.from(c.text, 'utf8');
      const h = monitorEventLoopDelay({ resolution: 5 });
      h.enable();
      const meter = turnMeter();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const w0 = process.hrtime.bigint() / 1000n;
      const ack = await client.send(bytes);
      const tAck = performance.now() - t0;
      const code = /MSA\|(\w+)/.exec(ack.toString('utf8'))?.[1] ?? '?';
      // Settled: nothing open for this engine (the message's deliveries done, skipped or dead).
      const end = Date.now() + 600_000;
      while (engine.store.pendingCount() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      const tAll = performance.now() - t0;
      // With --cpu-prof: the measured window in the profile's clock (µs, monotonic), to cut the profile to it.
      if (process.execArgv.includes('--cpu-prof')) process.stderr.write(`WINDOW ${c.name} N=${c.n} ${w0} ${process.hrtime.bigint() / 1000n}\n`);
      const cpu = process.cpuUsage(cpu0);
      h.disable();
      const turns = meter.stop();
      rows.push({ message: c.name, n: c.n, step: `engine: ACK ${code}`, ms: tAck });
      rows.push({ message: c.name, n: c.n, step: 'engine: ACK + deliveries settled', ms: tAll });
      // The engine process's CPU time from send to settled (all threads): steadier than wall time on a loaded machine.
      rows.push({ message: c.name, n: c.n, step: 'engine: process CPU, send -> settled', ms: (cpu.user + cpu.system) / 1000 });
      rows.push({ message: c.name, n: c.n, step: 'engine: max event-loop delay', ms: h.max / 1e6 });
      rows.push({ message: c.name, n: c.n, step: 'engine: longest turn, wall (timer chain)', ms: turns.maxWallMs });
      rows.push({ message: c.name, n: c.n, step: 'engine: longest turn, process CPU time', ms: turns.maxCpuMs });
    }
  } finally {
    client.close();
    await engine.stop(2000);
    await sims?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<void> {
  const withEngine = argv.includes('--engine');
  const unitsToo = !argv.includes('--engine-only');
  const only = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  const ns = argv.filter((a) => /^\d+$/.test(a)).map(Number);
  const sizes = ns.length ? ns : [1000, 10_000, 40_000, 100_000];
  const rows: Row[] = [];
  const cases: { name: string; n: number; text: string }[] = [];
  for (const n of sizes) {
    cases.push({ name: 'ADT^A04 PID-3 reps', n, text: manyPid3Repetitions(n, 'ADT^A04', { controlId: `LINA${n}`, patientId: `PA${n}` }) });
    cases.push({ name: 'ORU^R01 PID-3 reps', n, text: manyPid3Repetitions(n, 'ORU^R01', { controlId: `LINO${n}`, patientId: `PO${n}` }) });
    cases.push({ name: 'ORU^R01 OBX segs', n, text: manyObxSegments(n, { controlId: `LINX${n}`, patientId: `PX${n}` }) });
  }
  const chosen = only ? cases.filter((c) => c.name.toLowerCase().includes(only.toLowerCase())) : cases;
  if (unitsToo) for (const c of chosen) units(c.name, c.n, c.text, rows);
  if (withEngine || !unitsToo) await engineRun(chosen, rows, argv.includes('--sims=child'), argv.find((a) => a.startsWith('--sims-cpu-prof='))?.slice('--sims-cpu-prof='.length));
  const steps = [...new Set(rows.map((r) => `${r.message} | ${r.step}`))];
  const head = ['message | step'.padEnd(62), ...sizes.map((n) => `N=${n}`.padStart(12))].join('');
  const lines = [head];
  for (const s of steps) {
    const cells = sizes.map((n) => {
      const r = rows.find((x) => `${x.message} | ${x.step}` === s && x.n === n);
      return (r ? r.ms.toFixed(1) : '-').padStart(12);
    });
    lines.push(s.padEnd(62) + cells.join(''));
  }
  process.stdout.write(`times in ms; message sizes: ${cases.map((c) => `${c.name} N=${c.n} ${(Buffer.byteLength(c.text) / 1e6).toFixed(2)} MB`).join(', ')}\n${lines.join('\n')}\n`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`linear: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
