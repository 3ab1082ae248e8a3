/**
 * The deployment files in deploy/ against the real engine:
 * - every metric the Prometheus rules and the Grafana dashboard reference is
 *   served by a real engine's GET /metrics;
 * - `promtool check rules` and `promtool test rules` pass (promtool comes
 *   with Debian's `prometheus` package, which scripts/pretest.mjs installs:
 *   required under CI=true, skipped with a printed reason elsewhere);
 * - the systemd unit has the hardening the issue asks for, writes only the
 *   data directory of deploy/hisbridge.yaml, and its LimitNOFILE covers that
 *   config's connections as `hisbridge doctor` counts them (systemd-analyze
 *   verify when it is installed);
 * - the metrics added for the alert kinds (store, listener, remote up, ACK
 *   latency) report the engine's real state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { MllpClient } from '../../core/mllp/client.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { builtinRegistry } from '../../plugins/index.js';
import { FD_HEADROOM } from '../../core/cli/cmd-doctor.js';

const DEPLOY = path.resolve('deploy');
const RULES = path.join(DEPLOY, 'prometheus/hisbridge-alerts.yml');
const RULE_TESTS = path.join(DEPLOY, 'prometheus/hisbridge-alerts.test.yml');
const DASHBOARD = path.join(DEPLOY, 'grafana/hisbridge-dashboard.json');
const UNIT = path.join(DEPLOY, 'hisbridge.service');
const SITE = path.join(DEPLOY, 'hisbridge.yaml');

/** Series Prometheus makes itself (never on /metrics): only `up`, for the engine-down alert. */
const PROMETHEUS_OWN = new Set(['up']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'inf', 'nan']);

/** Metric names in a PromQL expression (Grafana's $variables allowed): identifiers that are not functions, keywords, labels or durations. */
export function promqlMetricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const w = m[0];
    if (KEYWORDS.has(w.toLowerCase())) continue;
    if (s.slice(m.index! + w.length).trimStart().startsWith('(')) continue; // a function call
    names.add(w);
  }
  return [...names];
}

/** Sample names /metrics can serve: each TYPE line's name, with _bucket/_sum/_count for histograms and summaries. */
function servedNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    out.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) out.add(name + s);
  }
  return out;
}

function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\S+?)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

function ruleExprs(): { name: string; expr: string }[] {
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert?: string; record?: string; expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ name: r.alert ?? r.record ?? '?', expr: String(r.expr) })));
}

interface Panel { title?: string; targets?: { expr?: string }[]; panels?: Panel[] }

function dashboardExprs(): { name: string; expr: string }[] {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[]; templating: { list: { name: string; definition?: string }[] } };
  const out: { name: string; expr: string }[] = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ name: p.title ?? '?', expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const v of d.templating.list) {
    const m = /label_values\(\s*([A-Za-z_:][\w:]*)/.exec(v.definition ?? '');
    if (m) out.push({ name: `variable ${v.name}`, expr: m[1]! });
  }
  return out;
}

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

let t: TestEngine;
let metrics = '';

