/**
 * The `alerts:` section of hisbridge.yaml: where alerts go (`targets`) and
 * when they are raised (`rules`). The schema gives editors and the loader
 * the shape; `parseAlertsConfig` adds the checks a schema cannot make
 * (a `to` naming no target, a bad `hours` window, keys that do not apply to
 * a kind), each at its file:line:column.
 */
import { durationSchema, parseDuration } from '../config/duration.js';
import { LoadError, LoadIssue, type SourcePos } from '../config/yaml-source.js';

export const ALERT_KINDS = ['dead-letters', 'remote-failing', 'listener-down', 'store-failing', 'kafka-lag', 'sender-silent'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export const TARGET_TYPES = ['wecom', 'dingtalk', 'webhook'] as const;
export type TargetType = (typeof TARGET_TYPES)[number];

export interface AlertTarget {
  name: string;
  type: TargetType;
  /** Full robot or webhook URL (may hold an access token: never logged). */
  url: string;
  /** DingTalk signing secret ("加签"); never logged. */
  secret?: string;
}

/** A daily window in Asia/Shanghai time, minutes after local midnight; `end` may be before `start` (overnight). */
export interface HoursWindow {
  start: number;
  end: number;
  text: string;
}

export interface AlertRule {
  name: string;
  when: AlertKind;
  /** Threshold: the value must be above it (dead-letters, kafka-lag, remote-failing). */
  above: number;
  /** How long the condition must hold before the alert fires (sender-silent: how long the sender must be quiet). */
  forMs: number;
  /** Repeat interval while the alert holds. */
  everyMs: number;
  hours?: HoursWindow;
  /** sender-silent: the MSH-3 sending application watched. */
  sender?: string;
  to: string[];
}

export interface AlertsConfig {
  /** How often the rules are evaluated (default 10 s). */
  intervalMs: number;
  targets: AlertTarget[];
  rules: AlertRule[];
}

const NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;
export const HOURS_PATTERN = '^([01]\\d|2[0-3]):[0-5]\\d-([01]\\d|2[0-3]):[0-5]\\d$';

/** JSON Schema of the `alerts:` section. */
export const alertsSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Alerts to WeCom / DingTalk group robots or a JSON webhook (docs/alerts.md)',
  properties: {
    interval: { ...durationSchema, description: 'How often the rules are evaluated (default 10s, at least 100ms)' },
    targets: {
      type: 'array',
      description: 'Where alerts go',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'type', 'url'],
        properties: {
          name: { ...NAME, description: 'Name rules use in `to:`' },
          type: { enum: [...TARGET_TYPES], description: 'wecom (企业微信 group robot), dingtalk (钉钉 group robot) or webhook (generic JSON POST)' },
          url: { type: 'string', minLength: 1, description: 'Robot or webhook URL; use ${env:NAME} when it holds a token (key=..., access_token=...)' },
          secret: { type: 'string', description: 'dingtalk only: the robot\'s signing secret (加签, SEC...), as ${env:NAME}' },
        },
      },
    },
    rules: {
      type: 'array',
      description: 'When to alert',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'when', 'to'],
        properties: {
          name: { ...NAME, description: 'Rule name, shown in the alert' },
          when: { enum: [...ALERT_KINDS], description: 'The condition watched' },
          above: { type: 'number', minimum: 0, description: 'Threshold (dead-letters: dead deliveries; kafka-lag: records per topic; remote-failing: failed attempts in a row); default 0' },
          for: { ...durationSchema, description: 'How long the condition must hold before the alert fires (default 0; sender-silent: how long the sender must be quiet, required)' },
          every: { ...durationSchema, description: 'Repeat interval while the condition holds (default 1h)' },
          hours: { type: 'string', pattern: HOURS_PATTERN, description: 'Only evaluate the rule within this daily window, Asia/Shanghai time, e.g. "08:00-18:00"' },
          sender: { type: 'string', minLength: 1, maxLength: 64, description: 'sender-silent only: the sending application (MSH-3) watched' },
          to: { type: 'array', minItems: 1, items: { type: 'string' }, description: 'Target names' },
        },
      },
    },
  },
} as const;

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Kinds whose value is a count compared with `above`. */
const COUNTED: readonly AlertKind[] = ['dead-letters', 'kafka-lag', 'remote-failing'];

function minutes(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
}

export function parseHours(text: string): HoursWindow | undefined {
  if (!new RegExp(HOURS_PATTERN).test(text)) return undefined;
  const [a, b] = text.split('-');
  const start = minutes(a!);
  const end = minutes(b!);
  return start === end ? undefined : { start, end, text };
}

