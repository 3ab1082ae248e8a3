/**
 * Issue 15 row 5 (a Kafka record through a one-step `log` route): the per
 * message work that route no longer does, with the same outcomes.
 * - A route whose only local step is `log` (effect-free) makes no duplicate
 *   lookup before the commit: the store's check at commit still answers a
 *   resent message as a duplicate. A local step with effects still makes it.
 * - A log step below the configured level renders nothing.
 * - The route loader leaves no AsyncLocalStorage enabled (Node 20 would run
 *   promise hooks for every promise of the engine), and tables still bind.
 */
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tableScope } from '../../core/routes/tables.js';
import type { PluginDefinition } from '../../core/sdk.js';
import { builtinRegistry } from '../../plugins/index.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';

function adt(controlId: string): Buffer {
  return Buffer.from([
    `MSH|^~\\&|HIS|H1|HISBRIDGE|GDPLAT|20250312093015||ADT^A04^ADT_A01|${controlId}|P|2.5`,
    'PID|1||PT1^^^HOSP^PI||TEST^ONE||19900101|M',
    '',
  ].join('\r'));
}

const logRoute = (level: string) => [
  'name: log-only',
  'match: { events: ["ADT^A04"] }',
  'steps:',
  `  - log: { message: "got \${msg.controlId}", level: ${level} }`,
].join('\n') + '\n';

describe('a log-only route', () => {
  let t: TestEngine | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
    vi.restoreAllMocks();
  });

  it('makes no duplicate lookup before the commit, and a resent message is still a duplicate', async () => {
    t = await startEngine({ routesDir: tempFiles({ 'log.yaml': logRoute('info') }) });
    const lookups = vi.spyOn(t.engine.store, 'findDuplicate');
    const first = await t.engine.submit({ source: 'mllp', bytes: adt('LOGCOST01') });
    const again = await t.engine.submit({ source: 'mllp', bytes: adt('LOGCOST01') });
    expect(first.status).toBe('accepted');
    expect(again.status).toBe('duplicate');
    expect(again.messageId).toBe(first.messageId);
    expect(lookups).not.toHaveBeenCalled();
  });

  it('a local step with effects still makes the lookup before the commit', async () => {
    const reg = builtinRegistry();
    const effects: string[] = [];
    const touch: PluginDefinition = {
      name: 'touch', summary: 'test: a local step with an effect', kind: 'local', configSchema: { type: 'object', properties: {} },
      create: () => ({ process: async (input) => (effects.push(input.controlId ?? ''), { outcome: 'ok' }) }),
    };
    reg.plugin(touch);
    const route = ['name: touch', 'match: { events: ["ADT^A04"] }', 'steps:', '  - plugin: touch'].join('\n') + '\n';
    t = await startEngine({ routesDir: tempFiles({ 'touch.yaml': route }), registry: reg });
    const lookups = vi.spyOn(t.engine.store, 'findDuplicate');
    await t.engine.submit({ source: 'mllp', bytes: adt('LOGCOST02') });
    const again = await t.engine.submit({ source: 'mllp', bytes: adt('LOGCOST02') });
    expect(again.status).toBe('duplicate');
    expect(lookups).toHaveBeenCalledTimes(2);
    // The resend did not act again.
    expect(effects).toEqual(['LOGCOST02']);
  });

  it('renders nothing below the configured level', async () => {
    const reg = builtinRegistry();
    const log = reg.getPlugin('log')!;
    const rendered: string[] = [];
    const instance = await log.create({
      log: { isLevelEnabled: (l: string) => l !== 'debug', debug: () => rendered.push('debug'), info: (_o: unknown, m: string) => rendered.push(m) },
    } as never, { message: 'line ${msg.controlId}', level: 'debug' });
    await instance.process({ controlId: 'X1', vars: {} } as never, { route: 'r', step: 0 } as never);
    expect(rendered).toEqual([]);
    const info = await log.create({
      log: { isLevelEnabled: () => true, info: (_o: unknown, m: string) => rendered.push(m) },
    } as never, { message: 'line ${msg.controlId}' });
    await info.process({ controlId: 'X2', vars: {}, msg: { controlId: 'X2' } } as never, { route: 'r', step: 0 } as never);
    expect(rendered).toHaveLength(1);
  });
});

describe('route loading and AsyncLocalStorage', () => {
  it('leaves the table scope disabled after a load (test/routes/tables-engine.test.ts covers the lookups)', async () => {
    const t = await startEngine({ routesDir: path.resolve('routes') });
    try {
      expect((tableScope as unknown as { enabled: boolean }).enabled).toBe(false);
    } finally {
      await t.stop();
    }
  });
});
