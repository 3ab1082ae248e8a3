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
import { healthPanel, opsCountsView, opsLabels, type OpsLiveView } from './ops-pages.js';

export interface Overview {
  /** `inactive`: why the route matches nothing (a platform the site is not connected to). */
  routes: { name: string; events: string[]; sources: string[]; ack: string; plugins: string[]; inactive?: string }[];
  listeners: { name: string; host: string; port?: number; connections: number }[];
  pending: number;
  dead: number;
  health: Record<string, unknown>;
}

export function loginPage(configured: boolean): Html {
  if (!configured) {
    return html`<p>No console user or token is configured. Add <code>console.users</code> (with a scrypt <code>passwordHash</code>) or <code>console.token</code> to hisbridge.yaml; see docs/operations.md.</p>`;
  }
  return html`<form class="login" data-post="/console/login">
<label>User <input name="user" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button></form>`;
}

/**
 * The dashboard: counts (EngineMetrics.dashboard(), the series of /metrics), listeners,
 * routes with their operator actions, and the health panel (the /healthz body). Issue 18.
 */
export function dashboardPage(ov: Overview, live: OpsLiveView, x: { paused: ReadonlySet<string>; lang?: string; kafkaLag: Record<string, Record<string, number>> }): Html {
  const L = opsLabels(x.lang);
  return html`<div data-live="/console/api/live" data-interval="1000"></div>
${opsCountsView(ov, live, x.paused, L)}
<h2>${L.listeners}</h2><div class="scroll"><table><tr><th>${L.listener}</th><th>${L.target}</th><th class="num">${L.connections}</th><th class="num">${L.received}</th><th class="num">${L.errors}</th></tr>
${ov.listeners.map((l) => html`<tr><td>${l.name}</td><td>${l.host}:${l.port ?? ''}</td><td class="num">${l.connections}</td>
<td class="num" data-k="listeners.${l.name}.received">${live.listeners[l.name]?.received ?? 0}</td><td class="num" data-k="listeners.${l.name}.errors">${live.listeners[l.name]?.errors ?? 0}</td></tr>`)}</table></div>
${healthPanel(ov.health, x.kafkaLag, L)}`;
}

export interface MessageQuery {
  status?: string;
  controlId?: string;
  patient?: string;
  since?: string;
  until?: string;
  before?: number;
}

export function messagesPage(q: MessageQuery, rows: MessageSummary[], pageSize: number): Html {
  const next = rows.length === pageSize ? rows[rows.length - 1]!.id : undefined;
  const sel = (v: string) => html`<option value="${v}"${q.status === v ? new Html(' selected') : ''}>${v || 'any'}</option>`;
  return html`<form class="search" method="get" action="/console/messages">
<label>Status <select name="status">${['', 'queued', 'done', 'dead', 'rejected'].map(sel)}</select></label>
<label>Control id (MSH-10) <input name="controlId" value="${q.controlId ?? ''}"></label>
<label>Patient id or ID number <input name="patient" value="${q.patient ?? ''}" autocomplete="off"></label>
<label>Since <input name="since" type="datetime-local" value="${q.since ?? ''}"></label>
<label>Until <input name="until" type="datetime-local" value="${q.until ?? ''}"></label>
<button type="submit">Search</button></form>
<table id="messages"><tr><th>Id</th><th>Received</th><th>Source</th><th>Sender</th><th>Type</th><th>Control id</th><th>Patient</th><th>ACK</th><th>Status</th></tr>
${rows.map((m) => html`<tr><td><a href="/console/messages/${m.id}">${m.id}</a></td><td>${time(m.receivedAt)}</td><td>${m.source}</td><td>${m.sendingApp}/${m.sendingFacility}</td>
<td>${scrubText(m.type)}</td><td><a href="/console/messages/${m.id}">${scrubText(m.controlId)}</a>${m.controlIdReused ? html` <span class="reused" title="this control id was accepted before with other content: stored and routed as a new message">reused id</span>` : ''}</td><td>${maskId(m.patientId)}</td><td>${m.ackCode}</td><td class="${m.status === 'dead' ? 'bad' : ''}">${m.status}${m.flags?.length ? html` <span class="flag" title="marked at receipt">${m.flags.join(', ')}</span>` : ''}</td></tr>`)}</table>
${rows.length === 0 ? html`<p>No messages match.</p>` : ''}
<div class="pager">${q.before !== undefined ? html`<a href="/console/messages${qs({ ...q, before: undefined })}">Newest</a>` : ''}
${next !== undefined ? html`<a rel="next" href="/console/messages${qs({ ...q, before: next })}">Older →</a>` : ''}</div>`;
}