/**
 * The section with defaults applied, or undefined when absent. `at` gives
 * the position of a path inside the section (for errors). The schema has
 * already been checked.
 */
export function parseAlertsConfig(raw: Raw | undefined, at: (path: (string | number)[], atKey?: boolean) => SourcePos): AlertsConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const issues: LoadIssue[] = [];
  const issue = (path: (string | number)[], msg: string) => issues.push(new LoadIssue(at(path), `alerts.${msg}`, 'CONFIG_E_SCHEMA'));
  const intervalMs = parseDuration(raw.interval, 10_000);
  if (intervalMs < 100) issue(['interval'], 'interval must be at least 100ms');

  const targets: AlertTarget[] = [];
  ((raw.targets as Raw[] | undefined) ?? []).forEach((t, i) => {
    if (targets.some((o) => o.name === t.name)) issue(['targets', i, 'name'], `targets[${i}].name "${t.name}" is already used by another target`);
    let url: URL | undefined;
    try {
      url = new URL(String(t.url));
    } catch {
      // reported below
    }
    // The URL is not echoed: it may carry an access token.
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) issue(['targets', i, 'url'], `targets[${i}].url must be an http:// or https:// URL`);
    if (t.secret !== undefined && t.type !== 'dingtalk') issue(['targets', i, 'secret'], `targets[${i}].secret applies to type dingtalk only`);
    targets.push({ name: t.name, type: t.type, url: String(t.url), ...(t.secret ? { secret: String(t.secret) } : {}) });
  });

  const rules: AlertRule[] = [];
  ((raw.rules as Raw[] | undefined) ?? []).forEach((r, i) => {
    const where = `rules[${i}]`;
    if (rules.some((o) => o.name === r.name)) issue(['rules', i, 'name'], `${where}.name "${r.name}" is already used by another rule`);
    const kind = r.when as AlertKind;
    if (r.above !== undefined && !COUNTED.includes(kind)) issue(['rules', i, 'above'], `${where}.above does not apply to ${kind} (only to ${COUNTED.join(', ')})`);
    if (kind === 'sender-silent') {
      if (r.sender === undefined) issue(['rules', i], `${where}: sender-silent needs sender (the MSH-3 sending application)`);
      if (r.for === undefined) issue(['rules', i], `${where}: sender-silent needs for (how long the sender may be quiet)`);
    } else if (r.sender !== undefined) issue(['rules', i, 'sender'], `${where}.sender applies to sender-silent only`);
    const everyMs = parseDuration(r.every, 3_600_000);
    if (everyMs < 1000) issue(['rules', i, 'every'], `${where}.every must be at least 1s`);
    const forMs = parseDuration(r.for, 0);
    if (kind === 'sender-silent' && r.for !== undefined && forMs < 1000) issue(['rules', i, 'for'], `${where}.for must be at least 1s for sender-silent`);
    let hours: HoursWindow | undefined;
    if (r.hours !== undefined) {
      hours = parseHours(String(r.hours));
      if (!hours) issue(['rules', i, 'hours'], `${where}.hours must be a window such as "08:00-18:00" whose start and end differ`);
    }
    const to = ((r.to as unknown[]) ?? []).map(String);
    to.forEach((name, j) => {
      if (!targets.some((t) => t.name === name)) issue(['rules', i, 'to', j], `${where}.to: no target named "${name}" (known: ${targets.map((t) => t.name).join(', ') || 'none'})`);
    });
    rules.push({
      name: r.name, when: kind, above: r.above ?? 0, forMs, everyMs, ...(hours ? { hours } : {}),
      ...(r.sender !== undefined ? { sender: String(r.sender) } : {}), to: [...new Set(to)],
    });
  });
  if (issues.length) throw new LoadError(issues);
  return { intervalMs, targets, rules };
}

/** Minutes after midnight, Asia/Shanghai (UTC+8 all year, no daylight saving). */
export function shanghaiMinutes(now: number): number {
  return Math.floor(((now + 8 * 3_600_000) % 86_400_000) / 60_000);
}

/** Start (epoch ms) of the window holding `now`, or undefined when `now` is outside it. */
export function windowStart(h: HoursWindow, now: number): number | undefined {
  const m = shanghaiMinutes(now);
  const inside = h.start < h.end ? m >= h.start && m < h.end : m >= h.start || m < h.end;
  if (!inside) return undefined;
  const ago = (m - h.start + 1440) % 1440;
  const minuteStart = now - ((now + 8 * 3_600_000) % 60_000);
  return minuteStart - ago * 60_000;
}
