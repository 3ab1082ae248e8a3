/**
 * The plugin SDK: the only core module plugins (everything under plugins/)
 * may import. It declares the plugin, site-extension and source contracts and
 * re-exports the core pieces plugins need: templates, HTTP status
 * classification, the HL7 message API, SM4 and the gateway signature,
 * masking, error helpers (catalogues, `errorFactory`, `permanentError`),
 * Kafka and MLLP building blocks for the source plugins, and the Registry the
 * built-in assembly (plugins/index.ts) fills. test/sdk/boundary.test.ts fails
 * on any other core import from plugins/.
 *
 * Errors: a plugin family declares its codes with `errorFactory(family,
 * catalogue)` (plugins/<family>/errors.ts) and registers them with
 * `Registry.errors(...)`, or through `SiteExtension.errors` /
 * `PluginDefinition.errors`. A code core or another family owns refuses the
 * start. Whether a failure is retried comes from the thrown HisbridgeError's
 * `retryable`: a catalogued code's flag, or `permanentError(message)` for
 * "never retry". Anything else thrown (a plain Error) is treated as the
 * retryable ENGINE_E_INTERNAL and dead-lettered only after the route's last
 * attempt (docs/delivery.md, "Errors raised by plugins").
 *
 * State a platform's plugins share within one engine (a token, pending
 * checks) is the extension's `SiteExtension.service`, reached with
 * `ctx.service(key)`; never a module-level variable, which two engines in
 * one process would share. A plugin's own bound on concurrent deliveries is
 * `PluginDefinition.concurrency` (docs/delivery.md).
 *
 * Keep it small: every addition is a promise to every plugin.
 */
import type { Logger } from './log.js';
import type { Hl7Message } from './hl7/message.js';
import type { ErrorFamily } from './errors.js';
import type { ConfigSchema, JsonSchema } from './config-schema.js';

/* Re-exports: what plugins use from the rest of core. */
export {
  HisbridgeError,
  errorFactory,
  errorText,
  hbError,
  isHisbridgeError,
  permanentError,
  toHisbridgeError,
  type CatalogueEntry,
  type ErrorCatalogue,
  type ErrorCode,
  type ErrorFamily,
  type ErrorSpec,
  type HisbridgeErrorOptions,
} from './errors.js';
export { compileTemplate, compileExpression, formatDate, type Tables, type Template, type ValueRef } from './template.js';
/** Conditions (`filter:`, `match.when`) for steps that take one in their config (map, issue 17). */
export { REWRITTEN_HL7_VAR, rewrittenText } from './routes/rewrite.js';
export { compileCondition, conditionSchema, type Condition, type ConditionSpec } from './routes/condition.js';
export { classifyHttpStatus, parseRetryAfter } from './http/client.js';
export * from './hl7/index.js';
/** Reading a field's raw text without an Hl7Segment (one-pass scans of long messages, issue 11). */
export { componentOfEach, leaf, nth } from './hl7/fields.js';
export { maskId, maskIdNumber, maskName, maskPhone, maskSecret, scrubText } from './mask.js';
export { gatewayHeaders, gatewaySignature, newNonce, sm4DecryptHex, sm4EncryptHex, verifyGatewaySignature, type GatewayHeaderOptions } from './crypto/index.js';
export { TimeSlice, yieldIfBig, yieldToLoop, parseJsonYielding, parseJsonBytesYielding, stringifyJsonYielding, stringifyJsonChunks, concatYielding } from './cooperative.js';
export { durationSchema, parseDuration } from './config/duration.js';
export { loadTlsOptions, tlsSchema, type TlsConfig } from './config/tls.js';
export { mllpListenerSchema, parseMllpListener } from './config/site.js';
export { errorAckFromHead } from './engine/ack.js';
export { untilResumed } from './engine/flow.js';
export { createMllpServer, type MllpServer } from './mllp/server.js';
export { MllpClient, type MllpClientOptions } from './mllp/client.js';
export type { KafkaClient, KafkaProducerHandle, OutgoingRecord } from './kafka/client.js';
/** The Kafka client factory, loaded on first use so sites without Kafka never load kafkajs. */
export async function loadKafkaClient(): Promise<typeof import('./kafka/client.js').createKafkaClient> {
  return (await import('./kafka/client.js')).createKafkaClient;
}
export { kafkaSchema, type KafkaConfig, type KafkaConnection } from './kafka/config.js';
export type { KafkaEvent } from './kafka/envelope.js';
export { KafkaSource } from './kafka/source.js';
export { Registry } from './registry.js';
export { auditedCall, type AuditedCallDetail } from './audited-call.js';
export { parseSubcommand, type CliFlags, type ParsedSubcommand, type SubcommandSpec } from './cli/subcommand.js';

