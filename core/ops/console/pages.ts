/**
 * The console's pages, server-rendered. Identifiers from messages are shown
 * masked (core/mask.ts); the only plain view is the audited reveal.
 */
import { rewrittenText } from '../../routes/rewrite.js';
import { hl7Tree, renderTree } from './hl7-tree.js';
import { maskId, scrubText } from '../../mask.js';
import type { AuditRow } from '../../store/audit.js';
import type { DeliveryRecord, MessageDetail, MessageSummary } from '../../store/types.js';
import type { StatsReport } from '../queries.js';
import { dayChart } from './chart.js';
import { Html, html, qs, time } from './html.js';
import { healthPanel, opsCountsView, type OpsLiveView } from './ops-pages.js';
import { tOr, type T } from './i18n.js';
import type { SegmentDefinition } from '../../sdk.js';

export interface Overview {
  /** `inactive`: why the route matches nothing (a platform the site is not connected to). */
  routes: { name: string; events: string[]; sources: string[]; ack: string; plugins: string[]; inactive?: string }[];
  listeners: { name: string; host: string; port?: number; connections: number }[];
  pending: number;
  dead: number;
  health: Record<string, unknown>;
}

/** A table in its own scrolling box: wide tables scroll inside it, never the page. */
const scroll = (table: Html) => html`<div class="scroll">${table}</div>`;

export function loginPage(t: T, configured: boolean): Html {
  if (!configured) return html`<p>${t('login.notConfigured')}</p>`;
  return html`<form class="login" data-post="/console/login">
<label>${t('login.user')} <input name="user" autocomplete="username" required></label>
<label>${t('login.password')} <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">${t('login.submit')}</button></form>`;
}

/**
 * The dashboard: counts (EngineMetrics.dashboard(), the series of /metrics), listeners,
 * routes with their operator actions, and the health panel (the /healthz body). Issue 18.
 */
export function dashboardPage(t: T, ov: Overview, live: OpsLiveView, x: { paused: ReadonlySet<string>; kafkaLag: Record<string, Record<string, number>> }): Html {
  return html`<div data-live="/console/api/live" data-interval="1000"></div>
${opsCountsView(t, ov, live, x.paused)}
<h2>${t('dash.listeners')}</h2>${scroll(html`<table><tr><th>${t('col.name')}</th><th>${t('col.address')}</th><th class="num">${t('col.connections')}</th><th class="num">${t('col.received')}</th><th class="num">${t('col.errors')}</th></tr>
${ov.listeners.map((l) => html`<tr><td>${l.name}</td><td>${l.host}:${l.port ?? ''}</td><td class="num">${l.connections}</td>
<td class="num" data-k="listeners.${l.name}.received">${live.listeners[l.name]?.received ?? 0}</td><td class="num" data-k="listeners.${l.name}.errors">${live.listeners[l.name]?.errors ?? 0}</td></tr>`)}</table>`)}
${healthPanel(t, ov.health, x.kafkaLag)}`;
}

export interface MessageQuery {
  status?: string;
  controlId?: string;
  patient?: string;
  since?: string;
  until?: string;
  before?: number;
}

