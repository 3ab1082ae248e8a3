/**
 * Console authentication: local users with scrypt password hashes from the
 * site config, or a bearer token; sessions that expire; one CSRF token per
 * session, required on every state-changing request made with the session
 * cookie.
 *
 * Sessions are kept in a SessionStore (the engine uses the store's
 * `console_sessions` table, sessions.ts) under the SHA-256 of their id, so a
 * restart does not log everyone out and the table never holds a usable
 * cookie. The CSRF token is derived from the session id, so it is not stored
 * either.
 *
 * Failed logins are throttled per user name and per address (LoginThrottle).
 */
import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

/** Cookie holding the session id. */
export const SESSION_COOKIE = 'hb_session';

export interface ConsoleUser {
  name: string;
  /** `scrypt$N$r$p$<salt b64>$<hash b64>` as made by hashPassword(). */
  passwordHash: string;
}

export interface ConsoleConfig {
  /** Serve /console and /api/stats (default true). */
  enabled: boolean;
  users: ConsoleUser[];
  /** Bearer token for scripts (`Authorization: Bearer ...`); from ${env:NAME}. */
  token?: string;
  /** Session lifetime in ms (default 8 h). */
  sessionTtlMs: number;
  /** Mark the session cookie `Secure` (set when the HTTP server runs TLS). */
  secureCookie?: boolean;
}

export const DEFAULT_CONSOLE: ConsoleConfig = { enabled: true, users: [], sessionTtlMs: 8 * 3_600_000 };

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

