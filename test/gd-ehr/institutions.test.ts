// Several institutions in one engine (issue 16): each message goes out under
// the institution its sending facility (MSH-4) belongs to, or the one a
// route step names; the simulator verifies each institution's own
// credentials and SM4 key; a sender no institution lists is refused with AR.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { MllpClient } from '../../core/mllp/client.js';
import { OpsQueries } from '../../core/ops/queries.js';
import { gatewayHeaders, sm4EncryptHex } from '../../core/sdk.js';
import { readInstitutions, institutionProblems } from '../../plugins/gd-ehr/site.js';
import { startGdEhrSimulator, type GdEhrSimulator } from '../../plugins/gd-ehr/simulator.js';
import { silentLogger } from '../../core/log.js';
import { startEngine, withEngine, type TestEngine } from '../helpers/engine.js';
import { tempFiles } from '../helpers/routes.js';
import { siteIssues } from '../helpers/site-issues.js';
import { API_CLIENTS_YAML, expectOrgCodeRequiredAndKnown, TOKEN_A, TOKEN_ALL } from '../helpers/institutions.js';
import { until } from '../helpers/kafka.js';
import { http, sampleText } from './helpers.js';
import { cli } from '../helpers/cli.js';
import { gdEhrDoctor } from '../../plugins/gd-ehr/doctor.js';

const KEY_A = '0123456789abcdef0123456789abcdef';
const KEY_B = 'fedcba9876543210fedcba9876543210';
const ENV = { A_TOKEN: 'token-of-a', A_KEY: KEY_A, B_TOKEN: 'token-of-b', B_KEY: KEY_B };

const INSTITUTIONS = [
  'gdEhr:',
  '  institutions:',
  '    - { orgCode: ORGA001, orgName: 甲医院, appId: app-a, paasId: paas-a, paasToken: "${env:A_TOKEN}", sm4Key: "${env:A_KEY}", callSysCode: sysa, senders: [HOSP_A] }',
  '    - { orgCode: ORGB002, orgName: 乙医院, appId: app-b, paasId: paas-b, paasToken: "${env:B_TOKEN}", sm4Key: "${env:B_KEY}", callSysCode: sysb, senders: [HOSP_B, NETHOSP_B] }',
];

const ROUTES = {
  'auth.yaml': [
    'routes:',
    '  - name: grant',
    '    match: { events: [ADT^A04], sender: { application: HIS } }',
    '    ack: on-receive',
    '    steps:',
    '      - plugin: gd-ehr-authorize',
    '        config: { consent: false }',
    '  - name: grant-internet',
    '    match: { events: [ADT^A04], sender: { application: NETAPP } }',
    '    ack: on-receive',
    '    steps:',
    '      - plugin: gd-ehr-authorize',
    '        config: { consent: false, institution: ORGB002 }',
  ].join('\n'),
};

/** Sample 01 (ADT^A04 with consent) with its MSH-3, MSH-4 and MSH-10 replaced, sent as UTF-8. */
function a04(app: string, facility: string, id: string, idNumber = '440106199003152314'): string {
  return sampleText('01-adt-a04-registration-consent.hl7')
    .replace('MSH|^~\\&|HIS|H4413020001|', `MSH|^~\\&|${app}|${facility}|`)
    .replace('HIS202503120001', id)
    .replace('GB 18030-2000', 'UNICODE UTF-8')
    .replace('440106199003152314', idNumber);
}

const ackCode = (ack: Buffer) => /MSA\|([A-Z]{2})\|/.exec(ack.toString('utf8'))?.[1];

