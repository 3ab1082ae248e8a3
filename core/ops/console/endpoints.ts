/**
 * The console's HTTP endpoints under /console, mounted on the engine's HTTP
 * server. Pages need a session (else a redirect to the login page); actions
 * (POST) need a session plus its CSRF token (else 401 / 403) or a bearer
 * token. Every operator action is written to the audit trail.
 */
import { decodeHl7 } from '../../hl7/index.js';
import type { Logger } from '../../log.js';
import type { EndpointRequest, EndpointResponse, HttpEndpoint, SegmentDefinition } from '../../sdk.js';
import type { Store } from '../../store/sqlite.js';
import type { MessageStatus } from '../../store/types.js';
import type { EngineMetrics } from '../metrics.js';
import { parseTimeBound, parseTimeBounds, type OpsQueries, type StatsBy } from '../queries.js';
import { CONSOLE_CSS, CONSOLE_JS } from './assets.js';
import { parseCookies, type ConsoleAuth, type Principal } from './auth.js';
import { hl7Tree, renderTree } from './hl7-tree.js';
import { renderJsonView } from './json-view.js';
import { PAGE_HEADERS, html, layout, shanghaiInput, type Html } from './html.js';
import { DEFAULT_LANG, isLang, translator, type Lang, type T } from './i18n.js';
import type { OperatorActions } from '../actions.js';
import type { RoutePauses } from '../route-pauses.js';
import { opsConsoleEndpoints } from './ops-endpoints.js';
import { opsLiveView } from './ops-pages.js';
import {
  auditPage, dashboardPage, deadPage, loginPage, messageDetailPage, messagesPage, statsPage, type Overview,
} from './pages.js';

export interface ConsoleDeps {
  auth: ConsoleAuth;
  store: Store;
  queries: OpsQueries;
  metrics: EngineMetrics;
  log: Logger;
  overview(): Overview;
  /** Wakes the delivery workers (after a replay). */
  kick(): void;
  /** Issue 18: operator actions, paused routes and the engine's health body (the dashboard's health panel). */
  actions: OperatorActions;
  pauses: RoutePauses;
  engineHealth(): Record<string, unknown>;
  /** Site segments named in the message tree (ZCN, ZRC...). */
  segments?: ReadonlyMap<string, SegmentDefinition>;
}

const PAGE_SIZE = 50;
const STATUSES = new Set(['queued', 'done', 'dead', 'rejected']);
const JSON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

type Handler = (req: EndpointRequest, p: Principal, t: T) => Promise<EndpointResponse> | EndpointResponse;

/** Cookie remembering the language chosen before logging in (the login page); once logged in, the user's own choice (kept in the store) wins. */
export const LANG_COOKIE = 'hb_lang';

function problem(status: number, code: string, message: string): EndpointResponse {
  return { status, headers: JSON_HEADERS, body: { code, message } };
}

/** `2026-01-31T08:00` (local), an ISO time, or an age such as `24h`; undefined when empty or unreadable (the pages use parseTimeBounds and answer 400). */
export function parseWhen(v: string | undefined, now = Date.now()): number | undefined {
  try {
    return parseTimeBound('time', v, now);
  } catch {
    return undefined;
  }
}

function positiveInt(v: string | undefined): number | undefined {
  const n = Number(v);
  return v && Number.isInteger(n) && n > 0 ? n : undefined;
}

/** Time inputs of a console query read as Asia/Shanghai time (html.ts shanghaiInput). */
function shanghaiQuery(q: Record<string, string>): Record<string, string> {
  const out = { ...q };
  for (const k of ['since', 'until']) if (out[k] !== undefined) out[k] = shanghaiInput(out[k])!;
  return out;
}