/** JSON Schema types; in their own module (core/config-schema.ts) so a type check of them alone is fast. */
export type { ConfigSchema, JsonSchema, RequiredKeys } from './config-schema.js';
/**
 * What an external plugin module (`plugins:` in hisbridge.yaml,
 * core/config/plugins.ts) default-exports: definitions, or, the primary
 * form, a function given this SDK module that returns them (one copy of the
 * SDK whichever way the engine runs). docs/plugins.md.
 */
export type ExternalPluginDefinition = PluginDefinition<any> | SourceDefinition<any> | SiteExtension | ErrorFamily<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export type ExternalPluginModule =
  | ExternalPluginDefinition
  | readonly ExternalPluginDefinition[]
  | ((sdk: typeof import('./sdk.js')) => ExternalPluginDefinition | readonly ExternalPluginDefinition[] | Promise<ExternalPluginDefinition | readonly ExternalPluginDefinition[]>);

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
  /**
   * The service of the site extension `key` (`SiteExtension.service`): one
   * object per engine, created on first use and shared by every plugin and
   * the extension's endpoints (a token cache, checks awaiting a decision).
   * Throws what the extension's `service` throws (CONFIG_E_SITE_MISSING for
   * an incomplete section), or PLUGIN_E_NO_SERVICE when no registered
   * extension `key` declares one. Optional (issue 14): harnesses built
   * before it may leave it out; the engine and the CLI tools always give it.
   */
  service?<T = unknown>(key: string): T;
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
  /** The parsed JSON event (format json: a Kafka envelope, an HTTP JSON body); routes address it as `body.<path>`. */
  body?: unknown;
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
  /**
   * Checked at ingest, before anything of the message is committed or run,
   * for every plugin step of every route the message matched: throw a
   * HisbridgeError when this step can never handle the message (e.g. its
   * sender belongs to no configured account). The whole message is then
   * refused with AR (CR) and the error's reason; nothing is delivered.
   * Synchronous and cheap. Optional (issue 16).
   */
  admit?(input: StepInput): void;
  close?(): Promise<void>;
}

export interface PluginExample {
  title: string;
  /** A route step in YAML. */
  yaml: string;
}

/** A plugin definition: everything the registry, the route validator and the docs need. */
/**
 * A site segment (ZCN, ZRC...) as a plugin or site extension defines it, so
 * the console's message tree can name it like a standard segment:
 * `ZCN-1 Consent (ID)`. `fields[0]` is field 1.
 */
export interface SegmentDefinition {
  /** Three characters, Z first: `ZCN`. */
  readonly name: string;
  /** What the segment is: `Consent to share records`. */
  readonly description: string;
  readonly fields: readonly { readonly name: string; readonly datatype?: string; readonly components?: readonly string[] }[];
}

