import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import plugin from '../../plugins/gd-ehr-viewer/index.js';
import { buildViewerUrl, parseViewerParam, viewerParamPlaintext, type ViewerFields } from '../../plugins/gd-ehr/viewer-url.js';
import { gdEhrEndpoints } from '../../plugins/gd-ehr/endpoint.js';
import { HisbridgeError } from '../../core/errors.js';
import { sm4EncryptHex } from '../../core/crypto/sm4.js';
import type { AuditEntry } from '../../core/sdk.js';
import type { GdEhrSimulator } from '../../plugins/gd-ehr/simulator.js';
import { GUIDE_KEY, call, http, inputOf, makeCtx, sample, startSim } from './helpers.js';

const GUIDE_FIELDS: ViewerFields = { orgCode: 'o1', staffNo: 'a1n', staffName: 'pn2', cardType: '01', idcard: '64212419560933091T', patientName: 'N1', patientId: 'd1', callSysCode: 'zhspt' };
const GUIDE_CIPHER =
  '55d0dad78cfe0a426b78632a08adce38e832d90c11a09d3c1df0dd540e12fdfc8f94f46a5ea1dba7e217d4d8f6d3dcd7fc87acfe8d39a6d7a02ca2c974753d9e6f5935560fe6448eca34059caf3d016bd071f41251d3874aca227788ec1c52f7af8c9d7099eb221652d94523db2d86f28892d291a70c5854be5b4be1ff6f2eec';

let sim: GdEhrSimulator;
let site: Record<string, unknown>;
beforeAll(async () => {
  ({ sim, site } = await startSim());
});
afterAll(async () => {
  await sim.close();
  http.close();
});
beforeEach(() => sim.reset());

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof HisbridgeError) return e.code;
    throw e;
  }
  return 'no error';
}

describe('viewer URL builder', () => {
  it('encrypts the eight fields in the guide order: the guide vector', () => {
    expect(viewerParamPlaintext(GUIDE_FIELDS)).toBe('orgCode=o1&staffNo=a1n&staffName=pn2&cardType=01&idcard=64212419560933091T&patientName=N1&patientId=d1&callSysCode=zhspt');
    const url = buildViewerUrl({ viewerUrl: 'https://qmjk.gd.gov.cn/gdehr/privilege/getPrivilege', appId: 'ff80', sm4Key: GUIDE_KEY, fields: GUIDE_FIELDS });
    expect(url).toBe(`https://qmjk.gd.gov.cn/gdehr/privilege/getPrivilege?param=${GUIDE_CIPHER}&appId=ff80`);
    expect(parseViewerParam(GUIDE_KEY, GUIDE_CIPHER)).toEqual(GUIDE_FIELDS);
  });

  it('refuses &, = and control characters in any value, and empty values', () => {
    for (const bad of ['a&b', 'a=b', 'a\u0001b', 'a\nb', 'a\u007fb']) {
      expect(codeOf(() => viewerParamPlaintext({ ...GUIDE_FIELDS, staffName: bad }))).toBe('GDEHR_E_UNSAFE_VALUE');
      expect(codeOf(() => viewerParamPlaintext({ ...GUIDE_FIELDS, patientId: bad }))).toBe('GDEHR_E_UNSAFE_VALUE');
    }
    expect(codeOf(() => viewerParamPlaintext({ ...GUIDE_FIELDS, idcard: '' }))).toBe('GDEHR_E_MISSING_PARAM');
    expect(codeOf(() => viewerParamPlaintext({ ...GUIDE_FIELDS, cardType: '10' }))).toBe('GDEHR_E_BAD_CARD_TYPE');
    expect(codeOf(() => buildViewerUrl({ viewerUrl: 'http://x/', appId: 'a&b', sm4Key: GUIDE_KEY, fields: GUIDE_FIELDS }))).toBe('GDEHR_E_UNSAFE_VALUE');
  });

  it('parses strictly: a reordered plaintext is refused', () => {
    const swapped = sm4EncryptHex(GUIDE_KEY, 'staffNo=a1n&orgCode=o1&staffName=pn2&cardType=01&idcard=6&patientName=N1&patientId=d1&callSysCode=zhspt');
    expect(codeOf(() => parseViewerParam(GUIDE_KEY, swapped))).toBe('GDEHR_E_MISSING_PARAM');
  });
});

