/**
 * The route plan (core/routes/plan.ts), compiled once when routes load: which
 * steps run at ingest and which segment each stored delivery runs, for routes
 * with filter, set, local and outbound steps in several orders. The routes are
 * real route files through the real loader; the runner test calls a real
 * HTTP server on a random port standing in for a hospital system.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRouteFiles, loadRoutes, closeRoutes } from '../../core/routes/loader.js';
import { runSegment } from '../../core/routes/run.js';
import type { CompiledRoute } from '../../core/routes/types.js';
import type { RoutePlan, StepRange } from '../../core/routes/plan.js';
import { builtinRegistry } from '../../plugins/index.js';
import { offlineContext } from '../../core/cli/common.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { silentLogger } from '../../core/log.js';
import { isHisbridgeError } from '../../core/errors.js';
import { parseHl7 } from '../../core/hl7/index.js';
import { tempFiles } from '../helpers/routes.js';

const reg = builtinRegistry();
const ctx = offlineContext(reg, loadSiteConfig(undefined, reg.extensions));
const dirs: string[] = [];
const loaded: CompiledRoute[] = [];

async function route(yaml: string): Promise<CompiledRoute> {
  const dir = tempFiles({ 'r.yaml': yaml });
  dirs.push(dir);
  const [r] = await loadRoutes(listRouteFiles([dir]), { registry: reg, contextFor: (d) => ctx(d), env: {} });
  loaded.push(r!);
  return r!;
}

/** Labels of the steps in a range, for readable expectations. */
const labels = (r: CompiledRoute, range: StepRange) => r.steps.slice(range.from, range.to).map((s) => s.label);

/** The plan in labels: what runs inline, what each queued delivery runs, which steps are recorded. */
function described(r: CompiledRoute) {
  const plan: RoutePlan = r.plan;
  return {
    ack: plan.ack,
    inline: labels(r, plan.inline),
    deliveries: plan.deliveries.map((d) => ({ step: d.step.label, runs: labels(r, d.run) })),
    recorded: plan.recorded.map((s) => s.label),
  };
}

/** What a stored delivery of the step labelled `label` runs (a queued delivery or a replayed dead letter). */
function segmentOf(r: CompiledRoute, label: string): string[] {
  const step = r.steps.find((s) => s.label === label)!;
  const seg = r.plan.segments.get(step.index)!;
  expect(seg.step).toBe(step);
  expect(r.steps[seg.position]).toBe(step);
  return labels(r, seg.run);
}

const call = (name: string, url = 'http://127.0.0.1:1/x') => `  - name: ${name}\n    plugin: http\n    config: { url: "${url}", body: { id: "\${msg.controlId}" } }\n`;
const head = (ack: 'on-receive' | 'on-complete') => `name: r\nmatch: { events: [ADT^A04] }\nack: ${ack}\nsteps:\n`;
const filter = '  - filter: { path: PID-3.1, exists: true }\n';
const set = (k: string) => `  - set: { ${k}: "\${PID-3.1}" }\n`;
const log = '  - log: { message: "step" }\n';
const reply = '  - reply: { text: "ok" }\n';

