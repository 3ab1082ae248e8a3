/**
 * /healthz's remote probes cover every base URL in use, not only the
 * section's default: an institution with its own recognition baseUrl (or
 * gd-ehr authUrl) is probed too, and the unreachable one is named by its
 * host:port, never with its path or query.
 */
import { createServer, type Server } from 'node:net';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';
import { MAX_REMOTE_TARGETS, remoteTargets } from '../../core/ops/health.js';
import { builtinRegistry } from '../../plugins/index.js';

const listen = (s: Server) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));

let up: Server;
let upPort: number;
let downPort: number;
let routesDir: string;
let t: TestEngine;

beforeAll(async () => {
  up = createServer((c) => c.destroy());
  upPort = await listen(up);
  // A port that was free a moment ago and now has no listener: connections are refused.
  const gone = createServer();
  downPort = await listen(gone);
  await new Promise((r) => gone.close(r));
  routesDir = tempFiles({ 'x.yaml': 'name: x\nmatch: { events: [ADT^A04] }\nsteps:\n  - log: { message: x }\n' });
  t = await startEngine({
    routesDir,
    env: { RA_PASS: 'password-of-a', RB_PASS: 'password-of-b' },
    siteYaml: [
      'simulators: false',
      'recognition:',
      `  baseUrl: http://127.0.0.1:${upPort}/platform`,
      '  institutions:',
      '    - { orgCode: ORGA001, orgName: A, username: acct-a, password: "${env:RA_PASS}", senders: [HOSP_A] }',
      `    - { orgCode: ORGB002, orgName: B, username: acct-b, password: "\${env:RB_PASS}", senders: [HOSP_B], baseUrl: "http://127.0.0.1:${downPort}/b?token=query-secret" }`,
      `    - { orgCode: ORGC003, orgName: C, username: acct-c, password: "\${env:RA_PASS}", senders: [HOSP_C], baseUrl: "http://127.0.0.1:${upPort}/other-path" }`,
    ].join('\n'),
  });
}, 60_000);

afterAll(async () => {
  await t?.stop();
  await new Promise((r) => up.close(r));
  rmSync(routesDir, { recursive: true, force: true });
});

interface Remote { target: string; reachable?: boolean; detail?: string }

describe('remote probes', () => {
  it('probe each distinct base URL in use, in /healthz, and name the unreachable institution URL by host:port only', async () => {
    await t.engine.ops.remotes.refresh();
    const res = await fetch(`${t.httpUrl}/healthz`);
    const text = await res.text();
    const remotes = (JSON.parse(text) as { remotes: Record<string, Remote> }).remotes;
    const down = `recognition@127.0.0.1:${downPort}`;
    // The shared baseUrl and institution C's own (same host:port) are one target; B's is the second.
    expect(Object.keys(remotes).filter((k) => k.startsWith('recognition')).sort()).toEqual([down, 'recognition'].sort());
    expect(remotes.recognition).toMatchObject({ target: `127.0.0.1:${upPort}`, reachable: true });
    expect(remotes[down]).toMatchObject({ target: `127.0.0.1:${downPort}`, reachable: false, detail: 'ECONNREFUSED' });
    expect(text).not.toContain('query-secret');
    expect(text).not.toContain('/b?');
    // Informational: an unreachable platform does not fail /healthz.
    expect(res.status).toBe(200);
  });

  it('gd-ehr declares each institution\'s own authUrl, and the shared one only while an institution uses it', () => {
    const gd = builtinRegistry().extensions.find((e) => e.key === 'gdEhr')!;
    const shared = 'https://yyzc.gd.gov.cn/ebus/auth';
    expect(gd.health!({ authUrl: shared })).toEqual({ url: shared, urls: [] });
    expect(gd.health!({ authUrl: shared, institutions: [{ orgCode: 'A' }, { orgCode: 'B', authUrl: 'https://city.example/auth' }] })).toEqual({ url: shared, urls: ['https://city.example/auth'] });
    expect(gd.health!({ authUrl: shared, institutions: [{ orgCode: 'B', authUrl: 'https://city.example/auth' }] })).toEqual({ url: 'https://city.example/auth', urls: [] });
  });

  it('bounds and deduplicates the targets of one section', () => {
    const urls = Array.from({ length: 40 }, (_, i) => `https://h${i % 20}.example:8443/p?k=${i}`);
    const targets = remoteTargets('gdEhr', [undefined, 'not a url', ...urls]);
    expect(Object.keys(targets)).toHaveLength(MAX_REMOTE_TARGETS);
    expect(Object.keys(targets)[0]).toBe('gdEhr');
    expect(Object.keys(targets)[1]).toBe('gdEhr@h1.example:8443');
  });
});
