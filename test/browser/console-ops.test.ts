/**
 * Issue 18 in a real browser (Debian's Chromium through playwright-core)
 * against a real engine: the health panel, the dashboard agreeing with
 * /metrics after every sample, pause -> messages held -> resume -> delivered,
 * and content search finding a message by PID-5.1. Screenshots go to
 * test-artifacts/console-ops-*.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MllpClient } from '../../core/mllp/client.js';
import type { TestEngine } from '../helpers/engine.js';
import { CONSOLE_PASSWORD, CONSOLE_USER, metricValue, parseMetrics, sample, sampleFiles, samplePhi, startOpsEngine, until, withControlId } from '../ops/fixtures.js';

/** The page's DOM as the waitForFunction callbacks (run in the browser) use it; the project's lib has no DOM types. */
declare const document: { querySelector(selector: string): { textContent: string | null } | null };

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve('test-artifacts');
const MISSING_CHROMIUM = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} not found: the browser test needs Debian's Chromium. Install it with: sudo apt-get update && sudo apt-get install -y chromium fonts-noto-cjk`;

describe('Chromium for the console operations test', () => {
  it(`is installed at ${CHROMIUM}`, () => {
    if (MISSING_CHROMIUM) throw new Error(MISSING_CHROMIUM);
    expect(existsSync(CHROMIUM)).toBe(true);
  });
});