export function messagesPage(t: T, q: MessageQuery, rows: MessageSummary[], pageSize: number): Html {
  const next = rows.length === pageSize ? rows[rows.length - 1]!.id : undefined;
  const sel = (v: string) => html`<option value="${v}"${q.status === v ? new Html(' selected') : ''}>${v ? tOr(t, 'status', v) : t('app.any')}</option>`;
  return html`<form class="search" method="get" action="/console/messages">
<label>${t('col.status')} <select name="status">${['', 'queued', 'done', 'dead', 'rejected'].map(sel)}</select></label>
<label>${t('msgs.controlId')} <input name="controlId" value="${q.controlId ?? ''}"></label>
<label>${t('msgs.patient')} <input name="patient" value="${q.patient ?? ''}" autocomplete="off"></label>
<label>${t('app.since')} <input name="since" type="datetime-local" value="${q.since ?? ''}"></label>
<label>${t('app.until')} <input name="until" type="datetime-local" value="${q.until ?? ''}"></label>
<button type="submit">${t('app.search')}</button></form>
${scroll(html`<table id="messages"><tr><th>${t('col.id')}</th><th>${t('col.receivedAt')}</th><th>${t('col.source')}</th><th>${t('col.sender')}</th><th>${t('col.type')}</th><th>${t('col.controlId')}</th><th>${t('col.patient')}</th><th>${t('col.ack')}</th><th>${t('col.status')}</th></tr>
${rows.map((m) => html`<tr><td><a href="/console/messages/${m.id}">${m.id}</a></td><td>${time(m.receivedAt)}</td><td>${m.source}</td><td>${m.sendingApp}/${m.sendingFacility}</td>
<td>${scrubText(m.type)}</td><td><a href="/console/messages/${m.id}">${scrubText(m.controlId)}</a>${m.controlIdReused ? html` <span class="reused" title="${t('msgs.reusedTitle')}">${t('msgs.reused')}</span>` : ''}</td><td>${maskId(m.patientId)}</td><td>${m.ackCode}</td><td class="${m.status === 'dead' ? 'bad' : ''}" data-status="${m.status}">${tOr(t, 'status', m.status)}${m.flags?.length ? html` <span class="flag" title="${t('msgs.flagTitle')}">${m.flags.join(', ')}</span>` : ''}</td></tr>`)}</table>`)}
${rows.length === 0 ? html`<p>${t('msgs.none')}</p>` : ''}
<div class="pager">${q.before !== undefined ? html`<a href="/console/messages${qs({ ...q, before: undefined })}">${t('app.newest')}</a>` : ''}
${next !== undefined ? html`<a rel="next" href="/console/messages${qs({ ...q, before: next })}">${t('app.older')}</a>` : ''}</div>`;
}

function deliveriesTable(t: T, m: MessageDetail): Html {
  return scroll(html`<table id="deliveries"><tr><th>${t('col.delivery')}</th><th>${t('col.routeStep')}</th><th>${t('col.plugin')}</th><th>${t('col.state')}</th><th class="num">${t('col.attempts')}</th><th>${t('col.lastError')}</th></tr>
${m.deliveries.map((d) => html`<tr><td>${d.id}</td><td>${d.route}#${d.step}</td><td>${d.plugin}</td><td class="${d.state === 'dead' ? 'bad' : d.state === 'done' ? 'ok' : ''}" data-state="${d.state}">${tOr(t, 'state', d.state)}</td>
<td class="num">${d.attempts}/${d.maxAttempts}</td><td>${d.lastErrorCode ?? ''} ${scrubText(d.lastError ?? '')}</td></tr>
${d.attemptLog.length ? html`<tr><td></td><td colspan="5"><table><tr><th>${t('col.at')}</th><th>${t('col.attempt')}</th><th>${t('col.outcome')}</th><th>${t('col.error')}</th><th class="num">${t('col.ms')}</th></tr>
${d.attemptLog.map((a) => html`<tr><td>${time(a.at)}</td><td>${a.attempt}</td><td>${tOr(t, 'outcome', a.outcome)}</td><td>${a.errorCode ?? ''} ${scrubText(a.reason ?? '')}</td><td class="num">${a.latencyMs ?? ''}</td></tr>`)}</table></td></tr>` : ''}`)}</table>`);
}

