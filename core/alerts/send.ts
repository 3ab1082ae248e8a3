/**
 * Sending alerts: the payloads of the WeCom (企业微信) and DingTalk (钉钉)
 * group robots and of the generic JSON webhook, DingTalk's signature, the
 * check of the robot's answer (errcode 0 is success), retries with backoff,
 * and a per-target rate limit (both robots accept 20 messages a minute).
 * Nothing here blocks the caller: `send` queues and returns a promise.
 *
 * URLs are never logged or put in errors (robot URLs carry the access
 * token): errors name the target only.
 */
import { createHmac } from 'node:crypto';
import { hbError, isHisbridgeError, type HisbridgeError } from '../errors.js';
import { createHttpClient, type OwnedHttpClient } from '../http/client.js';
import { scrubText } from '../mask.js';
import type { AlertTarget } from './config.js';

/** What one alert says; every text is PHI-free (names of rules, routes, listeners, codes and counts only). */
export interface AlertMessage {
  status: 'firing' | 'resolved' | 'test';
  rule: string;
  kind: string;
  /** One line saying what holds (or held). */
  summary: string;
  /** Detail lines (subjects: routes, listeners, remotes, topics). */
  lines: string[];
  /** When the condition started (epoch ms). */
  since?: number;
  at: number;
  host: string;
  value?: number;
  above?: number;
}

export interface SendResult {
  ok: boolean;
  attempts: number;
  latencyMs: number;
  error?: HisbridgeError;
  /** Set when the message was dropped by the rate limit without being sent. */
  dropped?: boolean;
}

const STATUS_TAG: Record<AlertMessage['status'], string> = { firing: 'FIRING 告警', resolved: 'RESOLVED 恢复', test: 'TEST 测试' };
/** WeCom caps markdown content at 4096 bytes; lines past this many are summarised. */
const MAX_LINES = 10;

function localTime(ms: number): string {
  return new Date(ms + 8 * 3_600_000).toISOString().replace('T', ' ').slice(0, 19) + ' (UTC+8)';
}

/** Markdown kept to what both robots render: a heading, bold, quotes and list items. */
export function markdownText(m: AlertMessage): string {
  const lines = m.lines.length > MAX_LINES ? [...m.lines.slice(0, MAX_LINES), `... and ${m.lines.length - MAX_LINES} more`] : m.lines;
  const out = [
    `### hisbridge ${STATUS_TAG[m.status]}: ${m.rule}`,
    `**${m.summary}**`,
    '',
    ...lines.map((l) => `- ${l}`),
    ...(lines.length ? [''] : []),
    `> rule ${m.rule} (${m.kind}) on ${m.host}`,
    ...(m.since !== undefined ? [`> since ${localTime(m.since)}`] : []),
    `> at ${localTime(m.at)}`,
  ];
  return truncateBytes(scrubText(out.join('\n')), 4000);
}

function truncateBytes(s: string, max: number): string {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  let cut = s.slice(0, max);
  while (Buffer.byteLength(cut, 'utf8') > max - 3) cut = cut.slice(0, -1);
  return cut + '...';
}

/** DingTalk's signature: urlencode(base64(HmacSHA256(secret, timestamp + "\n" + secret))). */
export function dingtalkSign(secret: string, timestamp: number): string {
  return encodeURIComponent(createHmac('sha256', secret).update(`${timestamp}\n${secret}`, 'utf8').digest('base64'));
}

/** The request for one target: URL (DingTalk: signed) and JSON body. */
export function buildRequest(t: AlertTarget, m: AlertMessage, now = Date.now()): { url: string; body: Record<string, unknown> } {
  const text = markdownText(m);
  switch (t.type) {
    case 'wecom':
      return { url: t.url, body: { msgtype: 'markdown', markdown: { content: text } } };
    case 'dingtalk': {
      let url = t.url;
      if (t.secret) url += `${url.includes('?') ? '&' : '?'}timestamp=${now}&sign=${dingtalkSign(t.secret, now)}`;
      return { url, body: { msgtype: 'markdown', markdown: { title: `hisbridge ${STATUS_TAG[m.status]}: ${m.rule}`, text } } };
    }
    case 'webhook':
      return {
        url: t.url,
        body: {
          source: 'hisbridge', version: 1, status: m.status, rule: m.rule, kind: m.kind, summary: m.summary, details: m.lines,
          ...(m.value !== undefined ? { value: m.value } : {}), ...(m.above !== undefined ? { above: m.above } : {}),
          ...(m.since !== undefined ? { since: new Date(m.since).toISOString() } : {}), at: new Date(m.at).toISOString(), host: m.host, text,
        },
      };
  }
}

export interface SenderOptions {
  /** Messages a target may receive per minute (default 20: both robots' documented limit). */
  perMinute?: number;
  /** Messages waiting for one target at most; older ones are dropped past it (default 100). */
  maxQueue?: number;
  /** Delays between attempts (default 1 s, 3 s: three attempts). */
  retryDelaysMs?: number[];
  timeoutMs?: number;
}

interface Queued {
  message: AlertMessage;
  done: (r: SendResult) => void;
}