describe('two institutions in one engine', () => {
  let te: TestEngine;
  let sim: GdEhrSimulator;
  let mllp: MllpClient;
  beforeAll(async () => {
    te = await startEngine({ routesDir: tempFiles(ROUTES), siteYaml: INSTITUTIONS.join('\n'), env: ENV });
    sim = te.engine.simulators.gdEhr as GdEhrSimulator;
    mllp = await MllpClient.connect('127.0.0.1', te.port);
  }, 60_000);
  afterAll(async () => {
    await mllp?.close();
    await te?.stop();
  });

  it('each authorization reaches the simulator with its own institution, credentials and SM4 key', async () => {
    expect(ackCode(await mllp.send(a04('HIS', 'HOSP_A', 'INST-A-1', '440106199003152314')))).toBe('AA');
    expect(ackCode(await mllp.send(a04('HIS', 'NETHOSP_B', 'INST-B-1', '440106198001011234')))).toBe('AA');
    const calls = await until(() => sim.calls.filter((c) => c.op === 'authorize'), (c) => c.length >= 2);
    expect(calls.map((c) => c.verified)).toEqual([true, true]);
    const byOrg = Object.fromEntries(calls.map((c) => [c.institution, c.fields]));
    // The simulator decrypted each patientIdcard with the key of the institution that signed the call.
    expect(byOrg.ORGA001).toMatchObject({ orgCode: 'ORGA001', orgName: '甲医院', appId: 'app-a', patientIdcard: '440106199003152314' });
    expect(byOrg.ORGB002).toMatchObject({ orgCode: 'ORGB002', orgName: '乙医院', appId: 'app-b', patientIdcard: '440106198001011234' });
  });

  it('a route step with institution: sends under that institution whatever MSH-4 says', async () => {
    const before = sim.calls.length;
    expect(ackCode(await mllp.send(a04('NETAPP', 'SOMEWHERE_ELSE', 'INST-NET-1')))).toBe('AA');
    const calls = await until(() => sim.calls.slice(before), (c) => c.length >= 1);
    expect(calls[0]).toMatchObject({ verified: true, institution: 'ORGB002', fields: { orgCode: 'ORGB002', appId: 'app-b' } });
  });

  it('an unknown sender is refused with AR over MLLP, naming the MSH-4 value, and nothing is sent', async () => {
    const before = sim.calls.length;
    const ack = (await mllp.send(a04('HIS', 'HOSP_X', 'INST-X-1'))).toString('utf8');
    expect(ackCode(Buffer.from(ack))).toBe('AR');
    expect(ack).toContain('MSA|AR|INST-X-1|no gdEhr institution lists the sending facility "HOSP_X" (MSH-4) in its senders');
    expect(ack).not.toContain('440106199003152314');
    // A later message proves the engine went on; the refused one never reached the simulator.
    expect(ackCode(await mllp.send(a04('HIS', 'HOSP_B', 'INST-B-2')))).toBe('AA');
    const calls = await until(() => sim.calls.slice(before), (c) => c.length >= 1);
    await new Promise((r) => setImmediate(r));
    expect(calls.map((c) => c.institution)).toEqual(['ORGB002']);
  });

  it('audit rows carry the orgCode and stats --by org separates the institutions', async () => {
    const q = OpsQueries.open(path.join(te.dataDir, 'store'));
    try {
      const report = await until(() => q.stats('org'), (r) => r.groups.length >= 2 && r.totals.ok >= 4);
      const groups = Object.fromEntries(report.groups.map((g) => [g.key, g.ok]));
      expect(groups).toEqual({ ORGA001: 1, ORGB002: 3 });
    } finally {
      q.close();
    }
    // The same through the CLI process.
    const run = await cli(['stats', '--by', 'org', '--json', '--data-dir', path.join(te.dataDir, 'store')]);
    expect(run.code).toBe(0);
    const groups = Object.fromEntries((JSON.parse(run.stdout) as { groups: { key: string; ok: number }[] }).groups.map((g) => [g.key, g.ok]));
    expect(groups).toEqual({ ORGA001: 1, ORGB002: 3 });
  }, 30_000);

  it('/metrics counts the calls per institution (orgCode label)', async () => {
    const text = (await http.request(`${te.httpUrl}/metrics`)).body.toString('utf8');
    const count = (org: string) => {
      const line = text.split('\n').find((l) => l.startsWith('hisbridge_calls_total{') && l.includes('plugin="gd-ehr-authorize"') && l.includes(`org="${org}"`) && l.includes('result="ok"'));
      return line ? Number(line.split(' ').pop()) : undefined;
    };
    expect(count('ORGA001')).toBe(1);
    expect(count('ORGB002')).toBe(3);
    expect(text).toMatch(/hisbridge_call_latency_seconds_count\{[^}]*org="ORGA001"[^}]*\} 1/);
    expect(text).not.toContain('甲医院');
  });
});

describe('an on-complete viewer route with several institutions', () => {
  const VIEWER_ROUTE = [
    'routes:',
    '  - name: viewer',
    '    match: { events: [ADT^A04] }',
    '    ack: on-complete',
    '    steps:',
    '      - plugin: gd-ehr-viewer',
    '        as: viewer',
    '        config: { staffNo: "${PV1-7.1}", staffName: "${PV1-7.2}${PV1-7.3}" }',
    '      - reply: { segments: [[ZVU, "${vars.viewer.url}"]] }',
  ].join('\n');

  it('answers AA with the URL of the sender’s institution, and AR for a sender no institution lists', async () => {
    await withEngine({ routesDir: tempFiles({ 'viewer.yaml': VIEWER_ROUTE }), siteYaml: INSTITUTIONS.join('\n'), env: ENV }, async (t) => {
      const c = await MllpClient.connect('127.0.0.1', t.port);
      try {
        const ok = (await c.send(a04('HIS', 'HOSP_B', 'VIEW-B-1'))).toString('utf8');
        expect(ackCode(Buffer.from(ok))).toBe('AA');
        expect(ok).toMatch(/ZVU\|[^\r]*appId=app-b/);
        const refused = (await c.send(a04('HIS', 'HOSP_X', 'VIEW-X-1'))).toString('utf8');
        expect(ackCode(Buffer.from(refused))).toBe('AR');
        expect(refused).toContain('"HOSP_X" (MSH-4)');
        expect(refused).not.toContain('ZVU');
      } finally {
        await c.close();
      }
    });
  }, 60_000);
});

