/**
 * Route pause / resume / list for tools (issue 18), under the API gate
 * (family `routes`: `api.clients` tokens, or loopback callers only when no
 * client is configured). Each change is audited with the API client's name.
 *
 *   GET  /api/routes              every loaded route: active, paused (since, by whom) or inactive (why)
 *   POST /api/routes/NAME/pause   body optional: {"reason": "..."}; 200 {route, state, changed}
 *   POST /api/routes/NAME/resume  200 {route, state, changed}
 * An unknown NAME is 404 OPS_E_ROUTE_UNKNOWN.
 */
import type { EndpointRequest, HttpEndpoint } from '../sdk.js';
import type { Actor, OperatorActions } from './actions.js';

const JSON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

function actor(req: EndpointRequest): Actor {
  return { name: req.client ?? 'local', via: 'api', ...(req.remoteAddress ? { address: req.remoteAddress } : {}) };
}

export function routesApi(actions: OperatorActions): HttpEndpoint[] {
  return [
    { method: 'GET', path: '/api/routes', handler: async () => ({ status: 200, headers: JSON_HEADERS, body: { routes: actions.routes() } }) },
    {
      method: 'POST', path: '/api/routes/:name/pause',
      handler: async (req) => {
        const name = req.params.name ?? '';
        const b = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
        const changed = actions.pause(name, actor(req), typeof b.reason === 'string' ? b.reason : undefined);
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
