/**
 * The alert evaluator: on a timer, off the message path, it reads the
 * engine's real state (dead letters, delivery attempts, listener health, the
 * store health /readyz uses, Kafka lag, messages per sender), decides per
 * rule whether its condition holds, and sends:
 *
 * - `firing` once the condition has held for `for` (one firing per rule:
 *   de-duplicated until it resolves), again every `every` while it holds, and
 *   at once when a new subject joins (a second listener goes down);
 * - `resolved` when it clears.
 *
 * Rules with `hours` are only evaluated inside their daily window (Asia/
 * Shanghai time); outside it a rule's state is kept as it is. Which rules
 * fire is kept in the store (plugin state "alerts"), so a restart neither
 * repeats a firing nor forgets to resolve it. Every send is audited
 * (plugin "alerts") and logged without the target URL.
 */
import { hostname } from 'node:os';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import type { AuditEntry, Logger, PluginState } from '../sdk.js';
import { scrubText } from '../mask.js';
import { windowStart, type AlertRule, type AlertsConfig } from './config.js';
import { AlertReader, SCAN_CHUNK } from './reader.js';
import { AlertSender, type AlertMessage, type SendResult, type SenderOptions } from './send.js';

/** What the evaluator reads from the engine (kept narrow: it never touches engine internals). */
export interface AlertHost {
  log: Logger;
  dataDir: string;
  audit(entry: AuditEntry): void;
  /** Where the firing state is kept across restarts. */
  state: PluginState;
  /** The store health /readyz uses, and the remote reachability probes. */
  health(): { store: { ok: boolean; detail?: string }; remotes: Record<string, { target?: string; reachable?: boolean; detail?: string }> };
  /** Every running source (listeners, Kafka) and whether it is live. */
  sources(): { name: string; type: string; live: boolean; detail?: string }[];
  /** Kafka consumer lag in records, summed per topic. */
  kafkaLag(): Promise<Record<string, number>>;
  /** Whether an error code is retryable (a transport failure); undefined for a code nobody registered. */
  isRetryable(code: string): boolean | undefined;
}

interface Subject {
  key: string;
  text: string;
}

interface Condition {
  active: boolean;
  summary: string;
  subjects: Subject[];
  value?: number;
  /** When the condition really started, when the kind knows better than the first tick that saw it (sender-silent). */
  since?: number;
  /** Detail lines computed only when a message is sent. */
  lines?: () => string[];
}

interface RuleState {
  phase: 'ok' | 'pending' | 'firing';
  since?: number;
  firedAt?: number;
  lastSentAt?: number;
  subjects: string[];
}

const STATE_KEY = 'rules';
/** Rows scanned per tick at most (the rest is read on the next ticks). */
const MAX_SCAN_CHUNKS = 8;

export interface EvaluatorOptions {
  sender?: SenderOptions;
  now?: () => number;
}

export class AlertEvaluator {
  readonly sender: AlertSender;
  readonly #config: AlertsConfig;
  readonly #host: AlertHost;
  readonly #now: () => number;
  readonly #host_name = hostname();
  readonly #states = new Map<string, RuleState>();
  readonly #inflight = new Set<Promise<unknown>>();
  #reader?: AlertReader;
  #timer?: NodeJS.Timeout;
  #ticking?: Promise<void>;
  #stopped = false;
  #startedAt = 0;
  /** remote-failing: consecutive failed attempts per plugin. */
  readonly #streaks = new Map<string, { n: number; code: string }>();
  #attemptCursor = 0;
  /** sender-silent: last message time per watched MSH-3. */
  readonly #lastSeen = new Map<string, number>();
  #messageCursor = 0;
  #messagesCaughtUp = true;
  readonly #warned = new Map<string, number>();

  constructor(config: AlertsConfig, host: AlertHost, opts: EvaluatorOptions = {}) {
    this.#config = config;
    this.#host = host;
    this.#now = opts.now ?? Date.now;
    this.sender = new AlertSender(config.targets, opts.sender);
  }