export interface PluginDefinition<C = Record<string, unknown>> {
  /** The name used in route YAML; equals the plugin's folder name. */
  readonly name: string;
  readonly summary: string;
  /**
   * JSON Schema of the step's `config:`; validated at load. Typed against
   * `C` (see `ConfigSchema`): its `properties` must name exactly the keys of
   * the config type, and `required` only keys the type does not mark optional.
   */
  readonly configSchema: ConfigSchema<C>;
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
  /**
   * A local step that only computes from the message, the variables and the
   * code tables (the `map` step): in an on-receive route such a step before
   * the first outbound step, and the steps after it, run with the deliveries
   * instead of before the ACK, so a failure (a code missing from a table)
   * dead-letters the delivery and a replay runs it again. Optional (issue 17).
   */
  readonly transform?: boolean;
  /**
   * The step changes nothing outside the run: it only writes a log line (the
   * `log` step). A local step normally makes the engine look for a duplicate
   * before running the route, so a resent message does not act twice; a
   * route whose local steps are all effect-free leaves that to the store's
   * check at commit (one query less per message). Optional (issue 15).
   */
  readonly effectFree?: boolean;
  /**
   * The plugin's own error codes (`errorFactory(...)`), registered with the
   * plugin. Optional (issue 14); a family shared by several plugins may be
   * named by each of them: the same object is registered once.
   */
  readonly errors?: ErrorFamily<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /**
   * Deliveries of this plugin running at once, at most, across all routes
   * (on-receive routes: the durable delivery workers). Absent: only the
   * engine's `delivery.concurrency` bounds it. A site overrides it with
   * `delivery.pluginConcurrency.<plugin>` in hisbridge.yaml. Optional (issue 14).
   */
  readonly concurrency?: number;
  /** Site segments (Z-segments) this plugin reads or writes, named for the console's message tree. Optional (issue 18). */
  readonly segments?: readonly SegmentDefinition[];
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
  /**
   * The institutions (orgCode) the client is limited to
   * (`api.clients[].institutions`); absent = any. An endpoint acting for an
   * institution must refuse one outside this list (403). Issue 16.
   */
  institutions?: readonly string[];
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
   * Checks of the written section that its schema cannot express (a
   * duplicate key across list items...): each problem is reported at the
   * file:line:col of `path` (inside the section) and refuses the load.
   * Given the section as written (no defaults). Optional (issue 16).
   */
  problems?(section: Readonly<Record<string, unknown>>): { path: (string | number)[]; message: string }[];
  /**
   * Embedded defaults for the section. `simulatorUrl` is given when the
   * simulators run, so the defaults can point at them.
   */
  defaults(opts: { simulatorUrl?: string }): Record<string, unknown>;
  simulator?: {
    /**
     * Port used when the engine's HTTP server is off. Otherwise the engine
     * derives the port from its HTTP port (+ 1, + 2... in extension order) or
     * takes `simulatorPorts.<key>` from hisbridge.yaml (core/engine/sim-ports.ts).
     */
    readonly defaultPort: number;
    /** Start the simulator for this section's site config (keys must match). */
    start(opts: { host: string; port: number; site: Record<string, unknown>; log: Logger }): Promise<RunningSimulator>;
  };
  /** The family's error codes (`errorFactory(...)`), registered with the extension. Optional (issue 14). */
  readonly errors?: ErrorFamily<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Site segments (Z-segments) of this platform, named for the console's message tree. Optional (issue 18). */
  readonly segments?: readonly SegmentDefinition[];
  /** Workstation endpoints mounted under /api when the section is configured. */
  endpoints?(ctx: PluginContext): HttpEndpoint[] | Promise<HttpEndpoint[]>;
  /**
   * The remote this section talks to, for the informational reachability in
   * /healthz `remotes.<key>` and the console. Given the configured section
   * (defaults merged); returns undefined when there is nothing to probe. The
   * engine opens a TCP connection to the URL's host and port. Optional (issue 14).
   */
  health?(site: Readonly<Record<string, unknown>>): SiteHealthProbe | undefined;
  /** `hisbridge <name> ...` subcommands this extension adds to the CLI. Optional (issue 14). */
  readonly commands?: readonly CliCommand[];
  /**
   * `hisbridge doctor`'s go-live probe of this section's remote: is it
   * reachable, are the credentials accepted (a signature probe, a login)?
   * Given the configured section (defaults merged, `${env:}` resolved). It
   * must not change anything at the remote nor send patient data, and says
   * in its check details what it sent. Core reads the HTTP `Date` header of
   * the answers it gets through `ctx.http` for the clock check. Optional (issue 16).
   */
  doctor?(site: Readonly<Record<string, unknown>>, ctx: DoctorContext): Promise<DoctorCheck[]>;
  /**
   * State shared by the family's plugins and endpoints within one engine (a
   * token client, checks awaiting a decision): created on the first
   * `ctx.service(key)` call with the extension's own context (site = the
   * section with defaults merged, state namespace = the key), then returned
   * to every caller of that engine; another engine in the same process gets
   * its own. A throw (e.g. CONFIG_E_SITE_MISSING) is passed to the caller
   * and nothing is kept, so the next call tries again. At stop, after the
   * routes are closed, the engine calls the object's `close()` if it has one.
   * Optional (issue 14).
   */
  service?(ctx: PluginContext): unknown;
}

