/**
 * `hisbridge test` through the CLI surface: a route test file with passing
 * cases and a deliberately failing one, run by a real process against a real
 * HTTP server on a random port (the route's remote) and the simulators.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';


const ROUTES = `routes:
  - name: ward
    match: { events: [ADT^A04] }
    steps:
      - set: { patientName: "\${PID-5.1}\${PID-5.2}", target: "\${ZTS-1|default:ok}" }
      - plugin: http
        as: ward
        config: { url: "\${env:WARD_BASE}/\${vars.target}", body: { name: "\${vars.patientName}" } }
  - name: ward-reply
    match: { events: [ADT^A04] }
    ack: on-complete
    steps:
      - reply: { segments: [[ZWD, "\${msg.controlId}", "\${PV1-3.1}"]] }
`;

/** Line (1-based) of the first line containing `needle`, and the column of its first non-blank character. */
function lineOf(text: string, needle: string): { line: number; col: number } {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.includes(needle));
  return { line: i + 1, col: lines[i]!.indexOf(needle) + 1 };
}

describe('hisbridge test', () => {
  let server: http.Server;
  let base: string;
  const bodies: string[] = [];
  let dir: string;
  let testText: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        bodies.push(body);
        const status = req.url === '/ok' ? 200 : 400;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ received: true }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = path.join(tmpdir(), `hisbridge-route-test-${process.pid}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'ward.yaml'), ROUTES);
    testText = `env:
  WARD_BASE: ${base}
cases:
  - name: registration reaches the ward system and the ACK carries ZWD
    input: samples/01-adt-a04-registration-consent.hl7
    ack: AA
    routes: { ward: ok, ward-reply: ok }
    calls:
      http: { count: 1, outcome: ok, vars.patientName: 张三丰, output.status: 200 }
      reply: { count: 1 }
    reply:
      segments: [MSH, MSA, ZWD]
      fields: { MSA-2: HIS202503120001, ZWD-1: HIS202503120001, ZWD-2: "0301" }

  - name: inline GBK text edited with set keeps its characters
    input:
      hl7: |
        MSH|^~\\&|HIS|H4413020001|HISBRIDGE|WARD|20250312093015||ADT^A04^ADT_A01|T-INLINE-1|P|2.5|||||CHN|GBK
        PID|1||P9^^^HOSP^PI||區^億華||19690508|M
        PV1|1|O|0302
      set: { PID-5.1: 欧阳 }
    calls:
      http:
        - { vars.patientName: 欧阳億華, attempt: 1 }
    reply:
      fields: { ZWD-2: "0302" }

  - name: a 400 from the ward system fails the route
    input:
      file: samples/01-adt-a04-registration-consent.hl7
      set: { MSH-10: T-BAD-1, ZTS-1: bad }
    routes:
      ward: { outcome: failed, errorCode: HTTP_E_STATUS }
      gd-ehr-authorize: not-matched

  - name: deliberately failing case
    input:
      file: samples/01-adt-a04-registration-consent.hl7
      set: { MSH-10: T-FAIL-1 }
    ack: AE
    calls:
      http: { count: 1, vars.patientName: 王五 }
`;
    writeFileSync(path.join(dir, 'ward.test.yaml'), testText);
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints ok/FAIL per case with file:line:col mismatches, a summary, and exits 1', async () => {
    const file = path.join(dir, 'ward.test.yaml');
    const run = await cli(['test', file, '--routes', dir]);
    const out = run.stdout.split('\n');
    expect(out).toContain(`ok   ${file}: registration reaches the ward system and the ACK carries ZWD`);
    expect(out).toContain(`ok   ${file}: inline GBK text edited with set keeps its characters`);
    expect(out).toContain(`ok   ${file}: a 400 from the ward system fails the route`);
    expect(out).toContain(`FAIL ${file}: deliberately failing case`);
    const ack = lineOf(testText, 'ack: AE');
    expect(out).toContain(`  ${file}:${ack.line}:${ack.col + 5}: case "deliberately failing case": ack: expected AE, got AA`);
    const name = lineOf(testText, 'vars.patientName: 王五');
    expect(out).toContain(`  ${file}:${name.line}:${name.col + 'vars.patientName: '.length}: case "deliberately failing case": call 1 vars.patientName: expected 王*, got 张**`);
    expect(out).toContain('3 passed, 1 failed');
    expect(run.code).toBe(1);
    // Failure lines mask names like log lines do.
    expect(run.stdout).not.toContain('张三丰');
  });

  it('really called the remote: the GBK name arrived intact, edited by set', () => {
    expect(bodies.map((b) => (JSON.parse(b) as { name: string }).name)).toContain('欧阳億華');
  });

  it('exits 0 when every case passes', async () => {
    const passing = testText.slice(0, testText.indexOf('  - name: deliberately failing case'));
    const file = path.join(dir, 'passing.test.yaml');
    writeFileSync(file, `load: [ward.yaml]\n${passing.replace(/T-INLINE-1/, 'T-INLINE-2')}`);
    const run = await cli(['test', file, '--routes', dir]);
    expect(run.stdout.trim().split('\n').at(-1)).toBe('3 passed, 0 failed');
    expect(run.code).toBe(0);
  });

  it('exits 2 with file:line:col when the test file itself is invalid', async () => {
    const file = path.join(dir, 'ward-invalid.test.yaml');
    writeFileSync(file, 'load: [ward.yaml]\ncases:\n  - name: x\n    input: samples/01-adt-a04-registration-consent.hl7\n    ack: AA\n    expect: nothing\n');
    const run = await cli(['test', file, '--routes', dir]);
    expect(run.stdout).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:\\d+: unknown key "expect"`));
    expect(run.code).toBe(2);
  });

  it('exits 2 with a clear message when there is no test file to run (a directory with none, or none in --routes)', async () => {
    const empty = path.join(dir, 'empty');
    mkdirSync(empty, { recursive: true });
    writeFileSync(path.join(empty, 'ward.yaml'), ROUTES);
    const named = await cli(['test', empty, '--routes', dir]);
    expect(named.stderr).toContain(`hisbridge test: no test files: no *.test.yaml in ${empty}`);
    expect(named.stdout).not.toMatch(/passed/);
    expect(named.code).toBe(2);
    const defaulted = await cli(['test', '--routes', empty]);
    expect(defaulted.stderr).toContain(`hisbridge test: no test files: no *.test.yaml in ${empty}`);
    expect(defaulted.code).toBe(2);
  });

  it('runs the shipped routes/*.test.yaml and they pass', async () => {
    const run = await cli(['test']);
    expect(run.stdout).toMatch(/^ok {3}routes\/gd-ehr-authorize\.test\.yaml: /m);
    expect(run.stdout).not.toMatch(/^FAIL /m);
    expect(run.stdout).toMatch(/\d+ passed, 0 failed\n$/);
    expect(run.code).toBe(0);
  }, 60_000);
});
