/**
 * Route pause / resume / list for tools (issue 18), under the API gate
 * (family `routes`: `api.clients` tokens, or loopback callers only when no
 * client is configured). Each change is audited with the API client's name.
 *
 *   GET  /api/routes              every loaded route: active, paused (since, by whom) or inactive (why)
 *   POST /api/routes/NAME/pause   body optional: {"reason": "..."}; 200 {route, state, changed};
 *                                 a body that is not a JSON object, or whose reason is not a string, is 400 HTTP_E_BAD_REQUEST
 *   POST /api/routes/NAME/resume  200 {route, state, changed}
 * An unknown NAME is 404 OPS_E_ROUTE_UNKNOWN.
 */
import { hbError, type EndpointRequest, type HttpEndpoint } from '../sdk.js';
import type { Actor, OperatorActions } from './actions.js';

const JSON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

function actor(req: EndpointRequest): Actor {
  return { name: req.client ?? 'local', via: 'api', ...(req.remoteAddress ? { address: req.remoteAddress } : {}) };
}

/** The reason of a pause body: none for an empty body; refuses (400) a body that is not an object or a reason that is not a string, rather than pausing without the reason the caller meant to give. */
function pauseReason(body: unknown): string | undefined {
  if (body === undefined) return undefined;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw hbError('HTTP_E_BAD_REQUEST', { detail: 'the pause body must be a JSON object: {"reason": "..."} or {}' });
  const reason = (body as Record<string, unknown>).reason;
  if (reason !== undefined && typeof reason !== 'string') throw hbError('HTTP_E_BAD_REQUEST', { detail: 'reason must be a string' });
  return reason;
}

export function routesApi(actions: OperatorActions): HttpEndpoint[] {
  return [
    { method: 'GET', path: '/api/routes', handler: async () => ({ status: 200, headers: JSON_HEADERS, body: { routes: actions.routes() } }) },
    {
      method: 'POST', path: '/api/routes/:name/pause',
      handler: async (req) => {
        const name = req.params.name ?? '';
        const changed = actions.pause(name, actor(req), pauseReason(req.body));
        return { status: 200, headers: JSON_HEADERS, body: { route: name, state: 'paused', changed } };
      },
    },
    {
      method: 'POST', path: '/api/routes/:name/resume',
      handler: async (req) => {
        const name = req.params.name ?? '';
        const changed = actions.resume(name, actor(req));
        return { status: 200, headers: JSON_HEADERS, body: { route: name, state: 'active', changed } };
      },
    },
  ];
}
