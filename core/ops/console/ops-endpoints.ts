/**
 * Console endpoints of issue 18's operator actions. Pages need a session;
 * every action is a POST behind the session's CSRF token (the `view` and
 * `action` wrappers of endpoints.ts) and is audited by OperatorActions.
 *
 *   POST /console/routes/NAME/pause | resume | reset-stats
 *   GET  /console/search?path=PID-5.1&op=equals|contains&value=..&since=..&until=..
 *   GET  /console/replay?<same filters, or since/until/status/route>   the confirm step: how many match
 *   POST /console/replay  {filters..., confirm: N}   409 OPS_E_REPLAY_CONFIRM unless N is the count now
 */
import { hbError, isHisbridgeError } from '../../errors.js';
import type { EndpointRequest, EndpointResponse, HttpEndpoint } from '../../sdk.js';
import type { MessageStatus } from '../../store/types.js';
import type { Actor, OperatorActions, ReplaySelection } from '../actions.js';
import type { ContentOp } from '../content-search.js';
import { parseTimeBounds } from '../queries.js';
import type { Principal } from './auth.js';
import type { Key, T } from './i18n.js';
import { html, shanghaiInput, type Html } from './html.js';
import { replayPage, searchPage, type SearchForm } from './ops-pages.js';

type Handler = (req: EndpointRequest, p: Principal, t: T) => Promise<EndpointResponse> | EndpointResponse;

/** The wrappers and helpers of consoleEndpoints that these endpoints share. */
export interface ConsoleKit {
  view(path: string, h: Handler): HttpEndpoint;
  action(path: string, h: Handler): HttpEndpoint;
  page(t: T, title: string, body: Html, p: Principal, active: string, req: EndpointRequest, status?: number): EndpointResponse;
  body(req: EndpointRequest): Record<string, unknown>;
}

const JSON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
const STATUSES = new Set(['queued', 'done', 'dead', 'rejected']);
/** Default window of a content search without since: the last 24 hours. */
const DEFAULT_WINDOW_MS = 24 * 3_600_000;

/** Codes these endpoints answer with, each with a translated message (the English text of the code is its detail). */
const ERROR_KEYS = {
  OPS_E_BAD_QUERY: 'ops.err.badQuery', OPS_E_ROUTE_UNKNOWN: 'ops.err.routeUnknown', OPS_E_ROUTE_ON_COMPLETE: 'ops.err.routeOnComplete',
  OPS_E_REPLAY_CONFIRM: 'ops.err.replayConfirm', OPS_E_REPLAY_TOO_MANY: 'ops.err.replayTooMany', OPS_E_SEARCH_WINDOW: 'ops.err.searchWindow',
} as const satisfies Record<string, Key>;

/** `CODE: message` in the user's language; the code stays as it is. */
export function errorMessage(t: T, e: { code: string; message: string }): string {
  const key = (ERROR_KEYS as Record<string, Key>)[e.code];
  return `${e.code}: ${key ? t(key, { detail: e.message }) : e.message}`;
}

function failure(t: T, e: unknown): EndpointResponse {
  if (isHisbridgeError(e)) return { status: e.status ?? 400, headers: JSON_HEADERS, body: { code: e.code, message: errorMessage(t, e) } };
  throw e;
}

const actorOf = (req: EndpointRequest, p: Principal): Actor => ({ name: p.user, via: 'console', ...(req.remoteAddress ? { address: req.remoteAddress } : {}) });

