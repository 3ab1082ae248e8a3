/**
 * The one error catalog. Every error the engine raises on purpose has a stable
 * code (grouped by area prefix), a message template, and whether retrying the
 * same operation later can succeed. Code matches on `err.code`, never on text.
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
  ROUTE_E_DUPLICATE_NAME: { message: 'route name "{name}" is used twice', retryable: false },
  ROUTE_E_UNKNOWN_SOURCE: { message: 'unknown source "{name}"', retryable: false },

  // HL7 codec
  HL7_E_PARSE: { message: 'HL7 parse error: {detail}', retryable: false },
  HL7_E_NO_MSH: { message: 'message does not start with an MSH segment', retryable: false },
  HL7_E_CHARSET: { message: 'unsupported character set "{charset}"', retryable: false },
  HL7_E_INVALID_BYTES: { message: 'invalid {charset} bytes in {location}', retryable: false },
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
  ENGINE_E_INTERNAL: { message: 'internal error: {detail}', retryable: true },
  ENGINE_E_LISTEN: { message: 'cannot listen: {what} on {host}:{port}: {detail}', retryable: false },
  ENGINE_E_FORMAT: { message: 'cannot read a {format} message: {detail}', retryable: false },
  // Warnings (the `_W_` codes): logged with `code`, never thrown.
  ENGINE_W_CONTROL_ID_REUSED: { message: 'control id reused: this sender and MSH-10 were accepted before with other content; stored and routed as a new message', retryable: false },

  // Store
  STORE_E_NOT_FOUND: { message: '{what} {id} not found', retryable: false, status: 404 },
  STORE_E_IO: { message: 'store error: {detail}', retryable: true },
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

  // Crypto and gd-ehr
  CRYPTO_E_BAD_KEY: { message: 'SM4 key must be 32 hex characters (16 bytes)', retryable: false },
  CRYPTO_E_BAD_CIPHERTEXT: { message: 'ciphertext {detail}', retryable: false },
  GDEHR_E_NO_ID_NUMBER: { message: 'no ID number found for the patient ({path})', retryable: false },
  GDEHR_E_UNSAFE_VALUE: { message: 'value of {field} contains "&", "=" or a control character', retryable: false, status: 400 },
  GDEHR_E_MISSING_PARAM: { message: 'missing parameter {field}', retryable: false, status: 400 },
  GDEHR_E_BUSINESS: { message: 'provincial platform refused: returnCode {returnCode} {returnDesc}', retryable: false },
  GDEHR_E_BAD_SIGNATURE: { message: 'gateway signature rejected', retryable: false },
  GDEHR_E_BAD_CARD_TYPE: { message: 'card type "{value}" is not one of 01-08, 99 (or an identifier type in gdEhr.cardTypes)', retryable: false, status: 400 },
  GDEHR_E_BAD_STATUS: { message: 'authorization status must be "1" (grant) or "0" (withdraw), got "{value}"', retryable: false },
  GDEHR_E_SITE_CONFIG: { message: 'gdEhr.{key} is not set in hisbridge.yaml', retryable: false },

  // Recognition platform
  RECOG_E_AUTH: { message: 'token request failed: {detail}', retryable: true },
  RECOG_E_BUSINESS: { message: 'recognition platform refused: {detail}', retryable: false },
  RECOG_E_BAD_REQUEST: { message: '{detail}', retryable: false, status: 400 },
  RECOG_E_NOT_FOUND: { message: '{what} not found', retryable: false, status: 404 },
  RECOG_E_NO_PENDING_CHECK: { message: 'no pending check for order {orderNo} item {itemCode}', retryable: false, status: 409 },
  RECOG_E_NO_LONGER_DUPLICATE: { message: 'order {orderNo} item {itemCode} no longer duplicates a recognizable result: nothing to decide', retryable: false, status: 409 },
  RECOG_E_UNKNOWN_PATIENT: { message: 'patient {patientId} is not known to the recognition platform', retryable: false, status: 404 },
  RECOG_E_NO_ITEMS: { message: 'the order has no items to check', retryable: false, status: 400 },
  RECOG_E_UNKNOWN_REPORT: { message: 'the platform does not know report {reportId}', retryable: false, status: 404 },
  RECOG_E_REVOKE_BEFORE_UPLOAD: { message: 'revoke of report {reportId} arrived before its upload; held back', retryable: true },
  RECOG_E_BAD_PDF: { message: 'report PDF in {path} is not a base64 PDF', retryable: false },
  RECOG_E_TOO_MANY_RESULTS: { message: 'lab report has more than {limit} results (maxResults of recognition-upload): not uploaded', retryable: false },
  RECOG_E_SITE_CONFIG: { message: 'recognition.{key} is not set in hisbridge.yaml', retryable: false },

  // Kafka
  KAFKA_E_PAYLOAD: { message: 'bad Kafka payload: {detail}', retryable: false },
  KAFKA_E_NO_BROKER: { message: '{detail}', retryable: true },
  KAFKA_E_CONFIG: { message: 'kafka config: {detail}', retryable: false },
  KAFKA_E_PUBLISH: { message: 'publishing to Kafka topic {topic} failed: {detail}', retryable: true },
  KAFKA_E_DEAD_LETTER: { message: 'cannot write to dead-letter topic {topic}: {detail}', retryable: true },
  KAFKA_E_HANDLING: { message: 'record not accepted after {attempts} attempt(s): {detail}', retryable: false },

  // Operations: console, statistics, audit export
  OPS_E_UNAUTHENTICATED: { message: 'log in to the console or send the bearer token', retryable: false, status: 401 },
  OPS_E_LOGIN: { message: 'wrong user name or password', retryable: false, status: 401 },
  OPS_E_CSRF: { message: 'missing or wrong CSRF token', retryable: false, status: 403 },
  OPS_E_THROTTLED: { message: 'too many failed logins; try again in {seconds} s', retryable: true, status: 429 },
  OPS_E_NOT_DEAD: { message: 'nothing to replay: the delivery is not dead', retryable: false, status: 409 },
  OPS_E_BAD_QUERY: { message: '{detail}', retryable: false, status: 400 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

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

export class HisbridgeError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
  readonly status?: number;
  readonly data?: Record<string, unknown>;

  constructor(code: ErrorCode, params: Record<string, unknown> = {}, opts: HisbridgeErrorOptions = {}) {
    const spec: ErrorSpec = ERRORS[code];
    super(fill(spec.message, params), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HisbridgeError';
    this.code = code;
    this.retryable = opts.retryable ?? spec.retryable;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
    if (spec.status !== undefined) this.status = spec.status;
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

/** Normalises anything thrown into a catalogued error (unknown errors become retryable internal ones). */
export function toHisbridgeError(e: unknown): HisbridgeError {
  if (e instanceof HisbridgeError) return e;
  const detail = e instanceof Error ? e.message : String(e);
  return new HisbridgeError('ENGINE_E_INTERNAL', { detail }, { cause: e });
}
