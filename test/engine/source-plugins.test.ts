/**
 * Sources are plugins (issue 13): `listeners[].type` picks a registered
 * SourceDefinition (mllp when absent), each entry is validated with its
 * type's config schema at load (file:line:col; an unknown type names the
 * known ones), and the engine starts each through `start(ctx, submit)`, with
 * the source's health feeding /healthz and /readyz.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { Engine } from '../../core/engine/engine.js';
import { silentLogger } from '../../core/log.js';
import type { IngestOutcome, SourceContext, SourceDefinition, Submit } from '../../core/sdk.js';
import { builtinRegistry } from '../../plugins/index.js';

const dirs: string[] = [];
function site(yaml: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-src-'));
  dirs.push(dir);
  const file = path.join(dir, 'hisbridge.yaml');
  writeFileSync(file, yaml);
  return file;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A small source of our own: it submits what it is told to, and reports the health it is told to. */
function echoSource(state: { ctx?: SourceContext; submit?: Submit; live: boolean; ready: boolean; closed: boolean }): SourceDefinition {
  return {
    type: 'echo',
    summary: 'test source',
    configSchema: { type: 'object', additionalProperties: false, required: ['name', 'type'], properties: { name: { type: 'string' }, type: { const: 'echo' }, greeting: { type: 'string' } } },
    async start(ctx, submit) {
      state.ctx = ctx;
      state.submit = submit;
      return {
        async close() {
          state.closed = true;
        },
        health: () => ({ live: state.live, ready: state.ready, ...(state.live && state.ready ? {} : { detail: 'echo is unwell' }) }),
      };
    },
  };
}

function loadError(fn: () => unknown): LoadError {
  try {
    fn();
  } catch (e) {
    if (e instanceof LoadError) return e;
    throw e;
  }
  throw new Error('expected a LoadError');
}

describe('listener types at load', () => {
  it('an unknown type is an error at its line naming the known types', () => {
    const reg = builtinRegistry();
    const file = site('listeners:\n  - name: a\n    port: 0\n  - name: b\n    type: smtp\n');
    const err = loadError(() => loadSiteConfig(file, reg.extensions, {}, process.env, reg.sources));
    expect(err.issues).toHaveLength(1);
    expect(String(err.issues[0])).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: .*mllp`));
  });

  it('an entry is checked against its own type\'s schema, with the line of the bad key', () => {
    const reg = builtinRegistry();
    const state = { live: true, ready: true, closed: false };
    reg.source(echoSource(state));
    const file = site('listeners:\n  - name: a\n    port: 0\n  - name: b\n    type: echo\n    greting: hi\n');
    const err = loadError(() => loadSiteConfig(file, reg.extensions, {}, process.env, reg.sources));
    expect(err.issues.map(String).join('\n')).toMatch(/:6:\d+: unknown key "greting"/);
    // MLLP keys stay MLLP-only: a port on an echo entry is refused too.
    const file2 = site('listeners:\n  - name: b\n    type: echo\n    port: 1\n');
    expect(loadError(() => loadSiteConfig(file2, reg.extensions, {}, process.env, reg.sources)).issues.map(String).join('\n')).toMatch(/:4:\d+: unknown key "port"/);
  });

  it('without type an entry is MLLP with its defaults, and --mllp-port overrides the first MLLP listener', () => {
    const reg = builtinRegistry();
    reg.source(echoSource({ live: true, ready: true, closed: false }));
    const file = site('listeners:\n  - name: b\n    type: echo\n    greeting: hi\n  - name: his\n');
    const c = loadSiteConfig(file, reg.extensions, { mllpPort: 0 }, process.env, reg.sources);
    expect(c.listeners.map((l) => [l.name, l.type])).toEqual([['b', 'echo'], ['his', 'mllp']]);
    expect(c.listeners[0]!.options).toEqual({ name: 'b', type: 'echo', greeting: 'hi' });
    expect(c.listeners[1]).toMatchObject({ host: '127.0.0.1', port: 0, charset: 'gb18030' });
    // The default: one MLLP listener named mllp on 2575.
    const d = loadSiteConfig(undefined, reg.extensions, {}, process.env, reg.sources);
    expect(d.listeners.map((l) => [l.name, l.type, l.port])).toEqual([['mllp', 'mllp', 2575]]);
  });
});

describe('the engine starts sources through their definitions', () => {
  it('hands the source a context and the port; its health feeds /healthz and /readyz; close on stop', async () => {
    const reg = builtinRegistry();
    const state: { ctx?: SourceContext; submit?: Submit; live: boolean; ready: boolean; closed: boolean } = { live: true, ready: false, closed: false };
    reg.source(echoSource(state));
    const file = site('listeners:\n  - name: his\n    port: 0\n  - name: echo-in\n    type: echo\n    greeting: hi\nsimulators: false\n');
    const dataDir = path.join(path.dirname(file), 'data');
    const routesDir = path.join(path.dirname(file), 'routes');
    mkdirSync(routesDir);
    const config = loadSiteConfig(file, reg.extensions, { httpPort: 0, dataDir, routesDir }, process.env, reg.sources);
    const engine = await Engine.create({ config, registry: reg, log: silentLogger() });
    try {
      await engine.start();
      expect(state.ctx!.config).toEqual({ name: 'echo-in', type: 'echo', greeting: 'hi' });
      expect(state.ctx!.baseDir).toBe(path.dirname(file));
      expect(state.ctx!.dataDir).toBe(dataDir);
      expect(state.ctx!.flow.paused).toBe(false);
      expect(typeof state.ctx!.mountHttp).toBe('function');
      expect(engine.sources.map((s) => [s.name, s.type])).toEqual([['his', 'mllp'], ['echo-in', 'echo']]);
      expect(engine.listeners.map((l) => l.config.name)).toEqual(['his']);

      // The port given to the source is the engine's: a message goes in and is stored under the source's name.
      const o: IngestOutcome = await state.submit!({ source: 'echo-in', bytes: Buffer.from('MSH|^~\\&|HIS|H1|X|Y|20250312093015||ZZZ^Z01|ECHO01|P|2.5\r') });
      expect(o.status).toBe('accepted');
      expect(engine.store.findDuplicate('HIS', 'H1', 'ECHO01', 60_000)?.messageId).toBe(o.messageId);
      expect(state.ctx!.renderAck(o).toString('latin1')).toMatch(/\rMSA\|AA\|ECHO01/);

      const url = engine.httpServer!.url;
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { reasons: string[] }).reasons).toContain('listener echo-in: echo is unwell');
      state.ready = true;
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      state.live = false;
      const live = await fetch(`${url}/healthz`);
      expect(live.status).toBe(503);
      expect(((await live.json()) as { status: string; reasons: string[] })).toMatchObject({ status: 'failing', reasons: ['listener echo-in: echo is unwell'] });
    } finally {
      await engine.stop(1000);
    }
    expect(state.closed).toBe(true);
  }, 60_000);
});
