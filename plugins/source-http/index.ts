/**
 * `http` source: HL7 v2 over HTTP (as in HAPI's HL7-over-HTTP), for a HIS
 * that posts messages instead of holding an MLLP connection (issue 13).
 *
 * ```yaml
 * listeners:
 *   - { name: his-http, type: http, path: /hl7/his }
 * ```
 *
 * The endpoint is mounted on the engine's HTTP server behind the `api.clients`
 * gate under the family `hl7`. A POST carries one message, several messages,
 * or an FHS/BHS batch, as `application/hl7-v2`, `x-application/hl7-v2+er7` or
 * `text/plain`. The answer is 200 with the ACK(s) as the body, whatever the ACK
 * code: the ACK says whether the message was accepted. See README.md.
 */
import { normalizeCharset, readMsh18, type CanonicalCharset } from '../../core/hl7/index.js';
import type { IngestOutcome, JsonSchema, RunningSource, SourceDefinition, SourceHttpEndpoint } from '../../core/sdk.js';

export interface HttpSourceConfig {
  name: string;
  type: 'http';
  path: string;
  charset?: string;
  maxBodyBytes?: number;
  noRoute?: 'AA' | 'AR';
  invalidBytes?: 'reject' | 'replace';
  multiMessageBlocks?: 'split' | 'reject';
  event?: string;
}

/** Default body cap: the same as an MLLP frame (16 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Largest `maxBodyBytes` accepted: the whole body is held in memory. */
export const MAX_MAX_BODY_BYTES = 256 * 1024 * 1024;
/** Seconds a client is told to wait (Retry-After) while the engine is paused or stopping. */
const RETRY_AFTER_S = 5;

/** The media types taken, lower case. */
export const HL7_MEDIA_TYPES = ['application/hl7-v2', 'x-application/hl7-v2+er7', 'text/plain'] as const;

export const configSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'path'],
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9-]*$', description: 'Name routes use in `sources:`' },
    type: { const: 'http', description: 'HL7 v2 over HTTP, mounted on the engine HTTP server' },
    path: {
      type: 'string',
      maxLength: 200,
      // Segments of letters, digits and . _ ~ - (not starting with a dot); not under the engine's own paths.
      pattern: '^/(?!(api|console|healthz|readyz|metrics)(/|$))[A-Za-z0-9_~-][A-Za-z0-9._~-]*(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*$',
      description: 'Path the HIS posts to, e.g. /hl7/his; not under /api, /console, /healthz, /readyz or /metrics',
    },
    charset: { type: 'string', description: 'Charset for bodies whose Content-Type and MSH-18 name none (default gb18030)' },
    maxBodyBytes: { type: 'integer', minimum: 1024, maximum: MAX_MAX_BODY_BYTES, description: 'Largest accepted body; larger ones get 413 HTTP_E_TOO_LARGE (default 16 MiB)' },
    noRoute: { enum: ['AA', 'AR'], description: 'ACK for a message no route accepts (default AA: accepted and ignored)' },
    invalidBytes: { enum: ['reject', 'replace'], description: 'Bytes invalid in the charset: reject answers AE with ERR-3 102 (default); replace keeps them as U+FFFD and marks the message' },
    multiMessageBlocks: { enum: ['split', 'reject'], description: 'Several loose messages in one body: split processes each, ACKs concatenated in order (default); reject answers AR to each. Batches are always processed.' },
    event: { type: 'string', minLength: 1, description: 'Reserved for JSON bodies (application/json with this event type); not supported yet: setting it is refused at start' },
  },
};

/** Media type (lower case) and parameters (names lower case, quotes removed) of a Content-Type header. */
export function parseContentType(header: string | undefined): { type: string; params: Record<string, string> } {
  const parts = (header ?? '').slice(0, 1024).split(';');
  const params: Record<string, string> = {};
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const k = p.slice(0, eq).trim().toLowerCase();
    let v = p.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    if (k && !(k in params)) params[k] = v;
  }
  return { type: parts[0]!.trim().toLowerCase(), params };
}

/** The name for a Content-Type charset parameter of bytes encoded in `cs` (ASCII is encoded as UTF-8). */
function httpCharset(cs: CanonicalCharset): string {
  return cs === 'gb18030' ? 'gb18030' : cs === 'latin1' ? 'iso-8859-1' : 'utf-8';
}

/** Where the first MSH segment starts (at the start or after CR/LF), or -1. Linear. */
function firstMsh(body: Buffer): number {
  for (let p = body.indexOf('MSH'); p >= 0; p = body.indexOf('MSH', p + 3)) {
    if (p === 0 || body[p - 1] === 0x0d || body[p - 1] === 0x0a || (p === 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf)) return p;
  }
  return -1;
}

/**
 * The charset the ACKs are in: the header's, else the first message's MSH-18,
 * else the listener default. An MSH-18 the engine does not know makes it
 * refuse the message with an ACK in ISO 8859-1.
 */
