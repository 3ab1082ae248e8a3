/** Shared pieces of the gd-ehr tests: a simulator on port 0, a hand-made PluginContext, messages from samples. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createHttpClient } from '../../core/http/client.js';
import { silentLogger } from '../../core/log.js';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import type { AuditEntry, CallContext, PluginContext, StepInput } from '../../core/sdk.js';
import { gdEhrDefaults } from '../../plugins/gd-ehr/site.js';
import { startGdEhrSimulator, type GdEhrSimulator } from '../../plugins/gd-ehr/simulator.js';

export const GUIDE_KEY = '33edd0637a6cbd8e7d057fbc0944d621';

/** A site section for tests: the embedded demo defaults pointed at `simUrl`, with overrides. */
export function testSite(simUrl: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...gdEhrDefaults({ simulatorUrl: simUrl }), orgCode: 'TEST001', orgName: '测试医院', sm4Key: GUIDE_KEY, paasToken: 'test-token', ...over };
}

export async function startSim(): Promise<{ sim: GdEhrSimulator; site: Record<string, unknown> }> {
  // The simulator verifies against the same site keys the plugins use; its URL is only known after listen.
  const base = testSite('http://placeholder');
  const sim = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site: base, log: silentLogger() });
  return { sim, site: testSite(sim.url) };
}

export const http = createHttpClient({ defaultTimeoutMs: 5000 });

export function makeCtx(site: Record<string, unknown>, audit: AuditEntry[] = []): PluginContext {
  const state = new Map<string, unknown>();
  return {
    log: silentLogger(),
    http,
    signal: new AbortController().signal,
    site,
    audit: (e) => audit.push(e),
    state: {
      get: async <T>(k: string) => state.get(k) as T | undefined,
      set: async (k, v) => void state.set(k, v),
      delete: async (k) => void state.delete(k),
    },
  };
}

export function call(route = 'test-route'): CallContext {
  return { route, step: 0, idempotencyKey: `${route}:1:0`, attempt: 1, signal: new AbortController().signal, log: silentLogger() };
}

export function inputOf(text: string, vars: Record<string, unknown> = {}): StepInput {
  const hl7 = parseHl7(text);
  return { messageId: '1', controlId: hl7.get('MSH-10'), type: `${hl7.get('MSH-9.1')}^${hl7.get('MSH-9.2')}`, source: 'mllp', hl7, vars };
}

export function sampleText(name: string): string {
  return decodeHl7(readFileSync(path.resolve('samples', name)), 'gb18030').text;
}

export function sample(name: string, edit: (text: string) => string = (t) => t): StepInput {
  return inputOf(edit(sampleText(name)));
}