export function messageDetailPage(t: T, m: MessageDetail, tree: Html, segments?: ReadonlyMap<string, SegmentDefinition>): Html {
  return html`${scroll(html`<table><tr><th>${t('col.id')}</th><td>${m.id}</td><th>${t('col.receivedAt')}</th><td>${time(m.receivedAt)}</td></tr>
<tr><th>${t('col.type')}</th><td>${scrubText(m.type)}</td><th>${t('col.controlId')}</th><td id="control-id">${scrubText(m.controlId)}</td></tr>
<tr><th>${t('col.sender')}</th><td>${m.sendingApp}/${m.sendingFacility}</td><th>${t('col.source')}</th><td>${m.source}</td></tr>
<tr><th>${t('col.patient')}</th><td>${maskId(m.patientId)}</td><th>${t('col.status')}</th><td>${tOr(t, 'status', m.status)}${t('msg.ackOf', { code: m.ackCode })}</td></tr>
<tr><th>${t('col.charset')}</th><td>${m.charset}${m.flags?.length ? html` <span class="flag">${m.flags.join(', ')}</span>` : ''}</td><th>${t('col.size')}</th><td>${t('msg.bytes', { n: m.rawBytes })}</td></tr></table>`)}
<h2>${t('msg.body')}</h2>
${m.raw ? html`<p class="masked" id="notice">${t('msg.maskedNotice')}</p>
<form data-post="/console/messages/${m.id}/reveal" data-target="hl7" class="inline"><button type="submit" id="reveal">${t('msg.reveal')}</button></form>
<div id="hl7" class="scroll">${tree}</div>` : html`<p>${t('msg.purged', { time: time(m.purgedAt) })}</p>`}
${rewrittenSection(t, m, segments)}
<h2>${t('msg.deliveries')}</h2>${deliveriesTable(t, m)}`;
}

/** The message as hl7 steps rewrote it (issue 17), masked, once per distinct text, next to the stored original. */
function rewrittenSection(t: T, m: MessageDetail, segments?: ReadonlyMap<string, SegmentDefinition>): Html {
  const seen = new Map<string, string[]>();
  for (const d of m.deliveries) {
    const text = rewrittenText(d.vars);
    if (text === undefined) continue;
    const routes = seen.get(text) ?? [];
    if (!routes.includes(d.route)) routes.push(d.route);
    seen.set(text, routes);
  }
  return html`${[...seen].map(([text, routes]) => html`<h2>${t('msg.rewrittenBy', { routes: routes.join(', ') })}</h2><div class="rewritten scroll">${renderTree(hl7Tree(text, false, segments), (n) => t('tree.more', { n }))}</div>`)}`;
}

export function deadPage(t: T, rows: (DeliveryRecord & { controlId: string; type: string })[]): Html {
  return html`<p id="notice" hidden></p>
${scroll(html`<table id="dead"><tr><th>${t('col.delivery')}</th><th>${t('col.message')}</th><th>${t('col.controlId')}</th><th>${t('col.type')}</th><th>${t('col.routeStep')}</th><th>${t('col.plugin')}</th><th class="num">${t('col.attempts')}</th><th>${t('col.deadSince')}</th><th>${t('col.error')}</th><th></th></tr>
${rows.map((d) => html`<tr data-delivery="${d.id}"><td>${d.id}</td><td><a href="/console/messages/${d.messageId}">${d.messageId}</a></td><td>${scrubText(d.controlId)}</td><td>${scrubText(d.type)}</td>
<td>${d.route}#${d.step}</td><td>${d.plugin}</td><td class="num">${d.attempts}</td><td>${time(d.updatedAt)}</td><td>${d.lastErrorCode ?? ''} ${scrubText(d.lastError ?? '')}</td>
<td><form data-post="/console/dead/replay" class="inline"><input type="hidden" name="id" value="${d.id}"><button type="submit">${t('dead.replay')}</button></form></td></tr>`)}</table>`)}
${rows.length === 0 ? html`<p>${t('dead.none')}</p>` : html`<form data-post="/console/dead/replay"><input type="hidden" name="all" value="1"><button type="submit">${t('dead.replayAll')}</button></form>`}`;
}

export interface AuditQuery {
  org?: string;
  staff?: string;
  patient?: string;
  since?: string;
  before?: number;
}

