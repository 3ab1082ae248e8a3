// The gd-ehr pieces inside a real engine: default route files load and match
// the samples; the workstation endpoint answers over the engine's HTTP server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEngine, type TestEngine } from '../helpers/engine.js';
import { listRouteFiles, loadRoutes } from '../../core/routes/loader.js';
import { RouteTable } from '../../core/routes/matcher.js';
import { builtinRegistry } from '../../plugins/index.js';
import { offlineContext } from '../../core/cli/common.js';
import { loadSiteConfig } from '../../core/config/site.js';
import { http, sample } from './helpers.js';

const routesDir = mkdtempSync(path.join(tmpdir(), 'gd-ehr-routes-'));
for (const f of ['gd-ehr-authorize.yaml', 'gd-ehr-viewer.yaml']) copyFileSync(path.resolve('routes', f), path.join(routesDir, f));

describe('default gd-ehr routes', () => {
  it('load and match the samples as documented', async () => {
    const reg = builtinRegistry();
    const ctx = offlineContext(reg, loadSiteConfig(undefined, reg.extensions));
    const routes = await loadRoutes(listRouteFiles([routesDir]), { registry: reg, contextFor: (d) => ctx(d), sources: ['mllp'], env: {} });
    expect(routes.map((r) => r.name).sort()).toEqual(['gd-ehr-authorize', 'gd-ehr-authorize-withdraw', 'gd-ehr-viewer']);
    const table = new RouteTable(routes);
    const names = (file: string, edit?: (t: string) => string) => {
      const input = sample(file, edit);
      return table.match({ source: 'mllp', type: input.type, sendingApp: input.hl7!.get('MSH-3'), sendingFacility: input.hl7!.get('MSH-4') }, input).map((r) => r.name).sort();
    };
    expect(names('01-adt-a04-registration-consent.hl7')).toEqual(['gd-ehr-authorize', 'gd-ehr-viewer']);
    expect(names('02-adt-a04-registration-no-consent.hl7')).toEqual(['gd-ehr-authorize', 'gd-ehr-viewer']); // the plugin skips: no consent
    expect(names('03-adt-a01-admission-consent.hl7')).toEqual(['gd-ehr-authorize']);
    expect(names('04-siu-s12-online-booking-consent.hl7')).toEqual(['gd-ehr-authorize']);
    expect(names('08-adt-a08-update-consent-withdrawn.hl7')).toEqual(['gd-ehr-authorize-withdraw']);
    expect(names('08-adt-a08-update-consent-withdrawn.hl7', (t) => t.replace('ZCN|N|', 'ZCN|Y|'))).toEqual([]);
    expect(names('01-adt-a04-registration-consent.hl7', (t) => t.replace('D0012^李^建国', ''))).toEqual(['gd-ehr-authorize']);
  });
});

describe('GET /api/gd-ehr/viewer-url on the engine', () => {
  let te: TestEngine;
  beforeAll(async () => {
    te = await startEngine({ routesDir });
  });
  afterAll(async () => {
    await te?.stop();
    http.close();
  });

  const q = (p: Record<string, string>) => `${te.httpUrl}/api/gd-ehr/viewer-url?${new URLSearchParams(p).toString()}`;
  const good = { patientId: 'P000100001', staffNo: 'D0012', staffName: '李建国', idcard: '440106199003152314', cardType: '01', patientName: '张三丰' };

  it('302 to a URL the simulator opens', async () => {
    const res = await http.request(q(good));
    expect(res.status).toBe(302);
    expect(res.headers['cache-control']).toBe('no-store');
    const loc = res.headers.location!;
    expect(loc).toMatch(/\/gdehr\/privilege\/getPrivilege\?param=[0-9a-f]+&appId=/);
    const page = await http.request(loc);
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('张**');
  });

  it('?format=json gives {url}', async () => {
    const res = await http.request(q({ ...good, format: 'json' }));
    expect(res.status).toBe(200);
    expect((res.json as { url: string }).url).toMatch(/getPrivilege\?param=[0-9a-f]+&appId=/);
  });

  it('400 with {code, message} for a missing or unsafe parameter', async () => {
    const missing = await http.request(q({ ...good, idcard: '' }));
    expect(missing.status).toBe(400);
    expect(missing.json).toEqual({ code: 'GDEHR_E_MISSING_PARAM', message: 'missing parameter idcard' });
    const unsafe = await http.request(q({ ...good, patientName: '张&idcard=1' }));
    expect(unsafe.status).toBe(400);
    expect(unsafe.json).toEqual({ code: 'GDEHR_E_UNSAFE_VALUE', message: 'value of patientName contains "&", "=" or a control character' });
    const card = await http.request(q({ ...good, cardType: '42' }));
    expect(card.status).toBe(400);
    expect((card.json as { code: string }).code).toBe('GDEHR_E_BAD_CARD_TYPE');
  });

  it('never writes the ID number or the name into the logs', () => {
    const all = te.logs.join('\n');
    expect(all).not.toContain('440106199003152314');
    expect(all).not.toContain('张三丰');
  });
});