function deliveriesTable(m: MessageDetail): Html {
  return html`<table><tr><th>Delivery</th><th>Route#step</th><th>Plugin</th><th>State</th><th class="num">Attempts</th><th>Last error</th></tr>
${m.deliveries.map((d) => html`<tr><td>${d.id}</td><td>${d.route}#${d.step}</td><td>${d.plugin}</td><td class="${d.state === 'dead' ? 'bad' : d.state === 'done' ? 'ok' : ''}">${d.state}</td>
<td class="num">${d.attempts}/${d.maxAttempts}</td><td>${d.lastErrorCode ?? ''} ${scrubText(d.lastError ?? '')}</td></tr>
${d.attemptLog.length ? html`<tr><td></td><td colspan="5"><table><tr><th>At</th><th>#</th><th>Outcome</th><th>Error</th><th class="num">ms</th></tr>
${d.attemptLog.map((a) => html`<tr><td>${time(a.at)}</td><td>${a.attempt}</td><td>${a.outcome}</td><td>${a.errorCode ?? ''} ${scrubText(a.reason ?? '')}</td><td class="num">${a.latencyMs ?? ''}</td></tr>`)}</table></td></tr>` : ''}`)}</table>`;
}

export function messageDetailPage(m: MessageDetail, tree: Html): Html {
  return html`<table><tr><th>Id</th><td>${m.id}</td><th>Received</th><td>${time(m.receivedAt)}</td></tr>
<tr><th>Type</th><td>${scrubText(m.type)}</td><th>Control id</th><td id="control-id">${scrubText(m.controlId)}</td></tr>
<tr><th>Sender</th><td>${m.sendingApp}/${m.sendingFacility}</td><th>Source</th><td>${m.source}</td></tr>
<tr><th>Patient</th><td>${maskId(m.patientId)}</td><th>Status</th><td>${m.status} (ACK ${m.ackCode})</td></tr>
<tr><th>Charset</th><td>${m.charset}${m.flags?.length ? html` <span class="flag">${m.flags.join(', ')}</span>` : ''}</td><th>Size</th><td>${m.rawBytes} bytes</td></tr></table>
<h2>Message</h2>
${m.raw ? html`<p class="masked" id="notice">Identifiers are masked. Revealing them is recorded in the audit trail with your name.</p>
<form data-post="/console/messages/${m.id}/reveal" data-target="hl7" class="inline"><button type="submit" id="reveal">Reveal identifiers</button></form>
<div id="hl7">${tree}</div>` : html`<p>The body was removed by retention on ${time(m.purgedAt)}.</p>`}
${rewrittenSection(m)}
<h2>Deliveries</h2>${deliveriesTable(m)}`;
}

/** The message as hl7 steps rewrote it (issue 17), masked, once per distinct text, next to the stored original. */
function rewrittenSection(m: MessageDetail): Html {
  const seen = new Map<string, string[]>();
  for (const d of m.deliveries) {
    const text = rewrittenText(d.vars);
    if (text === undefined) continue;
    const routes = seen.get(text) ?? [];
    if (!routes.includes(d.route)) routes.push(d.route);
    seen.set(text, routes);
  }
  return html`${[...seen].map(([text, routes]) => html`<h2>Rewritten by ${routes.join(', ')}</h2><div class="rewritten">${renderTree(hl7Tree(text))}</div>`)}`;
}

