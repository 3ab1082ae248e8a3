/**
 * The web console in a real browser: Debian's Chromium driven by
 * playwright-core against a real engine (MLLP, HTTP and simulators on random
 * ports). Screenshots of the main pages go to test-artifacts/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeHl7, parseHl7 } from '../../core/hl7/index.js';
import { MllpClient } from '../../core/mllp/client.js';
import type { TestEngine } from '../helpers/engine.js';
import { CONSOLE_PASSWORD, CONSOLE_USER, sample, sampleFiles, startOpsEngine, until, withControlId } from '../ops/fixtures.js';

/** The page's DOM, as the page.waitForFunction callbacks (run in the browser) use it; the project's lib has no DOM types. */
declare const document: { querySelector(selector: string): { textContent: string | null } | null; getElementById(id: string): { textContent: string | null } | null };

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve('test-artifacts');

// Never a quiet skip: without Chromium the suite fails here, saying what to install (npm test's pretest step does it when run as root).
const MISSING_CHROMIUM = existsSync(CHROMIUM)
  ? undefined
  : `${CHROMIUM} not found: the browser test needs Debian's Chromium. Install it with: sudo apt-get update && sudo apt-get install -y chromium fonts-noto-cjk`;

describe('Chromium for the browser test', () => {
  it(`is installed at ${CHROMIUM}`, () => {
    if (MISSING_CHROMIUM) throw new Error(MISSING_CHROMIUM);
    expect(existsSync(CHROMIUM)).toBe(true);
  });
});

describe.runIf(!MISSING_CHROMIUM)('web console in Chromium', () => {
  let t: TestEngine;
  let ctx: BrowserContext;
  let page: Page;
  let profile: string;
  const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `console-${name}.png`), fullPage: true });

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
    page.setDefaultTimeout(10_000);
  }, 30_000);

  afterAll(async () => {
    await ctx?.close();
    await t?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('sends a visitor to the login page, refuses a wrong password and an action without a session', async () => {
    await page.goto(`${t.httpUrl}/console`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    const status = await page.evaluate(async () => (await fetch('/console/dead/replay', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"all":"1"}' })).status);
    expect(status).toBe(401);
    await page.fill('input[name=user]', CONSOLE_USER);
    await page.fill('input[name=password]', 'not the password');
    await page.click('button[type=submit]');
    await page.waitForSelector('#flash:not([hidden])');
    expect(await page.textContent('#flash')).toContain('wrong user name or password');
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await shot('login-refused');
  });

  it('logs in and sees the dashboard counts change after samples arrive over MLLP', async () => {
    await page.fill('input[name=user]', CONSOLE_USER);
    await page.fill('input[name=password]', CONSOLE_PASSWORD);
    await Promise.all([page.waitForURL('**/console/dashboard'), page.click('button[type=submit]')]);
    expect(await page.textContent('[data-k=received]')).toBe('0');
    const c = await MllpClient.connect('127.0.0.1', t.port);
    const files = sampleFiles().slice(0, 8);
    for (const f of files) await c.send(sample(f));
    c.close();
    // The poll script updates the cards without a reload.
    await page.waitForFunction((n) => document.querySelector('[data-k=received]')?.textContent === String(n), files.length);
    await page.waitForFunction(() => Number(document.querySelector('[data-k=delivered]')?.textContent) > 0);
    await shot('dashboard');
  });

  it('finds a message by control id and shows it with PHI masked until revealed', async () => {
    await page.goto(`${t.httpUrl}/console/messages`);
    await page.fill('input[name=controlId]', 'HIS202503120001');
    await Promise.all([page.waitForURL('**/console/messages?**'), page.click('form.search button[type=submit]')]);
    const links = page.locator('#messages a', { hasText: 'HIS202503120001' });
    expect(await links.count()).toBe(1);
    await shot('messages-search');
    await Promise.all([page.waitForURL(/\/console\/messages\/\d+$/), links.first().click()]);
    const msg = parseHl7(decodeHl7(sample('01-adt-a04-registration-consent.hl7'), 'gb18030').text);
    const idNumber = msg.get('PID-3[5=NI].1');
    const tree = (await page.textContent('#hl7'))!;
    expect(tree).toContain('PID-3');
    expect(tree).not.toContain(idNumber);
    expect(tree).not.toContain(msg.get('PID-5.1'));
    expect(tree).toContain(`${idNumber.slice(0, 6)}********${idNumber.slice(-4)}`);
    await shot('message-masked');
    await page.click('#reveal');
    await page.waitForFunction((id) => document.getElementById('hl7')?.textContent?.includes(id), idNumber);
    const audit = await until(() => t.engine.ops.queries.auditPage({ plugin: 'console', operation: 'reveal' }), (r) => r.length === 1);
    expect(audit[0]!.staffNo).toBe(CONSOLE_USER);
  });

  it('replays a dead letter and watches it succeed', async () => {
    const sim = t.engine.simulators.gdEhr!.url;
    await fetch(`${sim}/__sim/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ returnCode0: true, count: 1 }) });
    const c = await MllpClient.connect('127.0.0.1', t.port);
    await c.send(withControlId('01-adt-a04-registration-consent.hl7', 'BROWSERDEAD1'));
    c.close();
    const dead = await until(() => t.engine.store.listDead(), (d) => d.some((x) => x.controlId === 'BROWSERDEAD1'));
    const d = dead.find((x) => x.controlId === 'BROWSERDEAD1')!;
    await page.goto(`${t.httpUrl}/console/dead`);
    const row = page.locator(`tr[data-delivery="${d.id}"]`);
    expect(await row.textContent()).toContain('GDEHR_E_BUSINESS');
    await shot('dead-letters');
    await Promise.all([page.waitForURL(`**/console/messages/${d.messageId}`), row.locator('button').click()]);
    // The fault is used up: the replayed delivery goes through; reload until its row shows it done.
    const stateCell = () => page.locator('tr', { hasText: `gd-ehr-authorize#${d.step}` }).locator('td').nth(3);
    for (let i = 0; i < 50 && (await stateCell().textContent()) !== 'done'; i++) {
      await page.waitForTimeout(200);
      await page.reload();
    }
    expect(await stateCell().textContent()).toBe('done');
    expect(await stateCell().getAttribute('class')).toBe('ok');
    await shot('message-replayed');
    await page.goto(`${t.httpUrl}/console/dead`);
    expect(await page.locator(`tr[data-delivery="${d.id}"]`).count()).toBe(0);
  });

  it('shows the audit trail and the per-day call chart', async () => {
    await page.goto(`${t.httpUrl}/console/audit`);
    const audit = (await page.textContent('#audit'))!;
    expect(audit).toContain('dlq-replay');
    expect(audit).toContain('reveal');
    await shot('audit');
    await page.goto(`${t.httpUrl}/console/stats?by=operation`);
    expect(await page.locator('svg.chart rect.bar-ok').count()).toBeGreaterThan(0);
    expect(await page.textContent('#stats')).toContain('gd-ehr-authorize/authorize');
    await shot('stats');
  });
});
