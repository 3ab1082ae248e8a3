/**
 * The core error catalogue. Every error the engine raises on purpose has a
 * stable code (grouped by area prefix), a message template, and whether
 * retrying the same operation later can succeed. Code matches on `err.code`,
 * never on text.
 *
 * Plugin families own their codes (`GDEHR_*` in plugins/gd-ehr/errors.ts,
 * `RECOG_*` in plugins/recognition/errors.ts): they build them with
 * `errorFactory` and register them with `Registry.errors`, which refuses a
 * code registered twice. Core keeps only core codes here.
 *
 * Messages must never carry PHI or secrets: callers pass masked values only.
 */

export interface ErrorSpec {
  /** Message template; `{name}` placeholders are filled from the params. */
  readonly message: string;
  /** True when the same operation may succeed later (network, 5xx, 429...). */
  readonly retryable: boolean;
  /** HTTP status used when the error answers an HTTP request. */
  readonly status?: number;
}

export const ERRORS = {
  // Configuration and route files
  CONFIG_E_YAML: { message: '{detail}', retryable: false },
  CONFIG_E_SCHEMA: { message: '{detail}', retryable: false },
  CONFIG_E_ENV_MISSING: { message: 'environment variable {name} is not set', retryable: false },
  CONFIG_E_INLINE_SECRET: { message: '{key} looks like a secret written inline; use ${env:NAME}', retryable: false },
  CONFIG_E_RETENTION: { message: '{detail}', retryable: false },
  /** A site extension's section lacks a key a plugin needs: the site is not connected to that platform (routes using it load inactive unless `required: true`). */
  CONFIG_E_SITE_MISSING: { message: '{section}.{key} is not set in hisbridge.yaml', retryable: false },
  ROUTE_E_UNKNOWN_PLUGIN: { message: 'unknown plugin "{name}"', retryable: false },
  ROUTE_E_PLUGIN_CONFIG: { message: 'plugin "{name}" config: {detail}', retryable: false },
  ROUTE_E_BAD_PATH: { message: 'bad field path "{path}": {detail}', retryable: false },
  ROUTE_E_BAD_EXPRESSION: { message: 'bad expression "{expr}": {detail}', retryable: false },
  ROUTE_E_DUPLICATE_NAME: { message: 'route name "{name}" is already used in {where}', retryable: false },
  ROUTE_E_UNKNOWN_SOURCE: { message: 'unknown source "{name}" (known: {known})', retryable: false },
  CONFIG_E_LOAD: { message: '{detail}', retryable: false },
  CONFIG_E_READ: { message: 'cannot read file: {detail}', retryable: false },
  ROUTE_E_COMPILE: { message: '{detail}', retryable: false },
  ROUTE_E_STEP_ORDER: { message: 'in an on-receive route, filters must come before the first outbound plugin step', retryable: false },
  /** A route key that no longer exists; the message says what to use instead (docs/routes.md#removed-keys). */
  ROUTE_E_REMOVED_KEY: { message: '{key} was removed: {instead}', retryable: false },
  /** A code table (tables/<name>.csv, docs/routes.md#code-tables) that cannot load, or a lookup naming a table or column it lacks. */
  ROUTE_E_TABLE: { message: 'table {table}: {detail}', retryable: false },
  /** `lookup:` of a key the table lacks, under `missing: error` (the default): the step fails for good. */
  ROUTE_E_LOOKUP_MISSING: { message: 'table {table} has no key "{key}"', retryable: false },
  /** A `map` step could not build its value (a number or date field that is not one). */
  ROUTE_E_MAP: { message: 'map field {field}: {detail}', retryable: false },
  // External plugin modules (`plugins:` in hisbridge.yaml, core/config/plugins.ts)
  CONFIG_E_PLUGIN_NOT_FOUND: { message: 'plugins[{index}] "{entry}": {detail}', retryable: false },
  CONFIG_E_PLUGIN_IMPORT: { message: 'plugins[{index}] "{entry}": the module failed to load: {detail}', retryable: false },
  CONFIG_E_PLUGIN_SHAPE: { message: 'plugins[{index}] "{entry}": {detail}', retryable: false },
  CONFIG_E_PLUGIN_NAME: { message: 'plugins[{index}] "{entry}": {detail}', retryable: false },
  CONFIG_E_PLUGIN_ERRORS: { message: 'plugins[{index}] "{entry}": {detail}', retryable: false },

  // HL7 codec
  HL7_E_PARSE: { message: 'HL7 parse error: {detail}', retryable: false },
  HL7_E_NO_MSH: { message: 'message does not start with an MSH segment', retryable: false },
  HL7_E_CHARSET: { message: 'unsupported character set "{charset}"', retryable: false },
  HL7_E_INVALID_BYTES: { message: 'invalid {charset} bytes in {location}', retryable: false },
  HL7_E_CHARSET_LABEL: { message: 'the message is labelled {charset} but its bytes are UTF-8 (first at {location}); label it UNICODE UTF-8 in MSH-18 or send GBK bytes', retryable: false },
  HL7_E_CONTROL_BYTES: { message: 'control character 0x{byte} in {location}; HL7 carries control characters escaped (\\X{byte}\\), never raw', retryable: false },
  HL7_W_BATCH_TRAILER: { message: 'batch trailer disagrees with the messages received ({detail}); processed anyway', retryable: false },
  HL7_E_MULTI_MESSAGE_BLOCK: { message: 'one block carries {count} messages; this source takes one message per block (multiMessageBlocks: reject)', retryable: false },
  HL7_E_MISSING_FIELD: { message: 'required field {path} is empty', retryable: false },

  // MLLP
  MLLP_E_FRAME_TOO_LARGE: { message: 'frame larger than {limit} bytes', retryable: false },
  MLLP_E_GARBAGE: { message: '{count} bytes outside an MLLP frame discarded', retryable: false },
  MLLP_E_TRUNCATED: { message: 'connection closed inside a frame ({count} bytes lost)', retryable: false },
  MLLP_E_TIMEOUT: { message: 'no ACK within {ms} ms', retryable: true },
  MLLP_E_CONNECT: { message: 'cannot connect to {target}: {detail}', retryable: true },
  MLLP_E_CLOSED: { message: 'connection closed with {pending} message(s) awaiting an ACK', retryable: true },
  MLLP_E_TLS_REFUSED: { message: 'the server refused the TLS connection ({detail}) with {pending} message(s) awaiting an ACK', retryable: true },
  MLLP_E_IDLE_TIMEOUT: { message: 'connection idle for {ms} ms, closed', retryable: false },
  MLLP_E_FRAME_TIMEOUT: { message: 'frame not finished within {ms} ms ({count} bytes dropped), connection closed', retryable: false },
  MLLP_E_TOO_MANY_CONNECTIONS: { message: '{count} connection(s) refused: {limit} already open', retryable: true },
  MLLP_E_HANDLER: { message: 'message handler failed: {detail}', retryable: true },
  MLLP_E_SOCKET: { message: 'socket error: {detail}', retryable: true },
  MLLP_E_TLS_HANDSHAKE: { message: 'TLS handshake refused: {detail}', retryable: false },

  // Engine
  ENGINE_E_NO_ROUTE: { message: 'no route accepts {type} from {sender}', retryable: false },
  ENGINE_E_STEP_FAILED: { message: 'step {step} failed: {detail}', retryable: false },
  ENGINE_E_BACKPRESSURE: { message: 'engine is over its high-water mark ({pending} pending deliveries)', retryable: true },
  ENGINE_E_SHUTTING_DOWN: { message: 'engine is shutting down', retryable: true },
  ENGINE_E_JSON: { message: 'bad JSON event: {detail}', retryable: false },
  ENGINE_E_EVENT_TOO_LARGE: { message: 'JSON event of {bytes} bytes is larger than maxEventBytes ({limit})', retryable: false, status: 413 },
  ENGINE_E_INTERNAL: { message: 'internal error: {detail}', retryable: true },
  // Raised by plugins through `permanentError` (core/sdk.ts): the plugin knows the call can never succeed.
  PLUGIN_E_PERMANENT: { message: '{detail}', retryable: false },
  // `PluginContext.service(key)` names no registered site extension with a `service` (a plugin bug, refused at load).
  PLUGIN_E_NO_SERVICE: { message: 'no site extension "{key}" with a service is registered (known: {known})', retryable: false },
  ENGINE_E_LISTEN: { message: 'cannot listen: {what} on {host}:{port}: {detail}', retryable: false },
  ENGINE_E_DATA_DIR_IN_USE: { message: 'data directory {dir} is in use by another hisbridge process (pid {pid}); give each engine its own --data-dir, or delete {file} if that process is not hisbridge', retryable: false },
  // Warnings (the `_W_` codes): logged with `code`, never thrown.
  ENGINE_W_CONTROL_ID_REUSED: { message: 'control id reused: this sender and MSH-10 were accepted before with other content; stored and routed as a new message', retryable: false },

  // Store
  STORE_E_NOT_FOUND: { message: '{what} {id} not found', retryable: false, status: 404 },
  STORE_E_IO: { message: 'store error: {detail}', retryable: true },
  STORE_E_DATA_DIR: { message: 'cannot use data directory {dir}: {detail}', retryable: false },
  STORE_W_PERMISSIONS: { message: '{path} was open to group or others: permissions tightened to {mode}', retryable: false },

  // Generic outbound HTTP
  HTTP_E_NETWORK: { message: 'network error calling {target}: {detail}', retryable: true },
  HTTP_E_TIMEOUT: { message: 'timeout after {ms} ms calling {target}', retryable: true },
  HTTP_E_ABORTED: { message: 'call to {target} aborted', retryable: true },
  HTTP_E_STATUS_RETRYABLE: { message: 'HTTP {status} from {target}', retryable: true },
  HTTP_E_STATUS: { message: 'HTTP {status} from {target}', retryable: false },
  HTTP_E_BAD_BODY: { message: 'unexpected response body from {target}: {detail}', retryable: false },
  HTTP_E_BAD_REQUEST: { message: '{detail}', retryable: false, status: 400 },

  // Engine HTTP server: who may call it and how (core/http/api-auth.ts, core/http/server.ts)
  API_E_UNAUTHENTICATED: { message: 'send Authorization: Bearer <token> of a configured API client', retryable: false, status: 401 },
  API_E_FORBIDDEN: { message: '{detail}', retryable: false, status: 403 },
  HTTP_E_UNSUPPORTED_MEDIA_TYPE: { message: 'send the body as application/json', retryable: false, status: 415 },
  HTTP_E_CROSS_ORIGIN: { message: 'requests from pages of other sites are refused', retryable: false, status: 403 },
  HTTP_E_TOO_LARGE: { message: 'request body larger than {limit} bytes', retryable: false, status: 413 },
  HTTP_E_NOT_FOUND: { message: 'no such endpoint', retryable: false, status: 404 },
  HTTP_E_EMPTY_BODY: { message: 'the body is empty: send one or more HL7 v2 messages', retryable: false, status: 400 },
  HTTP_E_METHOD: { message: 'method {method} not allowed{hint}', retryable: false, status: 405 },
  HTTP_E_EVENT_ID: { message: '{detail}', retryable: false, status: 400 },
  HTTP_E_TOO_MANY_CONNECTIONS: { message: '{count} HTTP connection(s) refused: {limit} already open', retryable: true },

  // Crypto
  CRYPTO_E_BAD_KEY: { message: 'SM4 key must be 32 hex characters (16 bytes)', retryable: false },
  CRYPTO_E_BAD_CIPHERTEXT: { message: 'ciphertext {detail}', retryable: false },

  // Kafka
  KAFKA_E_PAYLOAD: { message: 'bad Kafka payload: {detail}', retryable: false },
  KAFKA_E_NO_BROKER: { message: '{detail}', retryable: true },
  KAFKA_E_CONFIG: { message: 'kafka config: {detail}', retryable: false },
  KAFKA_E_PUBLISH: { message: 'publishing to Kafka topic {topic} failed: {detail}', retryable: true },
  KAFKA_E_DEAD_LETTER: { message: 'cannot write to dead-letter topic {topic}: {detail}', retryable: true },
  KAFKA_E_HANDLING: { message: 'record not accepted after {attempts} attempt(s): {detail}', retryable: false },

  // Alerts (core/alerts): what went wrong sending to a WeCom / DingTalk robot or a webhook; never the URL (it holds the token)
  ALERTS_E_SEND: { message: 'alert to target {target} failed: {detail}', retryable: true },
  ALERTS_E_REFUSED: { message: 'alert target {target} refused the message: errcode {errcode} {errmsg}', retryable: true },
  ALERTS_W_RATE_LIMITED: { message: 'alert to target {target} dropped: more queued than it may receive ({limit} a minute)', retryable: false },

  // Operations: console, statistics, audit export
  OPS_E_UNAUTHENTICATED: { message: 'log in to the console or send the bearer token', retryable: false, status: 401 },
  OPS_E_LOGIN: { message: 'wrong user name or password', retryable: false, status: 401 },
  OPS_E_CSRF: { message: 'missing or wrong CSRF token', retryable: false, status: 403 },
  OPS_E_THROTTLED: { message: 'too many failed logins; try again in {seconds} s', retryable: true, status: 429 },
  OPS_E_NOT_DEAD: { message: 'nothing to replay: the delivery is not dead', retryable: false, status: 409 },
  OPS_E_BAD_QUERY: { message: '{detail}', retryable: false, status: 400 },
  // Issue 18: operator actions (route pause/resume, statistics reset, filtered replay, content search)
  OPS_E_ROUTE_UNKNOWN: { message: 'no route named {route} is loaded', retryable: false, status: 404 },
  OPS_E_ROUTE_ON_COMPLETE: { message: 'route {route} runs its steps before the ACK (ack: on-complete), so its delivery cannot be held: it has nothing queued to pause', retryable: false, status: 409 },
  OPS_E_REPLAY_CONFIRM: { message: '{count} message(s) match; send the request again with confirm set to {count} to replay them', retryable: false, status: 409 },
  OPS_E_REPLAY_TOO_MANY: { message: '{count} messages match; at most {cap} may be replayed at once: narrow the filter', retryable: false, status: 400 },
  OPS_E_SEARCH_WINDOW: { message: 'more than {cap} messages in this time window: narrow your time window', retryable: false, status: 400 },
} as const satisfies Record<string, ErrorSpec>;