/** Reads a replay selection from query or body strings; throws OPS_E_BAD_QUERY on a bad one. */
function selection(q: Record<string, unknown>): { sel: ReplaySelection; shown: Record<string, string> } {
  const str = (k: string) => (typeof q[k] === 'string' && (q[k] as string).trim() ? (q[k] as string).trim() : undefined);
  // Typed times are Asia/Shanghai time, as in the other console forms.
  const { since, until } = parseTimeBounds({ since: shanghaiInput(str('since')), until: shanghaiInput(str('until')) });
  const status = str('status');
  if (status && !STATUSES.has(status)) throw hbError('OPS_E_BAD_QUERY', { detail: `status must be one of ${[...STATUSES].join(', ')}` });
  const shown: Record<string, string> = {};
  for (const k of ['since', 'until', 'status', 'route', 'path', 'op', 'value']) if (str(k)) shown[k] = str(k)!;
  return {
    sel: {
      ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}), ...(status ? { status: status as MessageStatus } : {}),
      ...(str('route') ? { route: str('route')! } : {}), ...(str('path') ? { path: str('path')!, op: (str('op') ?? 'equals') as ContentOp, value: str('value') ?? '' } : {}),
    },
    shown,
  };
}

export function opsConsoleEndpoints(actions: OperatorActions, kit: ConsoleKit): HttpEndpoint[] {
  const routeAction = (verb: 'pause' | 'resume' | 'reset-stats') => kit.action(`/console/routes/:name/${verb}`, async (req, p, t) => {
    const name = req.params.name ?? '';
    try {
      const by = actorOf(req, p);
      if (verb === 'pause') actions.pause(name, by, typeof kit.body(req).reason === 'string' ? (kit.body(req).reason as string) : undefined);
      else if (verb === 'resume') actions.resume(name, by);
      else await actions.resetStats(name, by);
    } catch (e) {
      return failure(t, e);
    }
    return { status: 200, headers: JSON_HEADERS, body: { route: name, done: verb, redirect: '/console/dashboard' } };
  });

  return [
    routeAction('pause'),
    routeAction('resume'),
    routeAction('reset-stats'),
    kit.view('/console/search', (req, p, t) => {
      const q = req.query;
      const form: SearchForm = { ...(q.path ? { path: q.path } : {}), ...(q.op ? { op: q.op } : {}), ...(q.value ? { value: q.value } : {}), ...(q.since ? { since: q.since } : {}), ...(q.until ? { until: q.until } : {}) };
      if (!q.path && !q.value) return kit.page(t, t('ops.search'), searchPage(t, form, undefined), p, 'search', req);
      try {
        const b = parseTimeBounds({ since: shanghaiInput(q.since || undefined), until: shanghaiInput(q.until || undefined) });
        const until = b.until ?? Date.now() + 1;
        const since = b.since ?? until - DEFAULT_WINDOW_MS;
        const result = actions.search({ path: q.path ?? '', op: (q.op || 'equals') as ContentOp, value: q.value ?? '', since, until, limit: 50 });
        return kit.page(t, t('ops.search'), searchPage(t, form, result), p, 'search', req);
      } catch (e) {
        if (!isHisbridgeError(e)) throw e;
        return kit.page(t, t('ops.search'), html`<p class="bad" role="alert" id="search-error" data-code="${e.code}">${errorMessage(t, e)}</p>${searchPage(t, form, undefined)}`, p, 'search', req, e.status ?? 400);
      }
    }),
    kit.view('/console/replay', (req, p, t) => {
      try {
        const { sel, shown } = selection(req.query);
        return kit.page(t, t('ops.replayTitle'), replayPage(t, shown, actions.replayCount(sel)), p, 'search', req);
      } catch (e) {
        if (!isHisbridgeError(e)) throw e;
        return kit.page(t, t('ops.replayTitle'), html`<p class="bad" role="alert" data-code="${e.code}">${errorMessage(t, e)}</p>`, p, 'search', req, e.status ?? 400);
      }
    }),
    kit.action('/console/replay', (req, p, t) => {
      const b = kit.body(req);
      try {
        const { sel } = selection(b);
        const c = b.confirm === undefined || b.confirm === '' ? undefined : Number(b.confirm);
        const r = actions.replay(sel, Number.isInteger(c) ? c : undefined, actorOf(req, p));
        return { status: 200, headers: JSON_HEADERS, body: { ...r, notice: t('ops.replayed', { messages: r.messages, requeued: r.requeued }), redirect: '/console/dashboard' } };
      } catch (e) {
        return failure(t, e);
      }
    }),
  ];
}