export function auditPage(t: T, q: AuditQuery, rows: AuditRow[], pageSize: number): Html {
  const next = rows.length === pageSize ? rows[rows.length - 1]!.id : undefined;
  return html`<form class="search" method="get" action="/console/audit">
<label>${t('audit.org')} <input name="org" value="${q.org ?? ''}"></label><label>${t('audit.staff')} <input name="staff" value="${q.staff ?? ''}"></label>
<label>${t('audit.patient')} <input name="patient" value="${q.patient ?? ''}" autocomplete="off"></label><label>${t('app.since')} <input name="since" type="datetime-local" value="${q.since ?? ''}"></label>
<button type="submit">${t('app.search')}</button></form>
${scroll(html`<table id="audit"><tr><th>${t('col.time')}</th><th>${t('col.route')}</th><th>${t('col.plugin')}</th><th>${t('col.operation')}</th><th>${t('col.org')}</th><th>${t('col.staff')}</th><th>${t('col.client')}</th><th>${t('col.address')}</th><th>${t('col.patient')}</th><th>${t('col.result')}</th><th class="num">${t('col.ms')}</th><th>${t('col.message')}</th><th>${t('col.detail')}</th></tr>
${rows.map((r) => html`<tr><td>${time(r.at)}</td><td>${r.route ?? ''}</td><td>${r.plugin}</td><td>${r.operation}</td><td>${r.orgCode ?? ''}</td><td>${r.staffNo ?? ''}</td><td>${r.client ?? ''}</td><td>${r.address ?? ''}</td>
<td>${r.patientMasked ?? ''}</td><td class="${r.result === 'ok' ? 'ok' : r.result === 'skipped' ? '' : 'bad'}">${r.result}</td><td class="num">${r.latencyMs ?? ''}</td><td>${r.messageId ?? ''}</td><td>${r.detail ?? ''}</td></tr>`)}</table>`)}
${next !== undefined ? html`<div class="pager"><a rel="next" href="/console/audit${qs({ ...q, before: next })}">${t('app.older')}</a></div>` : ''}`;
}

export function statsPage(t: T, r: StatsReport, q: { by: string; since?: string }): Html {
  const opt = (v: string) => html`<option value="${v}"${q.by === v ? new Html(' selected') : ''}>${tOr(t, 'stats.by', v)}</option>`;
  const by = tOr(t, 'stats.by', r.by);
  return html`<form class="search" method="get" action="/console/stats"><label>${t('stats.groupBy')} <select name="by">${['org', 'route', 'operation'].map(opt)}</select></label>
<label>${t('app.since')} <input name="since" type="date" value="${q.since ?? ''}"></label><button type="submit">${t('stats.show')}</button></form>
<div class="cards"><div class="card">${t('col.calls')}<b id="total">${r.totals.total}</b></div><div class="card">${t('col.ok')}<b class="ok">${r.totals.ok}</b></div>
<div class="card">${t('col.failed')}<b class="bad">${r.totals.failed}</b></div><div class="card">${t('col.skipped')}<b>${r.totals.skipped}</b></div></div>
<h2>${t('stats.perDayChart')}</h2><div class="scroll">${dayChart(r.days, { title: t('stats.perDayChart'), ok: t('col.ok'), failed: t('col.failed') })}</div>
<h2>${t('stats.byGroup', { by })}</h2>${scroll(html`<table id="stats"><tr><th>${by}</th><th class="num">${t('col.calls')}</th><th class="num">${t('col.ok')}</th><th class="num">${t('col.failed')}</th><th class="num">${t('col.skipped')}</th></tr>
${r.groups.map((g) => html`<tr><td>${g.key}</td><td class="num">${g.total}</td><td class="num">${g.ok}</td><td class="num">${g.failed}</td><td class="num">${g.skipped}</td></tr>`)}</table>`)}
<h2>${t('stats.perDay')}</h2>${scroll(html`<table><tr><th>${t('col.day')}</th><th>${by}</th><th class="num">${t('col.calls')}</th><th class="num">${t('col.ok')}</th><th class="num">${t('col.failed')}</th></tr>
${r.byDay.map((g) => html`<tr><td>${g.day}</td><td>${g.key}</td><td class="num">${g.total}</td><td class="num">${g.ok}</td><td class="num">${g.failed}</td></tr>`)}</table>`)}`;
}
