/**
 * Who may call the workstation APIs (`/api/*`): the `api:` section of
 * hisbridge.yaml and the check the HTTP server runs before any `/api/*`
 * handler.
 *
 * ```yaml
 * api:
 *   clients:
 *     - name: his-workstation          # shown in audit rows
 *       tokenHash: "sha256:..."        # npx hisbridge api hash-token (reads the token on stdin)
 *       allow: [gd-ehr, recognition]   # endpoint families; omitted = all
 *       from: [10.1.0.0/16, 127.0.0.1] # optional allow-list of client addresses (CIDR or IP)
 *       institutions: [ORG_A]          # optional: the institutions (orgCode) it may act for
 *   # open: true                       # explicit opt-out; start then warns on every boot
 * ```
 *
 * Token hashes are plain SHA-256 with a scheme prefix (`sha256:<hex>`), not a
 * slow password hash: API tokens are machine-generated secrets of at least 32
 * characters (128+ bits), so guessing from a leaked hash is out of reach,
 * while every request pays one fast hash instead of ~50 ms of scrypt. People's
 * passwords (the console) keep scrypt.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

/** Prefix naming the hash scheme of `tokenHash`. */
export const TOKEN_HASH_PREFIX = 'sha256:';
/** Shortest token `hisbridge api hash-token` accepts. */
export const MIN_TOKEN_LENGTH = 32;
/** Longest bearer token looked at (anything longer cannot be one of ours). */
const MAX_TOKEN_LENGTH = 1024;

export interface ApiClientConfig {
  name: string;
  tokenHash: string;
  /** Endpoint families (first path segment after /api/); undefined = all. */
  allow?: string[];
  /** Allowed caller addresses (IP or CIDR); undefined = any. */
  from?: string[];
  /** Institutions (orgCode) the client may act for; undefined = any. Endpoints enforce it (EndpointRequest.institutions). */
  institutions?: string[];
}

export interface ApiConfig {
  clients?: ApiClientConfig[];
  /** Explicit opt-out: /api/* answers anyone. */
  open: boolean;
}

export const apiSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Who may call the workstation APIs under /api (bearer tokens, endpoint families, client addresses)',
  properties: {
    clients: {
      type: 'array',
      minItems: 1,
      description: 'Authenticated API clients; with clients, every /api/* request needs `Authorization: Bearer <token>`',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'tokenHash'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'Client name, shown in audit rows' },
          tokenHash: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$', description: 'From `npx hisbridge api hash-token` (reads the token on stdin)' },
          allow: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$' }, description: 'Endpoint families (the path segment after /api/, e.g. stats); omitted = all' },
          from: { type: 'array', minItems: 1, items: { type: 'string', minLength: 2 }, description: 'Allowed client addresses, IP or CIDR (10.1.0.0/16); omitted = any' },
          institutions: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 }, description: 'Institutions (orgCode) this client may act for; omitted = any' },
        },
      },
    },
    open: { type: 'boolean', description: 'Explicit opt-out: /api/* answers anyone (start warns on every boot)' },
  },
} as const;

/** `sha256:<hex>` of a token, the form `api.clients[].tokenHash` holds. */
export function hashApiToken(token: string): string {
  return TOKEN_HASH_PREFIX + createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Strips the IPv4-mapped IPv6 prefix (`::ffff:10.1.2.3` → `10.1.2.3`). */
export function normalizeAddress(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m ? m[1] : address;
}

/** Adds one `from` entry to a BlockList; returns a problem text when it is not an IP or CIDR. */
function addEntry(list: BlockList, entry: string): string | undefined {
  const [ip, bits, extra] = entry.trim().split('/');
  const addr = normalizeAddress(ip);
  const family = addr ? isIP(addr) : 0;
  if (!addr || family === 0 || extra !== undefined) return `"${entry}" is not an IP address or CIDR`;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (bits === undefined) {
    list.addAddress(addr, type);
    return undefined;
  }
  const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= (family === 4 ? 32 : 128))) return `"${entry}" has a bad prefix length`;
  list.addSubnet(addr, prefix, type);
  return undefined;
}

function matches(list: BlockList, address: string | undefined): boolean {
  const a = normalizeAddress(address);
  if (!a) return false;
  const family = isIP(a);
  if (family === 0) return false;
  return list.check(a, family === 4 ? 'ipv4' : 'ipv6');
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

export function isLoopbackAddress(address: string | undefined): boolean {
  return matches(LOOPBACK, address);
}

/** True for a bind host that only loopback callers can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || isLoopbackAddress(host);
}

/** Problems in an `api:` section beyond what the JSON schema checks (empty = fine). */
export function apiConfigProblems(api: ApiConfig): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  const hashes = new Set<string>();
  (api.clients ?? []).forEach((c, i) => {
    if (names.has(c.name)) problems.push(`api.clients[${i}].name "${c.name}" is used twice`);
    names.add(c.name);
    if (hashes.has(c.tokenHash)) problems.push(`api.clients[${i}].tokenHash is the same as another client's: give each client its own token`);
    hashes.add(c.tokenHash);
    for (const f of c.from ?? []) {
      const p = addEntry(new BlockList(), f);
      if (p) problems.push(`api.clients[${i}].from: ${p}`);
    }
  });
  if (api.open && api.clients?.length) problems.push('api.open: true and api.clients exclude each other: remove one');
  return problems;
}