export function consoleEndpoints(d: ConsoleDeps): HttpEndpoint[] {
  const prefs = d.store.pluginState('console');
  /** Each user's language, read from the store once per user. */
  const userLang = new Map<string, Lang>();

  /**
   * The language of a request: `?lang=` (remembered for the user, and in a
   * cookie for the login page), else the user's remembered choice, else
   * (not logged in) the cookie, else zh-CN. The browser's Accept-Language
   * is not read: zh-CN is the default whatever it says.
   */
  const langOf = async (req: EndpointRequest, p: Principal | undefined): Promise<{ t: T; cookie?: string }> => {
    const asked = req.query.lang;
    if (isLang(asked)) {
      if (p && userLang.get(p.user) !== asked) {
        userLang.set(p.user, asked);
        await prefs.set(`lang:${p.user}`, asked);
      }
      return { t: translator(asked), cookie: `${LANG_COOKIE}=${asked}; HttpOnly; SameSite=Strict; Path=/console; Max-Age=31536000` };
    }
    if (p) return { t: translator(await savedLang(p.user)) };
    const c = parseCookies(req.headers.cookie)[LANG_COOKIE];
    return { t: translator(isLang(c) ? c : DEFAULT_LANG) };
  };
  const savedLang = async (user: string): Promise<Lang> => {
    let l = userLang.get(user);
    if (l === undefined) {
      const stored = await prefs.get<string>(`lang:${user}`);
      l = isLang(stored) ? stored : DEFAULT_LANG;
      userLang.set(user, l);
    }
    return l;
  };
  const withCookie = (r: EndpointResponse, cookie: string | undefined): EndpointResponse =>
    cookie && !r.headers?.['set-cookie'] ? { ...r, headers: { ...(r.headers ?? {}), 'set-cookie': cookie } } : r;

  const page = (t: T, title: string, body: Html, p: Principal, active: string, req: EndpointRequest, status = 200): EndpointResponse => ({
    status,
    headers: PAGE_HEADERS,
    body: layout(title, body, { t, user: p.user, ...(p.via === 'session' ? { csrf: p.session.csrf } : {}), active, query: req.query }),
  });

  /** A page answering 400 with the reason (an unreadable since/until, an unknown status...). */
  const badQuery = (t: T, req: EndpointRequest, p: Principal, active: string, message: string): EndpointResponse =>
    page(t, t('title.badQuery'), html`<p class="bad" role="alert">OPS_E_BAD_QUERY: ${message}</p><p><a href="/console/${active}">${t('app.back')}</a></p>`, p, active, req, 400);

  /** GET pages: a visitor without a session is sent to the login page. */
  const view = (path: string, h: Handler): HttpEndpoint => ({
    method: 'GET', path,
    handler: async (req) => {
      const p = d.auth.principal(req.headers);
      if (!p) return { status: 303, headers: { location: `/console/login${isLang(req.query.lang) ? `?lang=${req.query.lang}` : ''}`, 'cache-control': 'no-store' } };
      const l = await langOf(req, p);
      return withCookie(await h(req, p, l.t), l.cookie);
    },
  });

  /** POST actions: 401 without credentials, 403 without the session's CSRF token. */
  const action = (path: string, h: Handler): HttpEndpoint => ({
    method: 'POST', path,
    handler: async (req) => {
      const p = d.auth.principal(req.headers);
      const { t } = await langOf(req, p);
      if (!p) return problem(401, 'OPS_E_UNAUTHENTICATED', t('err.unauthenticated'));
      if (!d.auth.csrfOk(p, req.headers)) return problem(403, 'OPS_E_CSRF', t('err.csrf'));
      return h(req, p, t);
    },
  });

  const body = (req: EndpointRequest): Record<string, unknown> => (req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {});

  return [
    { method: 'GET', path: '/console/assets/console.css', handler: async () => ({ status: 200, headers: { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'max-age=300' }, body: CONSOLE_CSS }) },
    { method: 'GET', path: '/console/assets/console.js', handler: async () => ({ status: 200, headers: { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=300' }, body: CONSOLE_JS }) },
    {
      method: 'GET', path: '/console',
      handler: async (req) => ({ status: 303, headers: { location: d.auth.principal(req.headers) ? '/console/dashboard' : '/console/login', 'cache-control': 'no-store' } }),
    },
    {
      method: 'GET', path: '/console/login',
      handler: async (req) => {
        const { t, cookie } = await langOf(req, undefined);
        return withCookie({ status: 200, headers: PAGE_HEADERS, body: layout(t('title.login'), loginPage(t, d.auth.configured), { t, query: req.query }) }, cookie);
      },
    },
    {
      method: 'POST', path: '/console/login',
      handler: async (req) => {
        const b = body(req);
        const { t } = await langOf(req, undefined);
        const name = typeof b.user === 'string' ? b.user.slice(0, 200) : '';
        const password = typeof b.password === 'string' ? b.password : '';
        const from = req.remoteAddress ? { address: req.remoteAddress } : {};
        const r = name && password ? d.auth.attempt(name, password, req.remoteAddress) : { ok: false as const, knownUser: false };
        if (!r.ok) {
          // The typed name is recorded only when it is a configured user: people type passwords into the name field.
          const who = r.knownUser ? { staffNo: name } : {};
          if (r.retryAfterS !== undefined) {
            d.store.audit({ plugin: 'console', operation: 'login', ...who, ...from, result: 'throttled', detail: `locked ${r.retryAfterS} s${r.knownUser ? '' : ' (unknown user)'}` });
            return { status: 429, headers: { ...JSON_HEADERS, 'retry-after': String(r.retryAfterS) }, body: { code: 'OPS_E_THROTTLED', message: t('err.throttled', { s: r.retryAfterS }) } };
          }
          d.store.audit({ plugin: 'console', operation: 'login', ...who, ...from, result: 'failed', detail: r.knownUser ? 'wrong password' : 'unknown user or wrong password' });
          return problem(401, 'OPS_E_LOGIN', t('err.login'));
        }
        const s = r.session;
        d.store.audit({ plugin: 'console', operation: 'login', staffNo: s.user, ...from, result: 'ok' });
        // A language chosen on the login page becomes the user's, unless the user already chose one.
        const before = parseCookies(req.headers.cookie)[LANG_COOKIE];
        if (isLang(before) && (await prefs.get(`lang:${s.user}`)) === undefined) {
          userLang.set(s.user, before);
          await prefs.set(`lang:${s.user}`, before);
        }
        return { status: 200, headers: { ...JSON_HEADERS, 'set-cookie': d.auth.cookie(s) }, body: { redirect: '/console/dashboard' } };
      },
    },
    action('/console/logout', async (req, p) => {
      if (p.via === 'session') {
        d.auth.logout(p.session.id);
        d.store.audit({ plugin: 'console', operation: 'logout', staffNo: p.user, ...(req.remoteAddress ? { address: req.remoteAddress } : {}), result: 'ok' });
      }
      return { status: 200, headers: { ...JSON_HEADERS, 'set-cookie': d.auth.clearCookie() }, body: { redirect: '/console/login' } };
    }),
    view('/console/dashboard', async (req, p, t) => {
      // Issue 18: counts from the /metrics series, health from the /healthz body.
      const ov = d.overview();
      const live = opsLiveView(await d.metrics.dashboard(), d.actions.windows);
      return page(t, t('title.dashboard'), dashboardPage(t, ov, live, { paused: new Set(d.pauses.names()), kafkaLag: await d.metrics.kafkaLag() }), p, 'dashboard', req);
    }),
    view('/console/api/live', async () => ({ status: 200, headers: JSON_HEADERS, body: opsLiveView(await d.metrics.dashboard(), d.actions.windows) })),
    view('/console/messages', (req, p, t) => {
      const q = req.query;
      if (q.status && !STATUSES.has(q.status)) return badQuery(t, req, p, 'messages', t('bq.status', { list: [...STATUSES].join(', ') }));
      const status = q.status || undefined;
      const before = positiveInt(q.before);
      if (q.before && before === undefined) return badQuery(t, req, p, 'messages', t('bq.beforeMessage'));
      let since: number | undefined;
      let until: number | undefined;
      try {
        ({ since, until } = parseTimeBounds(shanghaiQuery(q)));
      } catch (e) {
        return badQuery(t, req, p, 'messages', t('bq.time', { detail: (e as Error).message }));
      }
      const rows = d.store.searchMessages({
        limit: PAGE_SIZE,
        ...(status ? { status: status as MessageStatus } : {}),
        ...(q.controlId ? { controlId: q.controlId.trim() } : {}),
        ...(q.patient ? { patientId: q.patient.trim() } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        ...(before !== undefined ? { before } : {}),
      });
      const shown = { ...(status ? { status } : {}), ...(q.controlId ? { controlId: q.controlId } : {}), ...(q.patient ? { patient: q.patient } : {}), ...(q.since ? { since: q.since } : {}), ...(q.until ? { until: q.until } : {}), ...(before !== undefined ? { before } : {}) };
      return page(t, t('title.messages'), messagesPage(t, shown, rows, PAGE_SIZE), p, 'messages', req);
    }),
    view('/console/messages/:id', (req, p, t) => {
      const id = positiveInt(req.params.id);
      const m = id === undefined ? undefined : d.store.getMessage(id);
      if (!m) return page(t, t('title.messageNotFound'), html`<p>${t('msg.notFound', { id: req.params.id ?? '' })}</p>`, p, 'messages', req, 404);
      // A JSON event is shown pretty-printed, an HL7 message as its segment tree; both masked.
      const tree = m.raw ? (m.format === 'json' ? renderJsonView(m.raw) : renderTree(hl7Tree(decodeHl7(m.raw, m.charset, m.charset).text, false, d.segments), (n) => t('tree.more', { n }))) : undefined;
      return page(t, t('title.message', { id: m.id }), messageDetailPage(t, m, tree ?? html``, d.segments), p, 'messages', req);
    }),
    action('/console/messages/:id/reveal', (req, p, t) => {
      const id = positiveInt(req.params.id);
      const m = id === undefined ? undefined : d.store.getMessage(id);
      if (!m || !m.raw) return problem(404, 'STORE_E_NOT_FOUND', t('err.notFound'));
      d.store.audit({ plugin: 'console', operation: 'reveal', staffNo: p.user, ...(m.patientId ? { patientId: m.patientId } : {}), messageId: String(m.id), result: 'ok', detail: `message ${m.id} ${m.type}` });
      d.log.info({ operator: p.user, messageId: m.id }, 'console: identifiers revealed');
      const shown = m.format === 'json' ? renderJsonView(m.raw, true) : renderTree(hl7Tree(decodeHl7(m.raw, m.charset, m.charset).text, true, d.segments), (n) => t('tree.more', { n }));
      return { status: 200, headers: JSON_HEADERS, body: { html: shown.value, notice: t('msg.revealed') } };
    }),
    view('/console/dead', (req, p, t) => page(t, t('title.dead'), deadPage(t, d.store.listDead({ limit: 200 })), p, 'dead', req)),
    action('/console/dead/replay', (req, p, t) => {
      const b = body(req);
      const id = positiveInt(typeof b.id === 'string' || typeof b.id === 'number' ? String(b.id) : undefined);
      const all = b.all === '1' || b.all === true;
      if (id === undefined && !all) return problem(400, 'HTTP_E_BAD_REQUEST', t('err.replayWhat'));
      const messageId = id !== undefined ? d.queries.messageOfDelivery(id) : undefined;
      const n = d.store.requeue(id !== undefined ? { ids: [id] } : { all: true });
      d.store.audit({ plugin: 'console', operation: 'dlq-replay', staffNo: p.user, result: n > 0 ? 'ok' : 'skipped', detail: `${n} requeued (${id !== undefined ? `delivery ${id}` : 'all'})`, ...(messageId !== undefined ? { messageId: String(messageId) } : {}) });
      d.metrics.onReplay('console', n);
      d.log.info({ operator: p.user, requeued: n }, 'console: dead letters replayed');
      d.kick();
      if (n === 0) return problem(409, 'OPS_E_NOT_DEAD', t('err.notDead'));
      return { status: 200, headers: JSON_HEADERS, body: { requeued: n, notice: t('dead.requeued', { n }), redirect: messageId !== undefined ? `/console/messages/${messageId}` : '/console/dead' } };
    }),
    view('/console/audit', (req, p, t) => {
      const q = req.query;
      const before = positiveInt(q.before);
      if (q.before && before === undefined) return badQuery(t, req, p, 'audit', t('bq.beforeAudit'));
      let since: number | undefined;
      let until: number | undefined;
      try {
        ({ since, until } = parseTimeBounds(shanghaiQuery(q)));
      } catch (e) {
        return badQuery(t, req, p, 'audit', t('bq.time', { detail: (e as Error).message }));
      }
      const rows = d.queries.auditPage({
        limit: PAGE_SIZE,
        ...(q.org ? { orgCode: q.org } : {}),
        ...(q.staff ? { staffNo: q.staff } : {}),
        ...(q.patient ? { patientId: q.patient.trim() } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        ...(before !== undefined ? { before } : {}),
      });
      if (q.patient) d.store.audit({ plugin: 'console', operation: 'audit-search-patient', staffNo: p.user, patientId: q.patient.trim(), result: 'ok' });
      return page(t, t('title.audit'), auditPage(t, { ...(q.org ? { org: q.org } : {}), ...(q.staff ? { staff: q.staff } : {}), ...(q.patient ? { patient: q.patient } : {}), ...(q.since ? { since: q.since } : {}) }, rows, PAGE_SIZE), p, 'audit', req);
    }),
    view('/console/stats', (req, p, t) => {
      if (req.query.by && !['org', 'route', 'operation'].includes(req.query.by)) return badQuery(t, req, p, 'stats', t('bq.by'));
      const by = (req.query.by || 'org') as StatsBy;
      let bounds: { since?: number; until?: number };
      try {
        bounds = parseTimeBounds(shanghaiQuery(req.query));
      } catch (e) {
        return badQuery(t, req, p, 'stats', t('bq.time', { detail: (e as Error).message }));
      }
      const report = d.queries.stats(by, bounds);
      return page(t, t('title.stats'), statsPage(t, report, { by, ...(req.query.since ? { since: req.query.since } : {}) }), p, 'stats', req);
    }),
    ...opsConsoleEndpoints(d.actions, { view, action, page, body }),
  ];
}
