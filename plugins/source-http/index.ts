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
 * code: the ACK says whether the message was accepted.
 *
 * With `event: <type>` the listener also takes JSON events (`application/json`,
 * UTF-8): each body is one event of that type, submitted as `format: 'json'`
 * (no synthetic HL7), and the answer is the outcome as JSON. See README.md.
 */
import {
  hbError, normalizeCharset, readMsh18, yieldToLoop,
  type CanonicalCharset, type IngestOutcome, type JsonSchema, type RunningSource, type SourceDefinition, type SourceHttpEndpoint, type Submit,
} from '../../core/sdk.js';

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
  idField?: string;
  maxEventBytes?: number;
}

/** Default body cap: the same as an MLLP frame (16 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Largest `maxBodyBytes` accepted: the whole body is held in memory. */
export const MAX_MAX_BODY_BYTES = 256 * 1024 * 1024;
/**
 * Default `maxEventBytes`: the largest JSON event taken (1 MiB, Kafka's own
 * default record size). A JSON event is one patient or order event; a bigger
 * one is refused with 413 ENGINE_E_EVENT_TOO_LARGE before it is read.
 */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;
/** Seconds a client is told to wait (Retry-After) while the engine is paused or stopping. */
const RETRY_AFTER_S = 5;

/** Where a JSON event's id is read when `idField` is not set. */
export const DEFAULT_ID_FIELD = 'eventId';

/** The media types taken, lower case. */
export const HL7_MEDIA_TYPES = ['application/hl7-v2', 'x-application/hl7-v2+er7', 'text/plain'] as const;

export const configSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'path'],
  // idField reads the id of a JSON event: without event: the listener takes no JSON.
  dependencies: { idField: ['event'], maxEventBytes: ['event'] },
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
    event: {
      type: 'string',
      pattern: '^([A-Z0-9]{3}\\^[A-Z0-9]{2,3}|[A-Za-z][A-Za-z0-9_.:/-]{0,127})$',
      description: 'Take JSON events (application/json, UTF-8) as well: the event type routes match with match.events, e.g. patient.registered. Without it JSON bodies get 415',
    },
    idField: {
      type: 'string',
      maxLength: 200,
      pattern: '^[^.\\s\\[\\]]+(\\.[^.\\s\\[\\]]+)*$',
      description: 'Dot path of the event id in a JSON body, for the duplicate check (default eventId); needs event:',
    },
    maxEventBytes: {
      type: 'integer',
      minimum: 1024,
      maximum: MAX_MAX_BODY_BYTES,
      description: 'Largest JSON event taken; a larger one gets 413 with code ENGINE_E_EVENT_TOO_LARGE and is not stored (default 1 MiB); needs event:',
    },
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

/** What the JSON body says about its id: the id, or why there is none. */
type EventId = { id: string } | { rejected: string } | { missing: string };

/** Bytes scanned between turns of the event loop. */
const SCAN_SLICE_BYTES = 64 * 1024;

const enum Want { Value, ValueOrClose, Key, KeyOrClose, Colon, CommaOrClose, End }

/** A JSON number at `i`: its end, and whether it is written as a whole number; -1 when malformed. */
function scanNumber(b: Buffer, i: number): { end: number; whole: boolean } {
  const digits = (p: number) => {
    let q = p;
    while (q < b.length && b[q]! >= 0x30 && b[q]! <= 0x39) q++;
    return q;
  };
  let p = i;
  if (b[p] === 0x2d) p++;
  if (b[p] === 0x30) p++;
  else if (b[p]! >= 0x31 && b[p]! <= 0x39) p = digits(p);
  else return { end: -1, whole: false };
  let whole = true;
  if (b[p] === 0x2e) {
    const q = digits(p + 1);
    if (q === p + 1) return { end: -1, whole: false };
    p = q;
    whole = false;
  }
  if (b[p] === 0x65 || b[p] === 0x45) {
    p++;
    if (b[p] === 0x2b || b[p] === 0x2d) p++;
    const q = digits(p);
    if (q === p) return { end: -1, whole: false };
    p = q;
    whole = false;
  }
  return { end: p, whole };
}