  /** Loads the kept state, positions the scans at the store's end, and starts the timer. */
  async start(): Promise<void> {
    this.#startedAt = this.#now();
    this.#reader = new AlertReader(this.#host.dataDir);
    this.#attemptCursor = this.#reader.lastAttemptId();
    this.#messageCursor = this.#reader.lastMessageId();
    let kept: Record<string, RuleState> | undefined;
    try {
      kept = await this.#host.state.get<Record<string, RuleState>>(STATE_KEY);
    } catch {
      kept = undefined;
    }
    for (const r of this.#config.rules) {
      const k = kept?.[r.name];
      this.#states.set(r.name, k && k.phase === 'firing' ? { phase: 'firing', ...(k.since !== undefined ? { since: k.since } : {}), ...(k.firedAt !== undefined ? { firedAt: k.firedAt } : {}), ...(k.lastSentAt !== undefined ? { lastSentAt: k.lastSentAt } : {}), subjects: Array.isArray(k.subjects) ? k.subjects.map(String) : [] } : { phase: 'ok', subjects: [] });
    }
    this.#timer = setInterval(() => void this.tick(), this.#config.intervalMs);
    this.#timer.unref();
    void this.tick();
  }

  /** One evaluation of every rule; a tick still running is not started twice. */
  tick(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (!this.#ticking) {
      this.#ticking = this.#evaluate().catch((e: unknown) => this.#warn('tick', `alert evaluation failed: ${(e as Error).message}`)).finally(() => {
        this.#ticking = undefined;
      });
    }
    return this.#ticking;
  }

  /** Resolves when the sends queued so far have settled (tests, `alerts test`). */
  async idle(): Promise<void> {
    while (this.#inflight.size) await Promise.allSettled([...this.#inflight]);
  }

  /** The state of each rule (tests, diagnostics). */
  states(): Record<string, Readonly<RuleState>> {
    return Object.fromEntries([...this.#states].map(([k, v]) => [k, { ...v }]));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#ticking;
    this.sender.close();
    await this.idle();
    this.#reader?.close();
  }

  async #evaluate(): Promise<void> {
    const now = this.#now();
    const kinds = new Set(this.#config.rules.map((r) => r.when));
    if (kinds.has('remote-failing')) await this.#scanAttempts();
    if (kinds.has('sender-silent')) await this.#scanMessages();
    let changed = false;
    for (const rule of this.#config.rules) {
      if (this.#stopped) return;
      const win = rule.hours ? windowStart(rule.hours, now) : 0;
      if (win === undefined) continue; // outside the rule's hours: state kept, nothing sent
      const st = this.#states.get(rule.name)!;
      let c: Condition | undefined;
      try {
        c = await this.#condition(rule, st, now, win);
      } catch (e) {
        this.#warn(rule.name, `alert rule ${rule.name}: cannot evaluate: ${(e as Error).message}`);
      }
      if (!c) continue;
      changed = this.#step(rule, st, c, now) || changed;
    }
    if (changed) this.#persist();
  }

  /** Moves one rule's state; true when the kept state changed. */
  #step(rule: AlertRule, st: RuleState, c: Condition, now: number): boolean {
    const keys = c.subjects.map((s) => s.key);
    if (!c.active) {
      if (st.phase === 'firing') {
        this.#dispatch(rule, { status: 'resolved', summary: `resolved: ${c.summary}`, lines: [], since: st.since ?? st.firedAt ?? now }, 'resolved', c);
        Object.assign(st, { phase: 'ok', subjects: [] });
        delete st.since; delete st.firedAt; delete st.lastSentAt;
        return true;
      }
      if (st.phase === 'pending') {
        st.phase = 'ok';
        delete st.since;
      }
      return false;
    }
    if (st.phase === 'ok') {
      st.phase = 'pending';
      st.since = c.since ?? now;
    }
    if (st.phase === 'pending') {
      if (c.since === undefined && now - st.since! < rule.forMs) return false;
      this.#dispatch(rule, { status: 'firing', summary: c.summary, lines: [], since: st.since! }, 'new', c);
      Object.assign(st, { phase: 'firing', firedAt: now, lastSentAt: now, subjects: keys });
      return true;
    }
    const fresh = keys.filter((k) => !st.subjects.includes(k));
    if (fresh.length || now - (st.lastSentAt ?? 0) >= rule.everyMs) {
      this.#dispatch(rule, { status: 'firing', summary: c.summary, lines: [], since: st.since ?? st.firedAt ?? now }, fresh.length ? 'changed' : 'repeat', c);
      st.lastSentAt = now;
      st.subjects = keys;
      return true;
    }
    const same = keys.length === st.subjects.length;
    st.subjects = keys;
    return !same;
  }

  #persist(): void {
    const out: Record<string, RuleState> = {};
    for (const [k, v] of this.#states) if (v.phase === 'firing') out[k] = v;
    this.#host.state.set(STATE_KEY, out).catch((e: unknown) => this.#warn('persist', `alert state not saved: ${(e as Error).message}`));
  }

  #dispatch(rule: AlertRule, m: Pick<AlertMessage, 'status' | 'summary' | 'lines' | 'since'>, reason: 'new' | 'repeat' | 'changed' | 'resolved', c: Condition): void {
    let lines: string[];
    try {
      lines = m.status === 'resolved' ? [] : c.lines ? c.lines() : c.subjects.map((s) => s.text);
    } catch {
      lines = c.subjects.map((s) => s.text);
    }
    const message: AlertMessage = {
      status: m.status, rule: rule.name, kind: rule.when, summary: m.summary, lines, at: this.#now(), host: this.#host_name,
      ...(m.since !== undefined ? { since: m.since } : {}), ...(c.value !== undefined ? { value: c.value } : {}),
      ...(['dead-letters', 'kafka-lag', 'remote-failing'].includes(rule.when) ? { above: rule.above } : {}),
    };
    for (const target of rule.to) {
      const type = this.#config.targets.find((t) => t.name === target)?.type ?? 'webhook';
      const p = this.sender.send(target, message).then((r) => this.#record(rule.name, target, type, m.status, reason, r));
      this.#inflight.add(p);
      void p.finally(() => this.#inflight.delete(p));
    }
  }

  #record(rule: string, target: string, type: string, status: string, reason: string, r: SendResult): void {
    const result = r.ok ? 'ok' : r.dropped ? 'dropped' : 'failed';
    const detail = `rule ${rule} ${reason} to ${target} (${type}), ${r.attempts} attempt(s)${r.error ? `: ${r.error.code}` : ''}`;
    try {
      this.#host.audit({ plugin: 'alerts', operation: status, result, latencyMs: r.latencyMs, detail });
    } catch (e) {
      this.#warn('audit', `alert audit row not written: ${(e as Error).message}`);
    }
    const fields = { rule, target, type, status, reason, result, attempts: r.attempts, ...(r.error ? { code: r.error.code } : {}) };
    if (r.ok) this.#host.log.info(fields, 'alert sent');
    else this.#host.log.warn(fields, r.error ? r.error.message : 'alert not sent');
  }

  /** One warning per topic per 10 minutes. */
  #warn(topic: string, msg: string): void {
    const now = this.#now();
    if ((this.#warned.get(topic) ?? -Infinity) > now - 600_000) return;
    this.#warned.set(topic, now);
    this.#host.log.warn({ component: 'alerts' }, scrubText(msg));
  }

  async #condition(rule: AlertRule, st: RuleState, now: number, windowAt: number): Promise<Condition | undefined> {
    switch (rule.when) {
      case 'dead-letters': {
        const reader = this.#reader!;
        const n = reader.deadCount();
        return {
          active: n > rule.above, value: n, summary: `${n} dead letter(s) (alert above ${rule.above})`, subjects: [],
          lines: () => reader.deadByRoute().map((g) => `route ${g.route}: ${g.n} dead (${g.code})`),
        };
      }
      case 'remote-failing': {
        const subjects: Subject[] = [];
        let worst = 0;
        for (const [plugin, s] of this.#streaks) {
          worst = Math.max(worst, s.n);
          if (s.n > rule.above) subjects.push({ key: `plugin:${plugin}`, text: `plugin ${plugin}: ${s.n} failed attempt(s) in a row (last ${s.code})` });
        }
        for (const [name, r] of Object.entries(this.#host.health().remotes)) {
          if (r.reachable === false) subjects.push({ key: `remote:${name}`, text: `remote ${name}${r.target ? ` (${r.target})` : ''}: unreachable${r.detail ? ` (${r.detail})` : ''}` });
        }
        return { active: subjects.length > 0, value: worst, summary: subjects.length ? `${subjects.length} remote(s) failing` : 'remotes answering', subjects };
      }
      case 'listener-down': {
        const down = this.#host.sources().filter((s) => !s.live);
        return {
          active: down.length > 0, value: down.length, summary: down.length ? `${down.length} listener(s) down` : 'listeners up',
          subjects: down.map((s) => ({ key: s.name, text: `${s.type === 'kafka' ? 'kafka' : `listener ${s.name} (${s.type})`}: ${s.detail ?? 'not live'}` })),
        };
      }
      case 'store-failing': {
        const h = this.#host.health().store;
        return { active: !h.ok, summary: h.ok ? 'store writing' : 'the store is failing: messages cannot be accepted', subjects: h.ok ? [] : [{ key: 'store', text: `store: ${h.detail ?? 'failing'}` }] };
      }
      case 'kafka-lag': {
        const lag = await this.#host.kafkaLag();
        const over = Object.entries(lag).filter(([, n]) => n > rule.above);
        const worst = Math.max(0, ...Object.values(lag));
        return {
          active: over.length > 0, value: worst, summary: over.length ? `Kafka lag above ${rule.above} on ${over.length} topic(s)` : `Kafka lag at most ${rule.above}`,
          subjects: over.map(([topic, n]) => ({ key: topic, text: `topic ${topic}: ${n} records behind` })),
        };
      }
      case 'sender-silent': {
        if (!this.#messagesCaughtUp) return undefined; // not all new messages read yet: no verdict
        const sender = rule.sender!;
        const last = this.#lastSeen.get(sender);
        if (st.phase === 'firing') {
          // Clears only when the sender really speaks again: a message newer than the start of the silence.
          const back = last !== undefined && last > (st.since ?? 0);
          return { active: !back, summary: back ? `messages from sender ${sender} again` : `no message from sender ${sender} since ${minutesText(now - Math.max(last ?? 0, st.since ?? 0))}`, subjects: [] };
        }
        const quietSince = Math.max(last ?? 0, this.#startedAt, windowAt);
        const quiet = now - quietSince;
        return { active: quiet >= rule.forMs, since: quietSince, summary: `no message from sender ${sender} for ${minutesText(quiet)}${rule.hours ? ` (watched ${rule.hours.text})` : ''}`, subjects: [] };
      }
    }
  }

  /** remote-failing: reads the attempts made since the last tick and counts failures in a row per plugin. */
  async #scanAttempts(): Promise<void> {
    const reader = this.#reader!;
    for (let i = 0; i < MAX_SCAN_CHUNKS; i++) {
      const rows = reader.attemptsAfter(this.#attemptCursor);
      for (const r of rows) {
        this.#attemptCursor = r.id;
        if (r.outcome === 'released') continue;
        const failed = (r.outcome === 'retry' || r.outcome === 'dead') && r.error_code !== null && this.#host.isRetryable(r.error_code) !== false;
        if (failed) {
          const s = this.#streaks.get(r.plugin) ?? { n: 0, code: '' };
          this.#streaks.set(r.plugin, { n: s.n + 1, code: r.error_code! });
        } else this.#streaks.delete(r.plugin);
      }
      if (rows.length < SCAN_CHUNK) return;
      await yieldLoop();
    }
  }

  /** sender-silent: reads the messages stored since the last tick and keeps the newest time per watched sender. */
  async #scanMessages(): Promise<void> {
    const reader = this.#reader!;
    const watched = new Set(this.#config.rules.flatMap((r) => (r.when === 'sender-silent' && r.sender ? [r.sender] : [])));
    for (let i = 0; i < MAX_SCAN_CHUNKS; i++) {
      const rows = reader.messagesAfter(this.#messageCursor);
      for (const r of rows) {
        this.#messageCursor = r.id;
        if (watched.has(r.sending_app)) this.#lastSeen.set(r.sending_app, Math.max(this.#lastSeen.get(r.sending_app) ?? 0, r.received_at));
      }
      this.#messagesCaughtUp = rows.length < SCAN_CHUNK;
      if (this.#messagesCaughtUp) return;
      await yieldLoop();
    }
  }
}

function minutesText(ms: number): string {
  const min = Math.floor(ms / 60_000);
  return min >= 120 ? `${Math.floor(min / 60)} h ${min % 60} min` : min >= 1 ? `${min} min` : `${Math.floor(ms / 1000)} s`;
}