describe('GET /api/gd-ehr/viewer-url with several institutions and API clients limited to some', () => {
  let te: TestEngine;
  let sim: GdEhrSimulator;
  beforeAll(async () => {
    te = await startEngine({ routesDir: tempFiles({}), siteYaml: [...INSTITUTIONS, ...API_CLIENTS_YAML].join('\n'), env: ENV });
    sim = te.engine.simulators.gdEhr as GdEhrSimulator;
  }, 60_000);
  afterAll(async () => {
    await te?.stop();
  });
  const good = { patientId: 'P000100001', staffNo: 'D0012', staffName: '李建国', idcard: '440106199003152314', cardType: '01', patientName: '张三丰', format: 'json' };
  const get = (token: string, p: Record<string, string>) =>
    http.request(`${te.httpUrl}/api/gd-ehr/viewer-url?${new URLSearchParams({ ...good, ...p }).toString()}`, { headers: { authorization: `Bearer ${token}` } });

  it('each orgCode gets a URL the simulator opens with that institution’s appId and key', async () => {
    for (const org of ['ORGA001', 'ORGB002']) {
      const res = await get(TOKEN_ALL, { orgCode: org });
      expect(res.status).toBe(200);
      const url = (res.json as { url: string }).url;
      expect(url).toContain(`appId=${org === 'ORGA001' ? 'app-a' : 'app-b'}`);
      const before = sim.calls.length;
      expect((await http.request(url)).status).toBe(200);
      expect(sim.calls[before]).toMatchObject({ op: 'viewer', verified: true, institution: org, fields: { orgCode: org, callSysCode: org === 'ORGA001' ? 'sysa' : 'sysb' } });
    }
  });

  it('orgCode is required with several institutions; an unknown one is refused', async () => {
    await expectOrgCodeRequiredAndKnown(get, 'GDEHR');
  });

  it('a client limited to ORGA001 gets its URL, and 403 GDEHR_E_INSTITUTION_FORBIDDEN for ORGB002', async () => {
    expect((await get(TOKEN_A, { orgCode: 'ORGA001' })).status).toBe(200);
    const res = await get(TOKEN_A, { orgCode: 'ORGB002' });
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ code: 'GDEHR_E_INSTITUTION_FORBIDDEN' });
    expect(JSON.stringify(res.json)).not.toContain('440106199003152314');
    // Audited against the institution asked for, with the client's name.
    const q = OpsQueries.open(path.join(te.dataDir, 'store'));
    try {
      const rows = await until(() => q.auditPage({ orgCode: 'ORGB002' }), (r) => r.some((x) => x.result === 'forbidden'));
      expect(rows.find((x) => x.result === 'forbidden')).toMatchObject({ plugin: 'gd-ehr', operation: 'viewer-url', orgCode: 'ORGB002', client: 'ws-a', detail: expect.stringContaining('GDEHR_E_INSTITUTION_FORBIDDEN') });
    } finally {
      q.close();
    }
  });
});