const isHex = (c: number | undefined) => c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));

/** The end (index after the closing quote) of the JSON string opening at `i`; -1 when malformed. */
function scanString(b: Buffer, i: number): number {
  let p = i + 1;
  while (p < b.length) {
    const c = b[p]!;
    if (c === 0x22) return p + 1;
    if (c < 0x20) return -1;
    if (c === 0x5c) {
      const e = b[p + 1];
      if (e === 0x75) {
        if (!(isHex(b[p + 2]) && isHex(b[p + 3]) && isHex(b[p + 4]) && isHex(b[p + 5]))) return -1;
        p += 6;
      } else if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) p += 2;
      else return -1;
    } else p++;
  }
  return -1;
}

/**
 * Finds the event id at `path` (dot path through objects) in a JSON body, and
 * checks the body is JSON with an object at the top, in one linear pass over the
 * bytes that builds no objects and gives the event loop a turn every 64 KiB
 * (a full parse of a big event would hold the loop for hundreds of ms, and the
 * engine parses it again). As with JSON.parse, a repeated key counts by its
 * last occurrence. The id is a non-empty text or a whole number in the safe
 * range (a bigger number would be rounded and two events share an id). The
 * bytes' UTF-8 and the nesting depth are left to the engine, which refuses
 * them. Never echoes the body.
 */
export async function readEventId(body: Buffer, path: string): Promise<EventId> {
  const keys = path.split('.');
  const last = keys.length - 1;
  // Open containers: for each, whether it is an object and whether it lies on the path (its key matched so far).
  const isObject: boolean[] = [];
  const onPath: boolean[] = [];
  let want = Want.Value;
  let rootKind = '';
  /** The next value is the id (its key ends the path) / an object on the path. */
  let target = false;
  let childOnPath = false;
  /** The id found so far: undefined when none, null when the value there is not a usable id. */
  let found: string | null | undefined;
  const malformed = (at: number): EventId => ({ rejected: `not JSON (byte ${at})` });
  let i = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  let nextYield = SCAN_SLICE_BYTES;
  while (i < body.length) {
    if (i >= nextYield) {
      nextYield = i + SCAN_SLICE_BYTES;
      await yieldToLoop();
    }
    const c = body[i]!;
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      i++;
      continue;
    }
    const depth = isObject.length;
    switch (want) {
      case Want.End:
        return malformed(i);
      case Want.Colon:
        if (c !== 0x3a) return malformed(i);
        i++;
        want = Want.Value;
        continue;
      case Want.CommaOrClose:
        if (c === 0x2c) {
          i++;
          want = isObject[depth - 1] ? Want.Key : Want.Value;
          continue;
        }
        if (c !== (isObject[depth - 1] ? 0x7d : 0x5d)) return malformed(i);
        break; // the close is handled below
      case Want.Key:
      case Want.KeyOrClose: {
        if (c === 0x7d && want === Want.KeyOrClose) break;
        if (c !== 0x22) return malformed(i);
        const end = scanString(body, i);
        if (end < 0) return malformed(i);
        if (onPath[depth - 1] && depth - 1 <= last) {
          const key = JSON.parse(body.toString('utf8', i, end)) as string;
          if (key === keys[depth - 1]) {
            // A later occurrence of a key on the path overrides what an earlier one held.
            found = undefined;
            if (depth - 1 === last) target = true;
            else childOnPath = true;
          }
        }
        i = end;
        want = Want.Colon;
        continue;
      }
      case Want.Value:
      case Want.ValueOrClose:
        break; // a value, or (ValueOrClose) the close of an empty array: below
    }
    // A close of the innermost container.
    if (c === 0x7d || c === 0x5d) {
      if (want === Want.Value || depth === 0 || isObject[depth - 1] !== (c === 0x7d)) return malformed(i);
      isObject.pop();
      onPath.pop();
      i++;
      want = isObject.length ? Want.CommaOrClose : Want.End;
      continue;
    }
    // A value.
    const isTarget = target;
    const pathChild = childOnPath;
    target = false;
    childOnPath = false;
    if (depth === 0) rootKind = c === 0x7b ? 'object' : c === 0x5b ? 'an array' : c === 0x22 ? 'a string' : c === 0x74 || c === 0x66 ? 'a boolean' : c === 0x6e ? 'null' : 'a number';
    if (c === 0x7b || c === 0x5b) {
      if (isTarget) found = null;
      isObject.push(c === 0x7b);
      onPath.push(c === 0x7b && (depth === 0 || pathChild));
      i++;
      want = c === 0x7b ? Want.KeyOrClose : Want.ValueOrClose;
      continue;
    }
    let end: number;
    if (c === 0x22) {
      end = scanString(body, i);
      if (end < 0) return malformed(i);
      if (isTarget) {
        const v = JSON.parse(body.toString('utf8', i, end)) as string;
        found = v === '' ? null : v;
      }
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const n = scanNumber(body, i);
      end = n.end;
      if (end < 0) return malformed(i);
      if (isTarget) {
        const v = Number(body.toString('latin1', i, end));
        found = n.whole && Number.isSafeInteger(v) ? String(v) : null;
      }
    } else {
      const word = c === 0x74 ? 'true' : c === 0x66 ? 'false' : c === 0x6e ? 'null' : '';
      if (!word || body.toString('latin1', i, i + word.length) !== word) return malformed(i);
      end = i + word.length;
      if (isTarget) found = null;
    }
    i = end;
    want = isObject.length ? Want.CommaOrClose : Want.End;
  }
  if (want !== Want.End) return rootKind === '' ? { rejected: 'not JSON (no value)' } : malformed(body.length);
  if (rootKind !== 'object') return { rejected: `the top level must be an object, not ${rootKind}` };
  if (found === undefined) return { missing: `the JSON event has no id at ${path}` };
  if (found === null) return { missing: `the id at ${path} must be a non-empty text or a whole number` };
  return { id: found };
}

