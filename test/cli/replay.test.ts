/**
 * `hisbridge replay` through the CLI surface: a real process (dist/, built by
 * the global setup), the real routes and simulators, and for failures a real
 * HTTP server on a random port standing in for a hospital system.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempFiles } from '../helpers/routes.js';
import { cli, type CliRun as Run } from '../helpers/cli.js';


function lines(out: string): Record<string, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  return out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('hisbridge replay of samples/ on the default routes', () => {
  let run: Run;
  const manifest = JSON.parse(readFileSync('samples/manifest.json', 'utf8')) as { file: string; controlId: string; expects: { consent: boolean; routes: string[] } }[];

  beforeAll(async () => {
    run = await cli(['replay', 'samples']);
  }, 60_000);

  it('prints one JSON line per sample, in file order, with its control id, and exits 0', () => {
    expect(run.stderr).toBe('');
    const out = lines(run.stdout);
    expect(out.map((l) => path.basename(l.file as string))).toEqual(manifest.map((m) => m.file));
    expect(out.map((l) => l.controlId)).toEqual(manifest.map((m) => m.controlId));
    for (const l of out) {
      expect(l.index).toBe(1);
      expect(['AA', 'CA']).toContain(l.ack);
      for (const r of l.routes) expect(['ok', 'filtered', 'skipped']).toContain(r.outcome);
    }
    expect(run.code).toBe(0);
  });

  it('reports the authorization of every consenting registration as a finished delivery', () => {
    const out = lines(run.stdout);
    const consenting = manifest.filter((m) => m.expects.consent);
    expect(consenting.length).toBeGreaterThan(2);
    for (const m of consenting) {
      const l = out.find((x) => x.controlId === m.controlId)!;
      const auth = l.routes.find((r: { route: string }) => r.route === 'gd-ehr-authorize');
      expect(auth, m.file).toMatchObject({ outcome: 'ok', deliveries: [{ plugin: 'gd-ehr-authorize', state: 'done', attempts: 1 }] });
    }
    const noConsent = out.find((x) => x.controlId === 'HIS202503120002')!;
    expect(noConsent.routes.find((r: { route: string }) => r.route === 'gd-ehr-authorize')).toMatchObject({ outcome: 'skipped', detail: 'no consent' });
  });

  it('prints no PHI: no Chinese text, no ID numbers, no phone numbers', () => {
    expect(run.stdout).not.toMatch(/\p{Script=Han}/u);
    expect(run.stdout).not.toMatch(/\d{17}[\dX]/);
    expect(run.stdout).not.toMatch(/1[3-9]\d{9}/);
  });
});

describe('hisbridge replay failures and usage', () => {
  let server: http.Server;
  let base: string;
  const received: { path: string; body: string; key: string | undefined }[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body, key: req.headers['idempotency-key'] as string | undefined });
        const status = req.url === '/ok' ? 200 : req.url === '/bad' ? 400 : 503;
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
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function routes(yaml: string): string {
    const dir = tempFiles({ 'ward.yaml': yaml });
    dirs.push(dir);
    return dir;
  }

  it('exits 1 when a delivery is dead, and says which plugin, state and error', async () => {
    const dir = routes(`routes:
  - name: ward-ok
    match: { events: [ADT^A04] }
    steps:
      - plugin: http
        config: { url: "${base}/ok", body: { controlId: "\${msg.controlId}" } }
  - name: ward-bad
    match: { events: [ADT^A04] }
    steps:
      - plugin: http
        config: { url: "${base}/bad", body: { controlId: "\${msg.controlId}" } }
`);
    const run = await cli(['replay', 'samples/01-adt-a04-registration-consent.hl7', '--routes', dir]);
    expect(run.code).toBe(1);
    const [l] = lines(run.stdout);
    expect(l).toMatchObject({ file: 'samples/01-adt-a04-registration-consent.hl7', index: 1, controlId: 'HIS202503120001', type: 'ADT^A04', ack: 'AA' });
    const byName = Object.fromEntries(l!.routes.map((r: { route: string }) => [r.route, r]));
    expect(byName['ward-ok']).toMatchObject({ outcome: 'ok', deliveries: [{ plugin: 'http', step: 0, state: 'done', attempts: 1 }] });
    expect(byName['ward-bad']).toMatchObject({ outcome: 'failed', errorCode: 'HTTP_E_STATUS', deliveries: [{ plugin: 'http', state: 'dead', attempts: 1 }] });
    expect(byName['ward-bad'].deliveries[0].error).toMatch(/^HTTP_E_STATUS: HTTP 400/);
    // The remote really was called, with the message's control id and a stable idempotency key.
    const calls = received.filter((r) => r.body.includes('HIS202503120001'));
    expect(calls.map((c) => c.path).sort()).toEqual(['/bad', '/ok']);
    expect(calls.every((c) => typeof c.key === 'string' && c.key.length > 0)).toBe(true);
  });

  it('reports a delivery still retrying at --timeout as unfinished and exits 1', async () => {
    const dir = routes(`name: ward-busy
match: { events: [ADT^A04] }
steps:
  - plugin: http
    config: { url: "${base}/busy", body: { id: "\${msg.controlId}" } }
delivery: { retry: { max: 10, initial: 30s } }
`);
    const run = await cli(['replay', 'samples/01-adt-a04-registration-consent.hl7', '--routes', dir, '--timeout', '800ms']);
    expect(run.code).toBe(1);
    const [l] = lines(run.stdout);
    expect(l!.routes[0]).toMatchObject({ route: 'ward-busy', outcome: 'unfinished' });
    expect(l!.routes[0].deliveries[0].state).not.toMatch(/^(done|dead)$/);
    expect(l!.routes[0].deliveries[0].error).toMatch(/^HTTP_E_STATUS_RETRYABLE/);
  });

  it('exits 1 on a message that gets AE, and numbers messages within a file', async () => {
    const sample = readFileSync('samples/11-mfn-m02-staff.hl7');
    const broken = Buffer.from('MSH|^~|HIS|H1|X|Y|20250101||ADT^A04|BROKEN-1|P|2.5\rPID|1\r', 'latin1');
    const dir = tempFiles({});
    dirs.push(dir);
    const file = path.join(dir, 'two.hl7');
    writeFileSync(file, Buffer.concat([sample, Buffer.from('\r'), broken]));
    // An empty routes directory: the ACKs alone decide.
    const run = await cli(['replay', file, '--routes', dir]);
    expect(run.code).toBe(1);
    const out = lines(run.stdout);
    expect(out.map((l) => [l.index, l.ack])).toEqual([[1, 'AA'], [2, 'AE']]);
    expect(out[1]!.controlId).toBe('BROKEN-1');
  });

  it('refuses invalid routes with file:line:col and exits 1', async () => {
    const dir = routes('name: bad\nmatch: { events: [ADT^A04] }\nsteps:\n  - plugin: no-such-plugin\n');
    const run = await cli(['replay', 'samples/01-adt-a04-registration-consent.hl7', '--routes', dir]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/ward\.yaml:4:\d+: .*plugin/);
  });

  it('keeps remote calls on the simulators even when --config names another URL', async () => {
    const dir = tempFiles({ 'gd-ehr-authorize.yaml': readFileSync('routes/gd-ehr-authorize.yaml', 'utf8') });
    const site = tempFiles({ 'hisbridge.yaml': 'gdEhr:\n  authUrl: http://127.0.0.1:9/never\n' });
    dirs.push(dir, site);
    const run = await cli(['replay', 'samples/01-adt-a04-registration-consent.hl7', '--routes', dir, '--config', path.join(site, 'hisbridge.yaml'), '--timeout', '5s']);
    expect(lines(run.stdout)[0]!.routes[0]).toMatchObject({ route: 'gd-ehr-authorize', outcome: 'ok' });
    expect(run.code).toBe(0);
  });

  it('exits 2 on usage errors', async () => {
    expect((await cli(['replay'])).code).toBe(2);
    expect((await cli(['replay', 'samples/no-such-file.hl7'])).code).toBe(2);
    expect((await cli(['replay', 'samples', '--no-such-flag'])).code).toBe(2);
    expect((await cli(['replay', 'samples', '--timeout', 'soon'])).code).toBe(2);
  });
});