describe('gd-ehr-viewer plugin, URL opened at the simulator', () => {
  it('builds a URL that the simulator decrypts back to the exact fields, Chinese names intact', async () => {
    const audit: AuditEntry[] = [];
    const p = await plugin.create(makeCtx(site, audit), {});
    const r = await p.process(sample('01-adt-a04-registration-consent.hl7'), call('gd-ehr-viewer'));
    const url = r.output!.url as string;
    expect(url.startsWith(`${sim.url}/gdehr/privilege/getPrivilege?param=`)).toBe(true);
    expect(url.endsWith('&appId=demo-app-0001')).toBe(true);
    const res = await http.request(url);
    expect(res.status).toBe(200);
    const page = res.body.toString('utf8');
    expect(page).toContain('张**');
    expect(page).not.toContain('张三丰');
    expect(page).not.toContain('440106199003152314');
    expect(sim.calls).toHaveLength(1);
    expect(sim.calls[0]!.verified).toBe(true);
    expect(sim.calls[0]!.fields).toEqual({
      orgCode: 'TEST001',
      staffNo: 'D0012',
      staffName: '李建国',
      cardType: '01',
      idcard: '440106199003152314',
      patientName: '张三丰',
      patientId: 'P000100001',
      callSysCode: 'demosys',
    });
    expect(audit).toEqual([expect.objectContaining({ plugin: 'gd-ehr-viewer', operation: 'viewer-url', orgCode: 'TEST001', staffNo: 'D0012', patientId: 'P000100001', result: 'ok', messageId: 'HIS202503120001' })]);
  });

  it('uses the passport with card type 03 when there is no resident ID, and GBK names survive', async () => {
    const p = await plugin.create(makeCtx(site), {});
    const input = inputOf(
      'MSH|^~\\&|HIS|H1|HB|GD|20250312093015||ADT^A04|T-GBK-1|P|2.5\rPID|1||P9^^^HOSP^PI~E10000001^^^CHN^PPN||區^億華\rPV1|1|O|0301||||D0012^欧阳^建国',
    );
    const url = (await p.process(input, call())).output!.url as string;
    expect((await http.request(url)).status).toBe(200);
    expect(sim.calls[0]!.fields).toMatchObject({ cardType: '03', idcard: 'E10000001', patientName: '區億華', staffName: '欧阳建国', patientId: 'P9' });
  });

  it('honours a site card-type table override', async () => {
    const p = await plugin.create(makeCtx({ ...site, cardTypes: { GAT: '08' } }), {});
    const url = (await p.process(inputOf('MSH|^~\\&|HIS|H1|HB|GD|2025||ADT^A04|C2|P|2.5\rPID|1||P9^^^HOSP^PI~H0123^^^CHN^GAT||陈^一\rPV1|1|O|||||D1^王^五'), call())).output!.url as string;
    await http.request(url);
    expect(sim.calls[0]!.fields).toMatchObject({ cardType: '08', idcard: 'H0123' });
  });

  it('refuses values that would inject & or = into the param, and no identity document', async () => {
    const audit: AuditEntry[] = [];
    const p = await plugin.create(makeCtx(site, audit), { staffName: '${vars.staff}' });
    const input = { ...sample('01-adt-a04-registration-consent.hl7'), vars: { staff: '李&patientId=X' } };
    await expect(p.process(input, call())).rejects.toMatchObject({ code: 'GDEHR_E_UNSAFE_VALUE', message: 'value of staffName contains "&", "=" or a control character' });
    const noId = inputOf('MSH|^~\\&|HIS|H1|HB|GD|2025||ADT^A04|C3|P|2.5\rPID|1||P9^^^HOSP^PI||陈^一\rPV1|1|O|||||D1^王^五');
    await expect(p.process(noId, call())).rejects.toMatchObject({ code: 'GDEHR_E_MISSING_PARAM' });
    expect(audit.map((a) => [a.result, a.detail])).toEqual([['failed', 'GDEHR_E_UNSAFE_VALUE'], ['failed', 'GDEHR_E_MISSING_PARAM']]);
  });

  it('refuses an explicit idcard without a cardType at create', async () => {
    await expect(async () => plugin.create(makeCtx(site), { idcard: '${vars.id}' })).rejects.toMatchObject({ code: 'ROUTE_E_PLUGIN_CONFIG' });
  });
});

