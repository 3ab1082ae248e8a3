/**
 * `http`: a generic JSON call (POST by default) with a templated body, for
 * hospital-side systems that have no plugin of their own. Non-2xx answers are
 * classified (429/5xx retryable, other 4xx permanent) for the delivery policy.
 */
import { compileTemplate, type Template, classifyHttpStatus, type PluginDefinition } from '../../core/sdk.js';

export interface HttpConfig {
  url: string;
  method?: 'GET' | 'POST' | 'PUT';
  headers?: Record<string, string>;
  /** Object whose string leaves are templates. */
  body?: unknown;
  timeoutMs?: number;
}

type Compiled = Template | Compiled[] | { [k: string]: Compiled } | number | boolean | null;

/** `"${vars.NAME}"` alone: the variable's value as it is (a map step's object or list), not its text. */
const WHOLE_VAR = /^\$\{\s*vars\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}$/;

function wholeVar(keys: string[]): Template {
  return {
    source: `\${vars.${keys.join('.')}}`,
    isConstant: false,
    render(input) {
      let cur: unknown = input.vars;
      for (const k of keys) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
      return (cur ?? '') as string;
    },
  };
}

function compileBody(v: unknown): Compiled {
  if (typeof v === 'string') {
    const whole = WHOLE_VAR.exec(v);
    return whole ? wholeVar(whole[1]!.split('.')) : compileTemplate(v);
  }
  if (Array.isArray(v)) return v.map(compileBody);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, compileBody(x)]));
  return v as Compiled;
}

function renderBody(c: Compiled, input: Parameters<Template['render']>[0]): unknown {
  if (c && typeof c === 'object' && 'render' in c && typeof c.render === 'function') return (c as Template).render(input);
  if (Array.isArray(c)) return c.map((x) => renderBody(x, input));
  if (c && typeof c === 'object') return Object.fromEntries(Object.entries(c).map(([k, x]) => [k, renderBody(x as Compiled, input)]));
  return c;
}

const plugin: PluginDefinition<HttpConfig> = {
  name: 'http',
  summary: 'Generic JSON HTTP call with a templated URL and body',
  kind: 'outbound',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', description: 'Template; http:// or https://' },
      method: { enum: ['GET', 'POST', 'PUT'] },
      headers: { type: 'object', additionalProperties: { type: 'string' } },
      body: { description: 'JSON value; string leaves are templates; a leaf that is only "${vars.NAME}" is that variable as it is (e.g. the object a map step built)' },
      timeoutMs: { type: 'integer', minimum: 1 },
    },
  },
  examples: [{ title: 'Notify a ward system', yaml: 'plugin: http\nconfig: { url: "http://ward.local/api/admit", body: { patientId: "${PID-3.1}" } }' }],
  create(ctx, config) {
    const url = compileTemplate(config.url);
    if (url.isConstant && !/^https?:\/\//.test(config.url)) throw new Error('url must start with http:// or https://');
    const headers = Object.entries(config.headers ?? {}).map(([k, v]) => [k, compileTemplate(v)] as const);
    const body = config.body === undefined ? undefined : compileBody(config.body);
    const method = config.method ?? (body === undefined ? 'GET' : 'POST');
    return {
      async process(input, call) {
        const target = new URL(url.render(input));
        const res = await ctx.http.request(target.toString(), {
          method,
          headers: { 'idempotency-key': call.idempotencyKey, ...Object.fromEntries(headers.map(([k, t]) => [k, t.render(input)])) },
          ...(body !== undefined ? { body: renderBody(body, input) } : {}),
          timeoutMs: config.timeoutMs ?? 10_000,
          target: target.host,
          signal: call.signal,
        });
        const err = classifyHttpStatus(res.status, res.headers, target.host);
        ctx.audit({ route: call.route, plugin: 'http', operation: method, result: err ? `HTTP ${res.status}` : 'ok', latencyMs: res.latencyMs, messageId: input.controlId });
        if (err) throw err;
        return { outcome: 'ok', output: { status: res.status, body: (res.json ?? res.body.toString('utf8')) as unknown } };
      },
    };
  },
};
export default plugin;
