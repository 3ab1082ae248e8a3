/**
 * `hisbridge doctor` as a CLI process against real servers: the built-in
 * simulators of both platforms, started here with this site's own
 * credentials (the config has `simulators: false`, as a site going live),
 * certificates made with openssl, a port held by a real socket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli } from '../helpers/cli.js';
import { silentLogger } from '../../core/log.js';
import { startGdEhrSimulator, AUTH_PATH, VIEWER_PATH, type GdEhrSimulator } from '../../plugins/gd-ehr/index.js';
import { startRecognitionSimulator, type RecognitionSimulator } from '../../plugins/recognition/simulator.js';
import { clockSkewSeconds, openFileLimits } from '../../core/cli/cmd-doctor.js';

const dir = mkdtempSync(path.join(tmpdir(), 'hisbridge-doctor-'));
const GD = { orgCode: '12440000DOC0001', orgName: '医生检查医院', callSysCode: 'his', appId: 'doctor-app', paasId: 'doctor-paasid' };
const GD_TOKEN = 'doctor-paas-token-0123456789';
const GD_KEY = '00112233445566778899aabbccddeeff';
const RC_PASS = 'doctor-recognition-password';
const env = { DOC_GD_TOKEN: GD_TOKEN, DOC_GD_KEY: GD_KEY, DOC_RC_PASS: RC_PASS, DOC_GD_WRONG: 'not-the-token', DOC_RC_WRONG: 'not-the-password' };
let gd: GdEhrSimulator;
let rc: RecognitionSimulator;
const held: net.Server[] = [];
const servers: http.Server[] = [];

function cert(name: string, days: number): { cert: string; key: string } {
  const c = path.join(dir, `${name}.pem`);
  const k = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', k, '-out', c, '-days', String(days), '-subj', `/CN=${name}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { cert: c, key: k };
}

/** A port free now (bound to 0 and released). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function siteYaml(o: { mllpPort: number; httpPort: number; dataDir: string; tls: { cert: string; key: string }; gdToken: string; rcPass: string; authUrl?: string; maxConnections?: number }): string {
  return [
    'simulators: false',
    `dataDir: ${o.dataDir}`,
    'listeners:',
    `  - { name: mllp, host: 127.0.0.1, port: ${o.mllpPort}${o.maxConnections ? `, maxConnections: ${o.maxConnections}` : ''} }`,
    'http:',
    `  port: ${o.httpPort}`,
    `  tls: { cert: ${o.tls.cert}, key: ${o.tls.key} }`,
    'gdEhr:',
    `  authUrl: ${o.authUrl ?? gd.url + AUTH_PATH}`,
    `  viewerUrl: ${gd.url + VIEWER_PATH}`,
    `  orgCode: "${GD.orgCode}"`,
    `  orgName: ${GD.orgName}`,
    `  callSysCode: ${GD.callSysCode}`,
    `  appId: ${GD.appId}`,
    `  paasId: ${GD.paasId}`,
    `  paasToken: \${env:${o.gdToken}}`,
    '  sm4Key: ${env:DOC_GD_KEY}',
    'recognition:',
    `  baseUrl: ${rc.url}`,
    '  username: doctor-hospital',
    `  password: \${env:${o.rcPass}}`,
    '  orgCode: H4400DOC01',
    '',
  ].join('\n');
}

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

const failLines = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('FAIL'));

beforeAll(async () => {
  gd = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site: { ...GD, paasToken: GD_TOKEN, sm4Key: GD_KEY }, log: silentLogger() });
  rc = await startRecognitionSimulator({ host: '127.0.0.1', port: 0, site: { username: 'doctor-hospital', password: RC_PASS, orgCode: 'H4400DOC01' }, log: silentLogger() });
});

afterAll(async () => {
  await gd?.close();
  await rc?.close();
  for (const s of held) s.close();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('hisbridge doctor', () => {
  it('passes a good site: free ports, writable data dir, long-lived certificate, both platforms accept the credentials', async () => {
    const data = path.join(dir, 'good-data');
    mkdirSync(data, { mode: 0o700 });
    const file = write('good.yaml', siteYaml({ mllpPort: await freePort(), httpPort: await freePort(), dataDir: data, tls: cert('good', 400), gdToken: 'DOC_GD_TOKEN', rcPass: 'DOC_RC_PASS' }));
    const r = await cli(['doctor', '--config', file], env);
    expect(failLines(r.stdout), r.stdout + r.stderr).toEqual([]);
    expect(r.code).toBe(0);
    for (const line of [
      /^OK {4}config: /m,
      /^OK {4}routes: \d+ routes load/m,
      /^OK {4}port listener mllp: 127\.0\.0\.1:\d+ is free/m,
      /^OK {4}port http: 127\.0\.0\.1:\d+ is free/m,
      /^OK {4}data dir: .*good-data is writable/m,
      // OK, or WARN on a machine with under 5 GiB free: the disk of the test machine is not the site's.
      /^(OK {4}|WARN {2})disk: /m,
      /^OK {4}open files: limit \d+ >= /m,
      /^OK {4}tls http\.tls\.cert: .*\(CN good\) valid until .*\((399|400) days\)/m,
      /^OK {4}gdEhr: authorization API reachable: http:\/\/127\.0\.0\.1:\d+ answered HTTP 400/m,
      /^OK {4}gdEhr: gateway signature accepted/m,
      /^OK {4}gdEhr: clock: within \d s of the remote/m,
      /^OK {4}recognition: login accepted/m,
      /^OK {4}recognition: clock: /m,
    ]) expect(r.stdout).toMatch(line);
    expect(r.stdout).toMatch(/^doctor: \d+ ok, \d+ warn, 0 fail$/m);
    // The probe reached the gateway check with this site's credentials, and no secret is printed.
    expect(gd.calls.some((c) => c.httpStatus === 400 && !c.verified)).toBe(true);
    for (const secret of [GD_TOKEN, GD_KEY, RC_PASS]) expect(r.stdout + r.stderr).not.toContain(secret);
  }, 60_000);

  it('fails a broken site, naming each FAIL: port taken, unwritable data dir, wrong credentials, certificate expiring in 10 days, fd limit', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    held.push(taken);
    const takenPort = (taken.address() as net.AddressInfo).port;
    // Under a regular file: no user, root included, can create the data directory there.
    const blocker = write('not-a-dir', 'x');
    const file = write('broken.yaml', siteYaml({
      mllpPort: takenPort, httpPort: await freePort(), dataDir: path.join(blocker, 'data'), tls: cert('soon', 10),
      gdToken: 'DOC_GD_WRONG', rcPass: 'DOC_RC_WRONG', maxConnections: 50_000_000,
    }));
    const r = await cli(['doctor', '--config', file], env);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const fails = failLines(r.stdout).join('\n');
    expect(fails).toMatch(new RegExp(`^FAIL  port listener mllp: 127\\.0\\.0\\.1:${takenPort}: in use$`, 'm'));
    expect(fails).toMatch(/^FAIL {2}data dir: .*not-a-dir\/data: .*not-a-dir is not a directory$/m);
    expect(fails).toMatch(/^FAIL {2}open files: limit \d+ .*< MLLP maxConnections 50000000/m);
    expect(fails).toMatch(/^FAIL {2}tls http\.tls\.cert: .*\(CN soon\) valid until .*: expires in (9|10) days$/m);
    expect(fails).toMatch(/^FAIL {2}gdEhr: gateway signature accepted: the gateway refused a signed probe with an empty body \(HTTP 401: bad signature\)$/m);
    expect(fails).toMatch(/^FAIL {2}recognition: login accepted: RECOG_E_AUTH: .*business code 1002/m);
    expect(r.stdout).toMatch(/^ {6}fix: .*paasId and gdEhr\.paasToken/m);
    expect(r.stdout).toMatch(/^doctor: \d+ ok, \d+ warn, 6 fail$/m);
    for (const secret of ['not-the-token', 'not-the-password', GD_KEY]) expect(r.stdout + r.stderr).not.toContain(secret);
  }, 60_000);

  it('fails a clock more than 300 s away from the remote\'s HTTP Date header, and an unreachable remote', async () => {
    // A local gateway stand-in whose clock is an hour behind: it accepts the signature (400 to the empty body).
    const skewed = http.createServer((req, res) => {
      req.resume();
      res.setHeader('date', new Date(Date.now() - 3600_000).toUTCString());
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"code":"BAD_SHAPE","message":"body shape"}');
    });
    await new Promise<void>((r) => skewed.listen(0, '127.0.0.1', () => r()));
    servers.push(skewed);
    const url = `http://127.0.0.1:${(skewed.address() as net.AddressInfo).port}${AUTH_PATH}`;
    const data = path.join(dir, 'clock-data');
    mkdirSync(data, { mode: 0o700 });
    const file = write('clock.yaml', siteYaml({ mllpPort: await freePort(), httpPort: await freePort(), dataDir: data, tls: cert('clock', 400), gdToken: 'DOC_GD_TOKEN', rcPass: 'DOC_RC_PASS', authUrl: url }));
    const r = await cli(['doctor', '--config', file], env);
    expect(r.code).toBe(1);
    expect(failLines(r.stdout)).toEqual([expect.stringMatching(/^FAIL {2}gdEhr: clock: this host is (3599|3600|3601) s ahead of the remote \(HTTP Date header\)$/)]);

    const closed = await freePort();
    const file2 = write('unreachable.yaml', siteYaml({ mllpPort: await freePort(), httpPort: await freePort(), dataDir: data, tls: cert('unreach', 400), gdToken: 'DOC_GD_TOKEN', rcPass: 'DOC_RC_PASS', authUrl: `http://127.0.0.1:${closed}${AUTH_PATH}` }));
    const r2 = await cli(['doctor', '--config', file2], env);
    expect(r2.code).toBe(1);
    expect(failLines(r2.stdout)).toEqual([expect.stringMatching(new RegExp(`^FAIL  gdEhr: authorization API reachable: http://127\\.0\\.0\\.1:${closed}: HTTP_E_NETWORK`))]);
    // Nothing answered, so there is no clock line for it (the reachability line says why).
    expect(r2.stdout).not.toMatch(/gdEhr: clock/);
    expect(r2.stdout).toMatch(/^OK {4}recognition: clock: /m);
  }, 60_000);

  it('stops at a config that does not validate, with file:line:col, exit 1', async () => {
    const file = write('invalid.yaml', 'listeners:\n  - { name: mllp, port: "not a port" }\n');
    const r = await cli(['doctor', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}config: .*invalid\.yaml:2:\d+: /m);
    expect(r.stdout).toMatch(/^doctor: 0 ok, 0 warn, 1 fail$/m);
  });
});

describe('doctor helpers', () => {
  it('reads the open-file limits from /proc/self/limits text', () => {
    const text = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n';
    expect(openFileLimits(text)).toEqual({ soft: 1024, hard: 524288 });
    expect(openFileLimits('Max open files            unlimited            unlimited            files\n')).toEqual({ soft: Infinity, hard: Infinity });
    expect(openFileLimits('nothing here')).toBeUndefined();
  });

  it('computes the clock skew from whole-second Date headers', () => {
    expect(clockSkewSeconds([])).toBeUndefined();
    const mid = Date.UTC(2026, 0, 1, 0, 0, 0, 250);
    expect(clockSkewSeconds([{ date: Date.UTC(2026, 0, 1, 0, 5, 0), mid }])).toBeCloseTo(300.25, 2);
    expect(clockSkewSeconds([{ date: Date.UTC(2025, 11, 31, 23, 55, 0), mid }])).toBeCloseTo(-299.75, 2);
  });
});
