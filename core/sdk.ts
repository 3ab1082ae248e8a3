/**
 * The plugin SDK: the only surface plugins (plugins/<name>/index.ts) may import
 * from the core, besides core/errors.ts, core/mask.ts, core/hl7 (the message API)
 * and core/crypto. Keep it small: every addition is a promise to every plugin.
 */
import type { Logger } from './log.js';
import type { Hl7Message } from './hl7/message.js';
import type { HisbridgeError } from './errors.js';

/** A JSON Schema object (draft 2020-12 subset understood by ajv). */
export type JsonSchema = Record<string, unknown>;

/** One audit row, written for every outbound call and every workstation request. */
export interface AuditEntry {
  route?: string;
  plugin: string;
  /** e.g. 'authorize', 'viewer-url', 'upload-lab', 'check'. */
  operation: string;
  /** Institution (orgCode) the call was made for. */
  orgCode?: string;
  /** Staff number of the doctor/operator, when known. */
  staffNo?: string;
  /** Plain patient identifier: the audit writer masks it and stores a keyed hash; never stored plain. */
  patientId?: string;
  /** 'ok' | 'failed' | 'skipped' | a remote result code. */
  result: string;
  latencyMs?: number;
  /** Store message id or MSH-10. */
  messageId?: string;
  /** Short, PHI-free detail (an error code, a remote returnCode). */
  detail?: string;
  /** Workstation calls: the authenticated API client (`api.clients[].name`). */
  client?: string;
  /** Workstation calls and console logins: the caller's network address. */
  address?: string;
  /**
   * Plain ID number (身份证号...) the call concerned, when it differs from
   * `patientId`: stored only as the same keyed hash, so `hisbridge audit
   * --patient <ID number>` finds the row; never stored plain.
   */
  idNumber?: string;
}

export interface HttpRequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  headers?: Record<string, string>;
  /** Serialised as JSON when an object; sent as is when a string or Buffer. */
  body?: unknown;
  timeoutMs?: number;
  /** Name of the remote for error messages (never a URL with query secrets). */
  target?: string;
  /**
   * Aborts the call (pass `CallContext.signal`, so engine shutdown does not
   * wait for a slow remote). An aborted call throws the retryable
   * HTTP_E_ABORTED; the remote may or may not have acted on it.
   */
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  /** Raw body bytes. */
  body: Buffer;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  json?: unknown;
  latencyMs: number;
}

/**
 * Outbound HTTP client given to plugins. Transport problems throw catalogued
 * errors (HTTP_E_NETWORK, HTTP_E_TIMEOUT); any HTTP status is returned, so the
 * plugin decides (use `classifyHttpStatus` from core/http/client.ts).
 */
export interface HttpClient {
  request(url: string, opts?: HttpRequestOptions): Promise<HttpResponse>;
}

/** What every plugin instance and site extension receives. */
export interface PluginContext {
  /** Child logger carrying route/plugin names. Log masked values only. */
  readonly log: Logger;
  readonly http: HttpClient;
  /** Aborted when the engine shuts down. */
  readonly signal: AbortSignal;
  /** The site section this plugin declared in `siteKey`, validated and with ${env:} resolved. */
  readonly site: Record<string, unknown>;
  /** Append an audit row (masked/hashed by the writer). */
  audit(entry: AuditEntry): void;
  /**
   * Small key/value state (e.g. a token, last report ids); durable when the
   * store is. Owned by this plugin (namespace = its name) unless it declares
   * `stateNamespace`; a site extension's namespace is its key.
   */
  readonly state: PluginState;
}

export interface PluginState {
  get<T = unknown>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
}

/** Per-call information: which message, which delivery. */
export interface CallContext {
  route: string;
  /** Index of the step in the route. */
  step: number;
  /** Stable across retries and replays of the same delivery: send it to remotes that accept one. */
  idempotencyKey: string;
  /** 1 on the first attempt. */
  attempt: number;
  signal: AbortSignal;
  log: Logger;
}

/** The message as a step sees it. */
export interface StepInput {
  /** Store id (or an in-memory id before the store). */
  messageId: string;
  /** MSH-10. */
  controlId: string;
  /** `ADT^A04` (MSH-9.1^MSH-9.2). */
  type: string;
  /** Name of the listener / source that received it. */
  source: string;
  /** The parsed message; absent for non-HL7 inputs (JSON events, HTTP calls). */
  hl7?: Hl7Message;
  /** Variables set by earlier steps (`set:`) and the outputs of earlier plugin steps (`vars.<as>`). */
  vars: Record<string, unknown>;
}