/** One queue per target, drained at the target's rate; shared by the evaluator and `hisbridge alerts test`. */
export class AlertSender {
  readonly #http: OwnedHttpClient = createHttpClient({ defaultTimeoutMs: 10_000, maxSockets: 4, userAgent: 'hisbridge-alerts' });
  readonly #abort = new AbortController();
  readonly #opts: Required<SenderOptions>;
  readonly #queues = new Map<string, { target: AlertTarget; items: Queued[]; sentAt: number[]; running: boolean; timer?: NodeJS.Timeout }>();

  constructor(targets: readonly AlertTarget[], opts: SenderOptions = {}) {
    this.#opts = { perMinute: opts.perMinute ?? 20, maxQueue: opts.maxQueue ?? 100, retryDelaysMs: opts.retryDelaysMs ?? [1000, 3000], timeoutMs: opts.timeoutMs ?? 5000 };
    for (const t of targets) this.#queues.set(t.name, { target: t, items: [], sentAt: [], running: false });
  }

  /** Queues a message for one target; resolves once it was sent, failed for good, or was dropped. */
  send(targetName: string, message: AlertMessage): Promise<SendResult> {
    const q = this.#queues.get(targetName);
    if (!q) return Promise.resolve({ ok: false, attempts: 0, latencyMs: 0, error: hbError('ALERTS_E_SEND', { target: targetName, detail: 'no such target' }) });
    return new Promise((resolve) => {
      q.items.push({ message, done: resolve });
      while (q.items.length > this.#opts.maxQueue) {
        q.items.shift()!.done({ ok: false, attempts: 0, latencyMs: 0, dropped: true, error: hbError('ALERTS_W_RATE_LIMITED', { target: targetName, limit: this.#opts.perMinute }) });
      }
      this.#pump(q);
    });
  }

  #pump(q: { target: AlertTarget; items: Queued[]; sentAt: number[]; running: boolean; timer?: NodeJS.Timeout }): void {
    if (q.running || q.timer || !q.items.length || this.#abort.signal.aborted) return;
    const now = Date.now();
    while (q.sentAt.length && now - q.sentAt[0]! >= 60_000) q.sentAt.shift();
    if (q.sentAt.length >= this.#opts.perMinute) {
      q.timer = setTimeout(() => {
        q.timer = undefined;
        this.#pump(q);
      }, 60_000 - (now - q.sentAt[0]!) + 5);
      // Not unref'd: a CLI run (alerts test) must stay alive until its messages went out; close() clears it.
      return;
    }
    const item = q.items.shift()!;
    q.running = true;
    q.sentAt.push(now);
    void this.#deliver(q.target, item.message).then((r) => {
      q.running = false;
      item.done(r);
      this.#pump(q);
    });
  }

  /** Sends with retries; never throws. */
  async #deliver(t: AlertTarget, m: AlertMessage): Promise<SendResult> {
    const started = performance.now();
    const tries = this.#opts.retryDelaysMs.length + 1;
    let error: HisbridgeError = hbError('ALERTS_E_SEND', { target: t.name, detail: 'engine stopping' });
    let attempt = 0;
    while (attempt < tries && !this.#abort.signal.aborted) {
      attempt++;
      const e = await this.#once(t, m);
      if (!e) return { ok: true, attempts: attempt, latencyMs: performance.now() - started };
      error = e;
      if (attempt === tries || !(await this.#sleep(this.#opts.retryDelaysMs[attempt - 1]!))) break;
    }
    return { ok: false, attempts: attempt, latencyMs: performance.now() - started, error };
  }

  /** One POST; undefined on success, else the reason (naming the target, never its URL). */
  async #once(t: AlertTarget, m: AlertMessage): Promise<HisbridgeError | undefined> {
    const { url, body } = buildRequest(t, m);
    try {
      const res = await this.#http.request(url, { method: 'POST', body, timeoutMs: this.#opts.timeoutMs, target: `alert target ${t.name}`, signal: this.#abort.signal });
      if (res.status < 200 || res.status >= 300) return hbError('ALERTS_E_SEND', { target: t.name, detail: `HTTP ${res.status}` });
      if (t.type === 'webhook') return undefined;
      const j = res.json as { errcode?: unknown; errmsg?: unknown } | undefined;
      if (!j || typeof j !== 'object') return hbError('ALERTS_E_SEND', { target: t.name, detail: 'the answer is not the robot JSON ({"errcode":0,...})' });
      if (j.errcode !== 0) {
        const msg = typeof j.errmsg === 'string' ? scrubText(j.errmsg.slice(0, 120)).replace(/[\u0000-\u001f]/g, ' ') : '';
        return hbError('ALERTS_E_REFUSED', { target: t.name, errcode: String(j.errcode).slice(0, 20), errmsg: msg });
      }
      return undefined;
    } catch (e) {
      return hbError('ALERTS_E_SEND', { target: t.name, detail: isHisbridgeError(e) ? e.code : 'request failed' }, { cause: e });
    }
  }

  #sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.#abort.signal.aborted) return resolve(false);
      const onAbort = () => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        this.#abort.signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      // Not unref'd either: close() aborts the wait.
      this.#abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Aborts calls in flight and drops what waits; pending promises resolve as failed. */
  close(): void {
    this.#abort.abort();
    for (const q of this.#queues.values()) {
      if (q.timer) clearTimeout(q.timer);
      for (const it of q.items.splice(0)) it.done({ ok: false, attempts: 0, latencyMs: 0, error: hbError('ALERTS_E_SEND', { target: q.target.name, detail: 'engine stopping' }) });
    }
    this.#http.close();
  }
}
