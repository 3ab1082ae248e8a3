// Several recognition institutions in one engine (issue 16): each message
// goes out under the institution its sending facility (MSH-4) belongs to, or
// the one a route step names, with that institution's own platform account;
// the simulator verifies each account separately; a sender no institution
// lists is refused with AR; statistics, /metrics and the workstation API are
// per institution.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { MllpClient } from '../../core/mllp/client.js';
import { OpsQueries } from '../../core/ops/queries.js';
import { createHttpClient } from '../../core/http/client.js';
import { readRecognitionInstitutions, recognitionInstitutionProblems } from '../../plugins/recognition/site.js';
import { startRecognitionSimulator, type RecognitionSimulator } from '../../plugins/recognition/simulator.js';
import { recognitionDoctor } from '../../plugins/recognition/doctor.js';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';
import { siteIssues } from '../helpers/site-issues.js';
import { API_CLIENTS_YAML, expectOrgCodeRequiredAndKnown, TOKEN_A, TOKEN_ALL } from '../helpers/institutions.js';
import { until } from '../helpers/kafka.js';
import { cli } from '../helpers/cli.js';
import { sampleText } from './harness.js';

const http = createHttpClient({ defaultTimeoutMs: 5000 });
const ENV = { RA_PASS: 'password-of-a', RB_PASS: 'password-of-b' };

const INSTITUTIONS = [
  'recognition:',
  '  institutions:',
  '    - { orgCode: ORGA001, orgName: 甲医院, username: acct-a, password: "${env:RA_PASS}", senders: [HOSP_A] }',
  '    - { orgCode: ORGB002, orgName: 乙医院, username: acct-b, password: "${env:RB_PASS}", senders: [HOSP_B, NETHOSP_B] }',
];


const ROUTES = {
  'lab.yaml': [
    'routes:',
    '  - name: lab',
    '    match: { events: [ORU^R01], sender: { application: LIS } }',
    '    ack: on-receive',
    '    steps:',
    '      - plugin: sensitive-guard',
    '        as: sensitive',
    '      - plugin: recognition-upload',
    '        config: { kind: lab }',
    '  - name: lab-internet',
    '    match: { events: [ORU^R01], sender: { application: NETLIS } }',
    '    ack: on-receive',
    '    steps:',
    '      - plugin: recognition-upload',
    '        config: { kind: lab, institution: ORGB002 }',
    '  - name: check',
    '    match: { events: [ORM^O01] }',
    '    ack: on-complete',
    '    steps:',
    '      - plugin: recognition-check',
    '        as: check',
  ].join('\n'),
};

/** A sample with its MSH-3, MSH-4 and MSH-10 replaced, sent as UTF-8. */
function sample(prefix: string, app: string, facility: string, id: string, reportId?: string): string {
  let text = sampleText(prefix)
    .replace(/^MSH\|\^~\\&\|[^|]*\|[^|]*\|/, `MSH|^~\\&|${app}|${facility}|`)
    .replace(/^(MSH(?:\|[^|]*){8}\|)[^|]*/, `$1${id}`)
    .replace('GB 18030-2000', 'UNICODE UTF-8');
  if (reportId) text = text.replace(/^(OBR\|[^|]*\|[^|]*\|)[^|^]*/m, `$1${reportId}`);
  return text;
}

const ackCode = (ack: Buffer) => /MSA\|([A-Z]{2})\|/.exec(ack.toString('utf8'))?.[1];