/** What the ACK should carry back to the sender (on-complete routes only). */
export interface ReplyContribution {
  /** Segments appended after MSA/ERR, already in field form: [['ZRC','A001','Y',...]]. Values are escaped by the encoder. */
  segments?: string[][];
  /** Overrides MSA-3 text. */
  text?: string;
}

export interface StepResult {
  /** ok: done; skipped: deliberately not done (e.g. "no consent"). */
  outcome: 'ok' | 'skipped';
  /** Short PHI-free explanation, shown in outcomes and logs ("skipped: no consent"). */
  detail?: string;
  /** Data for later steps (`vars.<as>` in the route) and for `replay` output. Never logged. */
  output?: Record<string, unknown>;
  reply?: ReplyContribution;
}

export interface PluginInstance {
  /** Handle one message. Throw a HisbridgeError for failures: its `retryable` drives the delivery policy. */
  process(input: StepInput, call: CallContext): Promise<StepResult>;
  close?(): Promise<void>;
}

export interface PluginExample {
  title: string;
  /** A route step in YAML. */
  yaml: string;
}

/** A plugin definition: everything the registry, the route validator and the docs need. */
export interface PluginDefinition<C = Record<string, unknown>> {
  /** The name used in route YAML; equals the plugin's folder name. */
  readonly name: string;
  readonly summary: string;
  /** JSON Schema of the step's `config:`; validated at load. */
  readonly configSchema: JsonSchema;
  /** Site section of hisbridge.yaml this plugin reads (e.g. `gdEhr`), if any. */
  readonly siteKey?: string;
  /**
   * Share `ctx.state` with another owner instead of keeping it under the
   * plugin's own name: e.g. `recognition-check` records pending checks in the
   * `recognition` namespace, which the `recognition` extension's workstation
   * endpoints (namespace = extension key) read after a restart. Sharers must
   * agree on their keys; the default (own name) is right for almost every plugin.
   */
  readonly stateNamespace?: string;
  readonly examples?: PluginExample[];
  /**
   * Steps that call remote systems are 'outbound' (run as durable deliveries
   * for on-receive routes); 'local' steps (log, reply) run inline.
   */
  readonly kind: 'outbound' | 'local';
  /** Build an instance. Validate everything here: a route that cannot work must not start. */
  create(ctx: PluginContext, config: C): PluginInstance | Promise<PluginInstance>;
}

/** An HTTP endpoint mounted on the engine's HTTP server (workstation APIs). */
export interface HttpEndpoint {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path with `:param` segments, e.g. `/api/recognition/report/:id`. */
  path: string;
  handler(req: EndpointRequest): Promise<EndpointResponse>;
}

export interface EndpointRequest {
  params: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  /** Parsed JSON body (POST/PUT), undefined otherwise. */
  body: unknown;
  /** The caller's address (IPv4-mapped IPv6 given as plain IPv4). */
  remoteAddress?: string;
  /** Name of the authenticated API client (`api.clients[].name`); absent without `api.clients`. */
  client?: string;
}

/** Audit fields naming who made a workstation request: spread them into the request's audit row. */
export function requestOrigin(req: Pick<EndpointRequest, 'client' | 'remoteAddress'>): Pick<AuditEntry, 'client' | 'address'> {
  return { ...(req.client ? { client: req.client } : {}), ...(req.remoteAddress ? { address: req.remoteAddress } : {}) };
}

export interface EndpointResponse {
  status: number;
  headers?: Record<string, string>;
  /** Object → JSON; string/Buffer → sent as is. */
  body?: unknown;
}

export interface RunningSimulator {
  /** Base URL, e.g. http://127.0.0.1:8481 */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A site extension owns one section of hisbridge.yaml (e.g. `gdEhr`) shared by
 * a family of plugins: its schema, its defaults (pointing at its simulator),
 * its simulator and its workstation HTTP endpoints.
 */
export interface SiteExtension {
  /** Section key in hisbridge.yaml. */
  readonly key: string;
  readonly summary: string;
  readonly configSchema: JsonSchema;
  /**
   * Embedded defaults for the section. `simulatorUrl` is given when the
   * simulators run, so the defaults can point at them.
   */
  defaults(opts: { simulatorUrl?: string }): Record<string, unknown>;
  simulator?: {
    /** Default port on embedded defaults. */
    readonly defaultPort: number;
    /** Start the simulator for this section's site config (keys must match). */
    start(opts: { host: string; port: number; site: Record<string, unknown>; log: Logger }): Promise<RunningSimulator>;
  };
  /** Workstation endpoints mounted under /api when the section is configured. */
  endpoints?(ctx: PluginContext): HttpEndpoint[] | Promise<HttpEndpoint[]>;
}

export type { Hl7Message, HisbridgeError, Logger };
