/**
 * The web console in a real browser: Debian's Chromium driven by
 * playwright-core against a real engine (MLLP, HTTP and simulators on random
 * ports). Screenshots of the main pages go to test-artifacts/; the ones in
 * the README (Chinese, after every sample was sent) go to docs/img/.
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
/** Screenshots shown in the README's console section. */
const DOC_IMG = path.resolve('docs/img');
/** Horizontal overflow of the page itself (0 when nothing scrolls sideways but the tables' own boxes). */
const PAGE_OVERFLOW = 'document.documentElement.scrollWidth - document.documentElement.clientWidth';

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
    mkdirSync(DOC_IMG, { recursive: true });
    t = await startOpsEngine();
    profile = mkdtempSync(path.join(tmpdir(), 'hisbridge-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      // The browser asks for English: the console still opens in Chinese.
      locale: 'en-US',
      extraHTTPHeaders: { 'accept-language': 'en-US,en;q=0.9' },
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
    expect(await page.textContent('#flash')).toContain('用户名或密码错误');
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
    for (let i = 0; i < 50 && (await stateCell().getAttribute('data-state')) !== 'done'; i++) {
      await page.waitForTimeout(200);
      await page.reload();
    }
    expect(await stateCell().getAttribute('data-state')).toBe('done');
    expect(await stateCell().textContent()).toBe('已完成');
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

  it('opens in zh-CN whatever the browser asks, switches to en from the header, and remembers the choice for the user', async () => {
    await page.goto(`${t.httpUrl}/console/dashboard`);
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    expect(await page.textContent('nav')).toContain('仪表盘');
    expect(await page.textContent('nav')).toContain('死信');
    expect(await page.textContent('h1')).toBe('仪表盘');
    expect(await page.textContent('#lang-switch')).toBe('English');
    await Promise.all([page.waitForURL('**/console/dashboard?lang=en'), page.click('#lang-switch')]);
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await page.textContent('h1')).toBe('Dashboard');
    expect(await page.textContent('nav')).toContain('Dead letters');
    // Remembered: other pages without ?lang stay in English.
    await page.goto(`${t.httpUrl}/console/messages`);
    expect(await page.textContent('h1')).toBe('Messages');
    expect(await page.textContent('form.search')).toContain('Control id (MSH-10)');
    // Remembered for the user, not the browser: a fresh login without any cookie gets English too.
    const login = await fetch(`${t.httpUrl}/console/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: CONSOLE_USER, password: CONSOLE_PASSWORD }) });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const other = await (await fetch(`${t.httpUrl}/console/dead`, { headers: { cookie, 'accept-language': 'zh-CN' } })).text();
    expect(other).toContain('<html lang="en">');
    expect(other).toContain('<h1>Dead letters</h1>');
    // Errors follow the language too.
    const refused = await page.evaluate(async () => (await fetch('/console/dead/replay', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json());
    expect(refused).toMatchObject({ code: 'OPS_E_CSRF', message: 'missing or wrong CSRF token' });
    await shot('dashboard-en');
    await page.goto(`${t.httpUrl}/console/messages?lang=zh-CN`);
    expect(await page.textContent('h1')).toBe('消息');
    expect(await page.textContent('form.search')).toContain('控制号（MSH-10）');
  });

  it('sends every sample, then shows the HL7 tree with field names, codes in clear and identifiers masked', async () => {
    const c = await MllpClient.connect('127.0.0.1', t.port);
    for (const f of sampleFiles()) await c.send(withControlId(f, `LOAD-${f.slice(0, 2)}`));
    c.close();
    await until(() => t.engine.store.searchMessages({ controlId: 'LOAD-01', limit: 1 }), (r) => r.length === 1);
    const m = t.engine.store.searchMessages({ controlId: 'LOAD-01', limit: 1 })[0]!;
    await page.goto(`${t.httpUrl}/console/messages/${m.id}`);
    const tree = (await page.textContent('#hl7'))!;
    expect(tree).toContain('PID-5 Patient Name (XPN)');
    expect(tree).toContain('PID-3 Patient Identifier List (CX)');
    expect(tree).toContain('PID-16 Marital Status (CE)');
    expect(tree).toContain('ZCN Consent to share the health record');
    expect(await page.isVisible('text=PID-3[1].4 Assigning Authority')).toBe(false);
    // Components are named when the field is expanded.
    await page.locator('summary', { hasText: 'PID-3 Patient Identifier List' }).click();
    expect(await page.isVisible('text=PID-3[1].4 Assigning Authority (HD)')).toBe(true);
    await page.locator('summary', { hasText: 'PID-11 Patient Address' }).click();
    await page.locator('summary', { hasText: 'PID-5 Patient Name' }).click();
    const msg = parseHl7(decodeHl7(sample('01-adt-a04-registration-consent.hl7'), 'gb18030').text);
    const idNumber = msg.get('PID-3[5=NI].1');
    const pid3 = (await page.locator('summary', { hasText: 'PID-3 Patient Identifier List' }).textContent())!;
    // Codes in clear: assigning authority, identifier type, country; the ID numbers masked.
    expect(pid3).toContain('^^^HOSP^PI~');
    expect(pid3).toContain('^^^CHN^NI');
    expect(pid3).toContain(`${idNumber.slice(0, 6)}********${idNumber.slice(-4)}`);
    expect(pid3).not.toContain(idNumber);
    expect(pid3).not.toContain(msg.get('PID-3[5=PI].1'));
    const pid16 = (await page.locator('li', { hasText: 'PID-16 Marital Status' }).last().textContent())!;
    expect(pid16).toContain(msg.get('PID-16'));
    expect(tree).not.toContain(msg.get('PID-5.2'));
    expect(tree).not.toContain(msg.get('PID-13.1'));
    await page.screenshot({ path: path.join(DOC_IMG, 'console-message-zh.png'), fullPage: true });
    await page.goto(`${t.httpUrl}/console/dashboard`);
    await page.waitForFunction((n) => Number(document.querySelector('[data-k=received]')?.textContent) >= n, sampleFiles().length);
    await page.screenshot({ path: path.join(DOC_IMG, 'console-dashboard-zh.png'), fullPage: true });
    // The health panel on its own, in Chinese.
    expect(await page.textContent('#health-panel h2')).toBe('运行状况');
    await page.locator('#health-panel').screenshot({ path: path.join(DOC_IMG, 'console-health-zh.png') });
    await page.goto(`${t.httpUrl}/console/messages`);
    await page.screenshot({ path: path.join(DOC_IMG, 'console-messages-zh.png') });
  });

  it('fits a 390 px phone and a 768 px tablet: no horizontal page scroll, tables scroll in their box, navigation collapsed', async () => {
    const m = t.engine.store.searchMessages({ controlId: 'LOAD-01', limit: 1 })[0]!;
    const pages = ['dashboard', 'messages', `messages/${m.id}`, 'dead', 'audit', 'stats', 'search?path=PID-5.1&value=%E6%AC%A7%E9%98%B3&since=24h'];
    try {
      for (const width of [390, 768]) {
        await page.setViewportSize({ width, height: 844 });
        for (const p of pages) {
          await page.goto(`${t.httpUrl}/console/${p}`);
          expect(await page.evaluate(PAGE_OVERFLOW), `${p} at ${width} px`).toBe(0);
        }
      }
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${t.httpUrl}/console/messages`);
      // The navigation is behind the menu button; the message table scrolls in its own box.
      expect(await page.isVisible('#nav')).toBe(false);
      expect(await page.isVisible('#menu')).toBe(true);
      expect(await page.evaluate('(function(){var b=document.querySelector("#messages").parentElement;return b.className==="scroll"&&b.scrollWidth>b.clientWidth;})()')).toBe(true);
      await page.screenshot({ path: path.join(DOC_IMG, 'console-phone-zh.png') });
      await page.click('#menu');
      expect(await page.isVisible('#nav')).toBe(true);
      expect(await page.getAttribute('#menu', 'aria-expanded')).toBe('true');
      expect(await page.evaluate(PAGE_OVERFLOW)).toBe(0);
      await Promise.all([page.waitForURL('**/console/dead'), page.click('#nav a[href="/console/dead"]')]);
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });
});