describe('two recognition institutions in one engine', () => {
  let te: TestEngine;
  let sim: RecognitionSimulator;
  let mllp: MllpClient;
  beforeAll(async () => {
    te = await startEngine({ routesDir: tempFiles(ROUTES), siteYaml: [...INSTITUTIONS, ...API_CLIENTS_YAML].join('\n'), env: ENV });
    sim = te.engine.simulators.recognition as RecognitionSimulator;
    mllp = await MllpClient.connect('127.0.0.1', te.port);
  }, 60_000);
  afterAll(async () => {
    await mllp?.close();
    await te?.stop();
  });

  it('each upload reaches the simulator under its own institution, logged in with its own account', async () => {
    expect(ackCode(await mllp.send(sample('15', 'LIS', 'HOSP_A', 'RI-A-1', 'REP-A-1')))).toBe('AA');
    expect(ackCode(await mllp.send(sample('15', 'LIS', 'NETHOSP_B', 'RI-B-1', 'REP-B-1')))).toBe('AA');
    const uploads = await until(() => sim.calls.filter((c) => c.op === 'labReport' && c.result === 'ok'), (c) => c.length >= 2);
    const byReport = Object.fromEntries(uploads.map((c) => [String(c.body.reportId), { institution: c.institution, orgCode: c.body.orgCode, orgName: c.body.orgName }]));
    expect(byReport['REP-A-1']).toEqual({ institution: 'ORGA001', orgCode: 'ORGA001', orgName: '甲医院' });
    expect(byReport['REP-B-1']).toEqual({ institution: 'ORGB002', orgCode: 'ORGB002', orgName: '乙医院' });
    // One login per institution, each with its own account.
    const logins = sim.calls.filter((c) => c.op === 'token');
    expect(Object.fromEntries(logins.map((c) => [c.institution, c.body.username]))).toEqual({ ORGA001: 'acct-a', ORGB002: 'acct-b' });
    expect(logins.every((c) => c.result === 'ok')).toBe(true);
  });

  it('a route step with institution: uploads under that institution whatever MSH-4 says', async () => {
    expect(ackCode(await mllp.send(sample('15', 'NETLIS', 'SOMEWHERE_ELSE', 'RI-NET-1', 'REP-NET-1')))).toBe('AA');
    const call = await until(() => sim.calls.find((c) => c.op === 'labReport' && c.body.reportId === 'REP-NET-1'), (c) => c !== undefined);
    expect(call).toMatchObject({ result: 'ok', institution: 'ORGB002', body: { orgCode: 'ORGB002' } });
  });

  it('the duplicate check of an order goes out under the sender’s institution (on-complete, ZRC in the ACK)', async () => {
    const ack = (await mllp.send(sample('12', 'HIS', 'HOSP_B', 'RI-ORM-B-1'))).toString('utf8');
    expect(ackCode(Buffer.from(ack))).toBe('AA');
    expect(ack).toContain('ZRC|LAB0001|');
    const call = sim.calls.filter((c) => c.op === 'prescriptionCheck').at(-1);
    expect(call).toMatchObject({ result: 'ok', institution: 'ORGB002', body: { orgCode: 'ORGB002' } });
  });

  it('an unknown sender is refused with AR over MLLP naming MSH-4 and RECOG_E_NO_INSTITUTION, and nothing is sent', async () => {
    const before = sim.calls.length;
    const checksBefore = sim.calls.filter((c) => c.op === 'prescriptionCheck').length;
    const ack = (await mllp.send(sample('15', 'LIS', 'HOSP_X', 'RI-X-1', 'REP-X-1'))).toString('utf8');
    expect(ackCode(Buffer.from(ack))).toBe('AR');
    expect(ack).toContain('MSA|AR|RI-X-1|no recognition institution lists the sending facility "HOSP_X" (MSH-4) in its senders');
    expect(ack).not.toContain('440106199003152314');
    const orm = (await mllp.send(sample('12', 'HIS', 'HOSP_X', 'RI-ORM-X-1'))).toString('utf8');
    expect(ackCode(Buffer.from(orm))).toBe('AR');
    expect(orm).not.toContain('ZRC');
    // A later message proves the engine went on; the refused ones never reached the simulator.
    expect(ackCode(await mllp.send(sample('15', 'LIS', 'HOSP_A', 'RI-A-2', 'REP-A-2')))).toBe('AA');
    await until(() => sim.calls.slice(before), (c) => c.some((x) => x.body.reportId === 'REP-A-2'));
    expect(sim.calls.slice(before).filter((c) => c.body.reportId === 'REP-X-1')).toEqual([]);
    expect(sim.calls.filter((c) => c.op === 'prescriptionCheck')).toHaveLength(checksBefore);
    const q = OpsQueries.open(path.join(te.dataDir, 'store'));
    try {
      const rows = q.auditPage({}).filter((r) => r.messageId === 'RI-X-1');
      expect(rows).toEqual([]);
    } finally {
      q.close();
    }
  });

  it('a report withheld as sensitive is audited under the sender’s institution', async () => {
    expect(ackCode(await mllp.send(sample('22', 'LIS', 'HOSP_B', 'RI-TB-B-1', 'REP-TB-B-1')))).toBe('AA');
    const q = OpsQueries.open(path.join(te.dataDir, 'store'));
    try {
      const rows = await until(() => q.auditPage({ plugin: 'sensitive-guard' }), (r) => r.length >= 1);
      expect(rows[0]).toMatchObject({ plugin: 'sensitive-guard', operation: 'withhold', result: 'skipped', orgCode: 'ORGB002' });
    } finally {
      q.close();
    }
    expect(sim.calls.some((c) => c.body.reportId === 'REP-TB-B-1')).toBe(false);
  });

  it('audit rows carry the orgCode: stats --by org separates the institutions (store and CLI process)', async () => {
    // ok calls so far: A logged in once and uploaded two reports; B logged in once, uploaded two and checked one order.
    const want = { ORGA001: 3, ORGB002: 4 };
    const q = OpsQueries.open(path.join(te.dataDir, 'store'));
    try {
      const report = await until(() => q.stats('org'), (r) => r.groups.length >= 2);
      expect(report.groups.map((g) => g.key).sort()).toEqual(['ORGA001', 'ORGB002']);
    } finally {
      q.close();
    }
    const run = await cli(['stats', '--by', 'org', '--json', '--data-dir', path.join(te.dataDir, 'store')]);
    expect(run.code).toBe(0);
    const groups = Object.fromEntries((JSON.parse(run.stdout) as { groups: { key: string; ok: number }[] }).groups.map((g) => [g.key, g.ok]));
    // A report's PDF is a call of its own where the sample carries one: at least these many.
    expect(groups.ORGA001).toBeGreaterThanOrEqual(want.ORGA001);
    expect(groups.ORGB002).toBeGreaterThanOrEqual(want.ORGB002);
    expect(Object.keys(groups).sort()).toEqual(['ORGA001', 'ORGB002']);
  }, 30_000);

  it('/metrics counts the calls and latency per institution (orgCode label, no names)', async () => {
    const text = (await http.request(`${te.httpUrl}/metrics`)).body.toString('utf8');
    const count = (plugin: string, op: string, org: string) => {
      const line = text.split('\n').find((l) => l.startsWith('hisbridge_calls_total{') && l.includes(`plugin="${plugin}"`) && l.includes(`operation="${op}"`) && l.includes(`org="${org}"`) && l.includes('result="ok"'));
      return line ? Number(line.split(' ').pop()) : undefined;
    };
    expect(count('recognition-upload', 'labReport', 'ORGA001')).toBe(2);
    expect(count('recognition-upload', 'labReport', 'ORGB002')).toBe(2);
    expect(count('recognition-check', 'prescriptionCheck', 'ORGB002')).toBe(1);
    expect(count('recognition', 'token', 'ORGA001')).toBe(1);
    expect(count('recognition', 'token', 'ORGB002')).toBe(1);
    expect(text).toMatch(/hisbridge_call_latency_seconds_count\{[^}]*operation="labReport",org="ORGA001"[^}]*\} 2/);
    expect(text).not.toContain('甲医院');
    expect(text).not.toContain('乙医院');
  });

  const get = (token: string, p: Record<string, string>) =>
    http.request(`${te.httpUrl}/api/recognition/summary?${new URLSearchParams({ patientId: 'P000100001', idNumber: '440106199003152314', ...p }).toString()}`, { headers: { authorization: `Bearer ${token}` } });
  const post = (token: string, p: string, body: Record<string, unknown>) =>
    http.request(`${te.httpUrl}${p}`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body });

  it('workstation API: orgCode picks the institution (required with several); an unknown one is refused', async () => {
    const before = sim.calls.length;
    for (const org of ['ORGA001', 'ORGB002']) {
      const res = await get(TOKEN_ALL, { orgCode: org });
      expect(res.status).toBe(200);
    }
    expect(sim.calls.slice(before).filter((c) => c.op === 'list').map((c) => [c.institution, c.body.orgCode])).toEqual([['ORGA001', 'ORGA001'], ['ORGB002', 'ORGB002']]);
    await expectOrgCodeRequiredAndKnown(get, 'RECOG');
  });

  it('an API client limited to ORGA001 is served for it and refused 403 RECOG_E_INSTITUTION_FORBIDDEN for ORGB002, audited', async () => {
    expect((await get(TOKEN_A, { orgCode: 'ORGA001' })).status).toBe(200);
    const before = sim.calls.length;
    const res = await get(TOKEN_A, { orgCode: 'ORGB002' });
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ code: 'RECOG_E_INSTITUTION_FORBIDDEN' });
    expect(JSON.stringify(res.json)).not.toContain('440106199003152314');
    // A POST names its institution in the body: refused the same way, and nothing reached the platform.
    const checked = await post(TOKEN_A, '/api/recognition/check', { orgCode: 'ORGB002', orderNo: 'WS-1', patientId: 'P000100001', idNumber: '440106199003152314', items: [{ itemCode: 'LAB0001' }] });
    expect(checked.status).toBe(403);
    expect(checked.json).toMatchObject({ code: 'RECOG_E_INSTITUTION_FORBIDDEN' });
    expect(sim.calls.length).toBe(before);
    const q = OpsQueries.open(path.join(te.dataDir, 'store'));
    try {
      const rows = await until(() => q.auditPage({ orgCode: 'ORGB002' }), (r) => r.filter((x) => x.result === 'forbidden').length >= 2);
      expect(rows.find((x) => x.result === 'forbidden' && x.operation === 'workstation-summary')).toMatchObject({ plugin: 'recognition', orgCode: 'ORGB002', client: 'ws-a', detail: expect.stringContaining('RECOG_E_INSTITUTION_FORBIDDEN') });
    } finally {
      q.close();
    }
  });

  it('GET /api/stats: a client limited to ORGA001 reads that institution only; another org is 403', async () => {
    const stats = (token: string, q: string) => http.request(`${te.httpUrl}/api/stats?${q}`, { headers: { authorization: `Bearer ${token}` } });
    const own = await stats(TOKEN_A, 'by=org');
    expect(own.status).toBe(200);
    expect((own.json as { groups: { key: string }[] }).groups.map((g) => g.key)).toEqual(['ORGA001']);
    const other = await stats(TOKEN_A, 'by=org&org=ORGB002');
    expect(other.status).toBe(403);
    expect(other.json).toMatchObject({ code: 'API_E_FORBIDDEN' });
    // An unlimited client sees both (and the rows of no institution: requests refused before one was picked).
    const all = await stats(TOKEN_ALL, 'by=org');
    expect((all.json as { groups: { key: string }[] }).groups.map((g) => g.key)).toEqual(expect.arrayContaining(['ORGA001', 'ORGB002', '(none)']));
  });

  it('pending checks are kept per institution: the decision is found under the institution that made the check only', async () => {
    const checked = await post(TOKEN_ALL, '/api/recognition/check', { orgCode: 'ORGA001', orderNo: 'WS-PEND-1', patientId: 'P000100001', idNumber: '440106199003152314', staffNo: 'D0012', items: [{ itemCode: 'LAB0001', itemName: '血常规' }] });
    expect(checked.status).toBe(200);
    expect(checked.json).toMatchObject({ mustDecide: true });
    const decision = { orderNo: 'WS-PEND-1', itemCode: 'LAB0001', staffNo: 'D0012', decision: 'recognize' };
    const wrong = await post(TOKEN_ALL, '/api/recognition/decision', { ...decision, orgCode: 'ORGB002' });
    expect(wrong.status).toBe(409);
    expect(wrong.json).toMatchObject({ code: 'RECOG_E_NO_PENDING_CHECK' });
    const right = await post(TOKEN_ALL, '/api/recognition/decision', { ...decision, orgCode: 'ORGA001' });
    expect(right.status).toBe(200);
    expect(sim.calls.filter((c) => c.op === 'decision').at(-1)).toMatchObject({ result: 'ok', institution: 'ORGA001', body: { orgCode: 'ORGA001' } });
  });
});