/** The core codes. Plugin codes are plain strings registered through `Registry.errors`. */
export type ErrorCode = keyof typeof ERRORS;

/** A family's codes: code → spec. Codes look like `AREA_E_WHAT` (errors) or `AREA_W_WHAT` (warnings). */
export type ErrorCatalogue = Readonly<Record<string, ErrorSpec>>;

const CODE = /^[A-Z][A-Z0-9]*_[EW]_[A-Z0-9_]+$/;

export interface HisbridgeErrorOptions {
  cause?: unknown;
  /** Overrides the catalog's retryable flag (e.g. a 429 with Retry-After). */
  retryable?: boolean;
  /** Back-off hint from the remote side (Retry-After), in milliseconds. */
  retryAfterMs?: number;
  /** Extra data for the caller (never PHI). */
  data?: Record<string, unknown>;
}

function fill(template: string, params: Record<string, unknown>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => (k in params ? String(params[k]) : `{${k}}`));
}

/** The catalogued text of a core code with its params filled (for LoadIssues and HTTP bodies that are not thrown). */
export function errorText(code: ErrorCode, params: Record<string, unknown> = {}): string {
  return fill(ERRORS[code].message, params);
}

/**
 * Marks HisbridgeError instances across copies of this module: an external
 * plugin that imported `dist/core/sdk.js` while the engine runs from the
 * sources has another HisbridgeError class, and its errors must still count
 * (their code and `retryable` decide the delivery). `instanceof
 * HisbridgeError` checks this mark (docs/plugins.md).
 */