type Raw = { clients?: { name: string; tokenHash: string; allow?: string[]; from?: string[]; institutions?: string[] }[]; open?: boolean } | undefined;

/** The validated section with defaults applied. */
export function parseApiConfig(raw: Raw): ApiConfig {
  return {
    open: raw?.open ?? false,
    ...(raw?.clients ? { clients: raw.clients.map((c) => ({ name: c.name, tokenHash: c.tokenHash, ...(c.allow ? { allow: [...c.allow] } : {}), ...(c.from ? { from: [...c.from] } : {}), ...(c.institutions ? { institutions: [...c.institutions] } : {}) })) } : {}),
  };
}

/**
 * Why `hisbridge start` must not run with this HTTP bind address, or
 * undefined when it may: a non-loopback host needs `api.clients` or an
 * explicit `api.open: true`.
 */
export function exposureProblem(http: { host: string; enabled: boolean }, api: ApiConfig): string | undefined {
  if (!http.enabled || isLoopbackHost(http.host)) return undefined;
  if (api.clients?.length || api.open) return undefined;
  return `http.host is ${http.host}, not a loopback address, but no api.clients are configured: anyone on the network could call the workstation APIs. Add api.clients (tokens from \`npx hisbridge api hash-token\`) or set api.open: true to accept that explicitly`;
}

export type GateResult =
  | { ok: true; client?: string; institutions?: readonly string[] }
  | { ok: false; status: 401 | 403; code: 'API_E_UNAUTHENTICATED' | 'API_E_FORBIDDEN'; message: string };

interface CompiledClient {
  name: string;
  hash: Buffer;
  allow?: Set<string>;
  from?: BlockList;
  institutions?: readonly string[];
}

/** The `/api/*` check, compiled once from the `api:` section. */
export class ApiGate {
  readonly #clients?: CompiledClient[];
  readonly #open: boolean;

  constructor(api: ApiConfig) {
    this.#open = api.open;
    if (api.clients?.length) {
      this.#clients = api.clients.map((c) => {
        const compiled: CompiledClient = { name: c.name, hash: Buffer.from(c.tokenHash.slice(TOKEN_HASH_PREFIX.length), 'hex') };
        if (c.allow) compiled.allow = new Set(c.allow);
        if (c.institutions) compiled.institutions = Object.freeze([...c.institutions]);
        if (c.from) {
          const list = new BlockList();
          for (const f of c.from) {
            const p = addEntry(list, f);
            if (p) throw new Error(`api.clients ${c.name}: ${p}`);
          }
          compiled.from = list;
        }
        return compiled;
      });
    }
  }

  /** 'clients', 'open' or 'loopback': how /api/* is protected. */
  get mode(): 'clients' | 'open' | 'loopback' {
    return this.#clients ? 'clients' : this.#open ? 'open' : 'loopback';
  }

  /**
   * Decides one request to `/api/<family>/...`, or to a source path mounted
   * under `family` (`resource` names it in the 403 message; default `/api/<family>`).
   */
  check(family: string, authorization: string | undefined, remoteAddress: string | undefined, resource = `/api/${family}`): GateResult {
    if (!this.#clients) {
      if (this.#open || isLoopbackAddress(remoteAddress)) return { ok: true };
      return { ok: false, status: 403, code: 'API_E_FORBIDDEN', message: 'the workstation APIs answer only local callers until api.clients is configured' };
    }
    const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(authorization ?? '');
    if (!m || m[1]!.length > MAX_TOKEN_LENGTH) {
      return { ok: false, status: 401, code: 'API_E_UNAUTHENTICATED', message: 'send Authorization: Bearer <token> of a configured API client' };
    }
    const got = createHash('sha256').update(m[1]!, 'utf8').digest();
    let client: CompiledClient | undefined;
    // Compare against every client (no early exit), each in constant time.
    for (const c of this.#clients) if (timingSafeEqual(got, c.hash) && !client) client = c;
    if (!client) return { ok: false, status: 401, code: 'API_E_UNAUTHENTICATED', message: 'unknown or wrong API token' };
    if (client.from && !matches(client.from, remoteAddress)) {
      return { ok: false, status: 403, code: 'API_E_FORBIDDEN', message: `client ${client.name} may not call from this address` };
    }
    if (client.allow && !client.allow.has(family)) {
      return { ok: false, status: 403, code: 'API_E_FORBIDDEN', message: `client ${client.name} may not call ${resource}` };
    }
    return { ok: true, client: client.name, ...(client.institutions ? { institutions: client.institutions } : {}) };
  }
}
