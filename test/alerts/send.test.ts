/**
 * Alert payloads against local servers that behave like the documented
 * WeCom and DingTalk group robots (test/alerts/robots.ts): payload shapes,
 * DingTalk's signature, errcode handling, retries and the per-target rate
 * limit.
 */
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertSender, buildRequest, dingtalkSign, markdownText, type AlertMessage } from '../../core/alerts/send.js';
import type { AlertTarget } from '../../core/alerts/config.js';
import { dingtalkRobot, webhookReceiver, wecomRobot, type Robot } from './robots.js';

const msg = (over: Partial<AlertMessage> = {}): AlertMessage => ({
  status: 'firing', rule: 'dead-letters', kind: 'dead-letters', summary: '3 dead letter(s) (alert above 0)',
  lines: ['route ward: 3 dead (HTTP_E_STATUS)'], since: Date.UTC(2026, 11, 1, 1, 2, 3), at: Date.UTC(2026, 11, 1, 1, 5, 0), host: 'his-gw-1', value: 3, above: 0, ...over,
});

const open: { robots: Robot[]; senders: AlertSender[] } = { robots: [], senders: [] };
afterEach(async () => {
  for (const s of open.senders.splice(0)) s.close();
  await Promise.all(open.robots.splice(0).map((r) => r.close()));
});
async function robot(p: Promise<Robot>): Promise<Robot> {
  const r = await p;
  open.robots.push(r);
  return r;
}
function sender(targets: AlertTarget[], opts: ConstructorParameters<typeof AlertSender>[1] = {}): AlertSender {
  const s = new AlertSender(targets, { retryDelaysMs: [20, 40], ...opts });
  open.senders.push(s);
  return s;
}

describe('robot payloads', () => {
  it('WeCom gets {"msgtype":"markdown","markdown":{"content"}} with the rule, summary, details and UTC+8 times', async () => {
    const wecom = await robot(wecomRobot('wk-123'));
    const s = sender([{ name: 'oncall', type: 'wecom', url: `${wecom.url}/cgi-bin/webhook/send?key=wk-123` }]);
    const r = await s.send('oncall', msg());
    expect(r).toMatchObject({ ok: true, attempts: 1 });
    expect(wecom.accepted()).toHaveLength(1);
    const body = wecom.accepted()[0]!.body;
    expect(Object.keys(body).sort()).toEqual(['markdown', 'msgtype']);
    expect(body.msgtype).toBe('markdown');
    const content = body.markdown.content as string;
    expect(content).toContain('### hisbridge FIRING 告警: dead-letters');
    expect(content).toContain('**3 dead letter(s) (alert above 0)**');
    expect(content).toContain('- route ward: 3 dead (HTTP_E_STATUS)');
    expect(content).toContain('since 2026-12-01 09:02:03 (UTC+8)');
    expect(content).toContain('on his-gw-1');
  });

  it('DingTalk with a secret gets timestamp and sign query parameters the robot verifies, and {"msgtype":"markdown","markdown":{"title","text"}}', async () => {
    const secret = 'SECb7c0a1+/=test';
    const ding = await robot(dingtalkRobot('dt-tok', { secret, keyword: 'hisbridge' }));
    const s = sender([{ name: 'ops', type: 'dingtalk', url: `${ding.url}/robot/send?access_token=dt-tok`, secret }]);
    for (let i = 0; i < 5; i++) expect(await s.send('ops', msg({ status: i % 2 ? 'resolved' : 'firing' }))).toMatchObject({ ok: true, attempts: 1 });
    expect(ding.accepted()).toHaveLength(5);
    const hit = ding.accepted()[0]!;
    expect(hit.body.msgtype).toBe('markdown');
    expect(hit.body.markdown.title).toBe('hisbridge FIRING 告警: dead-letters');
    expect(hit.body.markdown.text).toContain('3 dead letter(s)');
    expect(Number(hit.query.timestamp)).toBeGreaterThan(Date.now() - 60_000);
    expect(ding.accepted()[1]!.body.markdown.title).toBe('hisbridge RESOLVED 恢复: dead-letters');
  });

  it('a DingTalk sign computed with another secret is refused by the robot (errcode 310000) and reported as ALERTS_E_REFUSED', async () => {
    const ding = await robot(dingtalkRobot('dt-tok', { secret: 'SEC-right' }));
    const s = sender([{ name: 'ops', type: 'dingtalk', url: `${ding.url}/robot/send?access_token=dt-tok`, secret: 'SEC-wrong' }]);
    const r = await s.send('ops', msg());
    expect(r.ok).toBe(false);
    expect(r.attempts).toBe(3);
    expect(r.error?.code).toBe('ALERTS_E_REFUSED');
    expect(r.error?.message).toBe('alert target ops refused the message: errcode 310000 sign not match');
    expect(ding.hits.every((h) => h.errcode === 310000)).toBe(true);
  });

  it('the sign is HmacSHA256 in base64, URL-encoded (+, / and = escaped)', () => {
    const ts = 1700000000000;
    const raw = createHmac('sha256', 'SECabc').update(`${ts}\nSECabc`).digest('base64');
    expect(decodeURIComponent(dingtalkSign('SECabc', ts))).toBe(raw);
    expect(dingtalkSign('SECabc', ts)).not.toMatch(/[+/=]/);
    const { url } = buildRequest({ name: 'd', type: 'dingtalk', url: 'https://oapi.dingtalk.com/robot/send?access_token=x', secret: 'SECabc' }, msg(), ts);
    expect(url).toBe(`https://oapi.dingtalk.com/robot/send?access_token=x&timestamp=${ts}&sign=${dingtalkSign('SECabc', ts)}`);
  });

  it('the generic webhook gets the documented JSON object', async () => {
    const hook = await robot(webhookReceiver());
    const s = sender([{ name: 'noc', type: 'webhook', url: `${hook.url}/hook?k=1` }]);
    expect((await s.send('noc', msg())).ok).toBe(true);
    const b = hook.accepted()[0]!.body;
    expect(b).toMatchObject({
      source: 'hisbridge', version: 1, status: 'firing', rule: 'dead-letters', kind: 'dead-letters', summary: '3 dead letter(s) (alert above 0)',
      details: ['route ward: 3 dead (HTTP_E_STATUS)'], value: 3, above: 0, since: '2026-12-01T01:02:03.000Z', at: '2026-12-01T01:05:00.000Z', host: 'his-gw-1',
    });
    expect(typeof b.text).toBe('string');
  });

  it('markdown stays under WeCom\'s 4096-byte cap and lists at most 10 details', () => {
    const lines = Array.from({ length: 500 }, (_, i) => `route route-${i}-${'长'.repeat(30)}: 1 dead (X_E_Y)`);
    const text = markdownText(msg({ lines }));
    expect(Buffer.byteLength(text, 'utf8')).toBeLessThanOrEqual(4096);
    expect(text).toContain('... and 490 more');
  });

  it('ID-number and phone shaped values in a text are masked', () => {
    const text = markdownText(msg({ lines: ['route 440106199001011234 13800138000'] }));
    expect(text).not.toContain('440106199001011234');
    expect(text).not.toContain('13800138000');
  });
});