describe('simulator getPrivilege', () => {
  const url = (fields: Partial<ViewerFields>, key = GUIDE_KEY, appId = 'demo-app-0001') =>
    buildViewerUrl({
      viewerUrl: `${sim.url}/gdehr/privilege/getPrivilege`,
      appId,
      sm4Key: key,
      fields: { orgCode: 'TEST001', staffNo: 'D1', staffName: '王五', cardType: '01', idcard: '440106199003152314', patientName: '张三', patientId: 'P1', callSysCode: 'demosys', ...fields },
    });

  it('answers 400 with the reason for a wrong appId, key, org or integrator', async () => {
    const reasons: string[] = [];
    for (const u of [url({}, GUIDE_KEY, 'other'), url({}, 'ffffffffffffffffffffffffffffffff'), url({ orgCode: 'X' }), url({ callSysCode: 'X' }), `${sim.url}/gdehr/privilege/getPrivilege?appId=demo-app-0001&param=zz`]) {
      const res = await http.request(u);
      expect(res.status).toBe(400);
      reasons.push(sim.calls.at(-1)!.reason!);
    }
    expect(reasons[0]).toBe('appId 不匹配');
    expect(reasons[1]).toMatch(/^CRYPTO_E_BAD_CIPHERTEXT/);
    expect(reasons[2]).toBe('机构代码不匹配');
    expect(reasons[3]).toBe('集成方代码不匹配');
    expect(reasons[4]).toMatch(/not hex/);
  });
});

describe('workstation endpoint handler (audit)', () => {
  it('audits who asked, for which patient, and the result', async () => {
    const audit: AuditEntry[] = [];
    const [ep] = await gdEhrEndpoints(makeCtx(site, audit));
    const q = { patientId: 'P1', staffNo: 'D1', staffName: '王五', idcard: '440106199003152314', cardType: 'NI', patientName: '张三' };
    const ok = await ep!.handler({ params: {}, query: { ...q, format: 'json' }, headers: {}, body: undefined, remoteAddress: '10.0.0.7' });
    expect(ok.status).toBe(200);
    const bad = await ep!.handler({ params: {}, query: { ...q, staffName: 'a=b' }, headers: {}, body: undefined, remoteAddress: '10.0.0.7' });
    expect(bad).toMatchObject({ status: 400, body: { code: 'GDEHR_E_UNSAFE_VALUE' } });
    expect(audit).toEqual([
      expect.objectContaining({ plugin: 'gd-ehr', operation: 'viewer-url', orgCode: 'TEST001', staffNo: 'D1', patientId: 'P1', result: 'ok', detail: 'from 10.0.0.7' }),
      expect.objectContaining({ result: 'failed', detail: 'GDEHR_E_UNSAFE_VALUE from 10.0.0.7' }),
    ]);
    await http.request((ok.body as { url: string }).url);
    expect(sim.calls[0]!.fields).toMatchObject({ cardType: '01' });
  });

  it('answers 503 with the reason when the section lacks credentials', async () => {
    const [ep] = await gdEhrEndpoints(makeCtx({ ...site, sm4Key: undefined }));
    const res = await ep!.handler({ params: {}, query: {}, headers: {}, body: undefined });
    expect(res).toMatchObject({ status: 503, body: { code: 'CONFIG_E_SITE_MISSING', message: 'gdEhr.sm4Key is not set in hisbridge.yaml' } });
  });
});
