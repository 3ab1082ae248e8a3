/**
 * The `alerts:` section of hisbridge.yaml: the issue's example loads with
 * its defaults; every mistake is refused at its file:line:column.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSiteConfig } from '../../core/config/site.js';
import { LoadError } from '../../core/config/yaml-source.js';
import { parseHours, shanghaiMinutes, windowStart } from '../../core/alerts/config.js';
import { builtinRegistry } from '../../plugins/index.js';
import { tempFiles } from '../helpers/routes.js';

const ISSUE_EXAMPLE = `alerts:
  targets:
    - { name: oncall, type: wecom, url: "\${env:WECOM_HOOK}" }
    - { name: ops, type: dingtalk, url: "\${env:DING_HOOK}", secret: "\${env:DING_SECRET}" }
    - { name: noc, type: webhook, url: "https://noc.example/hook" }   # generic JSON
  rules:
    - { name: dead-letters, when: dead-letters, above: 0, every: 30m, to: [oncall, ops] }
    - { name: remote-down, when: remote-failing, for: 5m, to: [oncall] }
    - { name: listener-down, when: listener-down, to: [oncall] }
    - { name: store-failing, when: store-failing, to: [oncall] }
    - { name: kafka-lag, when: kafka-lag, above: 10000, for: 10m, to: [ops] }
    - { name: his-quiet, when: sender-silent, sender: HIS, for: 30m, hours: "08:00-18:00", to: [ops] }
`;
const ENV = { WECOM_HOOK: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wk', DING_HOOK: 'https://oapi.dingtalk.com/robot/send?access_token=dt', DING_SECRET: 'SECxyz' };

function load(yaml: string, env: NodeJS.ProcessEnv = ENV) {
  const dir = tempFiles({ 'hisbridge.yaml': yaml });
  const reg = builtinRegistry();
  return loadSiteConfig(path.join(dir, 'hisbridge.yaml'), reg.extensions, {}, { ...process.env, ...env }, reg.sources);
}

function issues(yaml: string, env: NodeJS.ProcessEnv = ENV): string[] {
  try {
    load(yaml, env);
  } catch (e) {
    if (e instanceof LoadError) return e.issues.map((i) => i.toString().replace(/^.*hisbridge\.yaml:/, ''));
    throw e;
  }
  return [];
}

describe('alerts config', () => {
  it('the issue\'s example loads, with ${env:} refs resolved and the defaults applied', () => {
    const c = load(ISSUE_EXAMPLE).alerts!;
    expect(c.intervalMs).toBe(10_000);
    expect(c.targets).toEqual([
      { name: 'oncall', type: 'wecom', url: ENV.WECOM_HOOK },
      { name: 'ops', type: 'dingtalk', url: ENV.DING_HOOK, secret: 'SECxyz' },
      { name: 'noc', type: 'webhook', url: 'https://noc.example/hook' },
    ]);
    expect(c.rules[0]).toEqual({ name: 'dead-letters', when: 'dead-letters', above: 0, forMs: 0, everyMs: 1_800_000, to: ['oncall', 'ops'] });
    expect(c.rules[1]).toMatchObject({ when: 'remote-failing', forMs: 300_000, everyMs: 3_600_000, above: 0 });
    expect(c.rules[4]).toMatchObject({ when: 'kafka-lag', above: 10_000, forMs: 600_000 });
    expect(c.rules[5]).toMatchObject({ when: 'sender-silent', sender: 'HIS', forMs: 1_800_000, hours: { start: 480, end: 1080, text: '08:00-18:00' } });
  });

  it('no alerts: section: no alerts config', () => {
    expect(load('log: { level: info }\n').alerts).toBeUndefined();
  });

  it('an unknown target in `to` is refused at the name, listing the known targets', () => {
    expect(issues(`alerts:
  targets:
    - { name: oncall, type: wecom, url: "https://x.example/a" }
  rules:
    - { name: dl, when: dead-letters, to: [oncall, pager] }
`)).toEqual(['5:52: alerts.rules[0].to: no target named "pager" (known: oncall)']);
  });

  it('a bad kind, a bad duration and a bad target type are refused at their values', () => {
    const got = issues(`alerts:
  targets:
    - { name: oncall, type: slack, url: "https://x.example/a" }
  rules:
    - { name: dl, when: dead-letter, to: [oncall] }
    - { name: dl2, when: dead-letters, every: 30 minutes, to: [oncall] }
`);
    expect(got).toContain('3:29: alerts.targets.0.type must be one of: wecom, dingtalk, webhook');
    expect(got).toContain('5:25: alerts.rules.0.when must be one of: dead-letters, remote-failing, listener-down, store-failing, kafka-lag, sender-silent');
    expect(got.some((i) => i.startsWith('6:47: alerts.rules.1.every does not match'))).toBe(true);
  });

  it('a DingTalk secret written inline is refused; a secret on a WeCom target is refused', () => {
    expect(issues(`alerts:
  targets:
    - { name: ops, type: dingtalk, url: "https://x.example/a", secret: "SECinline" }
`)).toEqual(['3:72: secret looks like a secret written inline; use ${env:NAME}']);
    expect(issues(`alerts:
  targets:
    - { name: ops, type: wecom, url: "https://x.example/a", secret: "\${env:DING_SECRET}" }
`)).toEqual(['3:69: alerts.targets[0].secret applies to type dingtalk only']);
  });

  it('a missing ${env:} variable is named at its line, not echoed as an empty URL later', () => {
    const got = issues('alerts:\n  targets:\n    - { name: oncall, type: wecom, url: "${env:NOT_SET_HOOK_XYZ}" }\n', {});
    expect(got[0]).toBe('3:41: environment variable NOT_SET_HOOK_XYZ is not set');
  });

  it('a URL that is not http(s) is refused without echoing it (it may hold a token)', () => {
    const got = issues('alerts:\n  targets:\n    - { name: oncall, type: wecom, url: "ftp://x.example/?key=tok-123" }\n');
    expect(got).toEqual(['3:41: alerts.targets[0].url must be an http:// or https:// URL']);
  });

  it('sender-silent needs sender and for; sender and above only where they apply; hours must be a window', () => {
    const got = issues(`alerts:
  targets: [{ name: t, type: webhook, url: "https://x.example/" }]
  rules:
    - { name: a, when: sender-silent, to: [t] }
    - { name: b, when: listener-down, above: 3, sender: HIS, to: [t] }
    - { name: c, when: sender-silent, sender: HIS, for: 30m, hours: "08:00-08:00", to: [t] }
    - { name: d, when: sender-silent, sender: HIS, for: 30m, hours: "8-18", to: [t] }
    - { name: a, when: store-failing, to: [t] }
`);
    expect(got).toEqual(expect.arrayContaining([
      '7:69: alerts.rules.3.hours does not match ^([01]\\d|2[0-3]):[0-5]\\d-([01]\\d|2[0-3]):[0-5]\\d$',
    ]));
    expect(issues(`alerts:
  targets: [{ name: t, type: webhook, url: "https://x.example/" }]
  rules:
    - { name: a, when: sender-silent, to: [t] }
    - { name: b, when: listener-down, above: 3, sender: HIS, to: [t] }
    - { name: c, when: sender-silent, sender: HIS, for: 30m, hours: "08:00-08:00", to: [t] }
    - { name: a, when: store-failing, to: [t] }
`)).toEqual([
      '4:7: alerts.rules[0]: sender-silent needs sender (the MSH-3 sending application)',
      '4:7: alerts.rules[0]: sender-silent needs for (how long the sender may be quiet)',
      '5:46: alerts.rules[1].above does not apply to listener-down (only to dead-letters, kafka-lag, remote-failing)',
      '5:57: alerts.rules[1].sender applies to sender-silent only',
      '6:69: alerts.rules[2].hours must be a window such as "08:00-18:00" whose start and end differ',
      '7:15: alerts.rules[3].name "a" is already used by another rule',
    ]);
  });
});

describe('hours in Asia/Shanghai time', () => {
  const at = (utc: string) => Date.parse(utc);
  it('08:00-18:00 holds from 00:00 to 10:00 UTC', () => {
    const h = parseHours('08:00-18:00')!;
    expect(shanghaiMinutes(at('2026-12-01T00:00:00Z'))).toBe(480);
    expect(windowStart(h, at('2026-11-30T23:59:59Z'))).toBeUndefined();
    expect(windowStart(h, at('2026-12-01T00:00:00Z'))).toBe(at('2026-12-01T00:00:00Z'));
    expect(windowStart(h, at('2026-12-01T09:59:30Z'))).toBe(at('2026-12-01T00:00:00Z'));
    expect(windowStart(h, at('2026-12-01T10:00:00Z'))).toBeUndefined();
  });
  it('an overnight window (22:00-06:00) crosses midnight', () => {
    const h = parseHours('22:00-06:00')!;
    expect(windowStart(h, at('2026-12-01T14:30:00Z'))).toBe(at('2026-12-01T14:00:00Z'));
    expect(windowStart(h, at('2026-12-01T21:59:00Z'))).toBe(at('2026-12-01T14:00:00Z'));
    expect(windowStart(h, at('2026-12-01T22:00:00Z'))).toBeUndefined();
    expect(windowStart(h, at('2026-12-01T13:59:00Z'))).toBeUndefined();
  });
});
