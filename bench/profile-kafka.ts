/**
 * `node dist/bench/profile-kafka.js [N] [--top K] [--keep]`: runs the engine
 * side of the Kafka row of the bench (row 5: ~1 KB ADT^A04 records through a
 * one-step log route, FULL) with `--cpu-prof` on the engine child, and prints
 * the top K components of the engine's main thread by self time, in µs per
 * record, over the measured window only (the first poll that saw a handled
 * record to the last record handled). Idle samples are left out; the idle
 * share of the window is printed next to them.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { startTestBroker } from '../core/kafka/broker.js';
import { DIST } from './lib/engine.js';
import { components, topLines, type CpuProfile } from './profile.js';
import { engineSource, produce } from './scenarios/kafka.js';
import { runTag } from './scenarios/mllp-setup.js';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' }, keep: { type: 'boolean' } } });
  const n = Number(positionals[0] ?? 15_000);
  const top = Number(values.top ?? 8);
  const profDir = mkdtempSync(path.join(tmpdir(), 'hb-profile-kafka-'));
  const broker = await startTestBroker();
  let trial;
  try {
    const kafka = new Kafka({ brokers: broker.brokers, clientId: 'hisbridge-profile', logLevel: logLevel.NOTHING });
    const topic = `profile-${runTag()}`;
    await produce(kafka, topic, n);
    process.stderr.write(`profile: ${n} records on ${topic}\n`);
    trial = await engineSource(broker.brokers, topic, n, ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '200']);
  } finally {
    await broker.stop();
  }
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`the engine wrote no profile into ${profDir}`);
  const profile = JSON.parse(readFileSync(path.join(profDir, file), 'utf8')) as CpuProfile;
  const { list, samplesInWindow } = components(profile, DIST, trial.window);
  const total = list.reduce((s, c) => s + c.selfUs, 0);
  const windowUs = trial.window.toUs - trial.window.fromUs;
  const lines = [
    `engine main thread, ${n} records, ${trial.value} records/s, process CPU ${trial.cpuUsPerMsg} µs/record (all threads, /proc), profiled busy time ${(total / n).toFixed(0)} µs/record, idle ${(100 * Math.max(0, 1 - total / windowUs)).toFixed(0)}% of the window (${samplesInWindow} samples)`,
    ...topLines(list, n, top, 'record'),
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