describe('the recognition simulator with several institutions', () => {
  let sim: RecognitionSimulator;
  const site = {
    institutions: [
      { orgCode: 'ORGA001', orgName: 'A', username: 'acct-a', password: 'pw-a', senders: ['HOSP_A'] },
      { orgCode: 'ORGB002', orgName: 'B', username: 'acct-b', password: 'pw-b', senders: ['HOSP_B'] },
    ],
  };
  beforeAll(async () => {
    sim = await startRecognitionSimulator({ port: 0, site });
  });
  afterAll(async () => {
    await sim?.close();
  });
  const login = async (username: string, password: string) => (await http.request(`${sim.url}/api/auth/token`, { method: 'POST', body: { username, password } })).json as { code: string; data?: { token: string } };
  const dept = (token: string, orgCode: string) =>
    http.request(`${sim.url}/api/his/department`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: { orgCode, orgName: 'x', deptCode: 'D1', deptName: '内科', action: 'add' } });

  it('verifies each account separately: each password opens its own account only', async () => {
    expect((await login('acct-a', 'pw-a')).code).toBe('0');
    expect((await login('acct-b', 'pw-b')).code).toBe('0');
    expect((await login('acct-a', 'pw-b')).code).toBe('1002');
    expect((await login('acct-b', 'pw-a')).code).toBe('1002');
  });

  it("refuses a payload naming another institution than the token's account (1003)", async () => {
    const a = (await login('acct-a', 'pw-a')).data!.token;
    expect((await dept(a, 'ORGA001')).json).toMatchObject({ code: '0' });
    expect((await dept(a, 'ORGB002')).json).toMatchObject({ code: '1003' });
    expect(sim.calls.at(-1)).toMatchObject({ op: 'department', institution: 'ORGA001', result: '1003' });
  });

  it('doctor logs in with each institution’s own account', async () => {
    const section = { baseUrl: sim.url, institutions: [site.institutions[0], { ...site.institutions[1], password: 'not-b' }] };
    const checks = await recognitionDoctor(section, { http, signal: new AbortController().signal });
    const login = Object.fromEntries(checks.filter((c) => c.name.endsWith('login accepted')).map((c) => [c.name, c.status]));
    expect(login).toEqual({ 'recognition[ORGA001]: login accepted': 'ok', 'recognition[ORGB002]: login accepted': 'fail' });
  });
});