export function deadPage(rows: (DeliveryRecord & { controlId: string; type: string })[]): Html {
  return html`<p id="notice" hidden></p>
<table id="dead"><tr><th>Delivery</th><th>Message</th><th>Control id</th><th>Type</th><th>Route#step</th><th>Plugin</th><th class="num">Attempts</th><th>Dead since</th><th>Error</th><th></th></tr>
${rows.map((d) => html`<tr data-delivery="${d.id}"><td>${d.id}</td><td><a href="/console/messages/${d.messageId}">${d.messageId}</a></td><td>${scrubText(d.controlId)}</td><td>${scrubText(d.type)}</td>
<td>${d.route}#${d.step}</td><td>${d.plugin}</td><td class="num">${d.attempts}</td><td>${time(d.updatedAt)}</td><td>${d.lastErrorCode ?? ''} ${scrubText(d.lastError ?? '')}</td>
<td><form data-post="/console/dead/replay" class="inline"><input type="hidden" name="id" value="${d.id}"><button type="submit">Replay</button></form></td></tr>`)}</table>
${rows.length === 0 ? html`<p>No dead letters.</p>` : html`<form data-post="/console/dead/replay"><input type="hidden" name="all" value="1"><button type="submit">Replay all</button></form>`}`;
}

export interface AuditQuery {
  org?: string;
  staff?: string;
  patient?: string;
  since?: string;
  before?: number;
}

export function auditPage(q: AuditQuery, rows: AuditRow[], pageSize: number): Html {
  const next = rows.length === pageSize ? rows[rows.length - 1]!.id : undefined;
  return html`<form class="search" method="get" action="/console/audit">
<label>Institution (orgCode) <input name="org" value="${q.org ?? ''}"></label><label>Staff no <input name="staff" value="${q.staff ?? ''}"></label>
<label>Patient id <input name="patient" value="${q.patient ?? ''}" autocomplete="off"></label><label>Since <input name="since" type="datetime-local" value="${q.since ?? ''}"></label>
<button type="submit">Search</button></form>
<table id="audit"><tr><th>Time</th><th>Route</th><th>Plugin</th><th>Operation</th><th>Org</th><th>Staff</th><th>Client</th><th>Address</th><th>Patient</th><th>Result</th><th class="num">ms</th><th>Message</th><th>Detail</th></tr>
${rows.map((r) => html`<tr><td>${time(r.at)}</td><td>${r.route ?? ''}</td><td>${r.plugin}</td><td>${r.operation}</td><td>${r.orgCode ?? ''}</td><td>${r.staffNo ?? ''}</td><td>${r.client ?? ''}</td><td>${r.address ?? ''}</td>
<td>${r.patientMasked ?? ''}</td><td class="${r.result === 'ok' ? 'ok' : r.result === 'skipped' ? '' : 'bad'}">${r.result}</td><td class="num">${r.latencyMs ?? ''}</td><td>${r.messageId ?? ''}</td><td>${r.detail ?? ''}</td></tr>`)}</table>
${next !== undefined ? html`<div class="pager"><a rel="next" href="/console/audit${qs({ ...q, before: next })}">Older →</a></div>` : ''}`;
}

export function statsPage(r: StatsReport, q: { by: string; since?: string }): Html {
  const opt = (v: string) => html`<option value="${v}"${q.by === v ? new Html(' selected') : ''}>${v}</option>`;
  return html`<form class="search" method="get" action="/console/stats"><label>Group by <select name="by">${['org', 'route', 'operation'].map(opt)}</select></label>
<label>Since <input name="since" type="date" value="${q.since ?? ''}"></label><button type="submit">Show</button></form>
<div class="cards"><div class="card">Calls<b id="total">${r.totals.total}</b></div><div class="card">OK<b class="ok">${r.totals.ok}</b></div>
<div class="card">Failed<b class="bad">${r.totals.failed}</b></div><div class="card">Skipped<b>${r.totals.skipped}</b></div></div>
<h2>Calls per day</h2>${dayChart(r.days)}
<h2>By ${r.by}</h2><table id="stats"><tr><th>${r.by}</th><th class="num">Calls</th><th class="num">OK</th><th class="num">Failed</th><th class="num">Skipped</th></tr>
${r.groups.map((g) => html`<tr><td>${g.key}</td><td class="num">${g.total}</td><td class="num">${g.ok}</td><td class="num">${g.failed}</td><td class="num">${g.skipped}</td></tr>`)}</table>
<h2>Per day</h2><table><tr><th>Day</th><th>${r.by}</th><th class="num">Calls</th><th class="num">OK</th><th class="num">Failed</th></tr>
${r.byDay.map((g) => html`<tr><td>${g.day}</td><td>${g.key}</td><td class="num">${g.total}</td><td class="num">${g.ok}</td><td class="num">${g.failed}</td></tr>`)}</table>`;
}