/** The JSON answer to a JSON event: the outcome without its HL7 reply. 200 accepted/duplicate, 422 rejected, 503 failed. */
function jsonAnswer(o: Pick<IngestOutcome, 'status' | 'code' | 'reason' | 'routes' | 'messageId'>) {
  const status = o.status === 'accepted' || o.status === 'duplicate' ? 200 : o.status === 'rejected' ? 422 : 503;
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...(status === 503 ? { 'retry-after': String(RETRY_AFTER_S) } : {}) },
    body: JSON.stringify({ status: o.status, code: o.code, reason: o.reason, messageId: o.messageId ?? null, routes: o.routes }),
  };
}

const source: SourceDefinition<HttpSourceConfig> = {
  type: 'http',
  summary: 'HL7 v2 over HTTP: POST messages or batches to a path on the engine HTTP server, behind api.clients (family hl7); the ACK is the answer',
  configSchema,
  async start(ctx, submit: Submit): Promise<RunningSource> {
    const cfg = ctx.config;
    const name = cfg.name;
    if (!ctx.mountHttp) throw new Error(`listener ${name} (type http) needs the engine HTTP server, but http.enabled is false`);
    if (cfg.idField !== undefined && cfg.event === undefined) throw new Error(`listener ${name}: idField is for JSON events and needs event:`);
    const idField = cfg.idField ?? DEFAULT_ID_FIELD;
    const fallback = cfg.charset ?? 'gb18030';
    try {
      normalizeCharset(fallback, fallback);
    } catch {
      throw new Error(`listener ${name}: charset "${fallback.slice(0, 40)}" is not a known HL7 charset (gb18030, GBK, UTF-8, ...)`);
    }
    const maxBodyBytes = cfg.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    const maxEventBytes = cfg.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    let closing = false;
    const inFlight = new Set<Promise<unknown>>();

    /** Runs a submission, counted for close(). */
    const track = async <T>(work: Promise<T>): Promise<T> => {
      inFlight.add(work);
      try {
        return await work;
      } finally {
        inFlight.delete(work);
      }
    };

    /** One JSON event (listener with `event:`): submitted as format json; the answer is the outcome as JSON. */
    const handleJson = async (req: Parameters<SourceHttpEndpoint['handler']>[0], charset: string | undefined) => {
      const cs = charset?.trim().toLowerCase();
      if (cs && cs !== 'utf-8' && cs !== 'utf8') return problem(415, 'HTTP_E_UNSUPPORTED_MEDIA_TYPE', `JSON events must be UTF-8, not charset "${cs.slice(0, 40)}"`);
      if (blank(req.body)) return problem(400, 'HTTP_E_EMPTY_BODY', 'the body is empty: send one JSON event');
      if (req.body.length > maxEventBytes) {
        // Refused before anything reads it: a JSON event is one patient or order event, not megabytes.
        ctx.log.warn({ listener: name, client: req.client, code: 'ENGINE_E_EVENT_TOO_LARGE', bytes: req.body.length, limit: maxEventBytes }, 'http json event refused: too large');
        const reason = hbError('ENGINE_E_EVENT_TOO_LARGE', { bytes: req.body.length, limit: maxEventBytes }).message;
        return { ...jsonAnswer({ status: 'rejected', code: 'ENGINE_E_EVENT_TOO_LARGE', reason, routes: [] }), status: 413 };
      }
      if (ctx.flow.paused) return problem(503, 'ENGINE_E_BACKPRESSURE', 'the engine is over its high-water mark; send again later', { 'retry-after': String(RETRY_AFTER_S) });
      const found = await readEventId(req.body, idField);
      if ('missing' in found) return problem(400, 'HTTP_E_EVENT_ID', hbError('HTTP_E_EVENT_ID', { detail: found.missing }).message);
      if ('rejected' in found) {
        ctx.log.debug({ listener: name, client: req.client, code: 'ENGINE_E_JSON' }, 'http json event refused');
        return jsonAnswer({ status: 'rejected', code: 'ENGINE_E_JSON', reason: hbError('ENGINE_E_JSON', { detail: found.rejected }).message, routes: [] });
      }
      const o = await track(submit({
        source: name, format: 'json', bytes: req.body, event: cfg.event!,
        // The sender for the duplicate check: the API client that posted (the listener without api.clients).
        identity: { app: req.client ?? name, facility: '', id: found.id },
        ...(cfg.noRoute ? { noRoute: cfg.noRoute } : {}),
      }));
      ctx.log.debug({ listener: name, client: req.client, status: o.status, code: o.code }, 'http json event answered');
      return jsonAnswer(o);
    };

    const handle: SourceHttpEndpoint['handler'] = async (req) => {
      if (closing || ctx.signal.aborted) return problem(503, 'ENGINE_E_SHUTTING_DOWN', `listener ${name} is stopping; send again later`, { 'retry-after': String(RETRY_AFTER_S) });
      const ct = parseContentType(req.headers['content-type']);
      if (ct.type === 'application/json' && cfg.event !== undefined) return handleJson(req, ct.params.charset);
      if (!(HL7_MEDIA_TYPES as readonly string[]).includes(ct.type)) {
        const hint = ct.type === 'application/json' ? 'JSON bodies need event: on this listener; ' : '';
        const json = cfg.event !== undefined ? ', or a JSON event as application/json' : '';
        return problem(415, 'HTTP_E_UNSUPPORTED_MEDIA_TYPE', `${hint}send HL7 v2 as ${HL7_MEDIA_TYPES.join(', ')}${json}`);
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
      const { replies, outcomes } = await track(work);
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
