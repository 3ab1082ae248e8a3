/**
 * `hisbridge alerts test [--config F]` as a CLI process against local
 * robots: OK per target that accepted the message, FAIL (with the robot's
 * errcode, never the URL or token) per target that did not, exit 1 then.
 * Needs dist/ (npm run build).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { tempFiles } from '../helpers/routes.js';
import { dingtalkRobot, webhookReceiver, wecomRobot, type Robot } from './robots.js';

describe('hisbridge alerts test', () => {
  let wecom: Robot;
  let ding: Robot;
  let hook: Robot;
  beforeAll(async () => {
    [wecom, ding, hook] = await Promise.all([wecomRobot('wk-cli-key'), dingtalkRobot('dt-cli-token', { secret: 'SECcli+secret/=' }), webhookReceiver()]);
  });
  afterAll(async () => {
    await Promise.all([wecom.close(), ding.close(), hook.close()]);
  });

  function site(): string {
    const dir = tempFiles({
      'hisbridge.yaml': `alerts:
  targets:
    - { name: oncall, type: wecom, url: "\${env:T_WECOM}" }
    - { name: ops, type: dingtalk, url: "\${env:T_DING}", secret: "\${env:T_DING_SECRET}" }
    - { name: noc, type: webhook, url: "${hook.url}/hook?k=1" }
`,
    });
    return path.join(dir, 'hisbridge.yaml');
  }

  it('sends a test message to every target and prints OK for each; exit 0', async () => {
    const r = await cli(['alerts', 'test', '--config', site()], {
      T_WECOM: `${wecom.url}/cgi-bin/webhook/send?key=wk-cli-key`, T_DING: `${ding.url}/robot/send?access_token=dt-cli-token`, T_DING_SECRET: 'SECcli+secret/=',
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^OK {4}oncall \(wecom\) \d+ ms$/);
    expect(lines[1]).toMatch(/^OK {4}ops \(dingtalk\) \d+ ms$/);
    expect(lines[2]).toMatch(/^OK {4}noc \(webhook\) \d+ ms$/);
    expect(wecom.accepted().at(-1)!.body.markdown.content).toContain('### hisbridge TEST 测试: alerts-test');
    expect(ding.accepted().at(-1)!.body.markdown.title).toBe('hisbridge TEST 测试: alerts-test');
    expect(hook.accepted().at(-1)!.body).toMatchObject({ source: 'hisbridge', status: 'test', rule: 'alerts-test' });
  }, 60_000);

  it('a target that refuses (wrong DingTalk secret) prints FAIL with the errcode, and the exit code is 1', async () => {
    const r = await cli(['alerts', 'test', '--config', site()], {
      T_WECOM: `${wecom.url}/cgi-bin/webhook/send?key=wk-cli-key`, T_DING: `${ding.url}/robot/send?access_token=dt-cli-token`, T_DING_SECRET: 'SECnot-the-robots',
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^OK {4}oncall \(wecom\)/m);
    expect(r.stdout).toContain('FAIL  ops (dingtalk) after 3 attempt(s): ALERTS_E_REFUSED: alert target ops refused the message: errcode 310000 sign not match');
    for (const s of ['dt-cli-token', 'wk-cli-key', 'SECnot-the-robots']) expect(r.stdout + r.stderr).not.toContain(s);
  }, 60_000);

  it('an unknown target in a rule is refused with file:line:col; no targets is exit 1; a bad subcommand is exit 2', async () => {
    const dir = tempFiles({
      'bad.yaml': 'alerts:\n  targets: [{ name: t, type: webhook, url: "http://127.0.0.1:1/" }]\n  rules:\n    - { name: r, when: listener-down, to: [nobody] }\n',
      'empty.yaml': 'log: { level: info }\n',
    });
    const bad = await cli(['alerts', 'test', '--config', path.join(dir, 'bad.yaml')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe(`${path.join(dir, 'bad.yaml')}:4:44: alerts.rules[0].to: no target named "nobody" (known: t)`);
    const empty = await cli(['alerts', 'test', '--config', path.join(dir, 'empty.yaml')]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('no targets: add alerts.targets to the site config');
    const wrong = await cli(['alerts', 'send']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('usage: hisbridge alerts test [--config F]');
  }, 60_000);
});
