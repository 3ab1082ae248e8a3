/** Shared pieces of the CLI commands: argument parsing, config, printing load errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';
import { loadSiteConfig, type SiteConfig, type SiteOverrides } from '../config/site.js';
import { LoadError } from '../config/yaml-source.js';
import { builtinRegistry } from '../../plugins/index.js';
import type { Registry } from '../registry.js';
import { pluginConcurrencyIssues } from '../engine/plugin-host.js';

/** The plugin contexts of the load-time tools and the inactive-route rule: the engine's own (core/engine/plugin-host.ts). */
export { offlineContext, unconfiguredSite } from '../engine/plugin-host.js';
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
  const config = loadSiteConfig(file ?? process.env.HISBRIDGE_CONFIG, registry.extensions, overrides, process.env, registry.sources);
  const issues = pluginConcurrencyIssues(registry, config);
  if (issues.length) throw new LoadError(issues);
  return config;
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

/** Reads an HL7 file as bytes and splits it into messages at each `MSH` that starts a line (byte-level: GBK-safe). */
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
