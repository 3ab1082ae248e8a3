/**
 * Core sections of hisbridge.yaml owned by other core modules (api, kafka,
 * console) come from one table (core/config/sections.ts): the site schema
 * carries each one's schema, and the loader parses and checks each one
 * through the table with the same keys, texts and positions as before.
 */
import path from 'node:path';
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSiteConfig, siteSchema } from '../../core/config/site.js';
import { CORE_SECTIONS } from '../../core/config/sections.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { builtinRegistry } from '../../plugins/index.js';
import { tempFiles } from '../helpers/routes.js';

const reg = builtinRegistry();
const dir = tempFiles({
  'both.yaml': [
    'listeners:',
    '  - { name: mllp, port: 0 }',
    'kafka:',
    '  brokers: [127.0.0.1:9092]',
    '  topics:',
    '    - { name: his.adt, source: mllp }',
    'api:',
    '  clients:',
    '    - { name: ws, tokenHash: "sha256:0000000000000000000000000000000000000000000000000000000000000000" }',
    '    - { name: ws, tokenHash: "sha256:1111111111111111111111111111111111111111111111111111111111111111" }',
    '',
  ].join('\n'),
  'kafka-bad.yaml': 'kafka:\n  brokers: [127.0.0.1:9092]\n  nope: 1\n',
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function issues(file: string): string[] {
  try {
    loadSiteConfig(path.join(dir, file), reg.extensions, {}, process.env, reg.sources);
  } catch (e) {
    if (e instanceof LoadError) return e.issues.map(String);
    throw e;
  }
  return [];
}

describe('core sections table', () => {
  it('lists api, kafka, console and alerts, and the site schema carries each one\'s schema', () => {
    expect(CORE_SECTIONS.map((s) => s.key)).toEqual(['api', 'kafka', 'console', 'alerts']);
    const props = siteSchema(reg.extensions, reg.sources).properties as Record<string, unknown>;
    for (const s of CORE_SECTIONS) expect(props[s.key]).toBe(s.schema);
  });

  it('the defaults: api closed to non-loopback callers, no kafka, the console on', () => {
    const c = loadSiteConfig(undefined, reg.extensions);
    expect(c.api).toEqual({ open: false });
    expect(c.kafka).toBeUndefined();
    expect(c.console).toMatchObject({ enabled: true, users: [] });
    expect(c.console?.secureCookie).toBeUndefined();
  });

  it('each section\'s own checks are reported at the top of the file, every section\'s at once', () => {
    const file = path.join(dir, 'both.yaml');
    expect(issues('both.yaml')).toEqual([
      `${file}:1:1: api.clients[1].name "ws" is used twice`,
      `${file}:1:1: kafka topic his.adt: source "mllp" is also an MLLP listener name`,
    ]);
  });

  it('a schema error inside a section keeps its file:line:col', () => {
    expect(issues('kafka-bad.yaml')).toEqual([expect.stringMatching(new RegExp(`^${path.join(dir, 'kafka-bad.yaml').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3:3: `))]);
  });
});