describe('failures, retries and the rate limit', () => {
  it('a robot answering errcode != 0 is retried with backoff and succeeds on the third attempt', async () => {
    const wecom = await robot(wecomRobot('k'));
    wecom.refuseNext = 2;
    const s = sender([{ name: 'oncall', type: 'wecom', url: `${wecom.url}/cgi-bin/webhook/send?key=k` }]);
    const r = await s.send('oncall', msg());
    expect(r).toMatchObject({ ok: true, attempts: 3 });
    expect(wecom.hits.map((h) => h.errcode)).toEqual([45009, 45009, 0]);
  });

  it('HTTP 500 and a refused connection fail with ALERTS_E_SEND naming the target, never its URL or key', async () => {
    const wecom = await robot(wecomRobot('secret-key-777'));
    wecom.httpStatus = 500;
    const s = sender([
      { name: 'oncall', type: 'wecom', url: `${wecom.url}/cgi-bin/webhook/send?key=secret-key-777` },
      { name: 'gone', type: 'wecom', url: 'http://127.0.0.1:1/cgi-bin/webhook/send?key=secret-key-777' },
    ]);
    const [a, b] = await Promise.all([s.send('oncall', msg()), s.send('gone', msg())]);
    expect(a.ok).toBe(false);
    expect(a.error?.message).toBe('alert to target oncall failed: HTTP 500');
    expect(b.ok).toBe(false);
    expect(b.error?.code).toBe('ALERTS_E_SEND');
    expect(b.error?.message).toContain('alert to target gone failed: HTTP_E_NETWORK');
    for (const e of [a.error!, b.error!]) expect(`${e.message} ${JSON.stringify(e)}`).not.toContain('secret-key-777');
  });

  it('a target receives at most perMinute messages a minute: the rest wait in its queue; past maxQueue the oldest are dropped', async () => {
    const wecom = await robot(wecomRobot('k'));
    const s = sender([{ name: 'oncall', type: 'wecom', url: `${wecom.url}/cgi-bin/webhook/send?key=k` }], { perMinute: 2, maxQueue: 2 });
    const results = [1, 2, 3, 4, 5, 6].map((i) => s.send('oncall', msg({ rule: `r${i}` })));
    const settled = await Promise.all(results.slice(0, 5));
    // r1 goes out at once; r2..r4 are pushed out of the two-place queue by r5 and r6; r5 takes the second place of the minute.
    expect(settled.map((r) => r.ok)).toEqual([true, false, false, false, true]);
    expect(settled[1]!.dropped).toBe(true);
    expect(settled[1]!.error?.code).toBe('ALERTS_W_RATE_LIMITED');
    expect(wecom.accepted().map((h) => (h.body.markdown.content as string).split('\n')[0])).toEqual(['### hisbridge FIRING 告警: r1', '### hisbridge FIRING 告警: r5']);
    // r6 waits for the next minute; closing resolves it as failed instead of leaving it hanging.
    s.close();
    expect((await results[5]!).ok).toBe(false);
    expect(wecom.accepted()).toHaveLength(2);
  });
});