/** What a site extension's `doctor` probe gets. */
export interface DoctorContext {
  /** Outbound HTTP; core watches the answers' `Date` headers. */
  readonly http: HttpClient;
  readonly signal: AbortSignal;
}

/** One line of `hisbridge doctor`'s report. Texts carry no secret and no patient data. */
export interface DoctorCheck {
  /** Short name, e.g. `gdEhr: gateway signature accepted`. */
  name: string;
  status: 'ok' | 'warn' | 'fail';
  /** What was found. */
  detail: string;
  /** What to do about a warn or a fail. */
  fix?: string;
}

/** What a site extension's `health` declares: the remote to probe. */
export interface SiteHealthProbe {
  /** A URL of the remote (only host and port are used). */
  url: string;
  /**
   * Further URLs of the same platform in use, e.g. institutions' own base
   * URLs. Each distinct host and port is probed as well (at most
   * MAX_REMOTE_TARGETS per section), shown as `remotes["<key>@host:port"]`.
   */
  urls?: readonly string[];
}

/** Where a CLI command writes: one line per call, no trailing newline. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

/**
 * A `hisbridge <name>` subcommand declared by a site extension. The name is a
 * contract with tools outside the project: keep it, its flags, its output and
 * its exit codes stable. Exit codes: 0 success, 1 the operation failed,
 * 2 a usage error.
 */
export interface CliCommand {
  /** Lower-case letters, digits and dashes; must not be a built-in command's name. */
  readonly name: string;
  /** One line for `hisbridge --help`. */
  readonly summary: string;
  /** Full usage text, printed by `hisbridge <name> --help` and after usage errors. */
  readonly usage?: string;
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  run(argv: string[], io: CliIo): Promise<number>;
}

/* ------------------------------------------------------------------ */
/* Sources (issue 13): inputs are plugins that hand messages to the engine  */
/* through one ingress port and act on a structured outcome.               */
/* ------------------------------------------------------------------ */

/** One message handed to the engine by a source. Blocks and batches are split by the source (`SourceContext.submitBlock`). */
export interface InboundMessage {
  /** The source's name (`listeners[].name`, a Kafka topic's source name): what routes list in `sources:`. */
  source: string;
  /** `hl7` (default): one HL7 v2 message in ER7; `json`: one JSON event (routes read it as `body.<path>`). */
  format?: 'hl7' | 'json';
  /** The message exactly as received: these bytes are what the store keeps and what replay resends. */
  bytes: Buffer;
  /** HL7: a charset declared by the transport (an HTTP Content-Type `charset`); wins over MSH-18. */
  charset?: string;
  /** HL7: the charset to assume when neither the transport nor MSH-18 names one (the listener's `charset`). */
  defaultCharset?: string;
  /** JSON: the event type routes match with `match.events` (the Kafka envelope's `eventType`, a listener's `event:`). */
  event?: string;
  /** JSON: who sent the event and its id, for the duplicate check (the HL7 equivalent is MSH-3, MSH-4, MSH-10). */
  identity?: { app: string; facility?: string; id: string };
  /** HL7: the ACK code for a message no route takes (default AA). */
  noRoute?: 'AA' | 'AR';
  /** HL7: bytes invalid in the message's charset: refuse (default) or keep them as U+FFFD and mark the message. */
  invalidBytes?: 'reject' | 'replace';
  /**
   * The source's new position (e.g. the database source's cursor), stored under
   * `source` in the same store transaction as this message, so a crash keeps
   * both or neither; read it back with `SourceContext.checkpoint()`. Issue 17.
   */
  checkpoint?: string;
  /**
   * Pipelining for a source that keeps an order per key (the Kafka source).
   * When the message is about to be accepted, the port calls `queued()` as
   * soon as its commit is queued in the store, behind every message queued
   * before it: the source may then submit the key's next message, which
   * shares the commit (one fsync for many records). `queued()` is not called
   * when the message is refused or will not be accepted: the source then
   * waits for the outcome as usual. The messages of one key share `chain`;
   * once one of them fails to commit, every later one naming the chain is
   * refused (`failed`, STORE_E_IO), so none is committed ahead of an earlier
   * message of its key.
   */
  pipeline?: { chain: { broken: boolean }; queued(): void };
}