afterAll(async () => {
  await closeRoutes(loaded);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('route plan: on-receive routes', () => {
  it('runs filters, set and local steps before the first outbound step inline; each later delivery runs the steps since the previous outbound step; the last one also the trailing local steps', async () => {
    const r = await route(head('on-receive') + filter + set('a') + log + call('A') + set('b') + log + call('B') + log + reply);
    expect(described(r)).toEqual({
      ack: 'on-receive',
      inline: ['filter#0', 'set#1', 'log#2'],
      deliveries: [
        { step: 'A', runs: ['A'] },
        { step: 'B', runs: ['set#4', 'log#5', 'B', 'log#7', 'reply#8'] },
      ],
      recorded: [],
    });
    // Delivery steps carry their file index, which is what the store keeps.
    expect(r.plan.deliveries.map((d) => d.step.index)).toEqual([3, 6]);
  });

  it('an outbound step first: nothing inline, one delivery per step', async () => {
    const r = await route(head('on-receive') + call('A') + call('B') + call('C'));
    expect(described(r)).toEqual({
      ack: 'on-receive',
      inline: [],
      deliveries: [{ step: 'A', runs: ['A'] }, { step: 'B', runs: ['B'] }, { step: 'C', runs: ['C'] }],
      recorded: [],
    });
  });

  it('a single outbound step between local steps: the local steps after it go with its delivery', async () => {
    const r = await route(head('on-receive') + set('a') + call('A') + set('b') + log);
    expect(described(r)).toEqual({ ack: 'on-receive', inline: ['set#0'], deliveries: [{ step: 'A', runs: ['A', 'set#2', 'log#3'] }], recorded: [] });
  });

  it('no outbound step: everything inline, no delivery', async () => {
    const r = await route(head('on-receive') + filter + set('a') + log + reply);
    expect(described(r)).toEqual({ ack: 'on-receive', inline: ['filter#0', 'set#1', 'log#2', 'reply#3'], deliveries: [], recorded: [] });
  });

  it('a local plugin step of the inline part, stored by an older version of the route, runs alone', async () => {
    const r = await route(head('on-receive') + set('a') + log + call('A'));
    expect(segmentOf(r, 'log#1')).toEqual(['log#1']);
    expect(r.plan.segments.has(0)).toBe(false); // set steps are never a delivery's own step
  });
});

describe('route plan: on-complete routes', () => {
  it('runs every step inline and records the outbound steps; a replayed dead letter runs the segment of its step', async () => {
    const r = await route(head('on-complete') + set('a') + call('A') + filter + log + call('B') + reply);
    expect(described(r)).toEqual({
      ack: 'on-complete',
      inline: ['set#0', 'A', 'filter#2', 'log#3', 'B', 'reply#5'],
      deliveries: [],
      recorded: ['A', 'B'],
    });
    // A dead letter of the second outbound step, replayed, runs what a delivery of it would run.
    expect(segmentOf(r, 'A')).toEqual(['A']);
    expect(segmentOf(r, 'B')).toEqual(['filter#2', 'log#3', 'B', 'reply#5']);
    // A failed local plugin step is recorded too, and replays alone.
    expect(segmentOf(r, 'log#3')).toEqual(['log#3']);
  });

  it('filters and set steps between outbound steps stay inline; no outbound step means nothing recorded', async () => {
    const r = await route(head('on-complete') + log + filter + set('a') + reply);
    expect(described(r)).toEqual({ ack: 'on-complete', inline: ['log#0', 'filter#1', 'set#2', 'reply#3'], deliveries: [], recorded: [] });
  });

  it('a filter between outbound steps is planned inline in an on-complete route, and refused at load in an on-receive one', async () => {
    const ok = await route(head('on-complete') + call('A') + filter + call('B'));
    expect(described(ok).recorded).toEqual(['A', 'B']);
    await expect(route(head('on-receive') + call('A') + filter + call('B'))).rejects.toThrow(/filters must come before the first outbound plugin step/);
  });
});

describe('runSegment reports the failed step in its result', () => {
  let server: http.Server;
  let base: string;
  const seen: string[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        seen.push(req.url ?? '');
        const status = req.url === '/bad' ? 400 : 200;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const input = () => ({
    messageId: '1', controlId: 'PLAN0001', type: 'ADT^A04', source: 'mllp', vars: {},
    hl7: parseHl7('MSH|^~\\&|HIS|H1|HB|HB|20250101120000||ADT^A04|PLAN0001|P|2.5\rPID|1||P1^^^H^PI\r'),
  });
  const opts = { log: silentLogger(), signal: new AbortController().signal, attempt: 1, idempotencyKey: () => 'k' };

  it('an on-complete route failing at its second outbound step: the result names that step and carries its error unchanged; nothing after it runs', async () => {
    const r = await route(head('on-complete') + set('a') + call('first', `${base}/ok`) + log + call('second', `${base}/bad`) + call('third', `${base}/ok3`));
    seen.length = 0;
    const res = await runSegment(r, input(), r.plan.inline, opts);
    expect(res.failed?.step.label).toBe('second');
    expect(res.failed?.step.index).toBe(3);
    const err = res.failed!.error;
    expect(isHisbridgeError(err) && err.code).toBe('HTTP_E_STATUS');
    // The error is the plugin's own, not tagged with where it happened.
    expect(Object.keys(err as object)).not.toContain('failedStep');
    expect(Object.keys(res.byStep).map(Number)).toEqual([1, 2]);
    expect(seen).toEqual(['/ok', '/bad']);
  });

  it('a segment that runs cleanly has no failure', async () => {
    const r = await route(head('on-receive') + set('a') + call('only', `${base}/ok`) + log);
    const res = await runSegment(r, input(), r.plan.deliveries[0]!.run, opts);
    expect(res.failed).toBeUndefined();
    expect(res.byStep[1]).toMatchObject({ outcome: 'ok', output: { status: 200 } });
    expect(res.outcomes.map((o) => o.step)).toEqual(['only', 'log#2']);
  });
});