describe.runIf(!MISSING_CHROMIUM)('console health, counts and operator actions in Chromium', () => {
  let t: TestEngine;
  let ctx: BrowserContext;
  let page: Page;
  let profile: string;
  const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `console-ops-${name}.png`), fullPage: true });
  const num = async (sel: string) => Number(await page.textContent(sel));

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    t = await startOpsEngine();
    profile = mkdtempSync(path.join(tmpdir(), 'hisbridge-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(15_000);
    await page.goto(`${t.httpUrl}/console/login`);
    await page.fill('input[name=user]', CONSOLE_USER);
    await page.fill('input[name=password]', CONSOLE_PASSWORD);
    await Promise.all([page.waitForURL('**/console/dashboard'), page.click('button[type=submit]')]);
  }, 60_000);

  afterAll(async () => {
    await ctx?.close();
    await t?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('shows the health panel: listeners bound with connections, store, remotes, Kafka, event loop, inactive routes', async () => {
    await page.goto(`${t.httpUrl}/console/dashboard?lang=en`);
    expect(await page.locator('#health-panel pre').count()).toBe(0);
    expect(await page.getAttribute('#health-panel', 'data-status')).toBe('ok');
    const mllp = page.locator('#health-listeners tr[data-listener="mllp"]');
    expect(await mllp.locator('td').nth(1).textContent()).toMatch(/^Bound :\d+$/);
    expect(await mllp.locator('td').nth(2).textContent()).toMatch(/^\d+$/);
    expect(await page.getAttribute('#health-store td', 'data-ok')).toBe('true');
    // Remote probes run in the background: reload until the simulators answered one.
    for (let i = 0; i < 50 && (await page.locator('#health-remotes tr[data-remote] .ok').count()) === 0; i++) {
      await page.waitForTimeout(200);
      await page.reload();
    }
    const remote = page.locator('#health-remotes tr[data-remote]').first();
    expect(await remote.locator('td').nth(2).textContent()).toBe('Reachable');
    expect(await remote.locator('td').nth(3).textContent()).toMatch(/^\d+$/);
    expect(await page.textContent('#health-kafka')).toContain('No Kafka source');
    expect(await page.textContent('#health-loop')).toMatch(/p99 since last scrape \(ms\) \d+\.\d · max since start \(ms\) \d+\.\d/);
    expect(await page.locator('#health-inactive').count()).toBe(1);
    await shot('health-panel');
  });

  it('after every sample (mixed load) the dashboard shows the numbers /metrics shows', async () => {
    await page.goto(`${t.httpUrl}/console/dashboard`);
    const files = sampleFiles();
    const c = await MllpClient.connect('127.0.0.1', t.port);
    for (const f of files) await c.send(sample(f));
    c.close();
    await page.waitForFunction((n) => document.querySelector('[data-k=received]')?.textContent === String(n), files.length);
    await page.waitForFunction(() => document.querySelector('[data-k=pending]')?.textContent === '0');
    // Settled: two poll rounds (1 s each) show the same cards.
    let cards = '';
    for (;;) {
      await page.waitForTimeout(1200);
      const now = (await page.textContent('#counts'))!;
      if (now === cards) break;
      cards = now;
    }
    const m = parseMetrics(await page.evaluate(async () => (await fetch('/metrics')).text()));
    expect(await num('[data-k=received]')).toBe(metricValue(m, 'hisbridge_messages_received_total'));
    expect(await num('[data-k=delivered]')).toBe(metricValue(m, 'hisbridge_deliveries_total', { outcome: 'done' }) + metricValue(m, 'hisbridge_deliveries_total', { outcome: 'skipped' })
      + metricValue(m, 'hisbridge_route_matches_total', { outcome: 'ok' }));
    expect(await num('[data-k=retries]')).toBe(metricValue(m, 'hisbridge_deliveries_total', { outcome: 'retry' }));
    expect(await num('[data-k=dead]')).toBe(metricValue(m, 'hisbridge_dead_letters_current'));
    expect(await num('[data-k=deadLettered]')).toBe(metricValue(m, 'hisbridge_dead_letters_total'));
    for (const route of ['gd-ehr-authorize', 'gd-ehr-viewer', 'recognition-patient', 'recognition-lab']) {
      expect(await num(`[data-k="routes.${route}.matched"]`), route).toBe(metricValue(m, 'hisbridge_route_matches_total', { route }));
      expect(await num(`[data-k="routes.${route}.deadNow"]`), route).toBe(metricValue(m, 'hisbridge_dead_letters_current', { route }));
    }
    // The on-complete viewer route shows what it delivered before the ACK, not 0.
    expect(await num('[data-k="routes.gd-ehr-viewer.delivered"]')).toBeGreaterThan(0);
    await shot('dashboard-after-samples');
  }, 60_000);

  it('pause holds a route\'s messages (stored and ACKed) until resume delivers them', async () => {
    const route = 'recognition-patient';
    await page.goto(`${t.httpUrl}/console/dashboard?lang=en`);
    const row = page.locator(`#routes tr[data-route="${route}"]`);
    const delivered = `[data-k="routes.${route}.delivered"]`;
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.textContent) > 0, delivered);
    const before = await num(delivered);
    await Promise.all([page.waitForURL('**/console/dashboard'), row.locator('button.route-pause').click()]);
    await page.waitForSelector(`#routes tr[data-route="${route}"] [data-state="paused"]`);
    const c = await MllpClient.connect('127.0.0.1', t.port);
    const acks: string[] = [];
    for (const id of ['BROWSERPAUSE1', 'BROWSERPAUSE2', 'BROWSERPAUSE3']) acks.push((await c.send(withControlId('06-adt-a28-add-person-no-msh18.hl7', id))).toString('latin1').split('\r')[1]!.split('|')[1]!);
    c.close();
    expect(acks).toEqual(['AA', 'AA', 'AA']);
    await page.waitForFunction(() => Number(document.querySelector('[data-k=pending]')?.textContent) >= 3);
    await page.waitForTimeout(1500);
    expect(await num(delivered)).toBe(before);
    await shot('route-paused');
    const row2 = page.locator(`#routes tr[data-route="${route}"]`);
    await Promise.all([page.waitForURL('**/console/dashboard'), row2.locator('button.route-resume').click()]);
    await page.waitForSelector(`#routes tr[data-route="${route}"] [data-state="active"]`);
    await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel as string)?.textContent) === (n as number) + 3, [delivered, before] as const);
    const audit = await until(() => t.engine.ops.queries.auditPage({ plugin: 'console' }).filter((r) => r.route === route), (r) => r.length >= 2);
    expect(audit.map((r) => r.operation).sort()).toEqual(['route-pause', 'route-resume']);
    await shot('route-resumed');
  }, 60_000);

  it('content search finds a message by PID-5.1 and opens it, identifiers masked', async () => {
    await page.goto(`${t.httpUrl}/console/search?lang=en`);
    await page.fill('#content-search input[name=path]', 'PID-5.1');
    await page.fill('#content-search input[name=value]', '欧阳');
    await Promise.all([page.waitForURL('**/console/search?**'), page.click('#content-search button[type=submit]')]);
    const rows = page.locator('#search-results tr[data-message]');
    expect(await rows.count()).toBe(1);
    const text = (await page.textContent('#search-results'))!;
    expect(text).toContain('HIS202503120003');
    for (const v of [...samplePhi().idNumbers, ...samplePhi().names]) expect(text).not.toContain(v);
    await shot('content-search');
    await Promise.all([page.waitForURL(/\/console\/messages\/\d+$/), rows.first().locator('a').first().click()]);
    expect(await page.textContent('#control-id')).toBe('HIS202503120003');
  });
});