describe('the simulator with several institutions', () => {
  let sim: GdEhrSimulator;
  const site = {
    institutions: [
      { orgCode: 'ORGA001', orgName: 'A', appId: 'app-a', paasId: 'paas-a', paasToken: 'token-of-a', sm4Key: KEY_A, callSysCode: 'sysa', senders: ['HOSP_A'] },
      { orgCode: 'ORGB002', orgName: 'B', appId: 'app-b', paasId: 'paas-b', paasToken: 'token-of-b', sm4Key: KEY_B, callSysCode: 'sysb', senders: ['HOSP_B'] },
    ],
  };
  beforeAll(async () => {
    sim = await startGdEhrSimulator({ host: '127.0.0.1', port: 0, site, log: silentLogger() });
  });
  afterAll(async () => {
    await sim?.close();
  });

  const post = (paas: { paasId: string; paasToken: string }, rec: Record<string, unknown>) =>
    http.request(`${sim.url}/ebus/jiankangdangan/gdehr/dhccApi/codeAuthRec/save`, { method: 'POST', headers: gatewayHeaders(paas), body: { codeAuthRec: rec } });
  const rec = (org: string, appId: string, key: string) => ({ authDays: 30, patientIdcard: sm4EncryptHex(key, '440106199003152314'), patientName: '张三', orgCode: org, orgName: 'x', status: '1', appId });

  it('accepts each institution with its own token and key', async () => {
    expect((await post({ paasId: 'paas-a', paasToken: 'token-of-a' }, rec('ORGA001', 'app-a', KEY_A))).json).toMatchObject({ returnCode: '1' });
    expect((await post({ paasId: 'paas-b', paasToken: 'token-of-b' }, rec('ORGB002', 'app-b', KEY_B))).json).toMatchObject({ returnCode: '1' });
  });

  it('doctor probes each institution with its own paasid and token', async () => {
    const authUrl = `${sim.url}/ebus/jiankangdangan/gdehr/dhccApi/codeAuthRec/save`;
    const wrongB = { ...site, authUrl, viewerUrl: `${sim.url}/gdehr/privilege/getPrivilege`, institutions: [site.institutions[0], { ...site.institutions[1], paasToken: 'not-b' }] };
    const checks = await gdEhrDoctor(wrongB, { http, signal: new AbortController().signal });
    const sig = Object.fromEntries(checks.filter((c) => c.name.endsWith('gateway signature accepted')).map((c) => [c.name, c.status]));
    expect(sig).toEqual({ 'gdEhr[ORGA001]: gateway signature accepted': 'ok', 'gdEhr[ORGB002]: gateway signature accepted': 'fail' });
  });

  it("refuses A's signature with B's orgCode, B's key under A's signature, and A's paasid with B's token", async () => {
    expect((await post({ paasId: 'paas-a', paasToken: 'token-of-a' }, rec('ORGB002', 'app-a', KEY_A))).json).toMatchObject({ returnCode: '0', returnDesc: '机构代码不匹配' });
    expect((await post({ paasId: 'paas-a', paasToken: 'token-of-a' }, rec('ORGA001', 'app-a', KEY_B))).json).toMatchObject({ returnCode: '0' });
    expect((await post({ paasId: 'paas-a', paasToken: 'token-of-b' }, rec('ORGA001', 'app-a', KEY_A))).status).toBe(401);
  });
});

describe('gdEhr.institutions in hisbridge.yaml', () => {
  const issues = (yaml: string[]) => siteIssues(yaml, ENV);

  it('a duplicate orgCode and a sender listed twice are reported at file:line:col', () => {
    const yaml = [...INSTITUTIONS, '    - { orgCode: ORGA001, orgName: 丙, appId: app-c, paasId: paas-c, paasToken: "${env:A_TOKEN}", sm4Key: "${env:A_KEY}", callSysCode: sysc, senders: [NETHOSP_B] }'];
    const found = issues(yaml);
    expect(found).toEqual([
      expect.stringMatching(/^hisbridge\.yaml:5:\d+ gdEhr\.institutions\[2\]\.orgCode: "ORGA001" is also the orgCode of institutions\[0\]/),
      expect.stringMatching(/^hisbridge\.yaml:5:\d+ gdEhr\.institutions\[2\]\.senders: sender "NETHOSP_B" is also listed by institutions\[1\]/),
    ]);
  });

  it('missing credentials are a schema error at the profile', () => {
    const yaml = ['gdEhr:', '  institutions:', '    - { orgCode: ORGA001, orgName: 甲, appId: app-a, paasId: paas-a, callSysCode: sysa, senders: [HOSP_A] }'];
    const found = issues(yaml);
    expect(found.length).toBeGreaterThan(0);
    expect(found.join('\n')).toMatch(/hisbridge\.yaml:3:\d+ .*paasToken/);
  });

  it('the single set keeps working as one implicit institution for every sender', () => {
    const all = readInstitutions({ authUrl: 'http://x/a', viewerUrl: 'http://x/v', orgCode: 'O', orgName: 'N', callSysCode: 'c', appId: 'a', paasId: 'p', paasToken: 't', sm4Key: KEY_A });
    expect(all.implicit).toBe(true);
    expect(all.bySender('ANYONE')?.orgCode).toBe('O');
    expect(institutionProblems({ orgCode: 'O' })).toEqual([]);
  });

  it('a profile overrides the shared authUrl; the single-set credentials beside a list are refused', () => {
    const all = readInstitutions({ authUrl: 'http://shared/a', viewerUrl: 'http://shared/v', institutions: [{ ...site0(), authUrl: 'http://own/a' }, { ...site0(), orgCode: 'B', senders: ['S2'] }] });
    expect(all.list.map((x) => x.authUrl)).toEqual(['http://own/a', 'http://shared/a']);
    expect(all.bySender('S1')?.orgCode).toBe('A');
    expect(all.bySender('S3')).toBeUndefined();
    expect(institutionProblems({ orgCode: 'O', institutions: [site0()] }).map((p) => p.path)).toEqual([['orgCode']]);
  });
});

function site0() {
  return { orgCode: 'A', orgName: 'N', callSysCode: 'c', appId: 'a', paasId: 'p', paasToken: 't', sm4Key: KEY_A, senders: ['S1'] };
}