export function replyCharset(body: Buffer, declared: string | undefined, fallback: string): string {
  if (declared) return httpCharset(normalizeCharset(declared, fallback));
  const at = firstMsh(body);
  const msh18 = at >= 0 ? readMsh18(body.subarray(at)) : undefined;
  try {
    return httpCharset(normalizeCharset(msh18, fallback));
  } catch {
    return 'iso-8859-1';
  }
}

function problem(status: number, code: string, message: string, headers: Record<string, string> = {}) {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify({ code, message }) };
}

/** True when the body holds nothing but whitespace (and MLLP-style framing bytes some senders leave in). */
function blank(body: Buffer): boolean {
  for (let i = 0; i < body.length; i++) {
    const b = body[i]!;
    if (!(b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a || b === 0x0b || b === 0x1c)) return false;
  }
  return true;
}

const source: SourceDefinition<HttpSourceConfig> = {
  type: 'http',
  summary: 'HL7 v2 over HTTP: POST messages or batches to a path on the engine HTTP server, behind api.clients (family hl7); the ACK is the answer',
  configSchema,
  async start(ctx, _submit): Promise<RunningSource> {
    const cfg = ctx.config;
    const name = cfg.name;
    if (!ctx.mountHttp) throw new Error(`listener ${name} (type http) needs the engine HTTP server, but http.enabled is false`);
    if (cfg.event !== undefined) throw new Error(`listener ${name}: event: (JSON bodies) is not supported by the http source yet; remove it`);
    const fallback = cfg.charset ?? 'gb18030';
    try {
      normalizeCharset(fallback, fallback);
    } catch {
      throw new Error(`listener ${name}: charset "${fallback.slice(0, 40)}" is not a known HL7 charset (gb18030, GBK, UTF-8, ...)`);
    }
    const maxBodyBytes = cfg.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    let closing = false;
    const inFlight = new Set<Promise<unknown>>();

    const handle: SourceHttpEndpoint['handler'] = async (req) => {
      if (closing || ctx.signal.aborted) return problem(503, 'ENGINE_E_SHUTTING_DOWN', `listener ${name} is stopping; send again later`, { 'retry-after': String(RETRY_AFTER_S) });
      const ct = parseContentType(req.headers['content-type']);
      if (!(HL7_MEDIA_TYPES as readonly string[]).includes(ct.type)) {
        const hint = ct.type === 'application/json' ? 'JSON bodies are not supported by this listener yet; ' : '';
        return problem(415, 'HTTP_E_UNSUPPORTED_MEDIA_TYPE', `${hint}send HL7 v2 as ${HL7_MEDIA_TYPES.join(', ')}`);
      }
      const declared = ct.params.charset?.trim() || undefined;
      if (declared) {
        try {
          normalizeCharset(declared, fallback);
        } catch {
          return problem(415, 'HTTP_E_UNSUPPORTED_MEDIA_TYPE', `charset "${declared.slice(0, 40)}" is not supported (gb18030, GBK, UTF-8, ISO-8859-1, ...)`);
        }
      }
      if (blank(req.body)) return problem(400, 'HTTP_E_EMPTY_BODY', 'the body is empty: send one or more HL7 v2 messages');
      if (ctx.flow.paused) return problem(503, 'ENGINE_E_BACKPRESSURE', 'the engine is over its high-water mark; send again later', { 'retry-after': String(RETRY_AFTER_S) });
      const work = ctx.submitBlock(req.body, {
        source: name,
        defaultCharset: fallback,
        ...(declared ? { charset: declared } : {}),
        ...(cfg.noRoute ? { noRoute: cfg.noRoute } : {}),
        ...(cfg.invalidBytes ? { invalidBytes: cfg.invalidBytes } : {}),
        ...(cfg.multiMessageBlocks ? { multiMessageBlocks: cfg.multiMessageBlocks } : {}),
      });
      inFlight.add(work);
      let replies: Buffer[];
      let outcomes: IngestOutcome[];
      try {
        ({ replies, outcomes } = await work);
      } finally {
        inFlight.delete(work);
      }
      const counts = { accepted: 0, duplicate: 0, rejected: 0, failed: 0 };
      for (const o of outcomes) counts[o.status]++;
      ctx.log.debug({ listener: name, client: req.client, messages: outcomes.length, ...counts }, 'http block answered');
      return {
        status: 200,
        headers: { 'content-type': `application/hl7-v2; charset=${replyCharset(req.body, declared, fallback)}` },
        body: replies.length === 1 ? replies[0]! : Buffer.concat(replies),
      };
    };

    try {
      ctx.mountHttp([{ method: 'POST', path: cfg.path, family: 'hl7', maxBodyBytes, handler: handle }]);
    } catch (e) {
      throw new Error(`listener ${name} (type http): ${(e as Error).message}`);
    }
    ctx.log.info({ listener: name, path: cfg.path }, 'hl7 over http listening');
    return {
      async close(graceMs: number) {
        closing = true;
        if (inFlight.size === 0) return;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.allSettled([...inFlight]),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, Math.max(0, graceMs));
          }),
        ]);
        clearTimeout(timer);
      },
      health: () => ({ live: true, ready: !closing, ...(closing ? { detail: 'stopping' } : {}) }),
    };
  },
};

export default source;