/**
 * What became of a submitted message. A source acts on `status` only:
 * - `accepted`: durably committed (and, for on-complete routes, handled); nothing left for the source to do;
 * - `duplicate`: the same message (same sender, id and content) was accepted before; answered as then, not dispatched again;
 * - `rejected`: refused, and the same bytes will be refused again (unparsable, invalid bytes, no route under
 *   `noRoute: AR`, a permanent failure of an on-complete step, a refused block): dead-letter it, move it to error;
 * - `failed`: not done for a passing reason (back-pressure under `overload: reject`, shutting down, a store write
 *   failure, a retryable on-complete failure): offer it again later.
 */
export type IngestStatus = 'accepted' | 'duplicate' | 'rejected' | 'failed';

/** What happened on one matched route, PHI-free. */
export interface RouteOutcome {
  route: string;
  /** queued: deliveries stored; ok/failed/filtered/skipped: final. */
  outcome: 'queued' | 'ok' | 'failed' | 'filtered' | 'skipped';
  detail?: string;
  deliveries?: number;
  errorCode?: string;
}

/** The acknowledgment an HL7-speaking source renders (with `SourceContext.renderAck`); Kafka ignores it. */
export interface IngestReply {
  /** HL7 table 0008: AA/AE/AR in original mode, CA/CE/CR when the sender asked for enhanced mode. */
  code: 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR';
  /** MSA-3. */
  text?: string;
  /** The ERR segment: ERR-3 (HL7 table 0357), ERR-8 text, ERR-2 location (`PID^1^5`) when known. */
  error?: { hl7Code: string; text: string; location?: string };
  /** Segments after MSA/ERR contributed by on-complete steps (reply, ZVU...), in field form. */
  segments?: string[][];
}

export interface IngestOutcome {
  status: IngestStatus;
  /** A catalogue code: `OK` when accepted cleanly, `DUPLICATE`, else the error that decided (HL7_E_PARSE, ENGINE_E_BACKPRESSURE, a step's code...). */
  code: string;
  /** Why, PHI-free ('' when accepted cleanly). */
  reason: string;
  /** One entry per matched route (empty when refused before routing). */
  routes: RouteOutcome[];
  reply: IngestReply;
  /** Store id once committed (also for a duplicate: the first copy's id). */
  messageId?: number;
  /** MSH-10 or the JSON event id, when readable. */
  controlId?: string;
  /** MSH-9.1^MSH-9.2 or the JSON event type, when known. */
  type?: string;
  /** Stored as a new message although its sender and id were accepted before with other content. */
  controlIdReused?: boolean;
}

/** The engine's ingress port. Resolves once the message is committed or refused; never rejects. */
export type Submit = (message: InboundMessage) => Promise<IngestOutcome>;

/** A block (MLLP frame, HTTP body, file) after splitting: one outcome per message and the reply frames an HL7 peer expects. */
export interface BlockOutcome {
  /** One per message, in block order (batches flattened). */
  outcomes: IngestOutcome[];
  /** Reply payloads, unframed, in order: one ACK per loose message, one batch ACK (BHS ... BTS) per batch. */
  replies: Buffer[];
  /** Batches and messages as read, for the caller's bookkeeping (file source: message index). */
  units: { kind: 'message' | 'batch'; messages: number }[];
}

/** Options for one HL7 block, taken from the listener's config. */
export interface BlockOptions {
  source: string;
  defaultCharset?: string;
  /** A transport-declared charset (HTTP Content-Type), applied to every message of the block. */
  charset?: string;
  noRoute?: 'AA' | 'AR';
  invalidBytes?: 'reject' | 'replace';
  /** Several loose messages in one block: each processed (default) or all refused with AR. Batches are always processed. */
  multiMessageBlocks?: 'split' | 'reject';
  /**
   * Called before each message is submitted, with its index in the block (0-based, batches flattened); return false
   * to skip it (the file source resuming after its last committed message). A skipped message gets no outcome.
   */
  before?(index: number): boolean;
  /** Called after each message's outcome, in order (the file source records progress here). */
  after?(index: number, outcome: IngestOutcome): void | Promise<void>;
}