beforeAll(async () => {
  t = await startEngine();
  const c = await MllpClient.connect('127.0.0.1', t.port);
  await c.send(readFileSync(path.resolve('samples/01-adt-a04-registration-consent.hl7')));
  c.close();
  await t.engine.ops.remotes.refresh();
  metrics = await (await fetch(`${t.httpUrl}/metrics`)).text();
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

describe('deploy/: Prometheus rules and Grafana dashboard', () => {
  it('finds metric names in PromQL, and a name the engine does not serve is reported', () => {
    expect(promqlMetricNames('sum by (instance, route) (increase(hisbridge_dead_letters_total{state="dead",x=~"a|b"}[30m])) > 0 and on () ((hour() + 8) % 24 >= 8)').sort()).toEqual(['hisbridge_dead_letters_total']);
    expect(promqlMetricNames('histogram_quantile(0.99, sum by (le) (rate(hisbridge_ack_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))')).toEqual(['hisbridge_ack_latency_seconds_bucket']);
    expect(promqlMetricNames('hisbridge_remote_up == 0 unless up')).toEqual(['hisbridge_remote_up', 'up']);
    const served = servedNames(metrics);
    expect(promqlMetricNames('rate(hisbridge_nope_total[5m])').filter((n) => !served.has(n))).toEqual(['hisbridge_nope_total']);
  });

  it('every metric the alert rules and the dashboard reference exists on a real engine\'s /metrics', () => {
    const served = servedNames(metrics);
    const refs = [...ruleExprs().map((r) => ({ ...r, file: 'rules' })), ...dashboardExprs().map((r) => ({ ...r, file: 'dashboard' }))];
    const used = new Set<string>();
    const missing: string[] = [];
    for (const r of refs) {
      const names = promqlMetricNames(r.expr);
      expect(names.length, `${r.file} ${r.name}: no metric in ${r.expr}`).toBeGreaterThan(0);
      for (const n of names) {
        used.add(n);
        if (!served.has(n) && !PROMETHEUS_OWN.has(n)) missing.push(`${r.file} ${r.name}: ${n}`);
      }
    }
    expect(missing).toEqual([]);
    // The six built-in alert kinds each have their metric in the rules.
    const inRules = new Set(ruleExprs().flatMap((r) => promqlMetricNames(r.expr)));
    for (const m of ['hisbridge_deliveries_current', 'hisbridge_remote_up', 'hisbridge_listener_up', 'hisbridge_store_up', 'hisbridge_kafka_lag', 'hisbridge_messages_received_total']) expect(inRules, m).toContain(m);
    // The dashboard's panels the issue names.
    for (const m of ['hisbridge_route_matches_total', 'hisbridge_ack_latency_seconds_bucket', 'hisbridge_deliveries_current', 'hisbridge_dead_letters_total', 'hisbridge_delivery_latency_seconds_bucket', 'hisbridge_deliveries_total', 'hisbridge_kafka_lag', 'hisbridge_event_loop_delay_seconds', 'hisbridge_call_latency_seconds_bucket', 'hisbridge_calls_total']) expect(used, m).toContain(m);
    // Remote latency and errors per institution (issue 16): grouped by the org label.
    const perOrg = dashboardExprs().filter((r) => /per institution/.test(r.name));
    expect(perOrg.some((r) => r.expr.includes('hisbridge_call_latency_seconds_bucket') && /by \(le, org\)/.test(r.expr))).toBe(true);
    expect(perOrg.some((r) => r.expr.includes('hisbridge_calls_total') && /by \(org\)/.test(r.expr) && /result=~"failed/.test(r.expr))).toBe(true);
  });

  it('the dashboard is importable JSON: unique panel ids, every query on the ${DS_PROMETHEUS} input', () => {
    const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; __inputs: { name: string }[]; panels: { id: number; datasource?: { uid: string }; targets?: { datasource: { uid: string } }[] }[] };
    expect(d.uid).toBe('hisbridge-engine');
    expect(d.__inputs.map((i) => i.name)).toEqual(['DS_PROMETHEUS']);
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of d.panels) for (const tg of p.targets ?? []) expect(tg.datasource.uid).toBe('${DS_PROMETHEUS}');
  });

  it('promtool check rules and promtool test rules pass', (ctx) => {
    if (!onPath('promtool')) {
      if (process.env.CI === 'true') throw new Error('promtool is missing under CI=true: scripts/pretest.mjs installs Debian\'s prometheus package');
      console.log('deploy test: promtool not installed (Debian package prometheus; npm test\'s pretest installs it): skipping promtool check rules');
      ctx.skip();
      return;
    }
    const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/SUCCESS: \d+ rules found/);
    const test = spawnSync('promtool', ['test', 'rules', RULE_TESTS], { encoding: 'utf8', cwd: path.dirname(RULE_TESTS) });
    expect(test.status, test.stdout + test.stderr).toBe(0);
  });
});

describe('deploy/: systemd unit', () => {
  const unit = readFileSync(UNIT, 'utf8');
  const directives = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) directives.set(m[1]!, [...(directives.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string) => directives.get(k)?.at(-1);

  it('is hardened and restarts on failure', () => {
    expect(one('User')).toBe('hisbridge');
    expect(one('Restart')).toBe('on-failure');
    for (const [k, v] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', PrivateDevices: 'yes', RestrictSUIDSGID: 'yes', UMask: '0077', CapabilityBoundingSet: '' })) expect(one(k), k).toBe(v);
    // V8's JIT needs writable+executable memory.
    expect(one('MemoryDenyWriteExecute')).toBeUndefined();
    expect(one('ExecStart')).toMatch(/ start --config \/etc\/hisbridge\/hisbridge\.yaml$/);
  });

  it('writes only the data directory of deploy/hisbridge.yaml, and LimitNOFILE covers its connections as doctor counts them', () => {
    const env = { GDEHR_APP_ID: 'a', GDEHR_PAAS_ID: 'p', GDEHR_PAAS_TOKEN: 't', GDEHR_SM4_KEY: '0123456789abcdef0123456789abcdef' };
    const reg = builtinRegistry();
    const config = loadSiteConfig(SITE, reg.extensions, {}, env, reg.sources);
    expect(config.simulators).toBe(false);
    expect(directives.get('ReadWritePaths')).toEqual([config.dataDir]);
    const need = config.listeners.filter((l) => l.type === 'mllp').reduce((s, l) => s + l.maxConnections, 0) + config.http.maxConnections + FD_HEADROOM;
    expect(Number(one('LimitNOFILE'))).toBeGreaterThanOrEqual(need);
  });

  it('systemd-analyze verify finds nothing to say about it', (ctx) => {
    if (!onPath('systemd-analyze')) {
      console.log('deploy test: systemd-analyze not installed: skipping the unit verification');
      ctx.skip();
      return;
    }
    const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    // It exits 0 even for directives it ignores: any line naming the unit file is a problem.
    expect((r.stdout + r.stderr).split('\n').filter((l) => l.includes('hisbridge.service'))).toEqual([]);
  });
});

describe('metrics for the alert kinds', () => {
  it('report the real state: store up, listener up, remotes reachable, ACK latency observed', async () => {
    expect(sample(metrics, 'hisbridge_store_up')).toBe(1);
    expect(sample(metrics, 'hisbridge_listener_up', { listener: 'mllp' })).toBe(1);
    expect(sample(metrics, 'hisbridge_remote_up', { remote: 'gdEhr' })).toBe(1);
    expect(sample(metrics, 'hisbridge_ack_latency_seconds_count', { listener: 'mllp' })).toBeGreaterThanOrEqual(1);
    // A remote that goes away reads 0 after the next probe.
    await t.engine.simulators.gdEhr!.close();
    await t.engine.ops.remotes.refresh();
    const after = await (await fetch(`${t.httpUrl}/metrics`)).text();
    expect(sample(after, 'hisbridge_remote_up', { remote: 'gdEhr' })).toBe(0);
    expect(sample(after, 'hisbridge_remote_up', { remote: 'recognition' })).toBe(1);
  });
});