/** Hash for the site config's `console.users[].passwordHash`. */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, KEYLEN, { N, r: R, p: P });
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Constant-time check of a password against a hashPassword() string; false for malformed hashes. */
export function verifyPassword(password: string, stored: string): boolean {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![n, r, p].every((x) => Number.isInteger(x) && x > 0) || n > 1 << 20) return false;
  const salt = Buffer.from(parts[4]!, 'base64');
  const want = Buffer.from(parts[5]!, 'base64');
  if (!salt.length || !want.length) return false;
  try {
    const got = scryptSync(password, salt, want.length, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 });
    return timingSafeEqual(got, want);
  } catch {
    return false;
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface Session {
  id: string;
  user: string;
  csrf: string;
  expiresAt: number;
}

/** A stored session: looked up by the SHA-256 of its id, never by the id itself. */
export interface StoredSession {
  user: string;
  expiresAt: number;
}

/** Where sessions live. The engine's is the store table (sessions.ts); the default is memory. */
export interface SessionStore {
  get(idHash: string): StoredSession | undefined;
  put(idHash: string, s: StoredSession, now: number): void;
  delete(idHash: string): void;
  /** Drops expired sessions. */
  sweep(now: number): void;
}

export class MemorySessionStore implements SessionStore {
  readonly #m = new Map<string, StoredSession>();
  get(idHash: string): StoredSession | undefined {
    return this.#m.get(idHash);
  }
  put(idHash: string, s: StoredSession): void {
    this.#m.set(idHash, { ...s });
  }
  delete(idHash: string): void {
    this.#m.delete(idHash);
  }
  sweep(now: number): void {
    for (const [k, s] of this.#m) if (s.expiresAt <= now) this.#m.delete(k);
  }
}

/** SHA-256 (hex) of a session id: the key sessions are stored under. */
export function sessionIdHash(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('hex');
}

/** The CSRF token of a session, derived from its id (so nothing more is stored). */
function csrfOf(id: string): string {
  return createHash('sha256').update('hisbridge console csrf\0', 'utf8').update(id, 'utf8').digest('base64url');
}

/** Who is making a request, and how. */
export type Principal = { user: string; via: 'session'; session: Session } | { user: string; via: 'token' };

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

/** Console login throttling (issue 12): the limits, in one place. */
export const LOGIN_THROTTLE = {
  /** Failures per user name or per address within `windowMs` that trigger a lock. */
  maxFailures: 5,
  windowMs: 15 * 60_000,
  /** First lock; each further lock of the same key doubles, up to `maxLockMs`. */
  firstLockMs: 60_000,
  maxLockMs: 15 * 60_000,
  /** Keys tracked at most (oldest dropped first), so a flood of names cannot exhaust memory. */
  maxKeys: 10_000,
} as const;

/** The throttle's limits as numbers (LOGIN_THROTTLE's literal types would allow only its own values). */
type ThrottleLimits = { readonly [K in keyof typeof LOGIN_THROTTLE]: number };

interface ThrottleEntry {
  /** Times of the recent failures (at most maxFailures kept). */
  failures: number[];
  lockedUntil: number;
  /** Locks so far: the next lasts firstLockMs * 2^locks. */
  locks: number;
}

/**
 * Counts failed logins per key (`user:<name>`, `addr:<address>`). After
 * `maxFailures` failures of one key within `windowMs`, the key is locked for
 * `firstLockMs`; every further failure before the key has been quiet for a
 * whole window locks it again for twice as long, up to `maxLockMs`. A locked
 * key is refused without checking the password.
 */
export class LoginThrottle {
  readonly #keys = new Map<string, ThrottleEntry>();
  readonly #limits: ThrottleLimits;

  constructor(limits: Partial<ThrottleLimits> = {}) {
    this.#limits = { ...LOGIN_THROTTLE, ...limits };
  }

  /** Milliseconds until every one of `keys` is unlocked (0 = go ahead). */
  retryAfterMs(keys: readonly string[], now: number): number {
    let wait = 0;
    for (const k of keys) {
      const e = this.#keys.get(k);
      if (e && e.lockedUntil > now) wait = Math.max(wait, e.lockedUntil - now);
    }
    return wait;
  }

  fail(keys: readonly string[], now: number): void {
    const L = this.#limits;
    for (const k of keys) {
      let e = this.#keys.get(k);
      if (e && this.#stale(e, now)) {
        this.#keys.delete(k);
        e = undefined;
      }
      if (!e) {
        e = { failures: [], lockedUntil: 0, locks: 0 };
        this.#keys.set(k, e);
        // Past the cap, forget the oldest key (O(1) per failure, whatever the flood).
        if (this.#keys.size > L.maxKeys) this.#keys.delete(this.#keys.keys().next().value!);
      }
      e.failures = e.failures.filter((t) => t > now - L.windowMs);
      e.failures.push(now);
      if (e.failures.length > L.maxFailures) e.failures.shift();
      // A key locked before (and not quiet since) is locked again at its next failure, for twice as long.
      if (e.failures.length >= L.maxFailures || e.locks > 0) {
        e.lockedUntil = now + Math.min(L.firstLockMs * 2 ** e.locks, L.maxLockMs);
        e.locks = Math.min(e.locks + 1, 30);
      }
    }
  }

  /** A successful login clears the user's failures (the address keeps its own). */
  succeed(key: string): void {
    this.#keys.delete(key);
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Quiet for a whole window since its last failure and the end of its last lock: forgotten (lock level back to 0). */
  #stale(e: ThrottleEntry, now: number): boolean {
    const w = this.#limits.windowMs;
    return e.lockedUntil + w <= now && e.failures.every((t) => t <= now - w);
  }
}

export type LoginAttempt =
  | { ok: true; session: Session }
  | { ok: false; retryAfterS?: number; knownUser: boolean };

export class ConsoleAuth {
  readonly #cfg: ConsoleConfig;
  readonly #sessions: SessionStore;
  readonly throttle: LoginThrottle;
  // A dummy hash so an unknown user name costs as much as a wrong password (no user enumeration by timing).
  readonly #dummy = hashPassword(randomBytes(8).toString('hex'));
  #lastSweep = 0;

  constructor(cfg: ConsoleConfig, sessions: SessionStore = new MemorySessionStore(), throttle = new LoginThrottle()) {
    this.#cfg = cfg;
    this.#sessions = sessions;
    this.throttle = throttle;
  }

  /** True when anyone can log in at all (a user or a token is configured). */
  get configured(): boolean {
    return this.#cfg.users.length > 0 || !!this.#cfg.token;
  }

  isUser(name: string): boolean {
    return this.#cfg.users.some((u) => u.name === name);
  }

  /** A new session for valid credentials, undefined otherwise (no throttling: see attempt()). */
  login(name: string, password: string, now = Date.now()): Session | undefined {
    const user = this.#cfg.users.find((u) => u.name === name);
    const ok = verifyPassword(password, user?.passwordHash ?? this.#dummy) && user !== undefined;
    if (!ok) return undefined;
    this.#sweep(now);
    const id = randomBytes(32).toString('base64url');
    const s: Session = { id, user: user.name, csrf: csrfOf(id), expiresAt: now + this.#cfg.sessionTtlMs };
    this.#sessions.put(sessionIdHash(id), { user: s.user, expiresAt: s.expiresAt }, now);
    return s;
  }

  /**
   * A login through the throttle: refused with `retryAfterS` while the user
   * name or the address is locked (the password is not even checked), else
   * login(); failures count against both.
   */
  attempt(name: string, password: string, address: string | undefined, now = Date.now()): LoginAttempt {
    const keys = [`user:${name}`, ...(address ? [`addr:${address}`] : [])];
    const knownUser = this.isUser(name);
    const wait = this.throttle.retryAfterMs(keys, now);
    if (wait > 0) return { ok: false, retryAfterS: Math.ceil(wait / 1000), knownUser };
    const s = this.login(name, password, now);
    if (!s) {
      this.throttle.fail(keys, now);
      return { ok: false, knownUser };
    }
    this.throttle.succeed(`user:${name}`);
    return { ok: true, session: s };
  }

  logout(id: string): void {
    this.#sessions.delete(sessionIdHash(id));
  }

  /** The live session of a request's cookie, if any. */
  session(headers: Record<string, string | undefined>, now = Date.now()): Session | undefined {
    const id = parseCookies(headers.cookie)[SESSION_COOKIE];
    if (!id || id.length > 200) return undefined;
    const key = sessionIdHash(id);
    const s = this.#sessions.get(key);
    if (!s) return undefined;
    if (s.expiresAt <= now) {
      this.#sessions.delete(key);
      return undefined;
    }
    return { id, user: s.user, csrf: csrfOf(id), expiresAt: s.expiresAt };
  }

  /** Session cookie or bearer token. */
  principal(headers: Record<string, string | undefined>, now = Date.now()): Principal | undefined {
    const auth = headers.authorization;
    if (auth?.startsWith('Bearer ')) {
      return this.#cfg.token && sameSecret(auth.slice(7).trim(), this.#cfg.token) ? { user: 'token', via: 'token' } : undefined;
    }
    const s = this.session(headers, now);
    return s ? { user: s.user, via: 'session', session: s } : undefined;
  }

  /**
   * CSRF check for a state-changing request: a bearer token is not ambient
   * (a browser never adds it by itself), a session must echo its CSRF token
   * in the `x-csrf-token` header.
   */
  csrfOk(p: Principal, headers: Record<string, string | undefined>): boolean {
    if (p.via === 'token') return true;
    const sent = headers['x-csrf-token'];
    return typeof sent === 'string' && sameSecret(sent, p.session.csrf);
  }

  cookie(s: Session): string {
    return `${SESSION_COOKIE}=${s.id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(this.#cfg.sessionTtlMs / 1000)}${this.#cfg.secureCookie ? '; Secure' : ''}`;
  }

  clearCookie(): string {
    return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${this.#cfg.secureCookie ? '; Secure' : ''}`;
  }

  #sweep(now: number): void {
    // Once a minute at most: the store sweep is a DELETE on an indexed column.
    if (now - this.#lastSweep < 60_000 && now >= this.#lastSweep) return;
    this.#lastSweep = now;
    this.#sessions.sweep(now);
  }
}
