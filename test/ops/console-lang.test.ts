/**
 * The console's language over real HTTP (issue 18): zh-CN whatever the
 * browser asks, `?lang=` on any page, a choice made on the login page
 * carried into the user's session and kept for the user (not the browser),
 * errors in the chosen language, times in Asia/Shanghai.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestEngine } from '../helpers/engine.js';
import { CONSOLE_PASSWORD, CONSOLE_TOKEN, CONSOLE_USER, startOpsEngine } from './fixtures.js';

describe('console language', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startOpsEngine();
  }, 30_000);
  afterAll(async () => {
    await t?.stop();
  });

  const login = async (cookie?: string, password = CONSOLE_PASSWORD) => fetch(`${t.httpUrl}/console/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
    body: JSON.stringify({ user: CONSOLE_USER, password }),
  });
  const session = (r: Response) => r.headers.get('set-cookie')!.split(';')[0]!;

  it('is zh-CN by default even when the browser asks for English', async () => {
    const page = await (await fetch(`${t.httpUrl}/console/login`, { headers: { 'accept-language': 'en-US,en;q=0.9' } })).text();
    expect(page).toContain('<html lang="zh-CN">');
    expect(page).toContain('<h1>登录</h1>');
    expect(page).toContain('>用户名 <input');
    expect(page).toContain('href="?lang=en"');
    const refused = (await (await login(undefined, 'wrong password!')).json()) as { code: string; message: string };
    expect(refused).toEqual({ code: 'OPS_E_LOGIN', message: '用户名或密码错误' });
  });

  it('takes ?lang=en on the login page, answers errors in English, and makes it the user\'s choice at login', async () => {
    const r = await fetch(`${t.httpUrl}/console/login?lang=en`);
    const langCookie = r.headers.get('set-cookie')!;
    expect(langCookie).toMatch(/^hb_lang=en; HttpOnly; SameSite=Strict; Path=\/console/);
    const page = await r.text();
    expect(page).toContain('<html lang="en">');
    expect(page).toContain('<h1>Log in</h1>');
    const cookie = langCookie.split(';')[0]!;
    const refused = (await (await login(cookie, 'wrong password!')).json()) as { message: string };
    expect(refused.message).toBe('wrong user name or password');
    await login(cookie);
    // A new session, without the language cookie: the user's choice is remembered in the store.
    const s = session(await login());
    const dash = await (await fetch(`${t.httpUrl}/console/dashboard`, { headers: { cookie: s } })).text();
    expect(dash).toContain('<html lang="en">');
    expect(dash).toContain('<h1>Dashboard</h1>');
    // ?lang=zh-CN on any page changes it back, for later requests too.
    const zh = await (await fetch(`${t.httpUrl}/console/stats?by=route&lang=zh-CN`, { headers: { cookie: s } })).text();
    expect(zh).toContain('<h1>接口调用统计</h1>');
    expect(zh).toContain('href="?by=route&amp;lang=en"');
    const later = await (await fetch(`${t.httpUrl}/console/dead`, { headers: { cookie: s } })).text();
    expect(later).toContain('<h1>死信（投递失败队列）</h1>');
    // An action's error follows the user's language.
    const csrf = (await (await fetch(`${t.httpUrl}/console/dead/replay`, { method: 'POST', headers: { cookie: s, 'content-type': 'application/json' }, body: '{}' })).json()) as { message: string };
    expect(csrf.message).toBe('CSRF 令牌缺失或错误');
  });

  it('shows the health panel, route actions, content search and filtered replay in zh-CN, and in English with ?lang=en', async () => {
    const s = session(await login());
    const get = async (path: string) => (await fetch(`${t.httpUrl}${path}`, { headers: { cookie: s } })).text();
    const zh = await get('/console/dashboard?lang=zh-CN');
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(zh)![1]!;
    expect(zh).toContain('<h2>运行状况</h2>');
    expect(zh).toContain('<p id="health-status">引擎状态：<b class="ok">正常</b>');
    expect(zh).toMatch(/<table id="health-store"><tr><th>存储<\/th><td data-ok="true"><span class="ok">正常<\/span>/);
    expect(zh).toContain('<th>事件循环延迟</th>');
    expect(zh).toContain('<h2>外部平台</h2>');
    expect(zh).toContain('<h2>未启用的路由</h2>');
    expect(zh).toMatch(/class="route-pause">暂停<\/button>/);
    expect(zh).toMatch(/class="route-reset">重置统计<\/button>/);
    expect(zh).toContain('data-state="active">启用</td>');
    expect(zh).toContain('>内容检索</a>');
    expect(zh).not.toContain('Reset statistics');
    const searchZh = await get('/console/search?path=PID-5.1&value=nobody');
    expect(searchZh).toContain('<html lang="zh-CN">');
    expect(searchZh).toContain('<h1>按内容检索</h1>');
    expect(searchZh).toContain('>字段路径 <input');
    expect(searchZh).toContain('没有匹配的消息。');
    expect(await get('/console/replay?since=1h')).toContain('条消息符合条件。');
    // An action's error: the code stays, the message is in the user's language.
    const post = (path: string, body: Record<string, unknown> = {}) => fetch(`${t.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', cookie: s, 'x-csrf-token': csrf }, body: JSON.stringify(body) });
    const unknownZh = (await (await post('/console/routes/no-such-route/pause')).json()) as { code: string; message: string };
    expect(unknownZh.code).toBe('OPS_E_ROUTE_UNKNOWN');
    expect(unknownZh.message).toMatch(/^OPS_E_ROUTE_UNKNOWN: 没有这个路由/);

    const en = await get('/console/dashboard?lang=en');
    expect(en).toContain('<h2>Health</h2>');
    expect(en).toContain('<p id="health-status">Engine status: <b class="ok">ok</b>');
    expect(en).toMatch(/class="route-reset">Reset statistics<\/button>/);
    expect(en).toContain('<th>Event-loop delay</th>');
    expect(en).not.toContain('运行状况');
    const searchEn = await get('/console/search?path=PID-5.1&value=nobody');
    expect(searchEn).toContain('<h1>Content search</h1>');
    expect(searchEn).toContain('No message matches.');
    expect(await get('/console/replay?since=1h')).toContain('messages match this filter.');
    const unknownEn = (await (await post('/console/routes/no-such-route/pause')).json()) as { message: string };
    expect(unknownEn.message).toBe('OPS_E_ROUTE_UNKNOWN: no route named no-such-route is loaded');
  });

  it('ignores a language it does not have', async () => {
    const page = await (await fetch(`${t.httpUrl}/console/messages?lang=fr`, { headers: { authorization: `Bearer ${CONSOLE_TOKEN}` } })).text();
    expect(page).toMatch(/<html lang="(zh-CN|en)">/);
    expect(page).not.toContain('lang="fr"');
  });
});
