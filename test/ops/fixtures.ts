/**
 * Shared pieces of the ops and browser tests: an engine with a console user
 * and token, the sample set, PHI lists to scan for, a Prometheus text parser.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { hashPassword } from '../../core/ops/console/auth.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';

export const CONSOLE_USER = 'ops';
export const CONSOLE_PASSWORD = 'correct horse battery';
export const CONSOLE_TOKEN = 'test-token-0123456789abcdef';

/** A real engine (MLLP, HTTP, simulators on random ports) with a console user and a bearer token. */
export function startOpsEngine(): Promise<TestEngine> {
  const siteYaml = `console:\n  users:\n    - { name: ${CONSOLE_USER}, passwordHash: "${hashPassword(CONSOLE_PASSWORD)}" }\n  token: \${env:HB_TEST_CONSOLE_TOKEN}\n  sessionTtl: 10m\n`;
  return startEngine({ siteYaml, env: { HB_TEST_CONSOLE_TOKEN: CONSOLE_TOKEN } });
}

export const SAMPLE_DIR = path.resolve('samples');

export function sampleFiles(): string[] {
  return readdirSync(SAMPLE_DIR).filter((f) => f.endsWith('.hl7')).sort();
}

export function sample(name: string): Buffer {
  return readFileSync(path.join(SAMPLE_DIR, name));
}

/** A copy of a sample with a new MSH-10 (ASCII, so a byte-level swap is safe in GBK files). */
export function withControlId(name: string, controlId: string): Buffer {
  const raw = sample(name);
  const old = parseHl7(decodeHl7(raw, 'gb18030').text).controlId;
  return Buffer.from(raw.toString('latin1').replace(`|${old}|`, `|${controlId}|`), 'latin1');
}

/** Every resident ID number and patient name in the samples: none may appear in logs, audit rows or labels. */
export function samplePhi(): { idNumbers: string[]; names: string[] } {
  const ids = new Set<string>();
  const names = new Set<string>();
  for (const f of sampleFiles()) {
    const msg = parseHl7(decodeHl7(sample(f), 'gb18030').text);
    for (const m of decodeHl7(sample(f), 'gb18030').text.matchAll(/(?<!\d)\d{17}[\dX](?!\d)/g)) ids.add(m[0]);
    const name = msg.get('PID-5.1') + msg.get('PID-5.2');
    if (name.length >= 2) names.add(name);
  }
  return { idNumbers: [...ids], names: [...names] };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (samples only). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of a metric's samples whose labels include `match`. */
export function metricValue(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

export async function until<T>(fn: () => Promise<T> | T, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}