const ERROR_BRAND = Symbol.for('hisbridge.error');

export class HisbridgeError extends Error {
  static override [Symbol.hasInstance](v: unknown): boolean {
    if (this !== HisbridgeError) return Function.prototype[Symbol.hasInstance].call(this, v);
    return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[ERROR_BRAND] === true;
  }

  /** A core code (`ErrorCode`) or a code of a registered plugin family. */
  readonly code: string;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  readonly status?: number;
  readonly data?: Record<string, unknown>;

  /**
   * A core error: `new HisbridgeError('HTTP_E_STATUS', {...})`. Plugin codes
   * pass their spec (what `errorFactory` does); without one an unknown code
   * keeps its name and is retryable, like any unknown failure.
   */
  constructor(code: ErrorCode | (string & {}), params: Record<string, unknown> = {}, opts: HisbridgeErrorOptions = {}, spec?: ErrorSpec) {
    const s: ErrorSpec = spec ?? (ERRORS as Record<string, ErrorSpec>)[code] ?? { message: 'error {code}', retryable: true };
    super(fill(s.message, { code, ...params }), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HisbridgeError';
    Object.defineProperty(this, ERROR_BRAND, { value: true });
    this.code = code;
    this.retryable = opts.retryable ?? s.retryable;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
    if (s.status !== undefined) this.status = s.status;
    if (opts.data !== undefined) this.data = opts.data;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}

export function hbError(code: ErrorCode, params: Record<string, unknown> = {}, opts?: HisbridgeErrorOptions): HisbridgeError {
  return new HisbridgeError(code, params, opts);
}

export function isHisbridgeError(e: unknown): e is HisbridgeError {
  return e instanceof HisbridgeError;
}

/**
 * Normalises anything thrown into a catalogued error. An unknown error (a
 * plain `Error`, a TypeError from a bug, a library's own error) becomes the
 * retryable `ENGINE_E_INTERNAL`: the engine cannot tell a passing fault from
 * a permanent one, and retrying only delays (the delivery is dead-lettered
 * after its last attempt). Plugins that know a call can never succeed throw a
 * non-retryable code of their catalogue or `permanentError(...)`.
 */
export function toHisbridgeError(e: unknown): HisbridgeError {
  if (e instanceof HisbridgeError) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return new HisbridgeError('ENGINE_E_INTERNAL', { detail }, { cause: e });
}

/**
 * A non-retryable error with the plugin's own (PHI-free) message, code
 * `PLUGIN_E_PERMANENT`: the delivery goes to the dead-letter list after this
 * attempt, with this message as its reason.
 */
export function permanentError(message: string, opts: Omit<HisbridgeErrorOptions, 'retryable'> = {}): HisbridgeError {
  return new HisbridgeError('PLUGIN_E_PERMANENT', { detail: message }, opts);
}

/** A plugin family's error catalogue and the factory raising its codes (the Fastify-style error factory). */
export interface ErrorFamily<C extends ErrorCatalogue = ErrorCatalogue> {
  /** Who owns the codes (a site-extension key or plugin name), named in collision messages and listings. */
  readonly family: string;
  readonly catalogue: C;
  /** A HisbridgeError of one of the family's codes; message, retryable and status come from the catalogue. */
  error(code: keyof C & string, params?: Record<string, unknown>, opts?: HisbridgeErrorOptions): HisbridgeError;
  /** True when `e` is a HisbridgeError carrying `code` of this family. */
  is(e: unknown, code?: keyof C & string): e is HisbridgeError;
}

/** Declares a family's catalogue; register it with `Registry.errors(family)` so listings and collisions see it. */
export function errorFactory<const C extends ErrorCatalogue>(family: string, catalogue: C): ErrorFamily<C> {
  for (const [code, spec] of Object.entries(catalogue)) {
    if (!CODE.test(code)) throw new Error(`error code "${code}" of "${family}" must look like AREA_E_WHAT or AREA_W_WHAT`);
    if (typeof spec?.message !== 'string' || typeof spec.retryable !== 'boolean') throw new Error(`error code ${code} of "${family}" needs a message and retryable`);
  }
  return {
    family,
    catalogue,
    error(code, params = {}, opts = {}) {
      const spec = catalogue[code];
      if (!spec) throw new Error(`error code ${String(code)} is not in the catalogue of "${family}"`);
      return new HisbridgeError(code, params, opts, spec);
    },
    is(e, code): e is HisbridgeError {
      return e instanceof HisbridgeError && (code === undefined ? Object.hasOwn(catalogue, e.code) : e.code === code);
    },
  };
}

/** One row of `ErrorCatalogues.list()`. */
export interface CatalogueEntry extends ErrorSpec {
  readonly code: string;
  /** 'core' or the registering family. */
  readonly family: string;
}

/**
 * Every code an engine knows: the core catalogue plus the families its
 * registry accepted. An instance (held by the Registry), never a module-level
 * table, so two engines with different plugins do not see each other's codes.
 */
export class ErrorCatalogues {
  readonly #entries = new Map<string, CatalogueEntry>();
  readonly #families = new Map<string, ErrorFamily>();

  constructor() {
    for (const [code, spec] of Object.entries(ERRORS as Record<string, ErrorSpec>)) this.#entries.set(code, { code, family: 'core', ...spec });
  }

  /** Adds a family's codes; refuses (throws, adding nothing) a code core or another family already owns. */
  register(family: ErrorFamily): void {
    const prev = this.#families.get(family.family);
    if (prev === family) return; // the same family reached through two plugins
    if (prev) throw new Error(`error catalogue "${family.family}" registered twice`);
    for (const code of Object.keys(family.catalogue)) {
      const owner = this.#entries.get(code);
      if (owner) throw new Error(`error code ${code} of "${family.family}" is already registered by "${owner.family}": every code must have one owner`);
    }
    this.#families.set(family.family, family);
    for (const [code, spec] of Object.entries(family.catalogue)) this.#entries.set(code, { code, family: family.family, ...spec });
  }

  lookup(code: string): CatalogueEntry | undefined {
    return this.#entries.get(code);
  }

  /** Whether a code is retryable; undefined for a code nobody registered. */
  isRetryable(code: string): boolean | undefined {
    return this.#entries.get(code)?.retryable;
  }

  /** An error of any known code (core or registered); an unknown code is refused. */
  error(code: string, params: Record<string, unknown> = {}, opts: HisbridgeErrorOptions = {}): HisbridgeError {
    const e = this.#entries.get(code);
    if (!e) throw new Error(`unknown error code ${code}`);
    return new HisbridgeError(code, params, opts, e);
  }

  /** Every code, sorted by code. */
  list(): CatalogueEntry[] {
    return [...this.#entries.values()].sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
  }
}
