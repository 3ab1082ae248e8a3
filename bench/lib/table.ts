/** Renders results as a plain-text table (stdout) and as Markdown (README). */
import type { Results, ScenarioResult } from './result.js';
import type { Spread } from './stats.js';

function fmt(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function cell(s: Spread | null): string {
  return s ? `${fmt(s.median)} (${fmt(s.min)}-${fmt(s.max)})` : '-';
}

function metText(r: ScenarioResult): string {
  if (r.status === 'not-yet-built') return 'not yet built';
  if (r.status === 'not-available') return 'n/a';
  if (r.status === 'failed') return 'FAILED';
  return r.met === null ? '-' : r.met ? 'yes' : 'NO';
}

/** Pair ratios as `1.42x (1.30-1.51) msg/s vs base, 5 pairs`; plain ratios of medians when the row was not paired. */
function ratioCell(r: ScenarioResult): string {
  if (r.pairs?.length) {
    return r.pairs.map((p) => (p.ratios.length ? `${fmt(p.median)}x (${fmt(p.min)}-${fmt(p.max)}) ${p.metric} vs ${p.baseline}, ${p.ratios.length} pairs` : `no complete pair (${p.metric})`)).join('; ');
  }
  return Object.entries(r.ratios).map(([k, v]) => `${fmt(v)}x ${k}`).join('; ') || '-';
}

function cpuCell(r: ScenarioResult): string {
  return Object.entries(r.cpuUsPerMsg ?? {}).map(([k, s]) => `${k} ${fmt(s.median)}`).join('; ') || '-';
}

/** Row cells in HEAD order. */
export function rows(results: Results): string[][] {
  return results.scenarios.map((r) => [
    String(r.scenario),
    r.name,
    r.unit,
    cell(r.hisbridge),
    Object.entries(r.baselines).map(([k, s]) => `${k} ${fmt(s.median)}`).join('; ') || '-',
    ratioCell(r),
    cpuCell(r),
    r.target,
    metText(r),
  ]);
}

export const HEAD = ['#', 'scenario', 'unit', 'hisbridge median (min-max)', 'baselines (median)', 'ratio (median of pair ratios, min-max)', 'CPU µs/msg (median)', 'target', 'met'];

/** Fixed-width table for the terminal. */
export function textTable(results: Results): string {
  const all = [HEAD, ...rows(results)];
  const width = HEAD.map((_, i) => Math.min(48, Math.max(...all.map((r) => r[i]!.length))));
  const line = (r: string[]) => r.map((c, i) => (c.length > width[i]! ? c.slice(0, width[i]! - 1) + '~' : c.padEnd(width[i]!))).join('  ');
  return [line(HEAD), width.map((w) => '-'.repeat(w)).join('  '), ...rows(results).map(line)].join('\n');
}

/** Markdown table plus notes, for the README's Performance section. */
export function markdownTable(results: Results): string {
  const m = results.machine;
  const head = `Measured by \`${results.command}\` (${results.mode} mode, ${m.date.slice(0, 10)}, ${m.cpus} CPUs, ${m.cpuModel.trim()}, Node ${m.node}); written from bench/results.json by \`npm run bench -- --table --write-readme\`.`;
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = [`| ${HEAD.join(' | ')} |`, `|${HEAD.map(() => '---').join('|')}|`, ...rows(results).map((r) => `| ${r.map(esc).join(' | ')} |`)];
  const notes = results.scenarios.filter((r) => r.note).map((r) => `- ${r.name}: ${r.note}`);
  return [head, '', ...out, '', ...notes].join('\n');
}