describe('recognition.institutions in hisbridge.yaml', () => {
  const issues = (yaml: string[]) => siteIssues(yaml, ENV);

  it('a duplicate orgCode and a sender listed twice are reported at file:line:col', () => {
    const yaml = [...INSTITUTIONS, '    - { orgCode: ORGA001, username: acct-c, password: "${env:RA_PASS}", senders: [NETHOSP_B] }'];
    expect(issues(yaml)).toEqual([
      expect.stringMatching(/^hisbridge\.yaml:5:\d+ recognition\.institutions\[2\]\.orgCode: "ORGA001" is also the orgCode of institutions\[0\]/),
      expect.stringMatching(/^hisbridge\.yaml:5:\d+ recognition\.institutions\[2\]\.senders: sender "NETHOSP_B" is also listed by institutions\[1\]/),
    ]);
  });

  it('a profile without its password is a schema error at the profile', () => {
    const found = issues(['recognition:', '  institutions:', '    - { orgCode: ORGA001, username: acct-a, senders: [HOSP_A] }']);
    expect(found.join('\n')).toMatch(/hisbridge\.yaml:3:\d+ .*password/);
  });

  it('hisbridge validate refuses a step naming an institution that is not configured, at its file:line:col', async () => {
    const site = tempFiles({ 'hisbridge.yaml': INSTITUTIONS.join('\n') });
    const routes = tempFiles({ 'lab.yaml': ['routes:', '  - name: lab', '    match: { events: [ORU^R01] }', '    ack: on-receive', '    steps:', '      - plugin: recognition-upload', '        config: { kind: lab, institution: NOPE }'].join('\n') });
    const run = await cli(['validate', routes, '--config', path.join(site, 'hisbridge.yaml')], ENV);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toMatch(/lab\.yaml:7:\d+: plugin "recognition-upload" config: institution "NOPE" is not a recognition institution orgCode \(known: ORGA001, ORGB002\)/);
  });

  it('the shared baseUrl, paths and fields reach every profile; a profile may override baseUrl; the single account beside a list is refused', () => {
    const all = readRecognitionInstitutions({
      baseUrl: 'http://shared',
      paths: { token: '/login' },
      institutions: [
        { orgCode: 'A', username: 'a', password: 'p', senders: ['S1'], baseUrl: 'http://own' },
        { orgCode: 'B', username: 'b', password: 'q', senders: ['S2'] },
      ],
    });
    expect(all.list.map((x) => [x.orgCode, x.baseUrl, x.paths.token, x.username])).toEqual([['A', 'http://own', '/login', 'a'], ['B', 'http://shared', '/login', 'b']]);
    expect(all.bySender('S2')?.orgCode).toBe('B');
    expect(all.bySender('S3')).toBeUndefined();
    expect(recognitionInstitutionProblems({ username: 'x', institutions: [{ orgCode: 'A' }] }).map((p) => p.path)).toEqual([['username']]);
    // Without a list, the single account is one implicit institution for every sender.
    const one = readRecognitionInstitutions({ baseUrl: 'http://x', username: 'u', password: 'p', orgCode: 'O' });
    expect(one.implicit).toBe(true);
    expect(one.bySender('ANYONE')?.orgCode).toBe('O');
  });
});
