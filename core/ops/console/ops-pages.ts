/**
 * Issue 18 console views: the health panel, the dashboard's counts (read
 * from `EngineMetrics.dashboard()`, the same series as /metrics), the
 * route table with its operator actions, content search and filtered
 * replay. Labels come from the console's dictionaries (i18n.ts, the translator `t`); values read from messages are
 * masked like everywhere else in the console.
 */
import { maskId, scrubText } from '../../mask.js';
import type { ContentHit } from '../content-search.js';
import type { Dashboard, RouteDashboard } from '../metrics.js';
import { Html, html, qs, time } from './html.js';
import { tOr, type T } from './i18n.js';
import type { Overview } from './pages.js';

/** A route's statistics window: counts since an operator reset them (kept in memory, like the metrics). */
export interface StatsWindow {
  at: number;
  by: string;
  baseline: RouteDashboard;
}

/** The dashboard's live numbers (also served as JSON for the poll script). */
export interface OpsLiveView {
  received: number;
  accepted: number;
  errors: number;
  errorRate: string;
  delivered: number;
  retries: number;
  deadLettered: number;
  /** Dead letters now (hisbridge_dead_letters_current summed). */
  dead: number;
  pending: number;
  listeners: Dashboard['listeners'];
  /** Per route: since engine start, or since its statistics were reset (`windowStart`). */
  routes: Record<string, RouteDashboard & { windowStart?: number }>;
}

const ZERO: RouteDashboard = { matched: 0, delivered: 0, retries: 0, deadLettered: 0, deadNow: 0 };

export function opsLiveView(d: Dashboard, windows: ReadonlyMap<string, StatsWindow>): OpsLiveView {
  const routes: OpsLiveView['routes'] = {};
  for (const [name, r] of Object.entries(d.routes)) {
    const w = windows.get(name);
    routes[name] = w
      ? {
        matched: r.matched - w.baseline.matched, delivered: r.delivered - w.baseline.delivered, retries: r.retries - w.baseline.retries,
        deadLettered: r.deadLettered - w.baseline.deadLettered, deadNow: r.deadNow, windowStart: w.at,
      }
      : { ...r };
  }
  for (const [name, w] of windows) if (!routes[name]) routes[name] = { ...ZERO, windowStart: w.at };
  const errorRate = d.received ? `${((d.errors / d.received) * 100).toFixed(1)}%` : '0.0%';
  return {
    received: d.received, accepted: d.accepted, errors: d.errors, errorRate, delivered: d.delivered, retries: d.retries,
    deadLettered: d.deadLettered, dead: d.deadNow, pending: d.pending, listeners: d.listeners, routes,
  };
}

const card = (label: string, key: string, v: unknown) => html`<div class="card">${label}<b data-k="${key}">${v}</b></div>`;
const yesNo = (ok: boolean | undefined, yes: string, no: string) => html`<span class="${ok ? 'ok' : 'bad'}">${ok ? yes : no}</span>`;

/** The count cards and the route table, with pause / resume / reset actions. */
export function opsCountsView(t: T, ov: Overview, live: OpsLiveView, paused: ReadonlySet<string>): Html {
  const num = (r: string, k: keyof RouteDashboard) => html`<td class="num" data-k="routes.${r}.${k}">${live.routes[r]?.[k] ?? 0}</td>`;
  return html`<div class="cards" id="counts">${card(t('ops.received'), 'received', live.received)}${card(t('ops.errors'), 'errors', live.errors)}${card(t('ops.errorRate'), 'errorRate', live.errorRate)}
${card(t('ops.delivered'), 'delivered', live.delivered)}${card(t('ops.retries'), 'retries', live.retries)}${card(t('ops.pending'), 'pending', live.pending)}
${card(t('ops.deadNow'), 'dead', live.dead)}${card(t('ops.deadLettered'), 'deadLettered', live.deadLettered)}</div>
<p class="masked">${t('ops.deliveredHelp')} ${t('ops.deadHelp')}</p>
<h2>${t('ops.routes')}</h2><div class="scroll"><table id="routes"><tr><th>${t('ops.route')}</th><th>${t('ops.status')}</th><th class="num">${t('ops.matched')}</th><th class="num">${t('ops.delivered')}</th>
<th class="num">${t('ops.retries')}</th><th class="num">${t('ops.deadLettered')}</th><th class="num">${t('ops.deadNow')}</th><th>${t('ops.window')}</th><th></th></tr>
${ov.routes.map((r) => {
    const state = r.inactive ? 'inactive' : paused.has(r.name) ? 'paused' : 'active';
    const w = live.routes[r.name]?.windowStart;
    return html`<tr data-route="${r.name}"><td>${r.name}</td><td class="route-state ${state === 'active' ? 'ok' : 'bad'}" data-state="${state}">${r.inactive ? t('route.inactive', { reason: r.inactive }) : t(state === 'paused' ? 'ops.paused' : 'route.active')}</td>
${num(r.name, 'matched')}${num(r.name, 'delivered')}${num(r.name, 'retries')}${num(r.name, 'deadLettered')}${num(r.name, 'deadNow')}<td>${w ? time(w) : t('ops.engineStart')}</td>
<td>${r.inactive ? '' : html`${r.ack === 'on-complete' && state !== 'paused' ? '' : html`<form data-post="/console/routes/${r.name}/${state === 'paused' ? 'resume' : 'pause'}" class="inline"><button type="submit" class="route-${state === 'paused' ? 'resume' : 'pause'}">${state === 'paused' ? t('ops.resume') : t('ops.pause')}</button></form>`}
<form data-post="/console/routes/${r.name}/reset-stats" class="inline"><button type="submit" class="route-reset">${t('ops.resetStats')}</button></form>`}</td></tr>`;
  })}</table></div><p class="masked">${t('ops.pausedHelp')}</p>`;
}