/** What a source receives besides `submit`. */
export interface SourceContext {
  /** Child logger carrying the source's name. Log masked values only. */
  readonly log: Logger;
  /** Aborted when the engine shuts down. */
  readonly signal: AbortSignal;
  /** The listener's config as written (validated against the source's `configSchema`, defaults not applied). */
  readonly config: Record<string, unknown>;
  /** The directory relative paths in `config` are resolved against (the site file's directory). */
  readonly baseDir: string;
  /** The engine's data directory (a source may keep small files of its own under `<dataDir>/sources/<name>`). */
  readonly dataDir: string;
  /** Splits an HL7 block into messages and batches, submits each in order, and builds the replies (one shared ACK builder). */
  submitBlock(bytes: Buffer, opts: BlockOptions): Promise<BlockOutcome>;
  /** The HL7 ACK for one outcome, in the message's charset (the shared ACK builder). */
  renderAck(outcome: IngestOutcome): Buffer;
  /**
   * Back-pressure, one controller for every source: `paused` is true past the store's high-water mark (with
   * `overload: pause`) and false again below 80% of it. Stop reading while paused; never poll the store yourself.
   */
  readonly flow: FlowControl;
  /** Mounts HTTP endpoints on the engine's HTTP server (HL7-over-HTTP); undefined when HTTP is disabled. */
  mountHttp?(endpoints: SourceHttpEndpoint[]): void;
  /** Counts for /metrics: connections refused at a cap, and similar source-level events. */
  metric(name: 'connection_refused', labels?: Record<string, string>): void;
  /** Gauges for /metrics: `kafka_lag` (records behind, labels topic and partition). Optional: absent in harnesses. */
  gauge?(name: 'kafka_lag', value: number, labels: Record<string, string>): void;
  /** The position last committed for this source (`InboundMessage.checkpoint`), or undefined. Optional: absent in harnesses. Issue 17. */
  checkpoint?(): string | undefined;
  /** Moves the position without a message (a refused or duplicate row), after the messages already submitted. Issue 17. */
  saveCheckpoint?(value: string): void;
}

export interface FlowControl {
  readonly paused: boolean;
  /** Called with true on pause and false on resume; returns an unsubscribe function. */
  onChange(listener: (paused: boolean) => void): () => void;
}

/** An endpoint a source mounts: the raw body and headers, behind `api.clients` authentication under `family`. */
export interface SourceHttpEndpoint {
  method: 'POST';
  path: string;
  /** The `api.clients[].allow` family checked for this path (`hl7` for the HL7-over-HTTP source). */
  family: string;
  /** Largest body accepted; larger ones get 413 HTTP_E_TOO_LARGE. */
  maxBodyBytes: number;
  handler(req: { body: Buffer; headers: Record<string, string | undefined>; remoteAddress?: string; client?: string }): Promise<{ status: number; headers?: Record<string, string>; body: Buffer | string }>;
}

/** A running source. */
export interface RunningSource {
  /** Stops taking new input, lets what was submitted finish (up to graceMs), releases sockets and files. */
  close(graceMs: number): Promise<void>;
  /** For /healthz and /readyz: `live` false fails /healthz (e.g. a listener that lost its socket); `ready` false holds /readyz. */
  health?(): { live: boolean; ready: boolean; detail?: string; info?: Record<string, unknown> };
}

/** A source plugin: a listener `type:` (mllp, http, file) or the Kafka input. */
export interface SourceDefinition<C = Record<string, unknown>> {
  /** The `type:` value in `listeners:`; `kafka` for the `kafka:` section's topics. */
  readonly type: string;
  readonly summary: string;
  /** JSON Schema of one listener entry of this type (name and type included); validated at load with file:line:col. */
  readonly configSchema: JsonSchema;
  /** Starts reading; a bind or open failure throws (start then exits non-zero naming the listener). */
  start(ctx: SourceContext & { config: C }, submit: Submit): Promise<RunningSource>;
}

export type { Logger };
