/** Shared pieces of the CLI commands: argument parsing, config, printing load errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';
import { loadSiteConfig, type SiteConfig, type SiteOverrides } from '../config/site.js';
import { LoadError } from '../config/yaml-source.js';
import { builtinRegistry } from '../../plugins/index.js';
import type { Registry } from '../registry.js';
import type { PluginContext, PluginState } from '../sdk.js';
import { createHttpClient } from '../http/client.js';
import { silentLogger, type Logger } from '../log.js';
import { simulatorPort } from '../engine/sim-ports.js';
import { loadExternalPlugins } from '../config/plugins.js';

export function parse<T extends ParseArgsConfig['options']>(argv: string[], options: T, allowPositionals = true) {
  return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
}

export function out(line: string): void {
  process.stdout.write(line + '\n');
}

export function err(line: string): void {
  process.stderr.write(line + '\n');
}

/** Prints a LoadError as `file:line:col: message` lines; returns true when it was one. */
export function reportLoadError(e: unknown): boolean {
  if (e instanceof LoadError) {
    for (const i of e.issues) err(i.toString());
    return true;
  }
  return false;
}

export function loadConfig(file: string | undefined, registry: Registry, overrides: SiteOverrides = {}): SiteConfig {
  return loadSiteConfig(file ?? process.env.HISBRIDGE_CONFIG, registry.extensions, overrides, process.env, registry.sources);
}

export function registry(): Registry {
  return builtinRegistry();
}

/**
 * The built-in registry plus the external plugins the site config names
 * (`plugins:`, core/config/plugins.ts). Every command that reads a site
 * config builds its registry here; `file` defaults to $HISBRIDGE_CONFIG like
 * `loadConfig`. Throws LoadError (file:line:col) when a module cannot be used.
 */
export async function siteRegistry(file: string | undefined): Promise<Registry> {
  const reg = builtinRegistry();
  await loadExternalPlugins(file ?? process.env.HISBRIDGE_CONFIG, reg);
  return reg;
}

class MemoryState implements PluginState {
  readonly #m = new Map<string, unknown>();
  async get<T>(k: string) {
    return this.#m.get(k) as T | undefined;
  }
  async set(k: string, v: unknown) {
    this.#m.set(k, v);
  }
  async delete(k: string) {
    this.#m.delete(k);
  }
}

/**
 * A plugin context for load-time checks (validate, test tooling): no store,
 * audit rows dropped, state in memory, site sections with embedded defaults
 * (pointing at where `hisbridge start` would run the simulators, or without
 * them when the config turns the simulators off).
 */
export function offlineContext(reg: Registry, config: SiteConfig, log: Logger = silentLogger()) {
  const http = createHttpClient();
  const signal = new AbortController().signal;
  return (def: { name: string; siteKey?: string }): PluginContext => {
    const ext = def.siteKey ? reg.extensions.find((x) => x.key === def.siteKey) : undefined;
    const site = ext
      ? { ...ext.defaults(config.simulators && ext.simulator ? { simulatorUrl: `http://127.0.0.1:${simulatorPort(config, reg.extensions, ext.key)}` } : {}), ...(config.sections[ext.key] ?? {}) }
      : def.siteKey === 'kafka' && config.kafka
        ? { ...config.kafka }
        : {};
    return { log, http, signal, site, audit: () => undefined, state: new MemoryState() };
  };
}

/** Reads an HL7 file as bytes and splits it into messages at each `MSH` that starts a line (byte-level: GBK-safe). */
/** Site sections a site has not configured while the simulators are off: routes needing them load inactive. */
export function unconfiguredSite(config: SiteConfig): (siteKey: string) => boolean {
  return (key) => !config.simulators && Object.keys(config.sections[key] ?? {}).length === 0;
}

export function splitMessages(buf: Buffer): Buffer[] {
  const starts: number[] = [];
  for (let i = 0; i + 3 <= buf.length; i++) {
    if (buf[i] === 0x4d && buf[i + 1] === 0x53 && buf[i + 2] === 0x48 && (i === 0 || buf[i - 1] === 0x0d || buf[i - 1] === 0x0a || buf[i - 1] === 0x0b)) starts.push(i);
  }
  const out: Buffer[] = [];
  for (let k = 0; k < starts.length; k++) {
    let end = k + 1 < starts.length ? starts[k + 1]! : buf.length;
    let msg = buf.subarray(starts[k]!, end);
    // Trim MLLP envelope bytes and trailing blank lines.
    end = msg.length;
    while (end > 0 && (msg[end - 1] === 0x0a || msg[end - 1] === 0x0d || msg[end - 1] === 0x1c || msg[end - 1] === 0x0b || msg[end - 1] === 0x20)) end--;
    msg = msg.subarray(0, end);
    if (msg.length) out.push(Buffer.concat([msg, Buffer.from('\r')]));
  }
  return out;
}

export function readMessages(file: string): Buffer[] {
  return splitMessages(readFileSync(file));
}