interface HealthLike {
  status?: string;
  reasons?: string[];
  listeners?: { name: string; port?: number; connections: number }[];
  sources?: { name: string; type: string; live?: boolean; ready?: boolean; detail?: string }[];
  inactiveRoutes?: { name: string; reason: string }[];
  store?: { ok: boolean; detail?: string };
  remotes?: Record<string, { target: string; reachable?: boolean; detail?: string; latencyMs?: number; lastError?: string; lastErrorAt?: number }>;
  kafka?: { connected?: boolean; assigned?: Record<string, number[]> };
  eventLoop?: { p99: number; maxSinceStart: number };
}

/** The health panel: each part of the health body (/healthz) as a readable table. */
export function healthPanel(t: T, body: Record<string, unknown>, kafkaLag: Record<string, Record<string, number>>): Html {
  const h = body as HealthLike;
  const sources = new Map((h.sources ?? []).map((s) => [s.name, s]));
  const ms = (s: number | undefined) => (s === undefined ? '' : (s * 1000).toFixed(1));
  const remotes = Object.entries(h.remotes ?? {});
  const kafkaSrc = (h.sources ?? []).find((s) => s.type === 'kafka');
  const partitions = Object.entries(h.kafka?.assigned ?? {}).flatMap(([topic, ps]) => ps.map((p) => ({ topic, p })));
  return html`<section id="health-panel" data-status="${h.status ?? ''}">
<h2>${t('ops.health')}</h2>
<p id="health-status">${t('ops.healthStatus')}${t('ops.colon')}<b class="${h.status === 'ok' ? 'ok' : 'bad'}">${h.status ? tOr(t, 'ops.engine', h.status) : ''}</b>${h.reasons?.length ? html` — ${t('ops.reasons')}${t('ops.colon')}${h.reasons.join('; ')}` : ''}</p>
<div class="scroll"><table id="health-listeners"><tr><th>${t('ops.listener')}</th><th>${t('ops.bound')}</th><th class="num">${t('ops.connections')}</th></tr>
${(h.listeners ?? []).map((l) => {
    const s = sources.get(l.name);
    const bound = l.port !== undefined && s?.live !== false;
    return html`<tr data-listener="${l.name}"><td>${l.name}</td><td>${yesNo(bound, `${t('ops.bound')} :${l.port ?? ''}`, s?.detail ?? t('ops.notBound'))}</td><td class="num">${l.connections}</td></tr>`;
  })}
${(h.sources ?? []).filter((s) => !(h.listeners ?? []).some((l) => l.name === s.name)).map((s) => html`<tr data-listener="${s.name}"><td>${s.name} (${s.type})</td><td>${yesNo(s.live !== false, t('ops.live'), s.detail ?? t('ops.notLive'))}</td><td class="num"></td></tr>`)}</table></div>
<div class="scroll"><table id="health-store"><tr><th>${t('ops.store')}</th><td data-ok="${String(h.store?.ok ?? false)}">${yesNo(h.store?.ok, t('ops.storeOk'), `${t('ops.storeFailing')}${t('ops.colon')}${h.store?.detail ?? ''}`)}</td></tr>
<tr><th>${t('ops.eventLoop')}</th><td id="health-loop">${t('ops.eventLoopP99')} ${ms(h.eventLoop?.p99)} · ${t('ops.eventLoopMax')} ${ms(h.eventLoop?.maxSinceStart)}</td></tr></table></div>
<h2>${t('ops.remotes')}</h2><div class="scroll"><table id="health-remotes"><tr><th>${t('ops.remote')}</th><th>${t('ops.target')}</th><th>${t('ops.reachable')}</th><th class="num">${t('ops.latency')}</th><th>${t('ops.lastError')}</th></tr>
${remotes.map(([name, r]) => html`<tr data-remote="${name}"><td>${name}</td><td>${r.target}</td><td>${r.reachable === undefined ? t('ops.notProbed') : yesNo(r.reachable, t('ops.reachable'), `${t('ops.unreachable')}${t('ops.colon')}${r.detail ?? ''}`)}</td>
<td class="num">${r.latencyMs ?? ''}</td><td>${r.lastError ? `${r.lastError} (${time(r.lastErrorAt)})` : ''}</td></tr>`)}
${remotes.length ? '' : html`<tr><td colspan="5">${t('ops.none')}</td></tr>`}</table></div>
<h2>${t('ops.kafka')}</h2>${kafkaSrc ? html`<div class="scroll"><table id="health-kafka"><tr><th>${t('ops.status')}</th><td colspan="2">${yesNo(kafkaSrc.live !== false, t('ops.live'), kafkaSrc.detail ?? t('ops.notLive'))}</td></tr>
<tr><th>${t('ops.assignment')}</th><th>${t('ops.lag')}</th><th></th></tr>
${partitions.map(({ topic, p }) => html`<tr data-partition="${topic}/${p}"><td>${topic}/${p}</td><td class="num">${kafkaLag[topic]?.[String(p)] ?? ''}</td><td></td></tr>`)}
${partitions.length ? '' : html`<tr><td colspan="3">${t('ops.none')}</td></tr>`}</table></div>` : html`<p id="health-kafka">${t('ops.noKafka')}</p>`}
<h2>${t('ops.inactiveRoutes')}</h2><div class="scroll"><table id="health-inactive"><tr><th>${t('ops.route')}</th><th>${t('ops.reason')}</th></tr>
${(h.inactiveRoutes ?? []).map((r) => html`<tr data-route="${r.name}"><td>${r.name}</td><td>${r.reason}</td></tr>`)}
${(h.inactiveRoutes ?? []).length ? '' : html`<tr><td colspan="2">${t('ops.none')}</td></tr>`}</table></div>
</section>`;
}

