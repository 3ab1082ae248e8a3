/**
 * Test harness for the recognition plugins: a real simulator on port 0, a
 * plugin context with the real HTTP client, an in-memory plugin state and an
 * audit recorder, and StepInputs built from the sample files.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { createHttpClient, type OwnedHttpClient } from '../../core/http/client.js';
import { silentLogger } from '../../core/log.js';
import type { AuditEntry, CallContext, PluginContext, PluginDefinition, PluginInstance, PluginState, StepInput } from '../../core/sdk.js';
import { recognitionDefaults } from '../../plugins/recognition/site.js';
import { builtinRegistry } from '../../plugins/index.js';
import recognition from '../../plugins/recognition/index.js';
import upload from '../../plugins/recognition-upload/index.js';
import check from '../../plugins/recognition-check/index.js';
import guard from '../../plugins/sensitive-guard/index.js';
import type { Registry } from '../../core/registry.js';
import { ExtensionServices } from '../../core/engine/plugin-host.js';
import { startRecognitionSimulator, type RecognitionSimulator } from '../../plugins/recognition/simulator.js';

export const SAMPLES = path.resolve(import.meta.dirname, '../../samples');

/** Reads a sample (by number prefix, e.g. '15') and decodes it the way a listener would. */
export function sampleText(prefix: string): string {
  const file = readdir().find((f) => f.startsWith(`${prefix}-`));
  if (!file) throw new Error(`no sample ${prefix}`);
  return decodeHl7(readFileSync(path.join(SAMPLES, file)), 'gb18030').text;
}

function readdir(): string[] {
  return (JSON.parse(readFileSync(path.join(SAMPLES, 'manifest.json'), 'utf8')) as { file: string }[]).map((e) => e.file);
}

let seq = 0;
export function inputFrom(text: string, vars: Record<string, unknown> = {}): StepInput {
  const hl7 = parseHl7(text);
  return { messageId: `m${++seq}`, controlId: hl7.controlId, type: hl7.type, source: 'mllp', hl7, vars };
}

export function sampleInput(prefix: string, vars: Record<string, unknown> = {}): StepInput {
  return inputFrom(sampleText(prefix), vars);
}

export function callCtx(over: Partial<CallContext> = {}): CallContext {
  return { route: 'test-route', step: 0, idempotencyKey: `k${++seq}`, attempt: 1, signal: new AbortController().signal, log: silentLogger(), ...over };
}

export class MemoryState implements PluginState {
  readonly map = new Map<string, unknown>();
  async get<T>(k: string): Promise<T | undefined> {
    return this.map.get(k) as T | undefined;
  }
  async set(k: string, v: unknown): Promise<void> {
    this.map.set(k, structuredClone(v));
  }
  async delete(k: string): Promise<void> {
    this.map.delete(k);
  }
}

export interface Harness {
  sim: RecognitionSimulator;
  http: OwnedHttpClient;
  site: Record<string, unknown>;
  audits: AuditEntry[];
  /** A fresh context of this harness's engine: it shares the recognition service (the token client, pending checks). */
  ctx(state?: PluginState): PluginContext;
  /** The contexts of another engine on the same simulator and site config (with `siteOverrides` over it): a service of its own. */
  otherEngine(siteOverrides?: Record<string, unknown>): (state?: PluginState) => PluginContext;
  instance(def: PluginDefinition<any>, config: unknown, state?: PluginState): Promise<PluginInstance>; // eslint-disable-line @typescript-eslint/no-explicit-any
  simGet<T = unknown>(p: string): Promise<T>;
  simPost(p: string, body: unknown): Promise<void>;
  close(): Promise<void>;
}

/** Starts a simulator for `siteOverrides` (merged over the embedded defaults) and a context pointing at it. */
export async function startHarness(siteOverrides: Record<string, unknown> = {}): Promise<Harness> {
  const sim = await startRecognitionSimulator({ port: 0, site: siteOverrides });
  const http = createHttpClient();
  const site = { ...recognitionDefaults({ simulatorUrl: sim.url }), ...siteOverrides };
  const audits: AuditEntry[] = [];
  /** One engine's contexts: the services (the recognition hub) are made once per engine, as the engine's PluginHost does. */
  const engine = (over?: Record<string, unknown>) => {
    const engineSite = over ? { ...site, ...over } : site;
    const make = (state: PluginState = new MemoryState()): PluginContext => ({
      log: silentLogger(),
      http,
      signal: new AbortController().signal,
      site: engineSite,
      audit: (e) => audits.push(e),
      state,
      service: <T>(key: string) => services.get<T>(key),
    });
    const services: ExtensionServices = new ExtensionServices({ extensions: [recognition] }, () => make());
    return make;
  };
  const ctx = engine();
  return {
    sim,
    http,
    site,
    audits,
    ctx,
    otherEngine: engine,
    async instance(def, config, state) {
      return def.create(ctx(state), config as never);
    },
    async simGet(p) {
      const r = await fetch(sim.url + p);
      return (await r.json()) as never;
    },
    async simPost(p, body) {
      const r = await fetch(sim.url + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (!r.ok) throw new Error(`simulator hook ${p}: ${r.status}`);
    },
    async close() {
      http.close();
      await sim.close();
    },
  };
}

/** Removes segments named `name` from a message text (to build variants of a sample). */
export function withoutSegments(text: string, name: string): string {
  return text.split(/\r\n|\r|\n/).filter((l) => l && !l.startsWith(`${name}|`)).join('\r');
}

/** The built-in registry plus the recognition extension and plugins (only what plugins/index.ts does not list yet). */
export function recognitionRegistry(): Registry {
  const reg = builtinRegistry();
  if (!reg.extensions.some((e) => e.key === 'recognition')) reg.extension(recognition);
  for (const p of [upload, check, guard]) if (!reg.getPlugin(p.name)) reg.plugin(p);
  return reg;
}

/** Raw bytes of a sample, as a sender puts them in an MLLP frame. */
export function sampleBytes(prefix: string): Buffer {
  const file = readdir().find((f) => f.startsWith(`${prefix}-`));
  if (!file) throw new Error(`no sample ${prefix}`);
  return readFileSync(path.join(SAMPLES, file));
}