export interface SearchForm {
  path?: string;
  op?: string;
  value?: string;
  since?: string;
  until?: string;
}

/** Content search: the form, and the hits (masked) when a search ran. */
export function searchPage(t: T, q: SearchForm, result: { hits: ContentHit[]; scanned: number } | undefined): Html {
  const opt = (v: 'equals' | 'contains') => html`<option value="${v}"${(q.op || 'equals') === v ? new Html(' selected') : ''}>${t(v === 'equals' ? 'ops.equals' : 'ops.contains')}</option>`;
  return html`<form class="search" id="content-search" method="get" action="/console/search">
<label>${t('ops.fieldPath')} <input name="path" value="${q.path ?? ''}" placeholder="PID-5.1" required></label>
<label>${t('ops.op')} <select name="op">${opt('equals')}${opt('contains')}</select></label>
<label>${t('ops.value')} <input name="value" value="${q.value ?? ''}" autocomplete="off" required></label>
<label>${t('ops.since')} <input name="since" type="datetime-local" value="${q.since ?? ''}"></label>
<label>${t('ops.until')} <input name="until" type="datetime-local" value="${q.until ?? ''}"></label>
<button type="submit">${t('ops.find')}</button></form>
${result ? html`<p id="scanned">${result.scanned} ${t('ops.scanned')}</p>
<div class="scroll"><table id="search-results"><tr><th>${t('ops.message')}</th><th>${t('ops.time')}</th><th>${t('ops.source')}</th><th>${t('ops.type')}</th><th>${t('ops.controlId')}</th><th>${t('ops.patient')}</th><th>${t('ops.status')}</th></tr>
${result.hits.map((m) => html`<tr data-message="${m.id}"><td><a href="/console/messages/${m.id}">${m.id}</a></td><td>${time(m.receivedAt)}</td><td>${m.source}</td><td>${scrubText(m.type)}</td>
<td>${scrubText(m.controlId)}</td><td>${maskId(m.patientId)}</td><td data-status="${m.status}">${tOr(t, 'status', m.status)}</td></tr>`)}</table></div>
${result.hits.length === 0 ? html`<p>${t('ops.noMatch')}</p>` : html`<p><a id="replay-link" href="/console/replay${qs({ ...q })}">${t('ops.replay')}</a></p>`}` : ''}`;
}

/** The confirm step of a filtered replay: how many messages match, and the button that replays exactly that many. */
export function replayPage(t: T, filter: Record<string, string>, count: number): Html {
  return html`<p id="replay-count"><b>${count}</b> ${t('ops.replayMatch')}</p>
${count > 0 ? html`<form data-post="/console/replay" id="replay-form">${Object.entries(filter).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<input type="hidden" name="confirm" value="${count}"><button type="submit">${t('ops.replayConfirm')} (${count})</button></form>` : ''}`;
}

